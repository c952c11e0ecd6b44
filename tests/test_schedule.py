"""Opening hours, closed days and the shifts they make: generated in the café's local time across
DST changes, the admin page that sets them, and what a student is told outside the hours (the
socket's `closed` answer, the status the student page and the kiosk read) and while nobody on
duty can help (`next_shift`). The hub's clock is moved to a known local time (hub.clock)."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import requests
from sqlalchemy import select

from hub.db import Database
from hub.matching.models import HelpRequest
from hub.schedule import service
from hub.schedule.service import Block
from tests.conftest import both_backends
from tests.hubclient import Client, advance_clock
from tests.test_admin import Staff, alerts, texts
from tests.test_matching import ask, on_duty, set_profile

CPH = ZoneInfo("Europe/Copenhagen")
# The pilot's hours: Monday to Thursday 15–18 and 19–21.
PILOT_HOURS = {f"day{d}": "15:00-18:00, 19:00-21:00" for d in range(4)}


def local(day: date, hour: int, minute: int = 0) -> datetime:
    return datetime.combine(day, time(hour, minute), tzinfo=CPH)


def utc_iso(day: date, hour: int, minute: int = 0) -> str:
    return local(day, hour, minute).astimezone(UTC).isoformat()


def hub_now(hub) -> datetime:
    answer = requests.post(hub.url + "/api/test-only/clock", json={"advance_s": 0.001}, timeout=10)
    return datetime.fromisoformat(answer.json()["now"])


def move_to(hub, when: datetime) -> None:
    advance_clock(hub.url, (when - hub_now(hub)).total_seconds())


def next_weekday(hub, weekday: int) -> date:
    """The first date after today (the hub's, local) that is `weekday` (0 = Monday)."""
    day = hub_now(hub).astimezone(CPH).date() + timedelta(days=1)
    while day.weekday() != weekday:
        day += timedelta(days=1)
    return day


def pilot_hours(hub) -> None:
    page = Staff(hub.url, "admin").post("/admin/schedule/hours", **PILOT_HOURS)
    assert texts(page.text, "notice") == ["Saved."], page.text


def student(hub, username: str = "student1", lang: str | None = None) -> Client:
    headers = {"Accept-Language": lang} if lang else None
    return Client(hub.url, token=hub.token(username), headers=headers).connect()


# ---------------------------------------------------------------------------------------------
# Shifts from opening hours


@both_backends
def test_shifts_follow_the_local_opening_hours_across_dst_changes_and_skip_closed_days(
    database_url,
):
    db = Database(database_url)
    try:
        with db.transaction() as s:
            service.set_opening_hours(
                s,
                [Block(d, time(15), time(18)) for d in range(4)]
                + [Block(d, time(19), time(21)) for d in range(4)],
            )
            service.add_closed_day(s, date(2026, 10, 27), "Efterårsferie")
        with db.transaction() as s:
            # Summer time ends on Sunday 25 October 2026: 15:00 is 13:00 UTC before, 14:00 after.
            autumn = service.shifts_between(
                s, local(date(2026, 10, 22), 0), local(date(2026, 10, 29), 0), CPH
            )
            assert [x.key for x in autumn] == [
                "2026-10-22T13:00:00+00:00",
                "2026-10-22T17:00:00+00:00",
                "2026-10-26T14:00:00+00:00",
                "2026-10-26T18:00:00+00:00",
                # Tuesday 27th is closed.
                "2026-10-28T14:00:00+00:00",
                "2026-10-28T18:00:00+00:00",
            ]
            assert autumn[2].ends_at == datetime(2026, 10, 26, 17, tzinfo=UTC)
            # Summer time starts on Sunday 28 March 2027: 15:00 is 14:00 UTC before, 13:00 after.
            spring = service.shifts_between(
                s, local(date(2027, 3, 25), 16), local(date(2027, 3, 29), 16), CPH
            )
            assert [x.key for x in spring] == [
                "2027-03-25T14:00:00+00:00",  # overlaps the start: still running at 16:00
                "2027-03-25T18:00:00+00:00",
                "2027-03-29T13:00:00+00:00",
            ]
            assert service.shift_at(s, "2026-10-26T14:00:00+00:00", CPH) == autumn[2]
            for unknown in ("2026-10-27T14:00:00+00:00", "2026-10-26T15:00:00+00:00", "x"):
                assert service.shift_at(s, unknown, CPH) is None
            assert service.is_open(s, local(date(2026, 10, 26), 17, 59), CPH)
            assert not service.is_open(s, local(date(2026, 10, 26), 18, 30), CPH)
            assert not service.is_open(s, local(date(2026, 10, 27), 16), CPH)  # closed day
            # Monday evening after closing: Tuesday is closed, so Wednesday 15:00.
            assert service.next_opening(s, local(date(2026, 10, 26), 21, 30), CPH) == local(
                date(2026, 10, 28), 15
            )
    finally:
        db.dispose()


def test_with_no_opening_hours_the_cafe_is_always_open_except_on_closed_days(database_url):
    db = Database(database_url)
    try:
        with db.transaction() as s:
            now = local(date(2026, 12, 24), 10)
            assert service.is_open(s, now, CPH)
            assert service.shifts_between(s, now, now + timedelta(days=7), CPH) == []
            assert service.next_shift(s, now, CPH) is None
            service.add_closed_day(s, date(2026, 12, 24), "Juleaften")
            service.add_closed_day(s, date(2026, 12, 25), "Juledag")
            assert not service.is_open(s, now, CPH)
            assert service.next_opening(s, now, CPH) == local(date(2026, 12, 26), 0)
            service.remove_closed_day(s, date(2026, 12, 24))
            assert service.is_open(s, now, CPH)
    finally:
        db.dispose()


# ---------------------------------------------------------------------------------------------
# Outside opening hours


def test_outside_opening_hours_a_student_is_told_when_the_cafe_opens_instead_of_queueing(hub):
    pilot_hours(hub)
    thursday = next_weekday(hub, 3)
    monday = thursday + timedelta(days=4)
    move_to(hub, local(thursday, 21, 30))

    da = student(hub, "student1")
    answer = da.call("help:request", {"subject": 1, "grade": 9})
    assert answer["ok"] is False
    assert answer["error"]["code"] == "closed"
    assert answer["error"]["details"] == {"opens_at": utc_iso(monday, 15)}
    assert answer["error"]["message"] == (
        "Lektiecaféen er lukket nu. Vi åbner igen mandag kl. 15:00."
    )
    en = student(hub, "student2", lang="en")
    message = en.call("help:request", {"subject": 1, "grade": 9})["error"]["message"]
    assert message == "The homework café is closed now. We open again on Monday at 15:00."
    with hub.db.transaction() as s:
        assert s.scalars(select(HelpRequest)).all() == []

    # What the student page and the kiosk read before anyone asks.
    status = requests.get(hub.url + "/api/schedule/status", timeout=10).json()
    assert status == {
        "ok": True,
        "open": False,
        "opens_at": utc_iso(monday, 15),
        "message": "Lektiecaféen er lukket nu. Vi åbner igen mandag kl. 15:00.",
    }

    move_to(
        hub,
        local(
            monday,
            15,
            0,
        )
        + timedelta(seconds=30),
    )
    assert requests.get(hub.url + "/api/schedule/status", timeout=10).json()["open"] is True
    assert da.ok("help:request", {"subject": 1, "grade": 9})["position"] == 1


def test_between_two_blocks_the_student_is_told_the_time_today(hub):
    pilot_hours(hub)
    monday = next_weekday(hub, 0)
    move_to(hub, local(monday, 18, 15))
    error = student(hub).call("help:request", {"subject": 1, "grade": 9})["error"]
    assert error["message"] == "Lektiecaféen er lukket nu. Vi åbner igen i dag kl. 19:00."
    assert error["details"]["opens_at"] == utc_iso(monday, 19)


def test_a_closed_day_moves_the_next_opening_on(hub):
    pilot_hours(hub)
    monday = next_weekday(hub, 0)
    admin = Staff(hub.url, "admin")
    page = admin.post("/admin/schedule/closed-days", day=monday.isoformat(), reason="Vinterferie")
    assert texts(page.text, "closed-day-date") == [monday.isoformat()]
    move_to(hub, local(monday, 16))
    error = student(hub, lang="en").call("help:request", {"subject": 1, "grade": 9})["error"]
    assert error["details"]["opens_at"] == utc_iso(monday + timedelta(days=1), 15)
    assert error["message"] == "The homework café is closed now. We open again on Tuesday at 15:00."

    page = admin.post(f"/admin/schedule/closed-days/{monday.isoformat()}/remove")
    assert texts(page.text, "closed-day-date") == []
    assert requests.get(hub.url + "/api/schedule/status", timeout=10).json()["open"] is True


# ---------------------------------------------------------------------------------------------
# Nobody on duty who can help: the next shift


def test_the_ack_names_the_next_shift_when_nobody_on_duty_can_help(hub):
    pilot_hours(hub)
    monday = next_weekday(hub, 0)
    move_to(hub, local(monday, 16))
    set_profile(hub, "helper1", ["danish"])
    helper = hub.client("helper1")
    on_duty(helper)

    math = ask(student(hub, "student1"), hub, "math")
    assert math["eta_s"] is None
    assert math["next_shift"] == utc_iso(monday, 19)
    danish = ask(student(hub, "student2"), hub, "danish")
    assert danish["eta_s"] is not None and danish["next_shift"] is None

    # A student who comes back is told the same.
    back = student(hub, "student1")
    update = back.wait_for("queue:update")
    assert update["next_shift"] == utc_iso(monday, 19)


def test_the_next_shift_is_one_a_helper_who_can_help_signed_up_for(hub):
    pilot_hours(hub)
    monday = next_weekday(hub, 0)
    move_to(hub, local(monday, 16))
    set_profile(hub, "helper2", ["math"], grades=(8, 9))
    tuesday_evening = utc_iso(monday + timedelta(days=1), 19)
    signed = Staff(hub.url, "helper2").post("/shifts/signup", key=tuesday_evening)
    assert signed.status_code == 200, signed.text

    assert ask(student(hub, "student1"), hub, "math", grade=9)["next_shift"] == tuesday_evening
    # Nobody signed up for grade 10: the next shift at all.
    assert ask(student(hub, "student2"), hub, "math", grade=10)["next_shift"] == utc_iso(monday, 19)


# ---------------------------------------------------------------------------------------------
# The admin page


def test_admin_sets_opening_hours_and_sees_them_again(hub):
    admin = Staff(hub.url, "admin")
    page = admin.get("/admin/schedule")
    assert page.status_code == 200
    assert texts(page.text, "schedule-status") == ["The homework café is open now."]
    page = admin.post(
        "/admin/schedule/hours", day0="15.00–18.00,19:00 - 21:00", day4="", day5="10:00-12:00"
    )
    assert texts(page.text, "notice") == ["Saved."]
    assert 'value="15:00–18:00, 19:00–21:00"' in page.text
    assert 'value="10:00–12:00"' in page.text
    with hub.db.transaction() as s:
        assert service.opening_hours(s) == [
            Block(0, time(15), time(18)),
            Block(0, time(19), time(21)),
            Block(5, time(10), time(12)),
        ]
    # All empty: always open again.
    admin.post("/admin/schedule/hours")
    with hub.db.transaction() as s:
        assert service.opening_hours(s) == []


def test_opening_hours_that_overlap_end_before_they_start_or_cannot_be_read_are_refused(hub):
    english, danish = Staff(hub.url, "admin"), Staff(hub.url, "admin", lang=None)
    cases = [
        (
            {"day0": "15:00-18:00, 17:00-19:00"},
            "Monday: 15:00–18:00 and 17:00–19:00 overlap.",
            "Mandag: 15:00–18:00 og 17:00–19:00 overlapper hinanden.",
        ),
        (
            {"day1": "18:00-15:00"},
            "Tuesday: 18:00–15:00 must end after it starts.",
            "Tirsdag: 18:00–15:00 skal slutte, efter det begynder.",
        ),
        (
            {"day2": "kl. 3"},
            "Wednesday: write each block as from–to in 24-hour time, e.g. 15:00–18:00, "
            "19:00–21:00.",
            "Onsdag: skriv hver blok som fra–til i 24-timers tid, fx 15:00–18:00, 19:00–21:00.",
        ),
        (
            {"day3": "25:00-26:00"},
            "Thursday: write each block as from–to in 24-hour time, e.g. 15:00–18:00, 19:00–21:00.",
            "Torsdag: skriv hver blok som fra–til i 24-timers tid, fx 15:00–18:00, 19:00–21:00.",
        ),
    ]
    for form, in_english, in_danish in cases:
        page = english.post("/admin/schedule/hours", **form)
        assert page.status_code == 400
        assert alerts(page.text) == [in_english]
        assert 'aria-invalid="true"' in page.text
        assert f'value="{next(iter(form.values()))}"' in page.text  # what was typed, to fix
        assert alerts(danish.post("/admin/schedule/hours", **form).text) == [in_danish]
    page = english.post("/admin/schedule/closed-days", day="31-12-2026")
    assert page.status_code == 400 and alerts(page.text) == ["Please fill in or correct: Date."]
    with hub.db.transaction() as s:
        assert service.opening_hours(s) == []
        assert service.closed_days_from(s, date(2000, 1, 1)) == []


def test_only_admins_may_see_or_change_the_opening_hours(hub):
    pages = ["/admin/schedule"]
    posts = [
        "/admin/schedule/hours",
        "/admin/schedule/closed-days",
        "/admin/schedule/closed-days/2026-12-24/remove",
    ]
    for username in ("coordinator1", "staff1", "helper1", "student1"):
        someone = Staff(hub.url, username)
        for path in pages:
            assert someone.get(path).status_code == 403, f"{username} GET {path}"
        for path in posts:
            answer = someone.post_raw(path, day0="10:00-11:00", day="2026-12-24")
            assert answer.status_code == 403, f"{username} POST {path}"
    with hub.db.transaction() as s:
        assert service.opening_hours(s) == []
        assert service.closed_days_from(s, date(2000, 1, 1)) == []
    assert "/admin/schedule" not in Staff(hub.url, "coordinator1").get("/admin").text
    assert 'href="/admin/schedule"' in Staff(hub.url, "admin").get("/admin").text
