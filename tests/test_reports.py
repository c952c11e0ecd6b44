"""Reports from a room reach the coordinators of the helper's organisation and the admins, who
read what happened and close them; nobody else sees them."""

from __future__ import annotations

import re

from hub import clock
from hub.accounts.models import Organisation, Role, User
from hub.accounts.service import hash_password
from tests.hubclient import PASSWORD
from tests.test_admin import Staff, rows, texts
from tests.test_rooms import matched, open_doc, type_text


def reported_room(hub) -> str:
    student, helper, room = matched(hub)
    student.ok("chat:send", {"room_id": room, "text": "Du er dum", "client_msg_id": "1"})
    open_doc(hub, helper, room).write(type_text("2x = 4"))
    helper.ok("room:report", {"room_id": room, "text": "Eleven var grov i chatten"})
    return room


def test_the_coordinator_reads_what_happened_and_closes_the_report(hub):
    reported_room(hub)
    coordinator = Staff(hub.url, "coordinator1")
    listing = coordinator.get("/admin/reports")
    assert listing.status_code == 200
    [row] = rows(listing.text, "report")
    assert row["status"] == "Open"
    link = re.search(r'href="(/admin/reports/\d+)" data-testid="report-link"', listing.text)
    assert link
    page = coordinator.get(link.group(1))
    assert texts(page.text, "report-text") == ["Eleven var grov i chatten"]
    assert "Du er dum" in texts(page.text, "report-chat")[0]
    assert texts(page.text, "report-document") == ["2x = 4"]

    refused = coordinator.post_raw(link.group(1) + "/close", resolution="  ")
    assert refused.status_code == 400
    assert texts(refused.text, "form-error") == ["Write what was done before closing the report."]
    closed = coordinator.post(link.group(1) + "/close", resolution="Talt med eleven")
    assert rows(closed.text, "report")[0]["status"] == "Closed"
    assert coordinator.post_raw(link.group(1) + "/close", resolution="igen").status_code == 409
    admin_page = Staff(hub.url, "admin").get(link.group(1))
    assert "Talt med eleven" in texts(admin_page.text, "report-resolution")[0]


def test_only_the_helpers_own_coordinators_and_admins_see_a_report(hub):
    reported_room(hub)
    with hub.db.transaction() as s:
        other = Organisation(name="Andre frivillige")
        s.add(other)
        s.flush()
        s.add(
            User(
                username="coordinator2",
                display_name="Koordinator 2",
                role=Role.COORDINATOR,
                organisation_id=other.id,
                password_hash=hash_password(PASSWORD),
                approved=True,
                created_at=clock.now(),
            )
        )
    assert rows(Staff(hub.url, "coordinator2").get("/admin/reports").text, "report") == []
    report_id = int(
        re.search(r"/admin/reports/(\d+)", Staff(hub.url, "admin").get("/admin/reports").text)[1]
    )
    assert Staff(hub.url, "coordinator2").get(f"/admin/reports/{report_id}").status_code == 404
    for username in ("student1", "helper1", "staff1"):
        someone = Staff(hub.url, username)
        assert someone.get("/admin/reports").status_code == 403
        assert (
            someone.post_raw(f"/admin/reports/{report_id}/close", resolution="x").status_code == 403
        )
