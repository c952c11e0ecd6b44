"""E-mail through the SMTP server in the settings (`smtp_host`; empty: the hub sends no e-mail).

Callers hand over finished messages with `send_later` once their transaction has committed. The
messages wait in one queue per process and go out from one background task, one SMTP session per
batch, in order, so a slow or broken server never holds up the hub's loops. A failure is logged
with the kind of error only: never an address, a name or the text."""

from __future__ import annotations

import logging
import queue
import smtplib
import ssl
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formatdate, make_msgid

from hub.config import HubConfig
from hub.extensions import socketio

log = logging.getLogger(__name__)
TIMEOUT_S = 20.0


@dataclass(frozen=True)
class Mail:
    to: str
    subject: str
    body: str


_outbox: queue.Queue[tuple[HubConfig, list[Mail]]] | None = None


def send_later(config: HubConfig, mails: list[Mail]) -> None:
    """Queue `mails` for the sender task (started on first use); nothing without `smtp_host`."""
    global _outbox
    if not config.smtp_host or not mails:
        return
    if _outbox is None:
        _outbox = queue.Queue()
        socketio.start_background_task(_send_forever, _outbox)
    _outbox.put((config, mails))


def _send_forever(outbox: queue.Queue[tuple[HubConfig, list[Mail]]]) -> None:
    while True:
        config, mails = outbox.get()
        try:
            send(config, mails)
        except Exception:  # never let one batch stop the sender
            log.exception("sending e-mail failed")


def message(config: HubConfig, mail: Mail) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = config.smtp_from
    msg["To"] = mail.to
    msg["Subject"] = mail.subject
    msg["Date"] = formatdate(usegmt=True)
    msg["Message-ID"] = make_msgid(domain=config.smtp_from.rpartition("@")[2] or None)
    msg["Auto-Submitted"] = "auto-generated"  # RFC 3834: out-of-office replies stay away
    msg.set_content(mail.body)
    return msg


def send(config: HubConfig, mails: list[Mail]) -> int:
    """Send `mails` in one SMTP session now; how many the server accepted. Errors are logged,
    not raised: the server refusing one message, or the connection failing for the rest."""
    if not config.smtp_host or not mails:
        return 0
    sent = 0
    try:
        with smtplib.SMTP(config.smtp_host, config.smtp_port, timeout=TIMEOUT_S) as smtp:
            if config.smtp_starttls:
                smtp.starttls(context=ssl.create_default_context())
            if config.smtp_username:
                smtp.login(config.smtp_username, config.smtp_password)
            for mail in mails:
                try:
                    smtp.send_message(message(config, mail))
                except (smtplib.SMTPRecipientsRefused, smtplib.SMTPResponseException) as exc:
                    # Its reply may quote the address: only the kind of error is logged.
                    log.warning("the SMTP server refused an e-mail (%s)", type(exc).__name__)
                else:
                    sent += 1
    except (OSError, smtplib.SMTPException) as exc:
        log.warning(
            "e-mail not sent: %d of %d, SMTP server %s:%d (%s)",
            len(mails) - sent,
            len(mails),
            config.smtp_host,
            config.smtp_port,
            type(exc).__name__,
        )
    return sent
