"""A student's own data: everything the hub holds about them (as a page and as a JSON download),
and deleting all of it."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

from blinker import Namespace
from sqlalchemy import select
from sqlalchemy.orm import Session

from hub.accounts.access import Identity
from hub.accounts.models import User
from hub.attachments.models import Attachment
from hub.breakroom.models import BreakroomMessage
from hub.catalog.models import Language, Subject
from hub.helpdesk.models import Ticket, TicketKind, TicketReply
from hub.matching.models import HelpRequest
from hub.rooms.models import Feedback, Report, Room, RoomMessage

signals = Namespace()
# Sent as (session, user_id=) inside the transaction that deletes a student, before the cascade:
# statistics (hub.stats), which builds on accounts, keeps the student's requests as anonymous rows.
student_deleting = signals.signal("student-deleting")
# Sent with the user id once a student's deletion has committed. Realtime, which builds on
# accounts, connects to it to close the student's connections.
account_deleted = signals.signal("account-deleted")
# Sent as (session, identity=, action=, now=) in the transaction in which a student downloads
# their data ("data.downloaded") or deletes their account ("account.deleted"): the audit log
# (hub.audit), which builds on accounts, writes it down.
data_right_used = signals.signal("data-right-used")


def collect(s: Session, user_id: int) -> dict[str, Any]:
    user = s.get(User, user_id)
    assert user is not None
    requests = s.execute(
        select(HelpRequest, Subject, Language)
        .join(Subject, Subject.id == HelpRequest.subject_id)
        .outerjoin(Language, Language.code == HelpRequest.language_code)
        .where(HelpRequest.student_id == user_id)
        .order_by(HelpRequest.created_at.desc())
    ).all()
    rooms = s.execute(
        select(Room, User.display_name)
        .join(User, User.id == Room.helper_id)
        .where(Room.student_id == user_id)
        .order_by(Room.created_at.desc())
    ).all()
    return {
        "user": user,
        "requests": [
            {"request": r, "subject": subject, "language": language}
            for r, subject, language in requests
        ],
        "sessions": [{"room": room, "helper": helper} for room, helper in rooms],
        "messages": _newest_first(s, BreakroomMessage, BreakroomMessage.author_id, user_id),
        "room_messages": _newest_first(s, RoomMessage, RoomMessage.author_id, user_id),
        "feedback": _newest_first(s, Feedback, Feedback.user_id, user_id),
        "reports": _newest_first(s, Report, Report.reporter_id, user_id),
        "tickets": _tickets(s, user_id),
        "attachments": _newest_first(s, Attachment, Attachment.owner_id, user_id),
    }


def _newest_first(s: Session, model: Any, owner: Any, user_id: int) -> list[Any]:
    """The rows of `model` whose `owner` column is the student, newest first."""
    return list(s.scalars(select(model).where(owner == user_id).order_by(model.created_at.desc())))


def _tickets(s: Session, user_id: int) -> list[dict[str, Any]]:
    """The helpdesk tickets the student opened, each with its replies: the student's own, or
    staff's with their name."""
    tickets = s.scalars(
        select(Ticket)
        .where(Ticket.reporter_id == user_id, Ticket.kind == TicketKind.PROBLEM)
        .order_by(Ticket.created_at.desc())
    ).all()
    found = []
    for ticket in tickets:
        replies = s.execute(
            select(TicketReply, User.display_name, User.id)
            .outerjoin(User, User.id == TicketReply.author_id)
            .where(TicketReply.ticket_id == ticket.id)
            .order_by(TicketReply.id)
        ).all()
        found.append(
            {
                "ticket": ticket,
                "replies": [
                    {"reply": reply, "mine": author_id == user_id, "from": name or ""}
                    for reply, name, author_id in replies
                ],
            }
        )
    return found


def as_json(collected: dict[str, Any], locale: str, now: datetime) -> dict[str, Any]:
    """What `collect` found, as plain JSON: the student's download."""
    user: User = collected["user"]
    return {
        "downloaded_at": _time(now),
        "account": {
            "username": user.username,
            "nickname": user.display_name,
            "grade": user.grade,
            "site": user.site.name if user.site else None,
            "created_at": _time(user.created_at),
        },
        "help_requests": [
            {
                "asked_at": _time(item["request"].created_at),
                "subject": item["subject"].name(locale),
                "grade": item["request"].grade,
                "language": item["language"].name(locale) if item["language"] else None,
                "note": item["request"].note,
                "status": item["request"].status,
                "ended_at": _time(item["request"].ended_at),
            }
            for item in collected["requests"]
        ],
        "sessions": [
            {
                "session": item["room"].id,
                "helper": item["helper"],
                "started_at": _time(item["room"].created_at),
                "ended_at": _time(item["room"].ended_at),
            }
            for item in collected["sessions"]
        ],
        "breakroom_messages": [
            {"sent_at": _time(m.created_at), "text": m.text} for m in collected["messages"]
        ],
        "chat_messages": [
            {"session": m.room_id, "sent_at": _time(m.created_at), "text": m.text}
            for m in collected["room_messages"]
        ],
        "feedback": [
            {
                "session": f.room_id,
                "given_at": _time(f.created_at),
                "rating": f.rating,
                "comment": f.comment,
            }
            for f in collected["feedback"]
        ],
        "reports": [
            {
                "session": r.room_id,
                "reported_at": _time(r.created_at),
                "text": r.text,
                "closed": r.closed_at is not None,
            }
            for r in collected["reports"]
        ],
        "helpdesk_tickets": [
            {
                "ticket": item["ticket"].id,
                "opened_at": _time(item["ticket"].created_at),
                "category": item["ticket"].category,
                "text": item["ticket"].text,
                "page": item["ticket"].page,
                "browser": item["ticket"].browser,
                "status": item["ticket"].status,
                "closed_at": _time(item["ticket"].closed_at),
                "replies": [
                    {
                        "by_you": r["mine"],
                        "from": None if r["mine"] else r["from"] or None,
                        "sent_at": _time(r["reply"].created_at),
                        "text": r["reply"].text,
                    }
                    for r in item["replies"]
                ],
            }
            for item in collected["tickets"]
        ],
        "attachments": [
            {"file": a.id, "type": a.mime, "bytes": a.size, "uploaded_at": _time(a.created_at)}
            for a in collected["attachments"]
        ],
    }


def _time(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def download(s: Session, student: Identity, locale: str, now: datetime) -> dict[str, Any]:
    """The student's data as JSON; the audit log notes that they downloaded it."""
    data = as_json(collect(s, student.user_id), locale, now)
    data_right_used.send(s, identity=student, action="data.downloaded", now=now)
    return data


def delete_own_account(s: Session, student: Identity, attachments_dir: Path, now: datetime) -> None:
    """A student deletes their account (the audit log notes that a student did, not who)."""
    delete_student(s, student.user_id, attachments_dir)
    data_right_used.send(s, identity=student, action="account.deleted", now=now)


def delete_student(s: Session, user_id: int, attachments_dir: Path) -> None:
    """Delete the account and, through the database's cascades, everything that hangs on it:
    requests, rooms with their chat, document, reports and feedback, break-room messages,
    attachments and the helpdesk tickets the student opened, with their replies."""
    for attachment in s.scalars(select(Attachment).where(Attachment.owner_id == user_id)):
        (attachments_dir / attachment.id).unlink(missing_ok=True)
    user = s.get(User, user_id)
    if user is not None:
        student_deleting.send(s, user_id=user_id)
        s.delete(user)
