"""Reminders before a shift, a job of the hub's background loop (hub.matching.dispatcher runs it
every REMINDERS_EVERY_S, wired by hub.server). Each pass claims the sign-ups whose reminder is due
(`shift_reminder_minutes` before the shift; once per sign-up) and, once that has committed, tells
each helper on their station (`shift:reminder`) and, where SMTP is configured and the helper gave
an address, by e-mail in their language (hub.mail sends it from its own task)."""

from __future__ import annotations

from datetime import datetime, timedelta

from flask_babel import force_locale
from sqlalchemy import event
from sqlalchemy.orm import Session

from hub import mail
from hub.config import HubConfig
from hub.realtime.notices import deliver
from hub.shifts import service

# A reminder is at most this late after its window opens.
REMINDERS_EVERY_S = 30.0


def run(s: Session, config: HubConfig, now: datetime) -> None:
    window = timedelta(minutes=config.shift_reminder_minutes)
    reminders = service.claim_due_reminders(s, now, window, config.zone)
    if not reminders:
        return
    notices = [service.reminder_notice(r, now, config.zone) for r in reminders]
    mails = [reminder_mail(r, config) for r in reminders if r.email] if config.smtp_host else []

    def after_commit(_session: Session) -> None:
        deliver(notices)
        mail.send_later(config, mails)

    event.listen(s, "after_commit", after_commit, once=True)


def reminder_mail(reminder: service.Reminder, config: HubConfig) -> mail.Mail:
    assert reminder.email is not None
    language = reminder.language or "da"
    with force_locale(language):
        subject, body = service.reminder_email_text(reminder, config.zone, language)
    return mail.Mail(reminder.email, subject, body)
