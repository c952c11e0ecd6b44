"""Kiosks over the database: pairing (the shape of OAuth's device authorisation grant, RFC 8628),
a kiosk's identity on its connections, heartbeats and commands, and the visits of students who use
a kiosk without an account.

Like matching, every function runs inside the caller's transaction and returns what to send after
it commits. Where a refusal must still store something (a poll's time, a wrong code counted against
guessing), the function returns the error for the caller to raise after the commit."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from pathlib import Path

from flask_babel import gettext as _
from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from hub.accounts.access import Identity
from hub.accounts.models import Role, Site, User
from hub.accounts.mydata import delete_student
from hub.admin.service import INVITE_ALPHABET
from hub.attachments.models import Attachment
from hub.catalog.models import GRADES
from hub.config import HubConfig
from hub.devices.models import (
    Device,
    DeviceCommand,
    KioskVisit,
    Pairing,
    PairingCodeFailure,
    PairingStatus,
)
from hub.errors import Conflict, Forbidden, HubError, Invalid, NotFound, RateLimited
from hub.matching import service as matching
from hub.moderation import check
from hub.realtime.models import Connection
from hub.realtime.notices import Notice
from hub.rooms import service as rooms

USER_CODE_LENGTH = 8  # from the invite codes' alphabet: read aloud and typed without mix-ups
MAX_PENDING_PAIRINGS = 100  # asking for a code needs no login; this bounds a flood of requests
PAIRING_KEEP = timedelta(days=1)  # spent, refused and expired pairings are deleted after this
GUESSES_KEEP = timedelta(days=1)
# A visit still open this long was abandoned (its kiosk never came back); matching and rooms have
# long since closed its request and room through their own grace periods.
ABANDONED_VISIT_AGE = timedelta(hours=12)
COMMANDS = ("restart_kiosk", "reboot", "reload_config")
# No password hash matches this, so accounts of kiosks and of kiosk visits cannot log in.
NO_PASSWORD = "!"


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def device_room(device_id: int) -> str:
    """The Socket.IO room of a kiosk's connections, also while one acts for a visiting student."""
    return f"device:{device_id}"


def format_user_code(code: str) -> str:
    return f"{code[:4]}-{code[4:]}"


def normalise_user_code(typed: str) -> str:
    """What staff typed, without dashes and spaces, in capitals."""
    return "".join(c for c in typed.upper() if c.isalnum())


class PollRefused(HubError):
    """The answers of RFC 8628 §3.5 while the kiosk must wait, slow down or start again."""

    status = 400

    def __init__(self, code: str, message: str, **details: object) -> None:
        super().__init__(message, **details)
        self.code = code


# ---------------------------------------------------------------------------------------------
# Pairing: the kiosk's side


@dataclass(frozen=True)
class NewPairing:
    device_code: str
    user_code: str
    expires_in: int
    interval: int


def start_pairing(
    s: Session, *, name: str, model: str, now: datetime, config: HubConfig
) -> NewPairing:
    waiting = s.scalar(
        select(func.count()).where(
            Pairing.status == PairingStatus.PENDING, Pairing.expires_at > now
        )
    )
    if (waiting or 0) >= MAX_PENDING_PAIRINGS:
        raise RateLimited(
            _("Too many kiosks are waiting to be paired. Try again in a few minutes."),
            retry_after_s=60,
        )
    device_code = secrets.token_urlsafe(32)
    user_code = _new_user_code(s, now)
    s.add(
        Pairing(
            device_code_hash=_digest(device_code),
            user_code=user_code,
            name=name or "Kiosk",
            model=model,
            created_at=now,
            expires_at=now + timedelta(seconds=config.pairing_expires_s),
        )
    )
    return NewPairing(
        device_code,
        format_user_code(user_code),
        config.pairing_expires_s,
        config.pairing_interval_s,
    )


def _new_user_code(s: Session, now: datetime) -> str:
    while True:
        code = "".join(secrets.choice(INVITE_ALPHABET) for _i in range(USER_CODE_LENGTH))
        if _pending(s, code, now) is None:
            return code


def _pending(s: Session, user_code: str, now: datetime) -> Pairing | None:
    return s.scalar(
        select(Pairing).where(
            Pairing.user_code == user_code,
            Pairing.status == PairingStatus.PENDING,
            Pairing.expires_at > now,
        )
    )


@dataclass(frozen=True)
class Paired:
    device_token: str
    device: Device
    site: Site


def poll(s: Session, device_code: str, now: datetime, config: HubConfig) -> Paired | PollRefused:
    """The kiosk's token once staff have confirmed its code, handed out once; otherwise the
    refusal to raise after the commit (which stores the time of this poll)."""
    pairing = s.scalar(select(Pairing).where(Pairing.device_code_hash == _digest(device_code)))
    if pairing is None or pairing.status == PairingStatus.COLLECTED:
        return _expired()
    if pairing.status == PairingStatus.DENIED:
        return PollRefused("access_denied", _("Site staff turned this kiosk down."))
    if pairing.status == PairingStatus.APPROVED:
        device = s.get(Device, pairing.device_id)
        assert device is not None
        token = secrets.token_urlsafe(32)
        device.token_hash = _digest(token)
        pairing.status = PairingStatus.COLLECTED
        site = s.get(Site, device.site_id)
        assert site is not None
        return Paired(token, device, site)
    if pairing.expires_at <= now:
        return _expired()
    last, pairing.last_polled_at = pairing.last_polled_at, now
    # A little slack: a kiosk polling on time may arrive a moment early.
    if last is not None and (now - last).total_seconds() < 0.8 * config.pairing_interval_s:
        return PollRefused(
            "slow_down",
            _("The kiosk asks too often. Wait a little longer between tries."),
            interval=config.pairing_interval_s + 5,
        )
    return PollRefused("authorization_pending", _("Waiting for site staff to confirm the code."))


def _expired() -> PollRefused:
    return PollRefused(
        "expired_token", _("This pairing code is no longer valid. Ask for a new code.")
    )


# ---------------------------------------------------------------------------------------------
# Pairing: site staff's side


def find_pending(
    s: Session, actor: Identity, typed: str, now: datetime, config: HubConfig
) -> Pairing | HubError:
    """The kiosk waiting with the code staff typed, or the error to raise after the commit: a wrong
    or expired code counts against the caller, and after `login_free_failures` of them each
    further try must wait `login_wait_s` (raised at once: there is nothing to store)."""
    code = normalise_user_code(typed)
    if not code:
        return Invalid(_("Type the code shown on the kiosk."), fields={"code": "missing"})
    guesses = s.get(PairingCodeFailure, actor.user_id)
    if guesses is not None and guesses.count >= config.login_free_failures:
        wait = guesses.last_at + timedelta(seconds=config.login_wait_s) - now
        if wait.total_seconds() > 0:
            seconds = int(wait.total_seconds()) + 1
            raise RateLimited(
                _("Too many wrong codes. Try again in %(seconds)d seconds.", seconds=seconds),
                retry_after_s=seconds,
            )
    pairing = _pending(s, code, now)
    if pairing is not None:
        if guesses is not None:
            s.delete(guesses)
        return pairing
    if guesses is None:
        guesses = PairingCodeFailure(user_id=actor.user_id, count=0, last_at=now)
        s.add(guesses)
    guesses.count += 1
    guesses.last_at = now
    expired = s.scalar(
        select(Pairing.id).where(Pairing.user_code == code, Pairing.status == PairingStatus.PENDING)
    )
    if expired is not None:
        return Invalid(
            _("That code has expired. The kiosk shows a new code by itself: type that one."),
            fields={"code": "expired"},
        )
    return Invalid(
        _("No kiosk is waiting with that code. Check the code on the kiosk's screen."),
        fields={"code": "unknown"},
    )


def confirm(
    s: Session,
    actor: Identity,
    typed: str,
    site_id: int | None,
    now: datetime,
    config: HubConfig,
) -> Device | HubError:
    """Pair the waiting kiosk with the caller's site (an admin chooses the site). The kiosk picks
    up its token with its next poll."""
    found = find_pending(s, actor, typed, now, config)
    if isinstance(found, HubError):
        return found
    if actor.role != Role.ADMIN:
        site_id = actor.site_id
    site = s.get(Site, site_id) if site_id is not None else None
    if site is None:
        return Invalid(_("Choose the site the kiosk stands at."), fields={"site_id": "missing"})
    user = User(
        username=f"kiosk-{secrets.token_hex(8)}",
        password_hash=NO_PASSWORD,
        role=Role.KIOSK.value,
        display_name=found.name,
        site_id=site.id,
        created_at=now,
    )
    s.add(user)
    s.flush()
    device = Device(
        site_id=site.id, user_id=user.id, name=found.name, model=found.model, created_at=now
    )
    s.add(device)
    s.flush()
    found.status = PairingStatus.APPROVED
    found.device_id = device.id
    return device


def deny(
    s: Session, actor: Identity, typed: str, now: datetime, config: HubConfig
) -> HubError | None:
    found = find_pending(s, actor, typed, now, config)
    if isinstance(found, HubError):
        return found
    found.status = PairingStatus.DENIED
    return None


# ---------------------------------------------------------------------------------------------
# Paired kiosks: the staff page


@dataclass(frozen=True)
class DeviceRow:
    device: Device
    site_name: str
    online: bool
    visiting: bool
    last_command: DeviceCommand | None

    @property
    def uptime(self) -> timedelta | None:
        seconds = self.device.uptime_s
        return timedelta(seconds=seconds) if seconds is not None else None


def devices_for(s: Session, actor: Identity) -> list[DeviceRow]:
    """The kiosks of the caller's site (every site's for an admin), revoked ones last."""
    query = (
        select(Device, Site.name)
        .join(Site, Site.id == Device.site_id)
        .order_by(Device.revoked_at.is_not(None), Site.name, Device.name, Device.id)
    )
    if actor.role != Role.ADMIN:
        query = query.where(Device.site_id == actor.site_id)
    found = s.execute(query).all()
    ids = [d.id for d, _name in found]
    visits = dict(
        s.execute(
            select(KioskVisit.device_id, KioskVisit.user_id).where(
                KioskVisit.device_id.in_(ids), KioskVisit.ended_at.is_(None)
            )
        ).all()
    )
    users = [d.user_id for d, _name in found] + list(visits.values())
    connected = set(s.scalars(select(Connection.user_id).where(Connection.user_id.in_(users))))
    last_commands: dict[int, DeviceCommand] = {}
    for command in s.scalars(
        select(DeviceCommand).where(DeviceCommand.device_id.in_(ids)).order_by(DeviceCommand.id)
    ):
        last_commands[command.device_id] = command
    return [
        DeviceRow(
            device,
            site_name,
            device.user_id in connected or visits.get(device.id) in connected,
            device.id in visits,
            last_commands.get(device.id),
        )
        for device, site_name in found
    ]


def sites_for(s: Session, actor: Identity) -> list[Site]:
    """Where the caller may pair kiosks: every site for an admin, their own for site staff."""
    query = select(Site).order_by(Site.name)
    if actor.role != Role.ADMIN:
        query = query.where(Site.id == actor.site_id)
    return list(s.scalars(query))


def _in_scope(s: Session, actor: Identity, device_id: int) -> Device:
    device = s.get(Device, device_id)
    if device is None or (actor.role != Role.ADMIN and device.site_id != actor.site_id):
        raise NotFound(_("There is no such kiosk."))
    return device


def rename(s: Session, actor: Identity, device_id: int, name: str) -> Device:
    device = _in_scope(s, actor, device_id)
    device.name = name
    return device


def revoke(
    s: Session, actor: Identity, device_id: int, now: datetime, config: HubConfig
) -> tuple[list[int], list[Notice]]:
    """Unpair a kiosk: its token stops working at once and a visit under way ends properly.
    Returns the users whose connections the caller must close, and the notices to send."""
    device = _in_scope(s, actor, device_id)
    if device.revoked_at is not None:
        raise Conflict(_("This kiosk is already unpaired."))
    device.revoked_at = now
    device.token_hash = None
    user = s.get(User, device.user_id)
    assert user is not None
    user.active = False
    visit_user, notices = end_open_visit(s, device.id, now, config)
    return [device.user_id, *([visit_user] if visit_user is not None else [])], notices


def send_command(
    s: Session, actor: Identity, device_id: int, name: str, now: datetime
) -> DeviceCommand:
    """Record a command for a connected kiosk; the caller sends it to the kiosk's room."""
    if name not in COMMANDS:
        raise Invalid(_("There is no such command."), fields={"name": "unknown"})
    device = _in_scope(s, actor, device_id)
    if device.revoked_at is not None:
        raise Conflict(_("This kiosk is already unpaired."))
    if not _is_online(s, device):
        raise Conflict(_("The kiosk is not connected right now, so it cannot get the command."))
    command = DeviceCommand(device_id=device.id, name=name, created_at=now)
    s.add(command)
    s.flush()
    return command


def _is_online(s: Session, device: Device) -> bool:
    """Whether the kiosk has a connection, as itself or acting for its visit."""
    visit = open_visit(s, device.id)
    users = [device.user_id, *([visit.user_id] if visit is not None else [])]
    return bool(s.scalar(select(func.count()).where(Connection.user_id.in_(users))))


# ---------------------------------------------------------------------------------------------
# The kiosk's connection


def identify(s: Session, token: str, now: datetime) -> Identity | None:
    """The identity of a kiosk connecting with its device token, or None (unknown or revoked)."""
    if len(token) > 200:
        return None
    device = s.scalar(select(Device).where(Device.token_hash == _digest(token)))
    if device is None or device.revoked_at is not None:
        return None
    user = s.get(User, device.user_id)
    if user is None or not user.active:
        return None
    device.last_seen_at = now
    return replace(Identity.of(user), device_id=device.id)


def kiosk_identity(s: Session, kiosk: Identity) -> Identity:
    """The kiosk's own identity, for a connection going back from acting for a visit."""
    device = _device_of(s, kiosk)
    user = s.get(User, device.user_id)
    assert user is not None
    return replace(Identity.of(user), device_id=device.id)


def _device_of(s: Session, kiosk: Identity) -> Device:
    device = s.get(Device, kiosk.device_id) if kiosk.device_id is not None else None
    if device is None or device.revoked_at is not None:
        raise Forbidden(_("This kiosk is no longer paired."))
    return device


def record_heartbeat(
    s: Session,
    kiosk: Identity,
    *,
    version: str,
    uptime_s: int,
    camera_ok: bool,
    cpu_temp_c: float | None,
    disk_free_mb: int,
    load: float,
    now: datetime,
) -> None:
    device = _device_of(s, kiosk)
    device.heartbeat_at = device.last_seen_at = now
    device.version, device.uptime_s, device.camera_ok = version, uptime_s, camera_ok
    device.cpu_temp_c, device.disk_free_mb, device.load = cpu_temp_c, disk_free_mb, load


def command_done(
    s: Session, kiosk: Identity, command_id: int, ok: bool, detail: str, now: datetime
) -> None:
    device = _device_of(s, kiosk)
    command = s.get(DeviceCommand, command_id)
    if command is None or command.device_id != device.id:
        raise NotFound(_("That command was not found."))
    command.done_at, command.ok, command.detail = now, ok, detail


# ---------------------------------------------------------------------------------------------
# Visits


def open_visit(s: Session, device_id: int) -> KioskVisit | None:
    return s.scalar(
        select(KioskVisit).where(KioskVisit.device_id == device_id, KioskVisit.ended_at.is_(None))
    )


def start_visit(
    s: Session, kiosk: Identity, nickname: str, grade: int, now: datetime
) -> tuple[KioskVisit, Identity]:
    """A student starts using the kiosk: an account for this visit only (a nickname and grade, no
    password), at the kiosk's site. Returns the visit and the identity the connection takes on."""
    device = _device_of(s, kiosk)
    running = open_visit(s, device.id)
    if running is not None:
        raise Conflict(
            _("A visit is already under way on this kiosk. Resume it or end it first."),
            visit_id=running.id,
        )
    if grade not in GRADES:
        raise Invalid(_("Grade must be 8, 9 or 10."), fields={"grade": "unknown"})
    check(nickname)
    user = User(
        username=f"visit-{secrets.token_hex(8)}",
        password_hash=NO_PASSWORD,
        role=Role.STUDENT.value,
        display_name=nickname,
        grade=grade,
        site_id=device.site_id,
        created_at=now,
    )
    s.add(user)
    s.flush()
    visit = KioskVisit(device_id=device.id, user_id=user.id, started_at=now)
    s.add(visit)
    s.flush()
    return visit, replace(Identity.of(user), device_id=device.id)


def resume_visit(s: Session, kiosk: Identity, visit_id: int) -> tuple[KioskVisit, Identity]:
    """A kiosk back after a drop takes on its unfinished visit again."""
    device = _device_of(s, kiosk)
    visit = s.get(KioskVisit, visit_id)
    if visit is None or visit.device_id != device.id:
        raise NotFound(_("That visit was not found."))
    if visit.ended_at is not None:
        raise Conflict(_("That visit has ended."), reason="ended")
    user = s.get(User, visit.user_id)
    assert user is not None
    return visit, replace(Identity.of(user), device_id=device.id)


def finish_visit(
    s: Session, kiosk: Identity, now: datetime, config: HubConfig
) -> tuple[Identity, int | None, list[Notice]]:
    """`visit:end`: end the kiosk's unfinished visit, whichever connection acts for it (none is
    fine: a kiosk that restarted may not know). Returns the kiosk's own identity for the
    connection to go back to, the visit's user (None without a visit) and the notices."""
    itself = kiosk_identity(s, kiosk)
    assert itself.device_id is not None
    visit_user, notices = end_open_visit(s, itself.device_id, now, config)
    return itself, visit_user, notices


def end_open_visit(
    s: Session, device_id: int, now: datetime, config: HubConfig
) -> tuple[int | None, list[Notice]]:
    """End the kiosk's unfinished visit, if it has one: its user id and the notices to send."""
    visit = open_visit(s, device_id)
    if visit is None:
        return None, []
    return visit.user_id, end_visit(s, visit, now, config.attachments_dir)


def end_visit(s: Session, visit: KioskVisit, now: datetime, attachments_dir: Path) -> list[Notice]:
    """Close everything of the visit: its waiting request, its room, uploads never used, and the
    nickname. The anonymous row stays (requests and rooms hang on it) until `delete_old`."""
    user = s.get(User, visit.user_id)
    assert user is not None
    notices: list[Notice] = []
    request = matching.open_request_of(s, user.id)
    if request is not None:
        notices += matching.cancel_request(s, Identity.of(user), request.id, now)
    room = rooms.open_room_of(s, user.id)
    if room is not None:
        notices += rooms.end_room(s, room, by=Role.STUDENT.value, reason="ended", now=now)
    for attachment in s.scalars(
        select(Attachment).where(Attachment.owner_id == user.id, Attachment.request_id.is_(None))
    ):
        (attachments_dir / attachment.id).unlink(missing_ok=True)
        s.delete(attachment)
    user.display_name, user.grade, user.active = "", None, False
    visit.ended_at = now
    return notices


# ---------------------------------------------------------------------------------------------
# Housekeeping


def delete_old(s: Session, now: datetime, config: HubConfig) -> None:
    """End visits abandoned long ago, delete the rows of visits older than the retention period
    (with their requests and rooms), and forget spent pairings and old wrong-code counts."""
    for visit in s.scalars(
        select(KioskVisit).where(
            KioskVisit.ended_at.is_(None), KioskVisit.started_at < now - ABANDONED_VISIT_AGE
        )
    ):
        end_visit(s, visit, now, config.attachments_dir)  # nobody is left to tell
    old = now - timedelta(days=config.retention_days)
    for user_id in s.scalars(select(KioskVisit.user_id).where(KioskVisit.ended_at < old)).all():
        delete_student(s, user_id, config.attachments_dir)
    s.execute(delete(Pairing).where(Pairing.expires_at < now - PAIRING_KEEP))
    s.execute(delete(PairingCodeFailure).where(PairingCodeFailure.last_at < now - GUESSES_KEEP))
