"""The statistics for the evaluation, the way an admin and site staff read them: real sessions made
over Socket.IO against a running hub (asked, matched, ended, rated), then the figures on the
dashboard and in its CSV export, with small cells suppressed, the site filter, and who may look.

Only the clock is faked: after the sessions have happened, their times are set to known ones, so
every wait and length is an exact number."""

from __future__ import annotations

import csv
import io
import json
import random
import re
import time
from dataclasses import astuple, replace
from datetime import UTC, date, datetime, timedelta

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from hub import clock
from hub.accounts.models import Organisation, Site, User
from hub.catalog.models import Subject
from hub.config import HubConfig
from hub.matching.models import HelpRequest, RequestStatus
from hub.rooms.models import Room
from hub.stats import service
from hub.stats.models import (
    StatsDay,
    StatsDayCell,
    StatsFact,
    StatsMonth,
    StatsMonthCell,
    StatsNumber,
)
from hub.stats.service import TIMEZONE, Fact, Hidden, Names, Period
from tests.conftest import RunningHub, both_backends
from tests.hubclient import Client, advance_clock
from tests.kiosks import paired_kiosk
from tests.test_admin import Staff, texts
from tests.test_browser import browser, log_in  # noqa: F401 (a fixture)
from tests.test_matching import ask, on_duty, subject_id

DAY = service.local_day(clock.now()) - timedelta(days=7)
NEXT_DAY = DAY + timedelta(days=1)
NORD, SYD, LIBRARY = 1, 2, 3  # the demo sites' ids, in the order demo data makes them


def grade_of(i: int) -> int:
    return 8 + (i - 1) % 3  # the demo data's grades


def at(day: date, hour: int, minute: int = 0) -> datetime:
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=TIMEZONE).astimezone(UTC)


def session(hub: RunningHub, helper: Client, username: str, grade: int, rating: int) -> None:
    """One whole session: asked, offered, accepted, ended by the helper, rated by both."""
    student = hub.client(username)
    on_duty(helper)
    ask(student, hub, grade=grade)
    offer = helper.wait_for("offer")
    room = helper.ok("offer:accept", {"offer_id": offer["offer_id"]})["room_id"]
    student.wait_for("match")
    helper.ok("room:end", {"room_id": room})
    student.wait_for("room:ended")
    helper.wait_for("room:ended")
    student.ok("feedback:submit", {"room_id": room, "rating": rating})
    helper.ok("feedback:submit", {"room_id": room, "rating": 4})
    student.close()


def retime(
    hub: RunningHub, username: str, nth: int, asked: datetime, wait_min: int, length_min: int = 0
):
    """Give the student's `nth` request (0-based) and its room known times."""
    with hub.db.transaction() as s:
        user_id = s.scalar(select(User.id).where(User.username == username))
        request = s.scalars(
            select(HelpRequest).where(HelpRequest.student_id == user_id).order_by(HelpRequest.id)
        ).all()[nth]
        request.created_at = asked
        request.ended_at = asked + timedelta(minutes=wait_min)
        room = s.scalar(select(Room).where(Room.request_id == request.id))
        if room is not None:
            room.created_at = request.ended_at
            room.ended_at = room.created_at + timedelta(minutes=length_min)


def known_sessions(hub: RunningHub) -> None:
    """Students 1–18 each have one session on DAY (student i waits i minutes and is helped for 2i
    minutes, rates 5); students 1–5 come back on NEXT_DAY (wait 20, 40 minutes, rate 3). Student 19
    gives up waiting, student 20 leaves the queue. The demo puts student i at site (i-1) % 4."""
    helper = hub.client("helper1")
    for i in range(1, 19):
        session(hub, helper, f"student{i}", grade_of(i), rating=5)
    for i in range(1, 6):
        session(hub, helper, f"student{i}", grade_of(i), rating=3)
    # The helper is paused after the last session, so these two wait.
    quitter = hub.client("student19")
    asked = ask(quitter, hub, grade=grade_of(19))
    quitter.ok("help:cancel", {"request_id": asked["request_id"]})
    leaver = hub.client("student20")
    ask(leaver, hub, grade=grade_of(20))
    leaver.close()
    deadline = time.monotonic() + 10
    while request_status(hub, "student20") != RequestStatus.LEFT:
        assert time.monotonic() < deadline, "student20's request did not leave"
        time.sleep(0.1)

    for i in range(1, 19):
        retime(hub, f"student{i}", 0, at(DAY, 15, i), wait_min=i, length_min=2 * i)
    for i in range(1, 6):
        retime(hub, f"student{i}", 1, at(NEXT_DAY, 16, i), wait_min=20, length_min=40)
    retime(hub, "student19", 0, at(DAY, 17), wait_min=5)
    retime(hub, "student20", 0, at(DAY, 17, 30), wait_min=3)


def request_status(hub: RunningHub, username: str) -> str:
    with hub.db.transaction() as s:
        return str(
            s.scalar(
                select(HelpRequest.status)
                .join(User, User.id == HelpRequest.student_id)
                .where(User.username == username)
            )
        )


def chart(html: str, name: str) -> dict[str, str]:
    """A chart as {bar label: the value written beside the bar}."""
    return dict(zip(texts(html, f"{name}-label"), texts(html, f"{name}-value"), strict=True))


def summary(html: str, name: str) -> str:
    (value,) = texts(html, f"summary-{name}")
    return value


def exported(staff: Staff, **params: str) -> dict[tuple[str, str], str]:
    """The CSV export as {(table, key): value}."""
    r = staff.get("/admin/stats/export.csv", params=params)
    assert r.status_code == 200 and r.headers["Content-Type"].startswith("text/csv")
    assert "attachment" in r.headers["Content-Disposition"]
    assert r.content.startswith("\ufeff".encode())  # so that Excel reads æøå right
    lines = list(csv.reader(io.StringIO(r.content.decode("utf-8-sig"))))
    assert lines[0] == ["table", "key", "label", "value"]
    return {(table, key): value for table, key, _label, value in lines[1:]}


PERIOD = {"from": DAY.isoformat(), "to": NEXT_DAY.isoformat()}
MONTH_FIRST = DAY.replace(day=1)
MONTH = {
    "from": MONTH_FIRST.isoformat(),
    "to": ((MONTH_FIRST + timedelta(days=32)).replace(day=1) - timedelta(days=1)).isoformat(),
}


# ---------------------------------------------------------------------------------------------
# The figures


@pytest.mark.demo(students=20, helpers=1)
def test_known_sessions_are_counted_exactly_with_small_cells_suppressed_by_period_and_site(hub):
    known_sessions(hub)
    admin = Staff(hub.url, "admin")
    page = admin.get("/admin/stats", params=PERIOD)
    assert page.status_code == 200, page.text
    html = page.text

    # 25, but with the sessions shown it would give away the 2 requests that were not matched.
    assert summary(html, "requests") == "hidden"
    assert summary(html, "sessions") == "23"
    assert summary(html, "students") == "20"
    assert summary(html, "returning_students") == "5"
    # Waits 1..18 and five of 20 minutes: the 12th of 23 is 12, the 21st is 20.
    assert summary(html, "wait_median_minutes") == "12.0"
    assert summary(html, "wait_p90_minutes") == "20.0"
    # Lengths 2..36 and five of 40 minutes.
    assert summary(html, "session_median_minutes") == "24.0"
    assert summary(html, "session_p90_minutes") == "40.0"
    assert summary(html, "helper_hours") == "9.0"  # 342 + 200 minutes
    assert summary(html, "student_rating") == "4.6"  # (18 × 5 + 5 × 3) / 23
    assert summary(html, "helper_rating") == "4.0"
    # One student each: nobody may be singled out.
    assert summary(html, "gave_up") == "<5"
    assert summary(html, "left_unmatched") == "<5"

    assert chart(html, "sessions_by_day") == {DAY.isoformat(): "18", NEXT_DAY.isoformat(): "5"}
    assert chart(html, "sessions_by_site") == {
        "Demo-bibliotek": "<5",  # 5 sessions, but of 4 students
        "Demo-skole Nord": "7",
        "Demo-skole Syd": "6",
        "Demo-ungdomsklub": "<5",
    }
    assert set(chart(html, "students_by_site").values()) == {"5"}
    assert chart(html, "sessions_by_grade") == {"Grade 8": "8", "Grade 9": "8", "Grade 10": "7"}
    assert chart(html, "sessions_by_subject") == {"Mathematics": "23"}
    assert chart(html, "sessions_by_channel") == {"From home": "23", "At a kiosk": "0"}
    assert chart(html, "requests_by_outcome") == {
        "Matched with a helper": "23",
        "Gave up waiting": "<5",
        "Left without being matched": "<5",
    }
    # 0–10 minutes holds 4 sessions (<5); so that the total does not give it away, the next
    # smallest band is hidden too.
    assert chart(html, "sessions_by_length") == {
        "0–10 min": "<5",
        "10–20 min": "hidden",
        "20–30 min": "5",
        "30–45 min": "9",
        "45 min or more": "0",
    }
    assert chart(html, "helper_hours_by_organisation") == {"Demo-frivillige": "9.0"}
    assert chart(html, "student_ratings") == {"1": "0", "2": "0", "3": "5", "4": "0", "5": "18"}
    # The charts are drawn by the hub, readable without scripts, and say what they show.
    assert "<svg" in html and "<title" in html and "<desc" in html
    assert "<script src" not in html.split("</footer>")[0]

    # The export says the same, suppressed the same way.
    rows = exported(admin, **PERIOD)
    assert rows[("summary", "sessions")] == "23"
    assert rows[("summary", "wait_median_minutes")] == "12.0"
    assert rows[("summary", "gave_up")] == "<5"
    assert rows[("sessions_by_site", str(NORD))] == "7"
    assert rows[("sessions_by_site", str(LIBRARY))] == "<5"
    assert rows[("sessions_by_length", "10-20")] == "hidden"
    assert rows[("sessions_by_day", DAY.isoformat())] == "18"

    # A shorter period counts only its own days.
    one_day = {"from": NEXT_DAY.isoformat(), "to": NEXT_DAY.isoformat()}
    html = admin.get("/admin/stats", params=one_day).text
    assert summary(html, "sessions") == "5"
    assert summary(html, "returning_students") == "0"
    assert exported(admin, **one_day)[("summary", "sessions")] == "5"

    # One site: the admin's filter, and all site staff ever see.
    html = admin.get("/admin/stats", params={**PERIOD, "site": str(NORD)}).text
    assert texts(html, "stats-scope")[0].startswith("Figures for Demo-skole Nord")
    assert summary(html, "sessions") == "7"
    assert summary(html, "students") == "5"
    assert summary(html, "returning_students") == "<5"  # students 1 and 5
    assert "sessions_by_site-chart" not in html

    # At the library 5 students asked, but the 5 sessions were of 4 of them.
    html = admin.get("/admin/stats", params={**PERIOD, "site": str(LIBRARY)}).text
    assert summary(html, "students") == "5"
    assert summary(html, "sessions") == "<5"
    assert summary(html, "gave_up") == "<5"

    staff = Staff(hub.url, "staff1")  # site staff at Demo-skole Nord
    own = staff.get("/admin/stats", params=PERIOD).text
    assert summary(own, "sessions") == "7"
    assert "Demo-skole Syd" not in own
    assert exported(staff, **PERIOD)[("summary", "sessions")] == "7"
    assert staff.get("/admin/stats", params={**PERIOD, "site": str(SYD)}).status_code == 403
    r = staff.get("/admin/stats/export.csv", params={**PERIOD, "site": str(SYD)})
    assert r.status_code == 403


@pytest.mark.demo(students=2, helpers=1)
def test_sessions_stay_counted_without_the_link_when_a_kiosk_visit_expires_or_a_student_leaves(
    hub,
):
    started = clock.now()
    helper = hub.client("helper1")
    kiosk = paired_kiosk(hub)
    on_duty(helper)
    kiosk.ok("visit:start", {"nickname": "Ali", "grade": 10})
    kiosk.ok("help:request", {"subject": subject_id(hub, "math"), "grade": 10})
    offer = helper.wait_for("offer")
    helper.ok("offer:accept", {"offer_id": offer["offer_id"]})
    kiosk.wait_for("match")
    kiosk.ok("visit:end", {})
    helper.wait_for("room:ended")
    session(hub, helper, "student1", grade_of(1), rating=4)
    today = service.local_day(clock.now()).isoformat()
    period = {"from": today, "to": today}

    def figures() -> list[tuple[object, ...]]:
        """Every fact the dashboard counts, without the student's key."""
        with hub.db.transaction() as s:
            found = service.facts(s, started - timedelta(days=1), started + timedelta(days=1), None)
        return sorted(astuple(replace(f, student_key="")) for f in found)

    admin = Staff(hub.url, "admin")
    before, csv_before = figures(), exported(admin, **period)
    assert sorted(f[4] for f in before) == ["home", "kiosk"]  # channels
    assert csv_before[("sessions_by_channel", "kiosk")] == "<5"

    # The student deletes their account on the My data page.
    web = Staff(hub.url, "student1")
    r = web.post("/me/delete", confirm="yes")
    assert r.status_code == 200
    # A month on, the hub's housekeeping deletes the kiosk visit's account, requests and room.
    advance_clock(hub.url, (HubConfig().visit_retention_days + 1) * 24 * 3600)
    deadline = time.monotonic() + 15
    while visit_accounts(hub):
        assert time.monotonic() < deadline, "housekeeping did not delete the old visit"
        time.sleep(0.2)

    with hub.db.transaction() as s:
        assert s.scalar(select(HelpRequest.id)) is None  # the raw rows are gone
        kept = s.scalars(select(StatsFact)).all()
        assert [k.request_id for k in kept] == [None, None]  # no link to a request
        assert len({k.student_key for k in kept}) == 2  # two students, neither an account
        assert all(k.student_key < 0 for k in kept)  # not a user id
    assert figures() == before
    admin = Staff(hub.url, "admin")  # a month on: logged in again
    assert exported(admin, **period) == csv_before


def visit_accounts(hub: RunningHub) -> list[int]:
    with hub.db.transaction() as s:
        return list(s.scalars(select(User.id).where(User.username.like("visit-%"))))


@pytest.mark.demo(students=1, helpers=1)
def test_a_name_typed_like_a_formula_reaches_the_spreadsheet_as_text(hub):
    admin = Staff(hub.url, "admin")
    admin.post("/admin/sites", name="=HYPERLINK(1)", kind="school", contact="")
    exported_text = admin.get("/admin/stats/export.csv").content.decode("utf-8-sig")
    labels = [line[2] for line in csv.reader(io.StringIO(exported_text))]
    assert "'=HYPERLINK(1)" in labels and "=HYPERLINK(1)" not in labels


# ---------------------------------------------------------------------------------------------
# Who may look


@pytest.mark.demo(students=1, helpers=1)
def test_only_admins_and_site_staff_may_see_the_statistics(hub):
    for username in ("coordinator1", "helper1", "student1"):
        someone = Staff(hub.url, username)
        for path in ("/admin/stats", "/admin/stats/export.csv"):
            r = someone.get(path)
            assert r.status_code == 403, (username, path, r.status_code)
            assert "Sessions with a helper" not in r.text
    coordinator = Staff(hub.url, "coordinator1").get("/admin").text
    assert 'href="/admin/stats"' not in coordinator

    anonymous = hub.browserless()
    r = anonymous.http.get(hub.url + "/admin/stats", allow_redirects=False)
    assert r.status_code == 302 and "/login" in r.headers["Location"]
    r = anonymous.http.get(hub.url + "/admin/stats/export.csv", allow_redirects=False)
    assert r.status_code == 302

    for username in ("admin", "staff1"):
        assert 'href="/admin/stats"' in Staff(hub.url, username).get("/admin").text
    admin = Staff(hub.url, "admin")
    assert admin.get("/admin/stats", params={"site": "999"}).status_code == 404
    assert admin.get("/admin/stats", params={"from": "yesterday"}).status_code == 400
    assert (
        admin.get("/admin/stats", params={"from": "2026-02-01", "to": "2026-01-01"}).status_code
        == 400
    )

    danish = Staff(hub.url, "admin", lang=None).get("/admin/stats").text  # the hub's default
    assert "Statistik" in danish and "Sessioner med en hjælper" in danish


# ---------------------------------------------------------------------------------------------
# The rules, on plain data


def fact(key: str, outcome: str = "matched", **extra: object) -> Fact:
    values: dict[str, object] = {
        "asked_at": at(DAY, 15),
        "site_id": 1,
        "subject_id": 1,
        "grade": 9,
        "channel": "home",
        "outcome": outcome,
        "wait_s": 60.0,
        "session_s": 600.0,
        "helper_organisation_id": None,
        "student_rating": None,
        "helper_rating": None,
        "student_key": key,
        **extra,
    }
    return Fact(**values)  # type: ignore[arg-type]


def test_small_cells_hide_the_next_smallest_until_the_total_gives_none_away():
    sites = {1: "A", 2: "B", 3: "C"}
    facts = (
        [fact(f"a{i}", site_id=1) for i in range(9)]
        + [fact(f"b{i}", site_id=2) for i in range(6)]
        + [fact(f"c{i}", site_id=3) for i in range(2)]
    )
    names = Names(sites=sites, subjects={1: "Maths"}, organisations={})
    board = service.dashboard(facts, Period(DAY, DAY), None, "day", names)
    by_site = {
        r.label: r.figure
        for r in next(b for b in board.breakdowns if b.name == "sessions_by_site").rows
    }
    assert [by_site[x].csv() for x in "ABC"] == ["9", "hidden", "<5"]
    # Two small cells that together hold fewer than 5 students are not enough either.
    few = [fact("b1", site_id=2), fact("c1", site_id=3), fact("c2", site_id=3)]
    board = service.dashboard(facts[:9] + few, Period(DAY, DAY), None, "day", names)
    by_site = {
        r.label: r.figure
        for r in next(b for b in board.breakdowns if b.name == "sessions_by_site").rows
    }
    assert [by_site[x].csv() for x in "ABC"] == ["hidden", "<5", "<5"]
    # Gave up: 3 requests of 2 students is still fewer than 5 students; and the requests total
    # (20) minus the sessions shown (17) would give it away.
    facts += [fact("g1", "cancelled"), fact("g1", "cancelled"), fact("g2", "cancelled")]
    board = service.dashboard(facts, Period(DAY, DAY), None, "day", names)
    gave_up = next(m for m in board.summary if m.name == "gave_up")
    assert gave_up.figure.csv() == "<5"
    assert next(m for m in board.summary if m.name == "sessions").figure.csv() == "17"
    assert next(m for m in board.summary if m.name == "requests").figure.csv() == "hidden"


# ---------------------------------------------------------------------------------------------
# In a browser, without JavaScript


@pytest.mark.browser
@pytest.mark.demo(students=1, helpers=1)
def test_an_admin_reads_the_dashboard_and_filters_it_by_site_without_javascript(
    hub,
    browser,  # noqa: F811 (the fixture imported above)
):
    page = log_in(browser, hub, "admin", java_script_enabled=False)
    page.get_by_role("link", name="Statistik").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Statistik")
    # Charts are images with a name and a description a screen reader reads out.
    chart = page.get_by_role("img", name=re.compile("^Sessioner pr. sted"))
    expect(chart).to_be_visible()
    expect(page.locator("#sessions_by_site-desc")).to_contain_text("Demo-skole Nord: 0")

    page.get_by_label("Sted", exact=True).select_option(label="Demo-skole Nord")
    page.get_by_role("button", name="Vis").click()
    expect(page.get_by_test_id("stats-scope")).to_contain_text("Tal for Demo-skole Nord")
    assert f"site={NORD}" in page.url
    assert f"site={NORD}" in (page.get_by_test_id("stats-csv").get_attribute("href") or "")
    expect(page.get_by_role("img", name=re.compile("^Sessioner pr. sted"))).to_have_count(0)


# ---------------------------------------------------------------------------------------------
# The facts and the days' figures the dashboard is computed from


def stored_facts(hub: RunningHub) -> list[StatsFact]:
    with hub.db.transaction() as s:
        service.refresh(s)
        found = list(s.scalars(select(StatsFact).order_by(StatsFact.id)))
        s.expunge_all()
        return found


@both_backends  # the triggers and the GROUP BY differ between the two
@pytest.mark.demo(students=2, helpers=1)
def test_a_fact_is_written_when_a_request_finishes_and_follows_its_room_and_feedback(hub):
    helper = hub.client("helper1")
    student = hub.client("student1")
    on_duty(helper)
    asked = ask(student, hub, grade=9)
    assert stored_facts(hub) == []  # still waiting: nothing to count
    offer = helper.wait_for("offer")
    room = helper.ok("offer:accept", {"offer_id": offer["offer_id"]})["room_id"]
    student.wait_for("match")
    (matched,) = stored_facts(hub)
    with hub.db.transaction() as s:
        user_id = s.scalar(select(User.id).where(User.username == "student1"))
        site_id = s.scalar(select(User.site_id).where(User.username == "student1"))
    assert (matched.request_id, matched.student_key) == (asked["request_id"], user_id)
    assert (matched.outcome, matched.grade, matched.site_id) == ("matched", 9, site_id)
    assert matched.session_s is None and matched.student_rating is None

    helper.ok("room:end", {"room_id": room})
    student.wait_for("room:ended")
    student.ok("feedback:submit", {"room_id": room, "rating": 2})
    helper.ok("feedback:submit", {"room_id": room, "rating": 5})
    (ended,) = stored_facts(hub)
    assert ended.session_s is not None and ended.session_s >= 0
    assert (ended.student_rating, ended.helper_rating) == (2, 5)
    assert ended.helper_organisation_id is not None

    # Times set by hand (as the other tests do) reach the fact too: the triggers see any write.
    retime(hub, "student1", 0, at(DAY, 15), wait_min=7, length_min=33)
    (retimed,) = stored_facts(hub)
    assert (retimed.day, retimed.wait_s, retimed.session_s) == (DAY, 7 * 60, 33 * 60)

    # A request given up counts too, on its own day.
    other = hub.client("student2")
    helper.ok("duty:set", {"status": "paused"})
    second = ask(other, hub, grade=10)
    other.ok("help:cancel", {"request_id": second["request_id"]})
    facts = stored_facts(hub)
    assert sorted(f.outcome for f in facts) == ["cancelled", "matched"]

    admin = Staff(hub.url, "admin")
    html = admin.get("/admin/stats", params=PERIOD).text
    assert summary(html, "sessions") == "<5"
    assert chart(html, "sessions_by_day")[DAY.isoformat()] == "<5"


@both_backends  # the triggers and the GROUP BY differ between the two
@pytest.mark.demo(students=6, helpers=1)
def test_a_deleted_account_leaves_its_facts_and_the_days_figures_without_its_user_id(hub):
    helper = hub.client("helper1")
    for i in range(1, 7):
        session(hub, helper, f"student{i}", grade_of(i), rating=4)
    for i in range(1, 7):
        retime(hub, f"student{i}", 0, at(DAY, 15, i), wait_min=i, length_min=10 + i)
    admin = Staff(hub.url, "admin")
    before = exported(admin, **PERIOD)
    assert before[("summary", "sessions")] == "6"
    assert before[("sessions_by_day", DAY.isoformat())] == "6"
    month_before = exported(admin, **MONTH)  # the month of DAY, added up in stats_months
    with hub.db.transaction() as s:
        assert s.scalar(select(StatsMonth.month).where(StatsMonth.month == MONTH_FIRST))
    with hub.db.transaction() as s:
        user_id = s.scalar(select(User.id).where(User.username == "student3"))
    assert user_id is not None

    r = Staff(hub.url, "student3").post("/me/delete", confirm="yes")
    assert r.status_code == 200
    facts = stored_facts(hub)
    assert len(facts) == 6
    gone = [f for f in facts if f.request_id is None]
    assert len(gone) == 1 and gone[0].student_key < 0
    assert user_id not in {f.student_key for f in facts}
    with hub.db.transaction() as s:
        # Nothing the day's figures keep names the deleted account any more.
        cells = s.scalars(select(StatsDayCell.students).where(StatsDayCell.day == DAY)).all()
        assert all(str(user_id) not in text.split() for text in cells)
        month_cells = s.scalars(
            select(StatsMonthCell.students).where(StatsMonthCell.month == MONTH_FIRST)
        ).all()
        assert month_cells and all(str(user_id) not in text.split() for text in month_cells)
        # Who asked is kept as bitmaps of numbers; the numbers lead to the random key now.
        assert (
            s.scalar(select(StatsNumber.number).where(StatsNumber.student_key == user_id)) is None
        )
        assert s.scalar(select(StatsDay.asked).where(StatsDay.day == DAY))
    assert exported(admin, **PERIOD) == before  # the aggregates stay
    assert exported(admin, **MONTH) == month_before


def random_fact(
    rng: random.Random,
    day: date,
    sites: list[int],
    subjects: list[int],
    organisations: list[int],
    keys: list[int],
) -> StatsFact:
    """A finished request on `day` at random: mostly matched, most of those with a session, more
    than half of those rated by both."""
    outcome = rng.choices(["matched", "cancelled", "left"], [8, 1, 1])[0]
    ended = outcome == "matched" and rng.random() < 0.9
    rated = ended and rng.random() < 0.6
    return StatsFact(
        day=day,
        asked_at=at(day, rng.randrange(14, 21), rng.randrange(60)),
        site_id=rng.choice(sites),
        subject_id=rng.choice(subjects),
        grade=rng.choice([8, 9, 10]),
        channel=rng.choice(["home", "kiosk"]),
        outcome=outcome,
        wait_s=int(rng.expovariate(1 / 300)),
        session_s=rng.randrange(60, 3600) if ended else None,
        helper_organisation_id=rng.choice(organisations) if ended else None,
        student_rating=rng.randint(1, 5) if rated else None,
        helper_rating=rng.randint(1, 5) if rated else None,
        student_key=rng.choice(keys),
    )


@both_backends  # the triggers and the GROUP BY differ between the two
@pytest.mark.demo(students=1, helpers=1)
def test_the_days_figures_give_the_same_dashboard_as_the_facts_themselves(hub):
    """All sites are computed from stats_days, one site from its facts: on random facts (few
    students, so that cells are small and suppressed) both must give the same figures."""
    rng = random.Random(9)
    first = DAY - timedelta(days=20)
    with hub.db.transaction() as s:
        sites = list(s.scalars(select(Site.id)))
        subjects = list(s.scalars(select(Subject.id)))
        organisations = list(s.scalars(select(Organisation.id)))
        keys = [service.new_student_key() for _ in range(12)]
        choices = (sites, subjects, organisations, keys)
        rows = [
            random_fact(rng, first + timedelta(days=rng.randrange(21)), *choices) for _ in range(80)
        ]
        s.add_all(rows)
        s.flush()
        service.rebuild_days(s, {r.day for r in rows})

    with hub.db.transaction() as s:
        names = Names.load(s, "en")
        for period, by in ((Period(first, DAY), "day"), (Period(first, DAY), "week")):
            for site_id in (None, sites[0]):
                from_days = service.compute(s, period, site_id, by, "en")
                found = service.facts(s, period.start, period.end, site_id)
                assert from_days == service.dashboard(found, period, site_id, by, names)
        # Some of it is small: the comparison covered suppression too.
        board = service.compute(s, Period(first, DAY), None, "day", "en")
        hidden = {r.figure.hidden for b in board.breakdowns for r in b.rows}
        assert Hidden.SMALL in hidden and Hidden.COMPLEMENT in hidden
        # A period with no days at all.
        empty = service.compute(
            s, Period(DAY + timedelta(days=3), DAY + timedelta(days=4)), None, "day", "en"
        )
        assert next(m for m in empty.summary if m.name == "sessions").figure.value == 0


def test_a_period_is_read_as_its_whole_months_and_the_days_around_them():
    spans = service.Spans.of(Period(date(2025, 12, 5), date(2026, 12, 4)))
    assert spans.months == (date(2026, 1, 1), date(2026, 11, 1))
    assert spans.days == (
        (date(2025, 12, 5), date(2025, 12, 31)),
        (date(2026, 12, 1), date(2026, 12, 4)),
    )
    whole = service.Spans.of(Period(date(2024, 2, 1), date(2024, 2, 29)))  # a leap year's
    assert (whole.months, whole.days) == ((date(2024, 2, 1), date(2024, 2, 1)), ())
    inside = service.Spans.of(Period(date(2026, 3, 2), date(2026, 3, 31)))
    assert (inside.months, inside.days) == (None, ((date(2026, 3, 2), date(2026, 3, 31)),))
    across = service.Spans.of(Period(date(2026, 3, 31), date(2026, 5, 1)))
    assert across.months == (date(2026, 4, 1), date(2026, 4, 1))
    assert across.days == ((date(2026, 3, 31), date(2026, 3, 31)), (date(2026, 5, 1),) * 2)


@both_backends  # the GROUP BY over months and days, and the triggers, differ between the two
@pytest.mark.demo(students=1, helpers=1)
def test_the_months_added_up_give_the_same_dashboard_as_the_facts_and_follow_their_days(hub):
    """A period of several months is read from stats_months for its whole months and from
    stats_days around them (one site: from its facts, whole months computed once): on random
    facts over four months (few students, so that cells are small, suppressed, and the same
    students come back within and across months) it must give the same figures as the facts,
    also after a day of a month added up already changes."""
    rng = random.Random(18)
    first = DAY - timedelta(days=110)
    with hub.db.transaction() as s:
        sites = list(s.scalars(select(Site.id)))
        subjects = list(s.scalars(select(Subject.id)))
        organisations = list(s.scalars(select(Organisation.id)))
        keys = [service.new_student_key() for _ in range(9)]
        choices = (sites, subjects, organisations, keys)
        rows = [
            random_fact(rng, first + timedelta(days=rng.randrange(111)), *choices)
            for _ in range(150)
        ]
        s.add_all(rows)
        s.flush()
        service.rebuild_days(s, {r.day for r in rows})

    periods = [Period(first, DAY), Period(first - timedelta(days=40), DAY + timedelta(days=5))]
    spans = service.Spans.of(periods[0])
    assert spans.months is not None and spans.months[0] < spans.months[1]  # months are read

    def same_as_the_facts() -> None:
        with hub.db.transaction() as s:
            names = Names.load(s, "en")
            for period in periods:
                for by, site_id in (("day", None), ("week", None), ("week", sites[0])):
                    from_months = service.compute(s, period, site_id, by, "en")
                    found = service.facts(s, period.start, period.end, site_id)
                    assert from_months == service.dashboard(found, period, site_id, by, names)

    same_as_the_facts()
    with hub.db.transaction() as s:
        rolled = set(s.scalars(select(StatsMonth.month)))
        assert spans.months[0] in rolled and spans.months[1] in rolled
        # Some of it is small: the comparison covered suppression and returning students too.
        board = service.compute(s, periods[0], None, "week", "en")
        hidden = {r.figure.hidden for b in board.breakdowns for r in b.rows}
        assert Hidden.SMALL in hidden and Hidden.COMPLEMENT in hidden
        returning = next(m for m in board.summary if m.name == "returning_students")
        assert returning.figure.value

    # A new student on a day of a month added up already: the month follows its day, and so do
    # the site's figures of the month this process kept (the second pass above used them).
    changed = spans.months[0] + timedelta(days=3)
    with hub.db.transaction() as s:
        late = random_fact(rng, changed, *choices)
        late.student_key = service.new_student_key()
        late.outcome, late.session_s, late.site_id = "matched", 600, sites[0]
        s.add(late)
        s.flush()
        service.rebuild_days(s, {changed})
    same_as_the_facts()


@both_backends  # stats_numbers and the days' rows are read back from each engine
@pytest.mark.demo(students=1, helpers=1)
def test_a_day_rebuilt_for_a_few_changed_students_has_the_bitmaps_of_one_counted_afresh(hub):
    """`refresh` rebuilds a day for the few students whose facts changed, setting only their bits
    in the day's kept bitmaps: after facts change student, site and outcome, come and go (a few
    students, so the same ones are on several days and sites), the days' rows must be exactly
    those of counting the days afresh (the cells too, of which only those that differ are
    written again; which students a cell of five or more lists may differ)."""
    rng = random.Random(27)
    first = DAY - timedelta(days=6)
    with hub.db.transaction() as s:
        sites = list(s.scalars(select(Site.id)))
        keys = [service.new_student_key() for _ in range(8)]

        def random_fact(day: date) -> StatsFact:
            outcome = rng.choices(["matched", "cancelled", "left"], [6, 1, 1])[0]
            return StatsFact(
                day=day,
                asked_at=at(day, rng.randrange(14, 21), rng.randrange(60)),
                site_id=rng.choice([*sites, None]),
                grade=rng.choice([8, 9, 10]),
                channel=rng.choice(["home", "kiosk"]),
                outcome=outcome,
                wait_s=rng.randrange(900),
                session_s=rng.randrange(60, 3600) if outcome == "matched" else None,
                student_key=rng.choice(keys),
            )

        rows = [random_fact(first + timedelta(days=rng.randrange(7))) for _ in range(60)]
        s.add_all(rows)
        s.flush()
        service.rebuild_days(s, {r.day for r in rows})

    def days_rows(s) -> list[tuple]:
        found = s.execute(select(StatsDay).order_by(StatsDay.day)).scalars()
        days = [
            (d.day, d.asked, d.helped, sorted(json.loads(d.sites)), d.site_asked) for d in found
        ]
        cells = s.execute(select(StatsDayCell).order_by(StatsDayCell.day, StatsDayCell.dim))
        return days + sorted(
            (c.day, c.dim, c.key, c.n, c.total, c.few, c.students if c.few < 5 else "")
            for c in cells.scalars()
        )

    for _ in range(6):
        with hub.db.transaction() as s:
            facts = list(s.scalars(select(StatsFact).where(StatsFact.day >= first)))
            changed: dict[date, set] = {}
            for f in rng.sample(facts, 4):
                changed.setdefault(f.day, set()).add(f.student_key)
                what = rng.randrange(4)
                if what == 0:
                    s.delete(f)
                    continue
                if what == 1:
                    f.student_key = rng.choice([*keys, service.new_student_key()])
                elif what == 2:
                    f.site_id = rng.choice([*sites, None])
                else:
                    f.outcome = "cancelled" if f.outcome == "matched" else "matched"
                changed[f.day].add(f.student_key)
            for _new in range(2):
                late = random_fact(first + timedelta(days=rng.randrange(8)))
                s.add(late)
                changed.setdefault(late.day, set()).add(late.student_key)
            s.flush()
            service.rebuild_days(s, changed.keys(), changed)
            patched = days_rows(s)
            service.rebuild_days(s, changed.keys())
            assert patched == days_rows(s)
