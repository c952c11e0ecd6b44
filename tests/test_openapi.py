"""The hub's HTTP API for programs is described (hub/api/openapi.py, served at /api/openapi.json),
the description is complete, and the real hub answers as it says: schemathesis sends generated
and malformed requests to every described operation, logged in where the operation needs it,
and checks that no answer is a server error and every answer matches the description."""

from __future__ import annotations

import re

import jsonschema_rs  # schemathesis's validator
import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import negative_data_rejection, positive_data_acceptance
from sqlalchemy import select

from hub import create_app
from hub.accounts.access import make_token
from hub.accounts.models import User
from hub.api.openapi import document
from hub.config import HubConfig

# Test-only edges (hub/clock.py): 404 unless LEKTIECAFE_TEST_CLOCK, never part of the API.
NOT_DESCRIBED = {"/api/test-only/clock"}

# Who is logged in when schemathesis calls an operation (the others need nobody).
CALLER = {
    "/api/attachments": "student1",
    "/api/attachments/{attachment_id}": "student1",
    "/api/me": "student1",
    "/me/data.json": "student1",
    "/admin/stats/export.csv": "admin",
}
# Generated calls per operation: all of them run in well under 90 s.
EXAMPLES = 20
# Operations that take some input the description calls invalid, on purpose, and why.
LENIENT = {
    # The dashboard's form sends its blank fields (blank is "not chosen"), and a repeated
    # query parameter counts once, as in every Flask form.
    "/admin/stats/export.csv",
}
USERS = ("student1", "helper1", "admin", "coordinator1", "staff1")


def openapi_path(rule: str) -> str:
    """Werkzeug's /a/<int:x>/b as OpenAPI's /a/{x}/b."""
    return re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", r"{\1}", rule)


@pytest.fixture
def app(database_url, tmp_path):
    return create_app(HubConfig(data_dir=tmp_path / "app", database_url=database_url))


def described() -> dict[str, set[str]]:
    return {path: {m.upper() for m in ops} for path, ops in document()["paths"].items()}


def test_every_api_route_is_described_and_every_description_is_a_route(app):
    routes: dict[str, set[str]] = {}
    for rule in app.url_map.iter_rules():
        methods = set(rule.methods or ()) - {"HEAD", "OPTIONS"}
        routes.setdefault(openapi_path(rule.rule), set()).update(methods)
    api = {path: methods for path, methods in routes.items() if path.startswith("/api/")}
    missing = {
        path: methods - described().get(path, set())
        for path, methods in api.items()
        if path not in NOT_DESCRIBED and methods - described().get(path, set())
    }
    assert missing == {}, "describe these in hub/api/openapi.py"
    stale = {
        path: methods - routes.get(path, set())
        for path, methods in described().items()
        if methods - routes.get(path, set())
    }
    assert stale == {}, "described in hub/api/openapi.py but not routes of the hub"


def test_every_route_that_answers_json_is_described(app):
    """Beyond /api/: each GET route without parameters, asked by nobody and by every role, is
    either described or answers no JSON (a page, a redirect)."""
    with app.app_context(), app.extensions["lektiecafe"].db.transaction() as s:
        ids = {u: s.scalar(select(User.id).where(User.username == u)) for u in USERS}
        tokens = [None, *(make_token(i) for i in ids.values())]
    client = app.test_client()
    undescribed_json = set()
    for rule in app.url_map.iter_rules():
        if "GET" not in (rule.methods or ()) or rule.arguments or rule.rule in described():
            continue
        for token in tokens:
            headers = {"Authorization": f"Bearer {token}"} if token else {}
            answer = client.get(rule.rule, headers=headers)
            if answer.mimetype == "application/json":
                undescribed_json.add(rule.rule)
    assert undescribed_json == set(), "answers JSON: describe it in hub/api/openapi.py"


def test_the_hub_serves_its_description(hub):
    served = requests.get(hub.url + "/api/openapi.json", timeout=10)
    assert served.status_code == 200 and served.headers["Content-Type"] == "application/json"
    assert served.json() == document()
    assert served.json()["openapi"].startswith("3.1")


def schemas_in(node):
    """Every JSON Schema in the document: the values of its "schema" keys, and its components."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "schema" or (key == "schemas" and isinstance(value, dict)):
                yield from [value] if key == "schema" else value.values()
            else:
                yield from schemas_in(value)
    elif isinstance(node, list):
        for item in node:
            yield from schemas_in(item)


def test_every_schema_in_the_description_is_valid_json_schema():
    """schemathesis reads a mistyped schema leniently (it would then check nothing): each one
    is checked against JSON Schema 2020-12, the dialect of OpenAPI 3.1."""
    found = list(schemas_in(document()))
    assert len(found) > 40
    for schema in found:
        jsonschema_rs.meta.validate(schema)


@pytest.fixture
def bearer(hub):
    """A token of each user the operations need, taken before schemathesis tries wrong
    passwords (which the login throttle then slows down)."""
    return {username: hub.token(username) for username in set(CALLER.values())}


def test_the_hub_answers_every_operation_as_described(hub, bearer):
    """Each described operation, with what schemathesis generates from the description the hub
    serves (valid input, then invalid), against the real hub process: no 5xx, and status,
    headers, content type and body as described. One hub for all operations (starting one is
    slow), every operation tried and every failure reported."""
    schema = schemathesis.openapi.from_url(hub.url + "/api/openapi.json")
    failures: dict[str, str] = {}
    for result in schema.get_all_operations():
        operation = result.ok()
        username = CALLER.get(operation.path)
        headers = {"Authorization": f"Bearer {bearer[username]}"} if username else {}
        for mode in GenerationMode:
            try:
                run_operation(hub.url, operation, mode, headers)
            except Unsatisfiable:
                assert mode == GenerationMode.NEGATIVE  # nothing in it can be sent wrong
            except BaseException as exc:  # schemathesis's FailureGroup is a BaseExceptionGroup
                if isinstance(exc, KeyboardInterrupt):
                    raise
                failures[f"{operation.label} ({mode.value})"] = f"{type(exc).__name__}: {exc}"
            assert hub.process.poll() is None, f"the hub process died during {operation.label}"
    assert failures == {}, "\n\n".join(f"{k}\n{v[:3000]}" for k, v in failures.items())


def run_operation(url: str, operation, mode: GenerationMode, headers: dict[str, str]) -> None:
    """Every check of schemathesis but "valid data is accepted": a well-formed request may be
    refused for what the description cannot say (a wrong password, an expired pairing code, a
    period that ends before it starts), with a described 4xx."""
    excluded = [positive_data_acceptance]
    if operation.path in LENIENT:
        excluded.append(negative_data_rejection)

    @given(case=operation.as_strategy(mode))
    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        derandomize=True,
        database=None,
    )
    def answers_as_described(case):
        case.call_and_validate(base_url=url, headers=headers, timeout=15, excluded_checks=excluded)

    answers_as_described()
