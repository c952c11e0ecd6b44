# The README's commands. `make demo` runs the hub with demo data; `make test` runs every check CI runs.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint typecheck pytest translations clean

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -c constraints.txt -e '.[hub,kiosk,dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/lektiecafe demo $(ARGS)

test: $(STAMP)
	scripts/ensure-test-tools
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/pytest -q $(PYTEST_ARGS)

translations: $(STAMP)
	$(BIN)/pybabel extract -F babel.cfg -o hub/translations/messages.pot --ignore-dirs='.* _* node_modules' --no-location --omit-header --sort-output .
	$(BIN)/pybabel update -i hub/translations/messages.pot -d hub/translations --no-fuzzy-matching --ignore-obsolete --width=0
	$(BIN)/pybabel compile -d hub/translations --statistics

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
