"""Shifts over the real hub: helpers sign up, drop and swap until the cut-off (a swap needs the
other helper's yes), coordinators assign their own organisation's helpers and read the coverage
per subject, grade and language with its gaps, and a helper's calendar feed."""

from __future__ import annotations

import re
from datetime import UTC, datetime, time, timedelta
from html.parser import HTMLParser
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import requests
from sqlalchemy import select

from hub.accounts.models import Organisation, Role, User
from hub.catalog.models import Language, Subject
from hub.matching.models import HelpRequest
from hub.schedule.models import OpeningHours
from hub.schedule.service import Shift, shifts_between
from hub.shifts.models import ShiftFeed, ShiftSignup, SwapProposal
from hub.shifts.service import next_covered_shift
from tests.conftest import both_backends
from tests.hubclient import PASSWORD, Browserless, advance_clock

ZONE = ZoneInfo("Europe/Copenhagen")


class Staff(Browserless):
    """A logged-in browser session posting forms with the page's CSRF token."""

    def __init__(self, base_url: str, username: str, lang: str = "en") -> None:
        super().__init__(base_url, lang)
        assert self.login(username, PASSWORD).status_code == 302
        self.token = self.csrf("/login")

    def get(self, path: str) -> requests.Response:
        return self.http.get(self.base_url + path)

    def post(self, path: str, **data: Any) -> requests.Response:
        return self.http.post(self.base_url + path, data={"csrf_token": self.token, **data})


class _Tagged(HTMLParser):
    """Every element with a data-testid: its attributes and its text."""

    def __init__(self) -> None:
        super().__init__()
        self.found: list[tuple[dict[str, str], list[str]]] = []
        self.open: list[tuple[str, list[str] | None]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {k: v or "" for k, v in attrs}
        texts: list[str] | None = None
        if "data-testid" in values:
            texts = []
            self.found.append((values, texts))
        if tag not in ("input", "br", "meta", "link", "img"):
            self.open.append((tag, texts))

    def handle_endtag(self, tag: str) -> None:
        while self.open and self.open.pop()[0] != tag:
            pass

    def handle_data(self, data: str) -> None:
        for _tag, texts in self.open:
            if texts is not None:
                texts.append(data)


def tagged(html: str, testid: str) -> list[tuple[dict[str, str], str]]:
    parser = _Tagged()
    parser.feed(html)
    return [
        (attrs, " ".join("".join(texts).split()))
        for attrs, texts in parser.found
        if attrs["data-testid"] == testid
    ]


def texts(html: str, testid: str) -> list[str]:
    return [text for _attrs, text in tagged(html, testid)]


@pytest.fixture
def shifts(hub: Any) -> list[Shift]:
    """Open 15-18 every day; the shifts from two days ahead (outside the 24 h cut-off) on."""
    with hub.db.transaction() as s:
        s.add_all(OpeningHours(weekday=d, opens=time(15), closes=time(18)) for d in range(7))
    now = datetime.now(UTC)
    with hub.db.transaction() as s:
        return shifts_between(s, now + timedelta(days=2), now + timedelta(days=9), ZONE)


def user_id(hub: Any, username: str) -> int:
    with hub.db.transaction() as s:
        found = s.scalar(select(User.id).where(User.username == username))
    assert found is not None
    return int(found)


def signed_up(hub: Any, key: str) -> set[str]:
    with hub.db.transaction() as s:
        return set(
            s.scalars(
                select(User.username)
                .join(ShiftSignup, ShiftSignup.helper_id == User.id)
                .where(ShiftSignup.shift_key == key)
            )
        )


def add_user(hub: Any, username: str, role: Role, **extra: Any) -> int:
    with hub.db.transaction() as s:
        password_hash = s.scalar(select(User.password_hash).where(User.username == "helper1"))
        user = User(
            username=username,
            password_hash=password_hash,
            role=role.value,
            display_name=username.title(),
            created_at=datetime.now(UTC),
            **extra,
        )
        s.add(user)
        s.flush()
        return user.id


def other_organisation(hub: Any) -> int:
    with hub.db.transaction() as s:
        org = Organisation(name="Anden forening")
        s.add(org)
        s.flush()
        return org.id


def until_within_cutoff(shift: Shift) -> float:
    """Seconds to move the hub's clock so `shift` starts in 12 hours, inside the cut-off."""
    return (shift.starts_at - timedelta(hours=12) - datetime.now(UTC)).total_seconds()


@both_backends
def test_helper_signs_up_and_may_drop_only_until_the_cutoff(hub, shifts):
    helper = Staff(hub.url, "helper1")
    first = shifts[0]
    page = helper.get("/shifts")
    assert page.status_code == 200
    assert first.key in [attrs["data-key"] for attrs, _t in tagged(page.text, "shift-row")]

    page = helper.post("/shifts/signup", key=first.key)
    assert texts(page.text, "notice") == ["You are signed up for the shift."]
    assert signed_up(hub, first.key) == {"helper1"}
    again = helper.post("/shifts/signup", key=first.key)
    assert again.status_code == 409
    assert texts(again.text, "shift-error") == ["Hjælper 1 already works this shift."]

    page = helper.post("/shifts/drop", key=first.key)
    assert texts(page.text, "notice") == ["You no longer work the shift."]
    assert signed_up(hub, first.key) == set()

    helper.post("/shifts/signup", key=first.key)
    advance_clock(hub.url, until_within_cutoff(first))
    late = helper.post("/shifts/drop", key=first.key)
    assert late.status_code == 409
    assert texts(late.text, "shift-error") == [
        "You can no longer drop this shift — it starts in less than 24 hours."
    ]
    assert signed_up(hub, first.key) == {"helper1"}
    locked = texts(late.text, "shift-locked")
    assert locked == ["Starts within 24 hours: ask your coordinator if you cannot come."]
    # Inside the cut-off a helper may still sign up: it only adds cover.
    helper2 = Staff(hub.url, "helper2", lang="da")
    assert helper2.post("/shifts/signup", key=first.key).status_code == 200
    late = helper2.post("/shifts/drop", key=first.key)
    assert texts(late.text, "shift-error") == [
        "Du kan ikke længere melde fra til denne vagt — den starter om mindre end 24 timer."
    ]


def test_only_approved_helpers_sign_up_and_other_roles_are_refused(hub, shifts):
    add_user(hub, "newhelper", Role.HELPER, approved=False)
    newcomer = Staff(hub.url, "newhelper")
    page = newcomer.get("/shifts")
    assert texts(page.text, "not-approved")
    refused = newcomer.post("/shifts/signup", key=shifts[0].key)
    assert refused.status_code == 403
    assert texts(refused.text, "shift-error") == [
        "Only approved helpers can work shifts. A coordinator must approve you first."
    ]
    assert signed_up(hub, shifts[0].key) == set()

    student = Staff(hub.url, "student1")
    assert student.get("/shifts").status_code == 403
    assert student.post("/shifts/signup", key=shifts[0].key).status_code == 403
    assert student.get("/shifts/coverage").status_code == 403
    helper = Staff(hub.url, "helper1")
    assert helper.get("/shifts/coverage").status_code == 403
    assert helper.post("/shifts/signup", key="2026-01-01T99:00").status_code == 404
    anonymous = requests.get(hub.url + "/shifts", allow_redirects=False, timeout=10)
    assert anonymous.status_code == 302 and "/login" in anonymous.headers["Location"]


@both_backends
def test_a_swap_happens_only_when_the_other_helper_says_yes(hub, shifts):
    one, two, three = (Staff(hub.url, f"helper{i}") for i in (1, 2, 3))
    mine, theirs = shifts[0], shifts[1]
    one.post("/shifts/signup", key=mine.key)
    two.post("/shifts/signup", key=theirs.key)
    two_id = user_id(hub, "helper2")

    page = one.post("/shifts/swaps", key=mine.key, to_helper_id=two_id, wanted_key=theirs.key)
    assert texts(page.text, "notice") == [
        "Your swap is offered. It happens when the other helper says yes."
    ]
    assert signed_up(hub, mine.key) == {"helper1"}
    assert signed_up(hub, theirs.key) == {"helper2"}
    offers = tagged(two.get("/shifts").text, "swap-offer")
    assert len(offers) == 1 and offers[0][1].startswith("Hjælper 1 offers you")
    swap_id = offers[0][0]["data-swap"]

    # Only the helper it was offered to can answer.
    assert three.post(f"/shifts/swaps/{swap_id}/answer", accept="1").status_code == 404
    assert one.post(f"/shifts/swaps/{swap_id}/answer", accept="1").status_code == 404
    page = two.post(f"/shifts/swaps/{swap_id}/answer", accept="0")
    assert texts(page.text, "notice") == ["You said no to the swap."]
    assert signed_up(hub, mine.key) == {"helper1"}
    assert two.post(f"/shifts/swaps/{swap_id}/answer", accept="1").status_code == 409

    one.post("/shifts/swaps", key=mine.key, to_helper_id=two_id, wanted_key=theirs.key)
    swap_id = tagged(two.get("/shifts").text, "swap-offer")[0][0]["data-swap"]
    page = two.post(f"/shifts/swaps/{swap_id}/answer", accept="1")
    assert texts(page.text, "notice") == ["The swap is done."]
    assert signed_up(hub, mine.key) == {"helper2"}
    assert signed_up(hub, theirs.key) == {"helper1"}

    # A hand-over without a shift in return, refused inside the cut-off.
    advance_clock(hub.url, until_within_cutoff(mine))
    late = two.post("/shifts/swaps", key=mine.key, to_helper_id=user_id(hub, "helper3"))
    assert late.status_code == 409
    assert texts(late.text, "shift-error") == [
        "You can no longer swap this shift — it starts in less than 24 hours."
    ]
    with hub.db.transaction() as s:
        assert len(s.scalars(select(SwapProposal)).all()) == 2


def test_a_swap_is_offered_to_an_approved_helper_of_the_same_organisation_only(hub, shifts):
    add_user(hub, "outsider", Role.HELPER, approved=True, organisation_id=other_organisation(hub))
    one = Staff(hub.url, "helper1")
    one.post("/shifts/signup", key=shifts[0].key)
    refused = one.post("/shifts/swaps", key=shifts[0].key, to_helper_id=user_id(hub, "outsider"))
    assert refused.status_code == 400
    assert texts(refused.text, "shift-error") == [
        "Choose an approved helper of your own organisation."
    ]
    not_mine = one.post("/shifts/swaps", key=shifts[1].key, to_helper_id=user_id(hub, "helper2"))
    assert not_mine.status_code == 404


def test_coverage_counts_helpers_per_subject_grade_and_language_and_names_the_gaps(hub, shifts):
    with hub.db.transaction() as s:
        math = s.scalar(select(Subject).where(Subject.key == "math"))
        danish = s.scalar(select(Language).where(Language.code == "da"))
        helper2 = s.scalar(select(User).where(User.username == "helper2"))
        assert helper2 is not None
        helper2.subjects, helper2.languages = [math], [danish]
        helper2.grade_min, helper2.grade_max = 8, 9
        student = s.scalar(select(User).where(User.username == "student1"))
        assert math is not None and student is not None
        # Two requests on a Monday at 16 local time and one on a Tuesday at 15, last week.
        monday = datetime.now(ZONE).date() - timedelta(days=7 + datetime.now(ZONE).weekday())
        for day, hour in ((monday, 16), (monday, 16), (monday + timedelta(days=1), 15)):
            at = datetime.combine(day, time(hour, 10), tzinfo=ZONE).astimezone(UTC)
            s.add(HelpRequest(student_id=student.id, subject_id=math.id, grade=9, created_at=at))
    covered, empty = shifts[0], shifts[1]
    Staff(hub.url, "helper1").post("/shifts/signup", key=covered.key)
    Staff(hub.url, "helper2").post("/shifts/signup", key=covered.key)

    page = Staff(hub.url, "coordinator1").get("/shifts/coverage")
    assert page.status_code == 200
    sections = {attrs["data-key"]: text for attrs, text in tagged(page.text, "coverage-shift")}
    assert covered.key in sections and empty.key in sections

    def section(key: str) -> str:
        return page.text.split(f'data-key="{key}"', 1)[1].split('data-testid="coverage-shift"')[0]

    def covers(key: str) -> dict[tuple[str, str], tuple[int, str]]:
        return {
            (a["data-kind"], a["data-label"]): (int(a["data-helpers"]), a["data-gap"])
            for a, _t in tagged(section(key), "cover")
        }

    got = covers(covered.key)
    assert got[("subject", "Mathematics")] == (2, "no")
    assert got[("subject", "Danish")] == (1, "no")
    assert got[("grade", "Grade 8")] == (2, "no")
    assert got[("grade", "Grade 10")] == (1, "no")
    assert got[("language", "Danish")] == (2, "no")
    assert got[("language", "Arabic")] == (1, "no")
    assert got[("language", "Somali")] == (0, "yes")
    # Helper 1 speaks Danish, English and Arabic: the nine other languages are the gaps.
    [gaps] = texts(section(covered.key), "coverage-gaps")
    assert gaps.startswith("Gaps (9): Persian, Kurdish, Polish, Pashto, Somali")
    assert texts(section(covered.key), "coverage-helpers") == ["Helpers: Hjælper 1, Hjælper 2"]
    # Nobody on the other shift: 9 subjects, 3 grades and 12 languages, every one a gap.
    assert set(covers(empty.key).values()) == {(0, "yes")}
    assert texts(section(empty.key), "coverage-gaps")[0].startswith("Gaps (24):")

    # Demand per weekday and hour, averaged over four weeks: 2 requests / 4 = 0.5 on Monday 16.
    demand = {
        (int(a["data-day"]), int(a["data-hour"])): text
        for a, text in tagged(page.text, "demand-cell")
    }
    assert demand == {(0, 16): "0.5", (1, 15): "0.25"}
    cover = {(int(a["data-day"]), int(a["data-hour"])) for a, _t in tagged(page.text, "cover-cell")}
    assert cover == {(covered.starts_at.astimezone(ZONE).weekday(), hour) for hour in (15, 16, 17)}

    danish = Staff(hub.url, "coordinator1", lang="da").get("/shifts/coverage")
    [gaps] = texts(danish.text.split(f'data-key="{covered.key}"', 1)[1], "coverage-gaps")[:1]
    assert gaps.startswith("Huller (9): Persisk, Kurdisk")


def test_a_coordinator_assigns_helpers_of_their_own_organisation_only(hub, shifts):
    outsider = add_user(
        hub, "outsider", Role.HELPER, approved=True, organisation_id=other_organisation(hub)
    )
    with hub.db.transaction() as s:
        org_id = s.scalar(select(User.organisation_id).where(User.username == "helper1"))
    pending = add_user(hub, "pending", Role.HELPER, approved=False, organisation_id=org_id)
    coordinator = Staff(hub.url, "coordinator1")
    key = shifts[0].key

    page = coordinator.post("/shifts/assign", key=key, helper_id=user_id(hub, "helper3"))
    assert texts(page.text, "notice") == ["The helper is on the shift."]
    assert signed_up(hub, key) == {"helper3"}
    with hub.db.transaction() as s:
        signup = s.get(ShiftSignup, (user_id(hub, "helper3"), key))
        assert signup is not None and signup.assigned_by_id == user_id(hub, "coordinator1")

    refused = coordinator.post("/shifts/assign", key=key, helper_id=outsider)
    assert refused.status_code == 403
    assert texts(refused.text, "shift-error") == [
        "You can assign helpers of your own organisation only."
    ]
    refused = coordinator.post("/shifts/assign", key=key, helper_id=pending)
    assert refused.status_code == 403
    assert texts(refused.text, "shift-error") == ["That helper is not approved yet."]
    assert coordinator.post("/shifts/assign", key=key, helper_id="x").status_code == 400

    helper = Staff(hub.url, "helper1")
    assert helper.post("/shifts/assign", key=key, helper_id=outsider).status_code == 403
    admin = Staff(hub.url, "admin")
    assert admin.post("/shifts/assign", key=key, helper_id=outsider).status_code == 200
    assert signed_up(hub, key) == {"helper3", "outsider"}


def test_a_helpers_calendar_feed_lists_their_shifts_at_a_secret_address(hub, shifts):
    helper = Staff(hub.url, "helper1")
    helper.post("/shifts/signup", key=shifts[0].key)
    helper.post("/shifts/signup", key=shifts[2].key)
    url = texts(helper.get("/shifts").text, "feed-url")[0]
    feed = requests.get(url, timeout=10)
    assert feed.status_code == 200
    assert feed.headers["Content-Type"].startswith("text/calendar")
    assert feed.text.startswith("BEGIN:VCALENDAR\r\n") and feed.text.endswith("END:VCALENDAR\r\n")
    starts = re.findall(r"DTSTART:(\d{8}T\d{6}Z)", feed.text)
    assert starts == [shift.starts_at.strftime("%Y%m%dT%H%M%SZ") for shift in shifts[0:3:2]]
    # The database does not hold the address's secret (a copy of it opens no calendar).
    secret = url.rsplit("/", 1)[1].removesuffix(".ics").split("-", 1)[1]
    with hub.db.transaction() as s:
        assert all(secret not in nonce for nonce in s.scalars(select(ShiftFeed.nonce)))
    helper_id = url.rsplit("/", 1)[1].split("-")[0]
    for forged in (f"{helper_id}-{secret[:-1]}A", f"{helper_id}-", helper_id, "guess"):
        assert requests.get(f"{hub.url}/shifts/feed/{forged}.ics", timeout=10).status_code == 404

    helper.post("/shifts/feed/renew")
    assert requests.get(url, timeout=10).status_code == 404
    renewed = texts(helper.get("/shifts").text, "feed-url")[0]
    assert renewed != url and requests.get(renewed, timeout=10).status_code == 200


def test_the_next_covered_shift_is_the_first_with_a_helper_for_that_subject_grade_language(
    hub, shifts
):
    with hub.db.transaction() as s:
        math = s.scalar(select(Subject.id).where(Subject.key == "math"))
        helper2 = s.scalar(select(User).where(User.username == "helper2"))
        assert math is not None and helper2 is not None
        helper2.languages = [lang for lang in helper2.languages if lang.code == "da"]
        helper2.grade_max = 9
    Staff(hub.url, "helper1").post("/shifts/signup", key=shifts[2].key)
    Staff(hub.url, "helper2").post("/shifts/signup", key=shifts[1].key)
    now = datetime.now(UTC) + timedelta(days=1)
    with hub.db.transaction() as s:

        def next_for(grade: int, language: str | None) -> datetime | None:
            shift = next_covered_shift(s, math, grade, language, now, ZONE)
            return shift.starts_at if shift else None

        assert next_for(9, "da") == shifts[1].starts_at
        assert next_for(9, None) == shifts[1].starts_at
        assert next_for(10, "da") == shifts[2].starts_at  # helper 2 teaches up to grade 9
        assert next_for(9, "ar") == shifts[2].starts_at  # only helper 1 speaks Arabic
        assert next_for(9, "so") is None
