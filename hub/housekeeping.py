"""Deleting what is no longer needed. Run by the matching loop every few minutes; each step is a
plain function so it can be tested on its own."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from hub.accounts.models import LoginFailure
from hub.attachments.models import Attachment
from hub.breakroom.service import delete_old as delete_old_breakroom_messages
from hub.config import HubConfig
from hub.devices.service import delete_old as delete_old_device_data
from hub.rooms.service import delete_expired_content as delete_expired_room_content

# An upload never attached to a request (the student gave up) is kept this long.
UNUSED_ATTACHMENT_AGE = timedelta(hours=24)
LOGIN_FAILURE_AGE = timedelta(days=1)


def delete_unused_attachments(s: Session, folder: Path, now: datetime) -> int:
    stale = list(
        s.scalars(
            select(Attachment).where(
                Attachment.request_id.is_(None), Attachment.created_at < now - UNUSED_ATTACHMENT_AGE
            )
        )
    )
    for attachment in stale:
        (folder / attachment.id).unlink(missing_ok=True)
        s.delete(attachment)
    return len(stale)


def run(s: Session, config: HubConfig, now: datetime) -> None:
    delete_old_breakroom_messages(s, now)
    delete_unused_attachments(s, config.attachments_dir, now)
    delete_expired_room_content(s, now, config)
    delete_old_device_data(s, now, config)
    s.execute(delete(LoginFailure).where(LoginFailure.last_at < now - LOGIN_FAILURE_AGE))
