"""A student's own data: everything the hub holds about them, and deleting all of it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from blinker import Namespace
from sqlalchemy import select
from sqlalchemy.orm import Session

from hub.accounts.models import User
from hub.attachments.models import Attachment
from hub.breakroom.models import BreakroomMessage
from hub.catalog.models import Subject
from hub.matching.models import HelpRequest
from hub.rooms.models import RoomMessage

signals = Namespace()
# Sent as (session, user_id=) inside the transaction that deletes a student, before the cascade:
# statistics (hub.stats), which builds on accounts, keeps the student's requests as anonymous rows.
student_deleting = signals.signal("student-deleting")
# Sent with the user id once a student's deletion has committed. Realtime, which builds on
# accounts, connects to it to close the student's connections.
account_deleted = signals.signal("account-deleted")


def collect(s: Session, user_id: int) -> dict[str, Any]:
    user = s.get(User, user_id)
    assert user is not None
    requests = s.execute(
        select(HelpRequest, Subject)
        .join(Subject, Subject.id == HelpRequest.subject_id)
        .where(HelpRequest.student_id == user_id)
        .order_by(HelpRequest.created_at.desc())
    ).all()
    return {
        "user": user,
        "requests": [{"request": r, "subject": subject} for r, subject in requests],
        "messages": list(
            s.scalars(
                select(BreakroomMessage)
                .where(BreakroomMessage.author_id == user_id)
                .order_by(BreakroomMessage.created_at.desc())
            )
        ),
        "room_messages": list(
            s.scalars(
                select(RoomMessage)
                .where(RoomMessage.author_id == user_id)
                .order_by(RoomMessage.created_at.desc())
            )
        ),
        "attachments": list(s.scalars(select(Attachment).where(Attachment.owner_id == user_id))),
    }


def delete_student(s: Session, user_id: int, attachments_dir: Path) -> None:
    """Delete the account and, through the database's cascades, everything that hangs on it."""
    for attachment in s.scalars(select(Attachment).where(Attachment.owner_id == user_id)):
        (attachments_dir / attachment.id).unlink(missing_ok=True)
    user = s.get(User, user_id)
    if user is not None:
        student_deleting.send(s, user_id=user_id)
        s.delete(user)
