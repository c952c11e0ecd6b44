"""The provision commands' output: one line per step (✓ done, – skipped, ✗ failed), in the staff's
language (Danish by default), and for a failure a second line with what to do next. A step says
what it changed, or "(unchanged)", so a second run shows at a glance that nothing was wrong."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import TextIO

from appliance.texts import _, translate


class StepFailed(Exception):
    """A step could not be done; `message` and `fix` are msgids, formatted with `values`."""

    def __init__(self, message: str, fix: str, **values: object) -> None:
        super().__init__(message)
        self.message, self.fix, self.values = message, fix, values


class Skipped(Exception):
    """A step that does not apply here (or not under --root); the msgid says why."""

    def __init__(self, reason: str, **values: object) -> None:
        super().__init__(reason)
        self.reason, self.values = reason, values


class Step:
    """What one step changed, in words; `restart_needed` when it takes effect after a reboot."""

    def __init__(self, progress: Progress) -> None:
        self.t = progress.t
        self.changes: list[str] = []
        self.notes: list[str] = []
        self.restart_needed = False
        self.outcome: str | None = None  # instead of "(unchanged)", for a step that only checks

    def changed(self, message: str, **values: object) -> None:
        self.changes.append(self.t(message, **values))

    def note(self, message: str, **values: object) -> None:
        self.notes.append(self.t(message, **values))

    def checked(self, message: str, **values: object) -> None:
        self.outcome = self.t(message, **values)


class Progress:
    """Runs steps one after the other and prints a line for each; stops at the first failure."""

    def __init__(self, lang: str, out: TextIO = sys.stdout) -> None:
        self.lang = lang
        self.out = out
        self.changed = 0
        self.restart_needed = False

    def t(self, message: str, **values: object) -> str:
        return translate(message, self.lang).format(**values)

    def say(self, message: str, **values: object) -> None:
        print(self.t(message, **values), file=self.out, flush=True)

    def run(self, title: str, step: Callable[[Step], None]) -> bool:
        """Carry out `step` under the heading `title` (a msgid); False if it failed."""
        done = Step(self)
        heading = self.t(title)
        try:
            step(done)
        except Skipped as skip:
            self._line("–", f"{heading}: {self.t(skip.reason, **skip.values)}")
            return True
        except StepFailed as failure:
            self._line("✗", f"{heading}: {self.t(failure.message, **failure.values)}")
            self._line("  →", self.t(failure.fix, **failure.values))
            return False
        if done.changes:
            self.changed += 1
            self.restart_needed |= done.restart_needed
            line = f"{heading}: {'; '.join(done.changes + done.notes)}"
        elif done.outcome:
            line = f"{heading}: {'; '.join([done.outcome, *done.notes])}"
        else:
            unchanged = self.t(_("(unchanged)"))
            line = f"{heading} {unchanged}"
            line += f": {'; '.join(done.notes)}" if done.notes else ""
        self._line("✓", line)
        return True

    def _line(self, mark: str, text: str) -> None:
        print(f"{mark} {text}", file=self.out, flush=True)
