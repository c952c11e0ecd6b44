"""The helpdesk: a ticket from any page (the page attached) or from a kiosk (the kiosk and its
site attached), worked by admins and the site's staff (status, replies, assignment), the replies
read by the reporter; room reports as tickets for the helper's coordinators and admins only; and
closed tickets deleted after the retention period."""

from __future__ import annotations

import re
import signal
import time
from datetime import timedelta

import pygame
from sqlalchemy import select

from appliance.visit import Visit
from hub import clock
from hub.accounts.models import Organisation, Role, Site, User
from hub.accounts.service import hash_password
from hub.config import HubConfig
from hub.helpdesk import service
from hub.helpdesk.models import Ticket, TicketReply
from kiosk_ui.app import App
from kiosk_ui.screens.help import HelpOverlay
from kiosk_ui.settings import Settings
from kiosk_ui.theme import DESIGN_H, DESIGN_W
from tests.conftest import both_backends, start_hub
from tests.hubclient import PASSWORD, Browserless, advance_clock
from tests.kiosks import pair_into, paired_kiosk
from tests.test_admin import Staff, rows, texts
from tests.test_appliance import kiosk_options, wait_until
from tests.test_reports import reported_room


def help_link(html: str) -> str:
    link = re.search(r'href="([^"]+)" data-testid="help-link"', html)
    assert link, "no help link on the page"
    return link.group(1).replace("&amp;", "&")


def send_ticket(who: Browserless, form_path: str, **fields: str) -> object:
    token = who.csrf(form_path)
    page = who.http.get(who.base_url + form_path).text
    came_from = re.search(r'name="page" value="([^"]*)"', page)
    assert came_from
    return who.http.post(
        who.base_url + "/help/new",
        data={"csrf_token": token, "page": came_from.group(1), **fields},
    )


def ticket_id_of(url: str) -> int:
    found = re.search(r"/help/tickets/(\d+)$", url)
    assert found, url
    return int(found.group(1))


def only_ticket(hub) -> Ticket:
    with hub.db.transaction() as s:
        return s.scalars(select(Ticket)).one()


def add_user(hub, username: str, role: Role, **extra) -> int:
    with hub.db.transaction() as s:
        user = User(
            username=username,
            display_name=username.capitalize(),
            role=role,
            password_hash=hash_password(PASSWORD),
            approved=True,
            created_at=clock.now(),
            **extra,
        )
        s.add(user)
        s.flush()
        return user.id


def site_id(hub, index: int) -> int:
    with hub.db.transaction() as s:
        return s.scalars(select(Site.id).order_by(Site.id)).all()[index]


@both_backends
def test_a_student_asks_for_help_from_a_page_and_reads_the_staffs_reply(hub):
    student = Staff(hub.url, "student1")
    form = help_link(student.get("/student").text)
    assert form == "/help/new?from=/student"
    sent = send_ticket(student, form, category="camera", text="Kameraet er sort")
    assert sent.status_code == 200
    ticket_id = ticket_id_of(sent.url)
    ticket = only_ticket(hub)
    assert (ticket.page, ticket.category, ticket.text) == ("/student", "camera", "Kameraet er sort")
    assert ticket.site_id == site_id(hub, 0)  # student1's site, which staff1 looks after
    assert ticket.browser.startswith("python-requests")

    staff = Staff(hub.url, "staff1")
    [row] = rows(staff.get("/help/desk").text, "ticket")
    assert (row["status"], row["from"]) == ("Open", "Elev 1 (Demo-skole Nord)")
    page = staff.get(f"/help/tickets/{ticket_id}").text
    assert texts(page, "ticket-page") == ["/student"]
    staff.post(f"/help/tickets/{ticket_id}/reply", text="Prøv at genstarte browseren")
    staff.post(f"/help/tickets/{ticket_id}/status", status="in_progress")
    staff_id = add_user(hub, "staff1b", Role.SITE_STAFF, site_id=site_id(hub, 0))
    staff.post(f"/help/tickets/{ticket_id}/assign", assignee_id=str(staff_id))
    [row] = rows(staff.get("/help/desk").text, "ticket")
    assert (row["status"], row["assignee"]) == ("In progress", "Staff1b")

    [mine] = rows(student.get("/help/mine").text, "ticket")
    assert mine["status"] == "In progress"
    seen = student.get(f"/help/tickets/{ticket_id}").text
    assert rows(seen, "reply") == [{"from": "Personale 1", "text": "Prøv at genstarte browseren"}]
    assert texts(seen, "ticket-page") == []  # what staff see of where it came from is theirs
    student.post(f"/help/tickets/{ticket_id}/reply", text="Det virker nu, tak")
    staff.post(f"/help/tickets/{ticket_id}/status", status="closed")
    closed = student.get(f"/help/tickets/{ticket_id}").text
    assert texts(closed, "ticket-status") == ["Closed"]
    assert len(rows(closed, "reply")) == 2
    refused = student.post(f"/help/tickets/{ticket_id}/reply", text="Igen")
    assert refused.status_code == 409


def test_someone_who_could_not_log_in_follows_the_answer_with_a_code_shown_once(hub):
    visitor = Browserless(hub.url, lang="en")
    form = help_link(visitor.http.get(hub.url + "/login").text)
    sent = send_ticket(visitor, form, category="login", text="Jeg har glemt min kode")
    codes = texts(sent.text, "follow-code")
    assert len(codes) == 1 and re.fullmatch(r"[A-Z2-9]{4}-[A-Z2-9]{4}-[A-Z2-9]{4}", codes[0])
    ticket = only_ticket(hub)
    assert (ticket.page, ticket.reporter_id, ticket.site_id) == ("/login", None, None)
    assert codes[0].replace("-", "") not in (ticket.follow_code_hash or "")

    admin = Staff(hub.url, "admin")
    admin.post(f"/help/tickets/{ticket.id}/reply", text="Spørg din lærer om en ny kode")
    assert rows(Staff(hub.url, "staff1").get("/help/desk").text, "ticket") == []

    def follow(code: str):
        return visitor.http.post(
            hub.url + "/help/follow",
            data={"csrf_token": visitor.csrf("/help/follow"), "code": code},
        )

    answer = follow(codes[0].lower().replace("-", " "))  # typed as it comes
    assert answer.status_code == 200
    assert rows(answer.text, "reply") == [
        {"from": "Admin", "text": "Spørg din lærer om en ny kode"}
    ]
    assert follow("AAAA-AAAA-AAAA").status_code == 404


def test_the_page_attached_is_a_path_only_never_a_query_string_or_another_site(hub):
    student = Staff(hub.url, "student1")
    token = student.csrf("/help/new")
    for given, kept in [("/mydata?token=secret#x", "/mydata"), ("https://evil.example/x", "/x")]:
        student.http.post(
            hub.url + "/help/new",
            data={"csrf_token": token, "page": given, "category": "other"},
        )
        with hub.db.transaction() as s:
            newest = s.scalars(select(Ticket).order_by(Ticket.id.desc())).first()
            assert newest is not None and newest.page == kept
    refused = student.http.post(
        hub.url + "/help/new", data={"csrf_token": token, "category": "hacking"}
    )
    assert refused.status_code == 400
    assert texts(refused.text, "form-error") == ["Choose what went wrong."]


def test_a_kiosk_reports_a_problem_with_itself_and_its_site_attached(hub):
    kiosk = paired_kiosk(hub, name="Biblioteket 1")
    answer = kiosk.ok("helpdesk:ticket", {"problem": "sound", "text": "", "ref": "k1-00000001"})
    again = kiosk.ok("helpdesk:ticket", {"problem": "sound", "text": "", "ref": "k1-00000001"})
    assert again["ticket_id"] == answer["ticket_id"]  # a resend from the outbox
    ticket = only_ticket(hub)
    assert (ticket.category, ticket.page, ticket.reporter_id) == ("sound", "kiosk", None)
    assert ticket.device_id is not None and ticket.site_id == site_id(hub, 0)

    staff = Staff(hub.url, "staff1")
    [row] = rows(staff.get("/help/desk").text, "ticket")
    assert row["from"] == "Biblioteket 1 (Demo-skole Nord)"
    page = staff.get(f"/help/tickets/{ticket.id}").text
    assert texts(page, "ticket-device") == ["Biblioteket 1"]

    # During a visit the kiosk's connection acts for the student and may still report.
    kiosk.ok("visit:start", {"nickname": "Ali", "grade": 9})
    kiosk.ok("helpdesk:ticket", {"problem": "camera", "ref": "k1-00000002"})
    with hub.db.transaction() as s:
        assert {t.device_id for t in s.scalars(select(Ticket))} == {ticket.device_id}

    for payload in ({"problem": "fire", "ref": "k1-00000003"}, {"problem": "other"}):
        refused = kiosk.call("helpdesk:ticket", payload)
        assert refused["error"]["code"] == "invalid", refused
    student = hub.client("student1")
    refused = student.call("helpdesk:ticket", {"problem": "other", "ref": "s1-00000001"})
    assert refused["error"]["code"] == "forbidden"


def test_nobody_reads_or_works_a_ticket_that_is_not_theirs(hub):
    student = Staff(hub.url, "student1")
    ticket_id = ticket_id_of(send_ticket(student, "/help/new?from=/student", category="other").url)
    other_site_staff = add_user(hub, "staff2", Role.SITE_STAFF, site_id=site_id(hub, 1))
    add_user(hub, "helperx", Role.HELPER)

    # student2 (another student) and staff2 (another site's staff) do not see it at all
    for username in ("student2", "staff2", "coordinator1", "helperx"):
        someone = Staff(hub.url, username)
        assert someone.get(f"/help/tickets/{ticket_id}").status_code == 404, username
        assert someone.post(f"/help/tickets/{ticket_id}/reply", text="x").status_code == 404
    assert rows(Staff(hub.url, "staff2").get("/help/desk").text, "ticket") == []
    # the reporter reads it but may not work it; students and helpers have no desk
    for path, data in [("status", {"status": "closed"}), ("assign", {"assignee_id": ""})]:
        assert student.post(f"/help/tickets/{ticket_id}/{path}", **data).status_code == 403
    assert student.get("/help/desk").status_code == 403
    # staff may give the ticket only to someone who may see it
    staff = Staff(hub.url, "staff1")
    refused = staff.post(f"/help/tickets/{ticket_id}/assign", assignee_id=str(other_site_staff))
    assert refused.status_code == 400
    assert staff.post(f"/help/tickets/{ticket_id}/status", status="solved").status_code == 400
    with hub.db.transaction() as s:
        ticket = s.get(Ticket, ticket_id)
        assert ticket is not None and (ticket.assignee_id, ticket.status) == (None, "open")


def test_room_reports_are_tickets_for_the_helpers_coordinators_and_admins_only(hub):
    reported_room(hub)
    with hub.db.transaction() as s:
        other = Organisation(name="Andre frivillige")
        s.add(other)
        s.flush()
        other_id = other.id
    add_user(hub, "coordinator2", Role.COORDINATOR, organisation_id=other_id)
    ticket = only_ticket(hub)
    assert (ticket.kind, ticket.text) == ("report", "Eleven var grov i chatten")

    coordinator = Staff(hub.url, "coordinator1")
    [row] = rows(coordinator.get("/help/desk").text, "ticket")
    assert row["link"] == "Report from a session"
    page = coordinator.get(f"/help/tickets/{ticket.id}").text
    assert re.search(r'href="/admin/reports/\d+" data-testid="ticket-report"', page)
    assert texts(page, "ticket-report-state") == ["The report is open."]
    coordinator.post(f"/help/tickets/{ticket.id}/reply", text="Jeg tager mig af det")
    assert [
        r["status"] for r in rows(Staff(hub.url, "admin").get("/help/desk").text, "ticket")
    ] == ["Open"]

    for username in ("staff1", "coordinator2"):
        staff = Staff(hub.url, username)
        assert rows(staff.get("/help/desk").text, "ticket") == [], username
        assert staff.get(f"/help/tickets/{ticket.id}").status_code == 404
    # the reporter (helper1) does not read the coordinators' handling of a report here
    assert Staff(hub.url, "helper1").get(f"/help/tickets/{ticket.id}").status_code == 404
    assert rows(Staff(hub.url, "helper1").get("/help/mine").text, "ticket") == []
    # and the reports page works as before; closing the report there shows on the ticket
    [report] = rows(coordinator.get("/admin/reports").text, "report")
    assert report["status"] == "Open"
    coordinator.post(f"/admin/reports/{ticket.report_id}/close", resolution="Talt med eleven")
    page = coordinator.get(f"/help/tickets/{ticket.id}").text
    assert texts(page, "ticket-report-state") == ["The report is closed."]


def test_closed_tickets_are_deleted_after_the_retention_period(hub):
    student = Staff(hub.url, "student1")
    kept = ticket_id_of(send_ticket(student, "/help/new?from=/student", category="other").url)
    closed = ticket_id_of(send_ticket(student, "/help/new?from=/student", category="sound").url)
    admin = Staff(hub.url, "admin")
    admin.post(f"/help/tickets/{closed}/reply", text="Løst")
    admin.post(f"/help/tickets/{closed}/status", status="closed")

    retention = timedelta(days=HubConfig().ticket_retention_days)
    advance_clock(hub.url, (retention - timedelta(hours=1)).total_seconds())
    time.sleep(0.5)  # a few passes of the matching loop, whose housekeeping keeps it for now
    with hub.db.transaction() as s:
        assert s.get(Ticket, closed) is not None
    advance_clock(hub.url, timedelta(hours=2).total_seconds())
    deadline = time.monotonic() + 10
    while True:
        with hub.db.transaction() as s:
            if s.get(Ticket, closed) is None:
                assert s.get(Ticket, kept) is not None  # still open: never deleted
                assert s.scalars(select(TicketReply)).all() == []
                break
        assert time.monotonic() < deadline, "the hub's housekeeping kept a closed ticket"
        time.sleep(0.05)


def test_a_student_at_the_kiosk_taps_problem_and_the_staff_get_a_ticket(hub, tmp_path, monkeypatch):
    """The help overlay in this process (SDL's dummy driver) on a paired kiosk's real Visit; a
    ticket sent while the hub is down waits in the outbox and arrives when it is back."""
    monkeypatch.setenv("SDL_VIDEODRIVER", "dummy")
    data_dir = tmp_path / "kiosk"
    device_id = pair_into(hub, data_dir)["device_id"]
    visit = Visit(kiosk_options(hub, data_dir))
    visit.open()
    pygame.display.init()
    pygame.font.init()
    try:
        wait_until(lambda: visit.snapshot().connection == "connected", what="connected")
        app = App(visit, Settings(), pygame.display.set_mode((DESIGN_W, DESIGN_H)))
        # The attract screen's Problem? button opens the overlay.
        [button] = [w for w in app.screen.refresh() if w.id == "help"]
        button.on_tap()
        [overlay] = app.overlays
        assert isinstance(overlay, HelpOverlay)

        def tap(widget_id: str) -> None:
            [widget] = [w for w in overlay.refresh() if w.id == widget_id]
            assert widget.enabled and widget.on_tap is not None, widget_id
            widget.on_tap()

        assert not next(w for w in overlay.refresh() if w.id == "help.send").enabled
        tap("help.camera")
        for key in "sort billede":
            overlay.key(key)
        tap("help.send")
        wait_until(lambda: overlay.update(0.1) or overlay.sent, what="sent")
        assert [w.id for w in overlay.refresh()] == ["help.box", "help.thanks", "help.close"]
        tap("help.close")
        assert app.overlays == []
        ticket = only_ticket(hub)
        assert (ticket.category, ticket.text, ticket.device_id) == (
            "camera",
            "sort billede",
            device_id,
        )

        hub.process.send_signal(signal.SIGKILL)
        hub.process.wait()
        wait_until(lambda: visit.snapshot().connection != "connected", what="the drop noticed")
        visit.ask_helpdesk("sound", "ingen lyd").result(10)  # queued: nothing to wait for
        assert "ingen lyd" in (data_dir / "kiosk.json").read_text()
        port = int(hub.url.rsplit(":", 1)[1])
        hub.process, _url, _log = start_hub(hub.db.url, hub.data_dir, port=port)

        def delivered() -> bool:
            with hub.db.transaction() as s:
                return s.scalar(select(Ticket).where(Ticket.category == "sound")) is not None

        wait_until(delivered, timeout=30, what="the queued ticket delivered")
        wait_until(lambda: "ingen lyd" not in (data_dir / "kiosk.json").read_text())
    finally:
        visit.close()
        pygame.quit()


def test_tickets_without_an_account_are_limited_so_a_script_cannot_fill_the_database(hub):
    visitor = Browserless(hub.url, lang="en")
    token = visitor.csrf("/help/new")

    def send():
        return visitor.http.post(
            hub.url + "/help/new", data={"csrf_token": token, "category": "login", "page": "/"}
        )

    for _i in range(service.ANONYMOUS_LIMIT):
        assert send().status_code == 200
    refused = send()
    assert refused.status_code == 429
    assert "try again in a while" in texts(refused.text, "form-error")[0]
    assert Staff(hub.url, "student1").post("/help/new", category="other").status_code == 200
    advance_clock(hub.url, service.ANONYMOUS_WINDOW.total_seconds())
    assert send().status_code == 200
