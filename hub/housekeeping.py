"""Deleting what is no longer needed. Run by the matching loop every few minutes; each step is a
plain function so it can be tested on its own."""

from __future__ import annotations

from datetime import datetime, timedelta

from flask_babel import gettext as _
from sqlalchemy import event
from sqlalchemy.orm import Session

from hub.accounts import service as accounts
from hub.attachments import service as attachments
from hub.audit.service import delete_old as delete_old_audit_entries
from hub.breakroom.service import delete_old as delete_old_breakroom_messages
from hub.config import HubConfig
from hub.devices.service import delete_old as delete_old_device_data
from hub.helpdesk.service import delete_closed as delete_closed_tickets
from hub.matching.models import DutyStatus
from hub.matching.service import duty_of, take_off_duty
from hub.realtime.notices import Notice, deliver
from hub.rooms.service import delete_expired_content as delete_expired_room_content
from hub.stats.service import refresh as refresh_statistics

# An upload never attached to a request (the student gave up) is kept this long.
UNUSED_ATTACHMENT_AGE = timedelta(hours=24)
LOGIN_FAILURE_AGE = timedelta(days=1)


def run(s: Session, config: HubConfig, now: datetime) -> None:
    delete_old_breakroom_messages(s, now)
    attachments.delete_unused_before(s, now - UNUSED_ATTACHMENT_AGE, config.attachments_dir)
    delete_expired_room_content(s, now, config)
    delete_old_device_data(s, now, config)
    accounts.delete_login_failures_before(s, now - LOGIN_FAILURE_AGE)
    delete_closed_tickets(s, now, config.ticket_retention_days)
    delete_old_audit_entries(s, now, config.audit_retention_days)
    # The few requests finished since the last pass become facts now, not when an admin opens
    # the dashboard (which would then wait for all of them).
    refresh_statistics(s)
    _deliver_after_commit(s, take_expired_helpers_off_duty(s, now))


def take_expired_helpers_off_duty(s: Session, now: datetime) -> list[Notice]:
    """A helper on duty whose child-protection check has expired goes off duty, told why."""
    expired = accounts.helpers_with_expired_certificates(s, now)
    on_duty = [h for h in expired if duty_of(s, h) != DutyStatus.OFF]
    notices: list[Notice] = []
    for helper_id in on_duty:
        message = _(
            "You are off duty: your child-protection certificate check has expired. Ask your "
            "coordinator to check it again."
        )
        notices += take_off_duty(s, helper_id, now, message)
    return notices


def _deliver_after_commit(s: Session, notices: list[Notice]) -> None:
    """The housekeeping pass returns nothing to its caller, so the notices go out once the
    caller's transaction has committed (never for a change that was rolled back)."""
    if notices:
        event.listen(s, "after_commit", lambda _session: deliver(notices), once=True)
