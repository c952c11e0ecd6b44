"""The matching policy as plain functions over plain data: who gets offered which request, the
place in the queue and the wait estimate. No database, no sockets, no clock."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

# While a helper is free, the wait is about one offer round-trip; say so rather than "0".
FREE_HELPER_WAIT_S = 30
# Longer waits are told in whole minutes, and beyond an hour in five-minute steps (see told_wait_s).
MINUTE_S = 60
LONG_WAIT_S = 3600
LONG_WAIT_STEP_S = 300
# Places up to EXACT_PLACES are told exactly; further back they are rounded up in growing steps
# (see told_position). Clients show a place beyond EXACT_PLACES as "about".
EXACT_PLACES = 20
PLACE_STEPS = ((100, 10), (500, 50))
FAR_PLACE_STEP = 100


@dataclass(frozen=True)
class WaitingRequest:
    id: int
    student_id: int
    subject_id: int
    grade: int
    language_code: str | None
    created_at: datetime
    previous_helper_id: int | None = None
    declined_by: frozenset[int] = field(default_factory=frozenset)


@dataclass(frozen=True)
class HelperSkills:
    id: int
    subject_ids: frozenset[int]
    grade_min: int
    grade_max: int
    language_codes: frozenset[str]
    idle_since: datetime


class Asking(Protocol):
    """What a request must say for the policy: a WaitingRequest, or a database row."""

    @property
    def id(self) -> int: ...
    @property
    def subject_id(self) -> int: ...
    @property
    def grade(self) -> int: ...
    @property
    def language_code(self) -> str | None: ...


def can_help(helper: HelperSkills, request: Asking) -> bool:
    return (
        request.subject_id in helper.subject_ids
        and helper.grade_min <= request.grade <= helper.grade_max
        and (request.language_code is None or request.language_code in helper.language_codes)
    )


def choose_helper(request: WaitingRequest, free: Iterable[HelperSkills]) -> HelperSkills | None:
    """The helper to offer `request` to: the student's previous helper if free and able, else the
    able helper idle longest. Helpers who declined this request are not asked again."""
    candidates = [h for h in free if h.id not in request.declined_by and can_help(h, request)]
    if not candidates:
        return None
    return min(candidates, key=lambda h: (h.id != request.previous_helper_id, h.idle_since, h.id))


def plan_offers(
    waiting: Sequence[WaitingRequest], free: Sequence[HelperSkills]
) -> list[tuple[int, int]]:
    """(request id, helper id) pairs to offer now: oldest request first, one offer per helper."""
    remaining = {h.id: h for h in free}
    plan: list[tuple[int, int]] = []
    for request in sorted(waiting, key=lambda r: (r.created_at, r.id)):
        if not remaining:
            break
        chosen = choose_helper(request, remaining.values())
        if chosen is not None:
            plan.append((request.id, chosen.id))
            del remaining[chosen.id]
    return plan


def queue_positions(waiting_in_order: Iterable[Asking]) -> dict[int, int]:
    """Each request's place (1 = next) among the requests waiting for the same subject.

    `waiting_in_order` is the queue oldest first (the database sorts it)."""
    positions: dict[int, int] = {}
    counts: dict[int, int] = {}
    for request in waiting_in_order:
        counts[request.subject_id] = counts.get(request.subject_id, 0) + 1
        positions[request.id] = counts[request.subject_id]
    return positions


def told_position(position: int) -> int:
    """A place in the queue as the student is told it: exact up to EXACT_PLACES, beyond that
    rounded up to the next 10 (up to 100), 50 (up to 500) or 100.

    Number 347 cannot tell 346 from 350, yet telling each step would send every waiting student a
    `queue:update` each time the head of the queue moves: with thousands waiting, the hub would
    spend its time telling places instead of matching. Rounding up never promises a place nearer
    the front than the real one."""
    if position <= EXACT_PLACES:
        return position
    step = next((step for limit, step in PLACE_STEPS if position <= limit), FAR_PLACE_STEP)
    return step * math.ceil(position / step)


def estimate_wait_s(
    position: int, free_able: int, on_duty_able: int, typical_session_s: int
) -> int | None:
    """An honest estimate of the wait in seconds, or None when nobody on duty can help.

    Free helpers take the first `free_able` places at once; everyone after waits for helpers to
    finish sessions, on average half a session for the first round and a whole one per round after.
    """
    if on_duty_able == 0:
        return None
    if position <= free_able:
        return FREE_HELPER_WAIT_S
    rounds = math.ceil((position - free_able) / on_duty_able)
    return told_wait_s(FREE_HELPER_WAIT_S + (rounds - 0.5) * typical_session_s)


def told_wait_s(wait_s: float) -> int:
    """A wait as the student is told it: to the nearest minute, or five minutes beyond an hour.

    The pages show whole minutes, and the estimate is not more precise than that: finer changes
    would tell the student nothing, yet send every waiting student a `queue:update` each time the
    median session length moved by a second."""
    if wait_s < MINUTE_S:
        return int(wait_s)
    step = MINUTE_S if wait_s < LONG_WAIT_S else LONG_WAIT_STEP_S
    return step * math.floor(wait_s / step + 0.5)
