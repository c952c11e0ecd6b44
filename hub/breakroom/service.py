"""The break room chat ("frikvarter"): short messages between waiting students, filtered,
rate-limited and removable by a helper or admin. Messages are kept for a day at most."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from flask_babel import gettext as _
from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from hub.accounts.access import Identity
from hub.accounts.models import User
from hub.breakroom.models import BreakroomMessage
from hub.config import HubConfig
from hub.errors import HubError, NotFound, RateLimited
from hub.matching.service import open_request_of
from hub.moderation import check

KEEP_FOR = timedelta(hours=24)
HISTORY = 50


def as_payload(message: BreakroomMessage, author: str) -> dict[str, Any]:
    return {
        "msg_id": message.id,
        "from": author,
        "text": message.text,
        "ts": message.created_at.isoformat(),
        "client_msg_id": message.client_msg_id,
    }


def post(
    s: Session, student: Identity, text: str, client_msg_id: str, now: datetime, config: HubConfig
) -> tuple[dict[str, Any], bool]:
    """Store a message; returns its payload and whether it is new (a resend is stored once)."""
    existing = s.scalar(
        select(BreakroomMessage).where(
            BreakroomMessage.author_id == student.user_id,
            BreakroomMessage.client_msg_id == client_msg_id,
        )
    )
    if existing is not None:
        return as_payload(existing, student.display_name), False
    if open_request_of(s, student.user_id) is None:
        raise HubError(_("The break room is for students waiting for a helper."))
    check(text)
    recent = s.scalar(
        select(func.count()).where(
            BreakroomMessage.author_id == student.user_id,
            BreakroomMessage.created_at > now - timedelta(seconds=config.breakroom_window_s),
        )
    )
    if (recent or 0) >= config.breakroom_burst:
        raise RateLimited(_("You are writing very fast. Wait a moment before the next message."))
    message = BreakroomMessage(
        author_id=student.user_id, client_msg_id=client_msg_id, text=text, created_at=now
    )
    s.add(message)
    s.flush()
    return as_payload(message, student.display_name), True


def history(s: Session, now: datetime) -> list[dict[str, Any]]:
    rows = s.execute(
        select(BreakroomMessage, User.display_name)
        .join(User, User.id == BreakroomMessage.author_id)
        .where(BreakroomMessage.removed_at.is_(None), BreakroomMessage.created_at > now - KEEP_FOR)
        .order_by(BreakroomMessage.id.desc())
        .limit(HISTORY)
    ).all()
    return [as_payload(m, name) for m, name in reversed(rows)]


def remove(s: Session, moderator: Identity, msg_id: int, now: datetime) -> None:
    message = s.get(BreakroomMessage, msg_id)
    if message is None or message.removed_at is not None:
        raise NotFound(_("That message was not found."))
    message.removed_at = now
    message.removed_by = moderator.user_id


def delete_old(s: Session, now: datetime) -> None:
    s.execute(delete(BreakroomMessage).where(BreakroomMessage.created_at < now - KEEP_FOR))
