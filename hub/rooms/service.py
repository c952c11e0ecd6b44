"""Rooms over the database: joining, chat, the shared document, ending, reports and feedback.

Like matching, every function runs inside the caller's transaction and returns the notices to
send after it commits; nothing is kept in a process's memory, so any hub process can serve
either member and a restart loses nothing that was acknowledged."""

from __future__ import annotations

import base64
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

import pycrdt
from blinker import Namespace
from flask_babel import gettext as _
from sqlalchemy import Table, delete, func, insert, select, update
from sqlalchemy.orm import Session

from hub.accounts.access import Identity
from hub.accounts.models import Role, User
from hub.attachments import service as attachments
from hub.attachments.models import Attachment
from hub.catalog.models import Subject
from hub.config import HubConfig
from hub.errors import Conflict, Forbidden, HubError, Invalid, NotFound, RateLimited
from hub.matching.models import HelpRequest
from hub.moderation import check
from hub.realtime.models import Connection
from hub.realtime.notices import Notice
from hub.rooms.models import DocSnapshot, DocUpdate, Feedback, Report, Room, RoomMessage

MAX_DOC_UPDATE_BYTES = 512 * 1024
CHAT_HISTORY = 500


# Sent inside the transaction that ends a room, as (session, room=, now=); each receiver returns
# the notices to send after the commit. Matching connects to it to free the helper (it owns the
# helpers' duty); rooms never imports matching's service, since matching imports this one.
room_ended = Namespace().signal("room-ended")
# Sent (with the session, the new report and the room's helper) when a report is filed; the
# helpdesk, above rooms, makes it a ticket.
report_filed = Namespace().signal("report-filed")


def open_room(s: Session, request_id: int, student_id: int, helper_id: int, now: datetime) -> Room:
    """The room where a matched student and helper meet (matching opens it on an accepted offer)."""
    room = Room(
        id=secrets.token_hex(8),
        request_id=request_id,
        student_id=student_id,
        helper_id=helper_id,
        created_at=now,
    )
    s.add(room)
    return room


def room_channel(room_id: str) -> str:
    """The Socket.IO room of the connections that have joined a room."""
    return f"room:{room_id}"


# ---------------------------------------------------------------------------------------------
# Membership


def member_room(s: Session, caller: Identity, room_id: str) -> Room:
    """The room if `caller` is one of its two members; refuses everyone else."""
    return _as_member(s.get(Room, room_id), caller.user_id)


def open_member_room(s: Session, caller: Identity, room_id: str) -> Room:
    return _as_open(member_room(s, caller, room_id))


def _as_member(room: Room | None, user_id: int) -> Room:
    if room is None:
        raise NotFound(_("That room was not found."))
    if user_id not in (room.student_id, room.helper_id):
        raise Forbidden(_("Only the student and the helper can be in this room."))
    return room


def _as_open(room: Room) -> Room:
    if room.ended_at is not None:
        raise Conflict(_("This session has ended."), reason="ended")
    return room


def other_member(room: Room, user_id: int) -> int:
    return room.helper_id if user_id == room.student_id else room.student_id


def role_in(room: Room, user_id: int) -> str:
    return Role.STUDENT.value if user_id == room.student_id else Role.HELPER.value


def room_peer(s: Session, room: Room, viewer_id: int) -> dict[str, Any]:
    """What one member is told about the other."""
    other = s.get(User, other_member(room, viewer_id))
    assert other is not None
    return {
        "display_name": other.display_name,
        "role": other.role,
        "organisation": other.organisation.name if other.organisation else None,
    }


def open_room_of(s: Session, user_id: int) -> Room | None:
    return s.scalar(
        select(Room)
        .where((Room.student_id == user_id) | (Room.helper_id == user_id), Room.ended_at.is_(None))
        .order_by(Room.created_at.desc())
    )


def _is_connected(s: Session, user_id: int) -> bool:
    return bool(s.scalar(select(func.count()).where(Connection.user_id == user_id)))


def _set_offline(room: Room, user_id: int, since: datetime | None) -> None:
    if user_id == room.student_id:
        room.student_offline_since = since
    else:
        room.helper_offline_since = since


# ---------------------------------------------------------------------------------------------
# Joining and presence


def join(
    s: Session, caller: Identity, room_id: str, locale: str
) -> tuple[Room, dict[str, Any], list[Notice]]:
    """Everything a member needs to (re)enter the room; the other member hears `peer:back`."""
    room = member_room(s, caller, room_id)
    notices: list[Notice] = []
    if room.ended_at is None:
        _set_offline(room, caller.user_id, None)
        notices.append(
            Notice(other_member(room, caller.user_id), "peer:back", {"room_id": room.id})
        )
    request = s.get(HelpRequest, room.request_id)
    assert request is not None
    subject = s.get(Subject, request.subject_id)
    files = s.scalars(select(Attachment).where(Attachment.request_id == request.id))
    doc_state, doc_seq = document_state(s, room.id)
    answer = {
        "room_id": room.id,
        "me": {"role": role_in(room, caller.user_id)},
        "peer": room_peer(s, room, caller.user_id),
        "peer_present": _is_connected(s, other_member(room, caller.user_id)),
        "chat_history": chat_history(s, room.id),
        "doc_state": base64.b64encode(doc_state).decode("ascii"),
        "doc_seq": doc_seq,
        "request": {
            "subject": request.subject_id,
            "subject_name": subject.name(locale) if subject else "",
            "grade": request.grade,
            "note": request.note,
            "attachments": [
                {"id": a.id, "mime": a.mime, "url": f"/api/attachments/{a.id}"} for a in files
            ],
        },
        "ended": room.ended_at is not None,
        "feedback_given": s.scalar(
            select(Feedback.id).where(
                Feedback.room_id == room.id, Feedback.user_id == caller.user_id
            )
        )
        is not None,
    }
    return room, answer, notices


def member_gone(s: Session, user_id: int, now: datetime) -> list[Notice]:
    """A member's last connection closed: the grace period starts and the other one is told."""
    room = open_room_of(s, user_id)
    if room is None:
        return []
    _set_offline(room, user_id, now)
    return [Notice(other_member(room, user_id), "peer:left", {"room_id": room.id})]


def end_abandoned(s: Session, now: datetime, config: HubConfig) -> list[Notice]:
    """End the rooms a member left longer than the grace period ago (the dispatcher's pass)."""
    cutoff = now - timedelta(seconds=config.room_grace_s)
    rooms = s.scalars(
        select(Room).where(
            Room.ended_at.is_(None),
            (Room.student_offline_since <= cutoff) | (Room.helper_offline_since <= cutoff),
        )
    ).all()
    notices: list[Notice] = []
    for room in rooms:
        notices += end_room(s, room, by=None, reason="peer_gone", now=now)
    return notices


# ---------------------------------------------------------------------------------------------
# Chat


def chat_payload(message: RoomMessage, author_name: str, room: Room) -> dict[str, Any]:
    return {
        "msg_id": message.id,
        "room_id": message.room_id,
        "from": author_name,
        "from_role": role_in(room, message.author_id),
        "text": message.text,
        "ts": message.created_at.isoformat(),
        "client_msg_id": message.client_msg_id,
    }


def chat_history(s: Session, room_id: str) -> list[dict[str, Any]]:
    room = s.get(Room, room_id)
    assert room is not None
    rows = s.execute(
        select(RoomMessage, User.display_name)
        .join(User, User.id == RoomMessage.author_id)
        .where(RoomMessage.room_id == room_id)
        .order_by(RoomMessage.id.desc())
        .limit(CHAT_HISTORY)
    ).all()
    return [chat_payload(m, name, room) for m, name in reversed(rows)]


def post_chat(
    s: Session,
    caller: Identity,
    room: Room,
    text: str,
    client_msg_id: str,
    now: datetime,
    config: HubConfig,
) -> tuple[dict[str, Any], bool]:
    """Store a chat message; returns its payload and whether it is new (a resend is stored once).

    Refuses contact details (moderation.Blocked) and floods (RateLimited)."""
    existing = s.scalar(
        select(RoomMessage).where(
            RoomMessage.room_id == room.id,
            RoomMessage.author_id == caller.user_id,
            RoomMessage.client_msg_id == client_msg_id,
        )
    )
    if existing is not None:
        return chat_payload(existing, caller.display_name, room), False
    check(text)
    recent = s.scalar(
        select(func.count()).where(
            RoomMessage.room_id == room.id,
            RoomMessage.author_id == caller.user_id,
            RoomMessage.created_at > now - timedelta(seconds=config.chat_window_s),
        )
    )
    if (recent or 0) >= config.chat_burst:
        raise RateLimited(
            _("You are writing very fast. Wait a moment before the next message."),
            retry_after_s=config.chat_window_s,
        )
    message = RoomMessage(
        room_id=room.id,
        author_id=caller.user_id,
        client_msg_id=client_msg_id,
        text=text,
        created_at=now,
    )
    s.add(message)
    s.flush()
    return chat_payload(message, caller.display_name, room), True


# ---------------------------------------------------------------------------------------------
# The shared document (a Yjs document: pycrdt here, Yjs in the browser)


def check_update(data: bytes) -> bytes:
    """`data` if it is a Yjs update (v1) of an acceptable size; refused otherwise."""
    if not data:
        raise Invalid(_("The document change could not be read."), fields={"update": "empty"})
    if len(data) > MAX_DOC_UPDATE_BYTES:
        raise Invalid(_("The document change is too large."), fields={"update": "too_large"})
    try:
        # Decodes the whole update (as applying it would) without building a document, which
        # cost 18 times as much: this runs for every keystroke batch.
        pycrdt.get_state(data)
    except Exception as exc:  # pycrdt raises ValueError, Yrs may panic into other types
        raise Invalid(
            _("The document change could not be read."), fields={"update": "yjs"}
        ) from exc
    return data


@dataclass(frozen=True)
class DocAppend:
    """One member's document update, waiting to be stored (see `append_updates`)."""

    user_id: int
    room_id: str
    data: bytes
    at: datetime


def append_updates(s: Session, items: Sequence[DocAppend]) -> list[int | HubError]:
    """Store a batch of updates, each only if its sender is a member of its open room; per item
    the `seq` it is acknowledged with (the row's id), or why it was refused."""
    rooms = {
        r.id: r for r in s.scalars(select(Room).where(Room.id.in_({i.room_id for i in items})))
    }
    results: list[int | HubError] = []
    rows: list[dict[str, Any]] = []
    for item in items:
        try:
            _as_open(_as_member(rooms.get(item.room_id), item.user_id))
        except HubError as exc:
            results.append(exc)
            continue
        results.append(len(rows))  # replaced by the seq below
        rows.append({"room_id": item.room_id, "data": item.data, "created_at": item.at})
    if not rows:
        return results
    # Core, not the ORM's bulk insert: this runs for every keystroke batch of every room.
    table = cast(Table, DocUpdate.__table__)
    seqs = (
        s.connection()
        .execute(insert(table).returning(table.c.id, sort_by_parameter_order=True), rows)
        .scalars()
        .all()
    )
    return [r if isinstance(r, HubError) else seqs[r] for r in results]


def document_state(s: Session, room_id: str) -> tuple[bytes, int]:
    """The whole document as one update, and the seq of the last update in it."""
    snapshot = s.get(DocSnapshot, room_id)
    rows = s.execute(
        select(DocUpdate.id, DocUpdate.data)
        .where(DocUpdate.room_id == room_id)
        .order_by(DocUpdate.id)
    ).all()
    parts = ([snapshot.data] if snapshot else []) + [r.data for r in rows]
    seq = rows[-1].id if rows else (snapshot.upto_seq if snapshot else 0)
    if not parts:
        return pycrdt.Doc().get_update(), seq
    return (parts[0] if len(parts) == 1 else pycrdt.merge_updates(*parts)), seq


def pending_updates(s: Session, room_id: str) -> int:
    return int(s.scalar(select(func.count()).where(DocUpdate.room_id == room_id)) or 0)


def compact(s: Session, room_id: str) -> None:
    """Fold the snapshot and every stored update into a new snapshot, then drop the updates."""
    state, seq = document_state(s, room_id)
    if seq == 0:
        return
    snapshot = s.get(DocSnapshot, room_id, with_for_update=True)
    if snapshot is None:
        s.add(DocSnapshot(room_id=room_id, data=state, upto_seq=seq))
    else:
        snapshot.data, snapshot.upto_seq = state, seq
    s.execute(delete(DocUpdate).where(DocUpdate.room_id == room_id, DocUpdate.id <= seq))


def document_text(s: Session, room_id: str) -> str:
    """The document's text, for a coordinator reading a report."""
    doc: pycrdt.Doc[pycrdt.Text] = pycrdt.Doc()
    doc.apply_update(document_state(s, room_id)[0])
    return str(doc.get("text", type=pycrdt.Text))


# ---------------------------------------------------------------------------------------------
# Ending, reports and feedback


def end_room(s: Session, room: Room, by: str | None, reason: str, now: datetime) -> list[Notice]:
    """End the room for both, and tell `room_ended`'s receivers (matching frees the helper)."""
    ended = s.execute(
        update(Room)
        .where(Room.id == room.id, Room.ended_at.is_(None))
        .values(ended_at=now, ended_reason=reason, ended_by=by)
    )
    if ended.rowcount != 1:  # type: ignore[attr-defined]
        return []
    payload = {"room_id": room.id, "reason": reason, "by": by}
    notices = [
        Notice(room.student_id, "room:ended", payload),
        Notice(room.helper_id, "room:ended", payload),
    ]
    for _receiver, more in room_ended.send(s, room=room, now=now):
        notices += more
    return notices


def report(
    s: Session, caller: Identity, room: Room, text: str, now: datetime
) -> tuple[int, list[Notice]]:
    """File a report; admins and the helper's coordinators are told at once."""
    row = Report(room_id=room.id, reporter_id=caller.user_id, text=text, created_at=now)
    s.add(row)
    s.flush()
    helper = s.get(User, room.helper_id)
    assert helper is not None
    report_filed.send(s, report=row, helper=helper)
    readers = s.scalars(
        select(User.id).where(
            User.active,
            (User.role == Role.ADMIN)
            | ((User.role == Role.COORDINATOR) & (User.organisation_id == helper.organisation_id)),
        )
    )
    return row.id, [Notice(uid, "report:new", {"report_id": row.id}) for uid in readers]


def give_feedback(
    s: Session, caller: Identity, room: Room, rating: int, comment: str, now: datetime
) -> None:
    """A member's feedback on the session; a second one replaces the first."""
    existing = s.scalar(
        select(Feedback).where(Feedback.room_id == room.id, Feedback.user_id == caller.user_id)
    )
    if existing is None:
        s.add(
            Feedback(
                room_id=room.id,
                user_id=caller.user_id,
                role=role_in(room, caller.user_id),
                rating=rating,
                comment=comment,
                created_at=now,
            )
        )
    else:
        existing.rating, existing.comment, existing.created_at = rating, comment, now


# ---------------------------------------------------------------------------------------------
# Retention


def delete_expired_content(s: Session, now: datetime, config: HubConfig) -> int:
    """Delete each kind of an ended room's content once its own retention period is over: the
    chat (with the comments in the feedback), the shared document, the attachments; none while a
    report on the room is open. A closed report goes `ticket_retention_days` after it was closed,
    like the helpdesk ticket it is. Returns how many kinds of how many rooms were deleted."""
    open_reports = select(Report.room_id).where(Report.closed_at.is_(None))
    deleted = 0
    kinds: tuple[tuple[Any, int, Callable[[Session, Room, HubConfig], None]], ...] = (
        (Room.chat_deleted_at, config.chat_retention_days, _delete_chat),
        (Room.document_deleted_at, config.document_retention_days, _delete_document),
        (Room.attachments_deleted_at, config.attachment_retention_days, _delete_attachments),
    )
    for marker, days, delete_kind in kinds:
        rooms = s.scalars(
            select(Room).where(
                Room.ended_at <= now - timedelta(days=days),
                marker.is_(None),
                Room.id.not_in(open_reports),
            )
        ).all()
        for room in rooms:
            delete_kind(s, room, config)
            setattr(room, marker.key, now)
        deleted += len(rooms)
    reports_cutoff = now - timedelta(days=config.ticket_retention_days)
    s.execute(delete(Report).where(Report.closed_at <= reports_cutoff))
    return deleted


def _delete_chat(s: Session, room: Room, config: HubConfig) -> None:
    s.execute(delete(RoomMessage).where(RoomMessage.room_id == room.id))
    s.execute(update(Feedback).where(Feedback.room_id == room.id).values(comment=""))


def _delete_document(s: Session, room: Room, config: HubConfig) -> None:
    s.execute(delete(DocUpdate).where(DocUpdate.room_id == room.id))
    s.execute(delete(DocSnapshot).where(DocSnapshot.room_id == room.id))


def _delete_attachments(s: Session, room: Room, config: HubConfig) -> None:
    attachments.delete_of_request(s, room.request_id, config.attachments_dir)


# ---------------------------------------------------------------------------------------------
# Handling reports (coordinators and admins)


def _reports_visible_to(reader: Identity) -> Any:
    """Admins see every report; a coordinator those on rooms of their organisation's helpers."""
    if reader.role == Role.ADMIN:
        return select(Report)
    helpers = select(User.id).where(User.organisation_id == reader.organisation_id)
    return select(Report).join(Room, Room.id == Report.room_id).where(Room.helper_id.in_(helpers))


def reports_for(s: Session, reader: Identity) -> list[dict[str, Any]]:
    """Open reports first (oldest first), then the closed ones (newest first)."""
    rows = s.scalars(_reports_visible_to(reader).order_by(Report.created_at)).all()
    listed = [_report_summary(s, r) for r in rows]
    return [r for r in listed if not r["closed"]] + [r for r in reversed(listed) if r["closed"]]


def _report_summary(s: Session, report: Report) -> dict[str, Any]:
    room = s.get(Room, report.room_id)
    assert room is not None
    names = {
        u.id: u
        for u in s.scalars(
            select(User).where(User.id.in_([room.student_id, room.helper_id, report.reporter_id]))
        )
    }
    return {
        "report": report,
        "room": room,
        "closed": report.closed_at is not None,
        "student": names[room.student_id].display_name,
        "helper": names[room.helper_id].display_name,
        "reporter_role": role_in(room, report.reporter_id),
    }


def report_for(s: Session, reader: Identity, report_id: int) -> dict[str, Any]:
    """One report with what happened in the room, if `reader` may handle it."""
    report = s.scalar(_reports_visible_to(reader).where(Report.id == report_id))
    if report is None:
        raise NotFound(_("That report was not found."))
    return {
        **_report_summary(s, report),
        "chat": chat_history(s, report.room_id),
        "document": document_text(s, report.room_id),
    }


def close_report(
    s: Session, reader: Identity, report_id: int, resolution: str, now: datetime
) -> None:
    report = report_for(s, reader, report_id)["report"]
    if report.closed_at is not None:
        raise Conflict(_("That report is already closed."))
    report.closed_at, report.closed_by, report.resolution = now, reader.user_id, resolution
