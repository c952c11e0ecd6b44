"""Deleting what is no longer needed. Run by the matching loop every few minutes; each step is a
plain function so it can be tested on its own."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from hub.accounts import service as accounts
from hub.attachments import service as attachments
from hub.breakroom.service import delete_old as delete_old_breakroom_messages
from hub.config import HubConfig
from hub.devices.service import delete_old as delete_old_device_data
from hub.rooms.service import delete_expired_content as delete_expired_room_content

# An upload never attached to a request (the student gave up) is kept this long.
UNUSED_ATTACHMENT_AGE = timedelta(hours=24)
LOGIN_FAILURE_AGE = timedelta(days=1)


def run(s: Session, config: HubConfig, now: datetime) -> None:
    delete_old_breakroom_messages(s, now)
    attachments.delete_unused_before(s, now - UNUSED_ATTACHMENT_AGE, config.attachments_dir)
    delete_expired_room_content(s, now, config)
    delete_old_device_data(s, now, config)
    accounts.delete_login_failures_before(s, now - LOGIN_FAILURE_AGE)
