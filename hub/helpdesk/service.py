"""Opening, reading and working helpdesk tickets.

Who sees a ticket: its reporter (problems only, never a room report), admins (all), site staff
(problems of their site: its kiosks' and its users'), and coordinators (reports on rooms of their
organisation's helpers). Someone without an account gets a code, shown once, to follow their
ticket; only its hash is kept."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from flask_babel import gettext as _
from sqlalchemy import ColumnElement, delete, false, func, or_, select, true
from sqlalchemy.orm import Session

from hub.accounts.access import Identity
from hub.accounts.models import Role, Site, User
from hub.devices.models import Device
from hub.errors import Conflict, Forbidden, Invalid, NotFound, RateLimited
from hub.forms import CODE_ALPHABET
from hub.helpdesk.models import Ticket, TicketKind, TicketReply, TicketStatus
from hub.rooms.models import Report

# What went wrong, as the forms offer it (the kiosk offers the first three).
PAGE_CATEGORIES = ("login", "camera", "sound", "other")
KIOSK_CATEGORIES = ("camera", "sound", "other")
FOLLOW_CODE_LENGTH = 12
# Tickets without an account (the login page's) per ANONYMOUS_WINDOW across the hub: more are
# refused for a while, so a script cannot fill the database.
ANONYMOUS_LIMIT = 30
ANONYMOUS_WINDOW = timedelta(minutes=10)


def _digest(code: str) -> str:
    return hashlib.sha256(code.encode()).hexdigest()


def normalise_follow_code(typed: str) -> str:
    return "".join(c for c in typed.upper() if c.isalnum())


def format_follow_code(code: str) -> str:
    return "-".join(code[i : i + 4] for i in range(0, len(code), 4))


def page_path(raw: str) -> str:
    """The path of the page a ticket came from: no query string or fragment (they can hold
    personal data), and only a path on this site."""
    path = urlsplit(raw).path if raw else ""
    return path[:200] if path.startswith("/") and not path.startswith("//") else ""


# ---------------------------------------------------------------------------------------------
# Opening


def open_ticket(
    s: Session,
    reporter: Identity | None,
    category: str,
    text: str,
    page: str,
    browser: str,
    now: datetime,
) -> tuple[Ticket, str | None]:
    """A ticket from a page, by a logged-in person or (`reporter` None) without an account.
    Returns the ticket and, for the one without an account, the code to follow it with."""
    if category not in PAGE_CATEGORIES:
        raise Invalid(_("Choose what went wrong."), fields={"category": "unknown"})
    if reporter is not None and Role.KIOSK in reporter.roles:
        raise Forbidden(_("Your role may not do this."))
    code = None
    ticket = Ticket(
        category=category,
        text=text,
        page=page_path(page),
        browser=browser[:200],
        created_at=now,
    )
    if reporter is None:
        _limit_anonymous(s, now)
        code = "".join(secrets.choice(CODE_ALPHABET) for _i in range(FOLLOW_CODE_LENGTH))
        ticket.follow_code_hash = _digest(code)
    else:
        ticket.reporter_id, ticket.site_id = reporter.user_id, reporter.site_id
    s.add(ticket)
    s.flush()
    return ticket, code


def _limit_anonymous(s: Session, now: datetime) -> None:
    recent = s.scalar(
        select(func.count(Ticket.id)).where(
            Ticket.follow_code_hash.is_not(None), Ticket.created_at > now - ANONYMOUS_WINDOW
        )
    )
    if (recent or 0) >= ANONYMOUS_LIMIT:
        raise RateLimited(
            _("Too many messages were sent without logging in. Please try again in a while.")
        )


def open_kiosk_ticket(
    s: Session, kiosk: Identity, category: str, text: str, client_ref: str, now: datetime
) -> Ticket:
    """A ticket from a kiosk, with the kiosk and its site attached. The same `client_ref` sent
    again (the kiosk's outbox resending after a lost answer) is the same ticket."""
    if category not in KIOSK_CATEGORIES:
        raise Invalid(_("Choose what went wrong."), fields={"problem": "unknown"})
    device = s.get(Device, kiosk.device_id) if kiosk.device_id is not None else None
    if device is None or device.revoked_at is not None:
        raise Forbidden(_("This kiosk is no longer paired."))
    existing = s.scalar(
        select(Ticket).where(Ticket.device_id == device.id, Ticket.client_ref == client_ref)
    )
    if existing is not None:
        return existing
    ticket = Ticket(
        category=category,
        text=text,
        page="kiosk",
        device_id=device.id,
        client_ref=client_ref,
        site_id=device.site_id,
        created_at=now,
    )
    s.add(ticket)
    s.flush()
    return ticket


def open_report_ticket(s: Session, *, report: Report, helper: User, **_extra: Any) -> None:
    """A report from a room becomes a ticket of kind "report", for the helper's organisation's
    coordinators and the admins (connected to hub.rooms.service.report_filed)."""
    s.add(
        Ticket(
            kind=TicketKind.REPORT,
            category="report",
            text=report.text,
            page="room",
            reporter_id=report.reporter_id,
            organisation_id=helper.organisation_id,
            report_id=report.id,
            created_at=report.created_at,
        )
    )


# ---------------------------------------------------------------------------------------------
# Who may see what


def _worked_by(reader: Identity) -> ColumnElement[bool]:
    """The tickets `reader` may work."""
    if reader.role == Role.ADMIN:
        return true()
    if reader.role == Role.SITE_STAFF and reader.site_id is not None:
        return (Ticket.kind == TicketKind.PROBLEM) & (Ticket.site_id == reader.site_id)
    if reader.role == Role.COORDINATOR and reader.organisation_id is not None:
        return (Ticket.kind == TicketKind.REPORT) & (
            Ticket.organisation_id == reader.organisation_id
        )
    return false()


def _reported_by(reader: Identity) -> ColumnElement[bool]:
    return (Ticket.kind == TicketKind.PROBLEM) & (Ticket.reporter_id == reader.user_id)


def may_work(reader: Identity) -> bool:
    return reader.role in (Role.ADMIN, Role.SITE_STAFF, Role.COORDINATOR)


@dataclass(frozen=True)
class TicketView:
    """A ticket as its page shows it."""

    ticket: Ticket
    replies: list[tuple[TicketReply, str]]  # each reply and its author's name
    reporter: str
    device: str
    site: str
    assignee: str
    worker: bool  # the reader may change status, assign and reply as staff
    assignable: list[User]
    report_closed: bool | None  # a report's own state (closed on its page), None for problems


def _ticket(s: Session, reader: Identity, ticket_id: int, worker: bool) -> Ticket:
    seen_by = _worked_by(reader) if worker else or_(_worked_by(reader), _reported_by(reader))
    ticket = s.scalar(select(Ticket).where(Ticket.id == ticket_id, seen_by))
    if ticket is None:
        raise NotFound(_("That ticket was not found."))
    return ticket


def _name(s: Session, user_id: int | None) -> str:
    user = s.get(User, user_id) if user_id is not None else None
    return user.display_name if user is not None else ""


def _view(s: Session, ticket: Ticket, worker: bool) -> TicketView:
    replies = s.scalars(
        select(TicketReply).where(TicketReply.ticket_id == ticket.id).order_by(TicketReply.id)
    )
    device = s.get(Device, ticket.device_id) if ticket.device_id is not None else None
    site = s.get(Site, ticket.site_id) if ticket.site_id is not None else None
    report = s.get(Report, ticket.report_id) if ticket.report_id is not None else None
    return TicketView(
        ticket=ticket,
        replies=[(r, _name(s, r.author_id)) for r in replies],
        reporter=_name(s, ticket.reporter_id),
        device=device.name if device is not None else "",
        site=site.name if site is not None else "",
        assignee=_name(s, ticket.assignee_id),
        worker=worker,
        assignable=_assignable(s, ticket) if worker else [],
        report_closed=report.closed_at is not None if report is not None else None,
    )


def ticket_for(s: Session, reader: Identity, ticket_id: int) -> TicketView:
    """One ticket, for its reporter or someone who may work it."""
    ticket = _ticket(s, reader, ticket_id, worker=False)
    worker = s.scalar(select(Ticket.id).where(Ticket.id == ticket_id, _worked_by(reader)))
    return _view(s, ticket, worker is not None)


def followed_ticket(s: Session, typed_code: str) -> TicketView:
    """The ticket opened without an account whose code was typed."""
    code = normalise_follow_code(typed_code)
    ticket = s.scalar(select(Ticket).where(Ticket.follow_code_hash == _digest(code)))
    if len(code) != FOLLOW_CODE_LENGTH or ticket is None:
        raise NotFound(_("No ticket has that code. Check the code and try again."))
    return _view(s, ticket, worker=False)


def _listing(s: Session, where: ColumnElement[bool]) -> list[TicketView]:
    """Open and in-progress tickets first (oldest first), then the closed (newest first)."""
    rows = s.scalars(select(Ticket).where(where).order_by(Ticket.created_at, Ticket.id)).all()
    views = [_view(s, t, worker=False) for t in rows]
    closed = [v for v in views if v.ticket.status == TicketStatus.CLOSED]
    return [v for v in views if v.ticket.status != TicketStatus.CLOSED] + closed[::-1]


def desk_for(s: Session, reader: Identity) -> list[TicketView]:
    """The tickets `reader` works."""
    return _listing(s, _worked_by(reader))


def my_tickets(s: Session, reader: Identity) -> list[TicketView]:
    return _listing(s, _reported_by(reader))


# ---------------------------------------------------------------------------------------------
# Working a ticket


def reply(s: Session, reader: Identity, ticket_id: int, text: str, now: datetime) -> None:
    """A reply by staff who work the ticket, or by its reporter; not on a closed ticket."""
    ticket = _ticket(s, reader, ticket_id, worker=False)
    if ticket.status == TicketStatus.CLOSED:
        raise Conflict(_("The ticket is closed. Open it again to reply."))
    s.add(TicketReply(ticket_id=ticket.id, author_id=reader.user_id, text=text, created_at=now))


def set_status(s: Session, reader: Identity, ticket_id: int, status: str, now: datetime) -> None:
    if status not in tuple(TicketStatus):
        raise Invalid(_("Choose a status."), fields={"status": "unknown"})
    ticket = _ticket(s, reader, ticket_id, worker=True)
    ticket.status = status
    ticket.closed_at = now if status == TicketStatus.CLOSED else None


def _assignable(s: Session, ticket: Ticket) -> list[User]:
    """Who may work `ticket`: the admins, and its site's staff or its organisation's
    coordinators."""
    if ticket.kind == TicketKind.REPORT:
        local = (User.role == Role.COORDINATOR) & (User.organisation_id == ticket.organisation_id)
    else:
        local = (User.role == Role.SITE_STAFF) & (User.site_id == ticket.site_id)
    query = select(User).where(User.active, (User.role == Role.ADMIN) | local)
    return list(s.scalars(query.order_by(User.display_name, User.id)))


def assign(s: Session, reader: Identity, ticket_id: int, assignee_id: int | None) -> None:
    """Give the ticket to someone who may work it (None: to nobody)."""
    ticket = _ticket(s, reader, ticket_id, worker=True)
    if assignee_id is not None and assignee_id not in {u.id for u in _assignable(s, ticket)}:
        raise Invalid(
            _("The ticket can only be given to an admin or to staff who may see it."),
            fields={"assignee_id": "unknown"},
        )
    ticket.assignee_id = assignee_id


# ---------------------------------------------------------------------------------------------
# Retention


def delete_closed(s: Session, now: datetime, retention_days: int) -> int:
    """Delete tickets closed longer than `retention_days` ago, with their replies."""
    cutoff = now - timedelta(days=retention_days)
    result = s.execute(delete(Ticket).where(Ticket.closed_at <= cutoff))
    return int(getattr(result, "rowcount", 0) or 0)
