"""The audit log: reading a room report or its transcript, exporting statistics, a student's
download of their data and deletion of their account are written down (who, what, which object,
when; never what was read), and only admins read the log, a page at a time, by action."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from sqlalchemy import select

from hub import clock
from hub.accounts.access import Identity
from hub.accounts.models import User
from hub.audit import service
from hub.audit.models import AuditEntry
from hub.audit.service import Action
from hub.helpdesk.models import Ticket
from hub.rooms.models import Report, Room
from tests.test_admin import Staff, rows, texts
from tests.test_reports import reported_room


def log_of(hub) -> list[tuple[str, str | None, str, str]]:
    """Every entry, oldest first, as (action, actor's username or None, role, ref)."""
    with hub.db.transaction() as s:
        found = s.execute(
            select(AuditEntry, User.username)
            .outerjoin(User, User.id == AuditEntry.actor_id)
            .order_by(AuditEntry.id)
        ).all()
        return [(e.action, name, e.actor_role, e.ref) for e, name in found]


def test_reading_a_report_and_its_transcript_is_written_down_for_each_reader(hub):
    room = reported_room(hub)
    with hub.db.transaction() as s:
        report_id = s.scalar(select(Report.id))
        ticket_id = s.scalar(select(Ticket.id).where(Ticket.report_id == report_id))
    assert log_of(hub) == []  # filing a report is no reading

    coordinator = Staff(hub.url, "coordinator1")
    coordinator.get("/admin/reports")  # the list shows no chat: not written down
    assert log_of(hub) == []
    assert coordinator.get(f"/admin/reports/{report_id}").status_code == 200
    assert log_of(hub) == [
        ("report.viewed", "coordinator1", "coordinator", f"report:{report_id}"),
        ("transcript.viewed", "coordinator1", "coordinator", f"room:{room}"),
    ]
    # The report's helpdesk ticket shows the report too.
    assert Staff(hub.url, "admin").get(f"/help/tickets/{ticket_id}").status_code == 200
    assert log_of(hub)[2:] == [("report.viewed", "admin", "admin", f"report:{report_id}")]

    # Nothing a person wrote goes into the log, and a refused reader is not written down.
    with hub.db.transaction() as s:
        assert "Eleven var grov" not in repr(s.scalars(select(AuditEntry)).all())
    assert Staff(hub.url, "staff1").get(f"/admin/reports/{report_id}").status_code == 403
    assert len(log_of(hub)) == 3


def test_once_the_chat_is_deleted_reading_the_report_is_no_transcript_read(hub):
    reported_room(hub)
    with hub.db.transaction() as s:
        report = s.scalars(select(Report)).one()
        report_id = report.id
        s.get(Room, report.room_id).chat_deleted_at = clock.now()
    page = Staff(hub.url, "coordinator1").get(f"/admin/reports/{report_id}")
    assert texts(page.text, "report-chat-deleted") == [
        "The chat was deleted after its retention period."
    ]
    assert [a for a, *_ in log_of(hub)] == ["report.viewed"]


def test_exporting_statistics_is_written_down_with_the_period_and_site(hub):
    admin = Staff(hub.url, "admin")
    assert admin.get("/admin/stats").status_code == 200  # looking at aggregates: not logged
    assert log_of(hub) == []
    period = {"from": "2026-01-01", "to": "2026-01-31"}
    assert admin.get("/admin/stats/export.csv", params=period).status_code == 200
    staff = Staff(hub.url, "staff1")
    assert staff.get("/admin/stats/export.csv", params=period).status_code == 200
    with hub.db.transaction() as s:
        staff_site = s.scalar(select(User.site_id).where(User.username == "staff1"))
    assert log_of(hub) == [
        ("stats.exported", "admin", "admin", "stats:2026-01-01..2026-01-31"),
        (
            "stats.exported",
            "staff1",
            "site_staff",
            f"stats:2026-01-01..2026-01-31:site:{staff_site}",
        ),
    ]
    # A refused export is not one.
    assert Staff(hub.url, "helper1").get("/admin/stats/export.csv").status_code == 403
    assert len(log_of(hub)) == 2


def test_a_students_download_is_written_down_and_their_deletion_takes_them_out_of_the_log(hub):
    student = Staff(hub.url, "student1")
    assert student.get("/me/data").status_code == 200  # the page: not a download
    assert log_of(hub) == []
    assert student.get("/me/data.json").status_code == 200
    assert student.get("/me/data", params={"format": "json"}).status_code == 200
    assert log_of(hub) == [("data.downloaded", "student1", "student", "")] * 2

    assert student.post("/me/delete", confirm="yes").status_code == 200
    assert log_of(hub) == [
        ("data.downloaded", None, "student", ""),
        ("data.downloaded", None, "student", ""),
        ("account.deleted", None, "student", ""),
    ]
    with hub.db.transaction() as s:
        assert s.scalars(select(AuditEntry.actor_id).distinct()).all() == [None]

    page = Staff(hub.url, "admin").get("/admin/audit", params={"action": "account.deleted"})
    [row] = rows(page.text, "audit")
    assert (row["who"], row["role"], row["action"]) == (
        "a deleted account",
        "Student",
        "A student deleted their account",
    )


@pytest.mark.parametrize("username", ["student1", "helper1", "coordinator1", "staff1"])
def test_only_admins_read_the_audit_log(hub, username):
    assert Staff(hub.url, username).get("/admin/audit").status_code == 403
    visitor = hub.browserless().http.get(hub.url + "/admin/audit", allow_redirects=False)
    assert visitor.status_code == 302 and "/login" in visitor.headers["Location"]
    start_page = {"student1": "/student", "helper1": "/helper"}.get(username, "/admin")
    nav = Staff(hub.url, username).get(start_page).text
    assert 'href="/admin/audit"' not in nav


def test_the_admin_finds_the_log_from_the_overview_and_pages_through_it_by_action(hub):
    admin = Staff(hub.url, "admin")
    overview = admin.get("/admin").text
    assert 'href="/admin/audit"' in overview and texts(overview, "overview-audit") == ["Audit log"]
    empty = admin.get("/admin/audit")
    assert empty.status_code == 200 and rows(empty.text, "audit") == []

    start = clock.now()
    with hub.db.transaction() as s:
        admin_user = s.scalar(select(User).where(User.username == "admin"))
        me = Identity.of(admin_user)
        for i in range(service.PAGE_SIZE + 20):  # oldest first
            service.record(s, me, Action.STATS_EXPORTED, f"stats:{i}", start + timedelta(seconds=i))
        for i in range(3):
            service.record(s, me, Action.REPORT_VIEWED, f"report:{i}", start + timedelta(seconds=i))

    first = admin.get("/admin/audit").text
    assert texts(first, "audit-count") == [f"{service.PAGE_SIZE + 23} lines"]
    listed = rows(first, "audit")
    assert len(listed) == service.PAGE_SIZE
    assert listed[0] == {
        "when": listed[0]["when"],
        "who": "admin",
        "role": "Admin",
        "action": "Exported statistics (CSV)",
        "ref": f"stats:{service.PAGE_SIZE + 19}",  # newest first
    }
    assert texts(first, "audit-older") == ["Older"] and texts(first, "audit-newer") == []
    older = re.search(r'href="([^"]+)" rel="next"', first)
    assert older
    second = admin.get(older.group(1).replace("&amp;", "&")).text
    assert len(rows(second, "audit")) == 23 and texts(second, "audit-newer") == ["Newer"]

    only_reports = admin.get("/admin/audit", params={"action": "report.viewed"}).text
    assert [r["ref"] for r in rows(only_reports, "audit")] == ["report:2", "report:1", "report:0"]
    assert texts(only_reports, "audit-pages") == []
    beyond = admin.get("/admin/audit", params={"action": "report.viewed", "page": "9"}).text
    assert rows(beyond, "audit") == []

    for bad in ({"action": "report.read"}, {"page": "0"}, {"page": "x"}, {"page": "10000000"}):
        assert admin.get("/admin/audit", params=bad).status_code == 400, bad


def test_an_entry_names_an_object_never_free_text(hub):
    with hub.db.transaction() as s:
        me = Identity.of(s.scalar(select(User).where(User.username == "admin")))
        for ref in ("Eleven var grov i chatten", "room: 1", "x" * 100, "Room:1", "room:"):
            with pytest.raises(ValueError):
                service.record(s, me, Action.REPORT_VIEWED, ref, clock.now())
        service.record(s, me, Action.TRANSCRIPT_VIEWED, "room:Ab-12_x", clock.now())
    assert log_of(hub) == [("transcript.viewed", "admin", "admin", "room:Ab-12_x")]
