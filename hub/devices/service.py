"""Kiosks over the database: pairing (the shape of OAuth's device authorisation grant, RFC 8628),
a kiosk's identity on its connections, heartbeats and the history of problems read from them,
commands, the settings site staff push to kiosks, and the visits of students who use a kiosk
without an account.

Like matching, every function runs inside the caller's transaction and returns what to send after
it commits. Where a refusal must still store something (a poll's time, a wrong code counted against
guessing), the function returns the error for the caller to raise after the commit."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from flask_babel import gettext as _
from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from hub.accounts import service as accounts
from hub.accounts.access import Identity
from hub.accounts.models import Role, Site, User
from hub.accounts.mydata import delete_student
from hub.attachments import service as attachments
from hub.catalog.models import GRADES
from hub.config import HubConfig
from hub.devices.models import (
    Device,
    DeviceCommand,
    DeviceEvent,
    DeviceEventKind,
    KioskSettings,
    KioskVisit,
    Pairing,
    PairingCodeFailure,
    PairingStatus,
)
from hub.errors import (
    Conflict,
    Forbidden,
    HubError,
    Invalid,
    NotFound,
    RateLimited,
    Unauthenticated,
)
from hub.forms import CODE_ALPHABET
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
# The fleet: a kiosk silent this long is flagged on the admin overview; problems are kept this long.
OFFLINE_FLAG_AFTER = timedelta(minutes=10)
EVENTS_KEEP = timedelta(days=30)
EVENTS_SHOWN = 10  # per kiosk on the staff page
LOW_DISK_MB = 1024  # below this an update (a second virtual environment) may not fit
HOT_C = 80.0  # a Raspberry Pi starts to slow itself down here
# A lasting problem (low disk, heat) is noted again only after this long.
REPEAT_PROBLEM_AFTER = timedelta(hours=1)
SETTING_FIELDS = ("lang", "idle_s", "countdown_s", "room_idle_s", "notice")


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
    s: Session, *, name: str, model: str, site_code: str, now: datetime, config: HubConfig
) -> NewPairing:
    """A new pairing code. `site_code` (the site's invite code, from `provision install --site`)
    marks the site the kiosk is meant for; an unknown one is ignored without a word, since the
    caller needs no login and must not learn which codes exist."""
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
            site_id=_site_by_code(s, site_code),
        )
    )
    return NewPairing(
        device_code,
        format_user_code(user_code),
        config.pairing_expires_s,
        config.pairing_interval_s,
    )


def _site_by_code(s: Session, code: str) -> int | None:
    code = code.strip().upper()
    return s.scalar(select(Site.id).where(Site.invite_code == code)) if code else None


def _new_user_code(s: Session, now: datetime) -> str:
    while True:
        code = "".join(secrets.choice(CODE_ALPHABET) for _i in range(USER_CODE_LENGTH))
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
    if pairing is not None and not _may_take(actor, pairing):
        # Counted like a wrong code: to this caller the kiosk is not there to be had.
        _count_failure(s, actor, guesses, now)
        return Forbidden(
            _(
                "This kiosk was set up for another site. Staff of that site or an admin can "
                "pair it."
            ),
            fields={"code": "other_site"},
        )
    if pairing is not None:
        if guesses is not None:
            s.delete(guesses)
        return pairing
    _count_failure(s, actor, guesses, now)
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


def _may_take(actor: Identity, pairing: Pairing) -> bool:
    """Site staff may not take a kiosk set up for another site; admins may take any."""
    return actor.role == Role.ADMIN or pairing.site_id in (None, actor.site_id)


def _count_failure(
    s: Session, actor: Identity, guesses: PairingCodeFailure | None, now: datetime
) -> None:
    if guesses is None:
        guesses = PairingCodeFailure(user_id=actor.user_id, count=0, last_at=now)
        s.add(guesses)
    guesses.count += 1
    guesses.last_at = now


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
    user = accounts.create_kiosk_account(s, found.name, site.id, now)
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
    events: list[DeviceEvent]  # newest first, at most EVENTS_SHOWN
    settings: PushedSettings  # its own, for the form
    silent_for: timedelta | None  # since its last sign of life; None: not collected its token yet

    @property
    def uptime(self) -> timedelta | None:
        seconds = self.device.uptime_s
        return timedelta(seconds=seconds) if seconds is not None else None

    @property
    def long_offline(self) -> bool:
        return self.silent_for is not None and self.silent_for > OFFLINE_FLAG_AFTER

    @property
    def disk_low(self) -> bool:
        return self.device.disk_free_mb is not None and self.device.disk_free_mb < LOW_DISK_MB

    @property
    def hot(self) -> bool:
        return self.device.cpu_temp_c is not None and self.device.cpu_temp_c >= HOT_C


def silent_for(device: Device, now: datetime) -> timedelta | None:
    """How long a paired kiosk has given no sign of life (a heartbeat or a connect), counted from
    its pairing when it never connected; None for a revoked kiosk or one still pairing."""
    if device.revoked_at is not None or device.token_hash is None:
        return None
    seen = [t for t in (device.heartbeat_at, device.last_seen_at) if t is not None]
    last = max(seen) if seen else device.created_at
    return max(timedelta(0), now - last)


def long_offline(s: Session, now: datetime) -> list[tuple[Device, str, timedelta]]:
    """Paired kiosks of every site silent for more than OFFLINE_FLAG_AFTER, with their site's
    name and how long, longest first: the admin overview's flag."""
    found = s.execute(
        select(Device, Site.name)
        .join(Site, Site.id == Device.site_id)
        .where(Device.revoked_at.is_(None), Device.token_hash.is_not(None))
    ).all()
    silent = [(device, name, silent_for(device, now) or timedelta(0)) for device, name in found]
    flagged = [row for row in silent if row[2] > OFFLINE_FLAG_AFTER]
    return sorted(flagged, key=lambda row: row[2], reverse=True)


def devices_for(s: Session, actor: Identity, now: datetime) -> list[DeviceRow]:
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
    newest = (
        select(
            DeviceEvent.id,
            func.row_number()
            .over(partition_by=DeviceEvent.device_id, order_by=DeviceEvent.id.desc())
            .label("n"),
        )
        .where(DeviceEvent.device_id.in_(ids))
        .subquery()
    )
    events: dict[int, list[DeviceEvent]] = {}
    for event in s.scalars(
        select(DeviceEvent)
        .join(newest, newest.c.id == DeviceEvent.id)
        .where(newest.c.n <= EVENTS_SHOWN)
        .order_by(DeviceEvent.id.desc())
    ):
        events.setdefault(event.device_id, []).append(event)
    own = {
        row.device_id: _as_settings(row)
        for row in s.scalars(select(KioskSettings).where(KioskSettings.device_id.in_(ids)))
    }
    return [
        DeviceRow(
            device,
            site_name,
            device.user_id in connected or visits.get(device.id) in connected,
            device.id in visits,
            last_commands.get(device.id),
            events.get(device.id, []),
            own.get(device.id, PushedSettings()),
            silent_for(device, now),
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
    return _revoke(s, device, now, config)


def unpair_itself(
    s: Session, token: str, now: datetime, config: HubConfig
) -> tuple[int, list[int], list[Notice]]:
    """A kiosk unpairs itself with its token (`provision reset`): as `revoke`, and the device."""
    device = s.scalar(select(Device).where(Device.token_hash == _digest(token))) if token else None
    if device is None or len(token) > 200:
        raise Unauthenticated(_("This kiosk is not paired, or no longer."))
    users, notices = _revoke(s, device, now, config)
    return device.id, users, notices


def _revoke(
    s: Session, device: Device, now: datetime, config: HubConfig
) -> tuple[list[int], list[Notice]]:
    device.revoked_at = now
    device.token_hash = None
    user = s.get(User, device.user_id)
    assert user is not None
    accounts.set_user_active(user, False)
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
    started: bool,
    offline_s: float | None,
    now: datetime,
) -> PushedSettings:
    """Keep the kiosk's latest health and note in its history what went wrong since the last
    report: a start of the program (it says so, or its uptime went down), the camera lost or
    back, time without the hub, low disk, heat. Returns the kiosk's settings for the answer."""
    device = _device_of(s, kiosk)
    events: list[tuple[DeviceEventKind, float | None]] = []
    if started or (device.uptime_s is not None and uptime_s < device.uptime_s):
        events.append((DeviceEventKind.STARTED, None))
    if offline_s:
        events.append((DeviceEventKind.HUB_UNREACHABLE, round(offline_s)))
    if not camera_ok and device.camera_ok is not False:
        events.append((DeviceEventKind.CAMERA_LOST, None))
    elif camera_ok and device.camera_ok is False:
        events.append((DeviceEventKind.CAMERA_BACK, None))
    if disk_free_mb < LOW_DISK_MB and not _noted_lately(s, device, DeviceEventKind.DISK_LOW, now):
        events.append((DeviceEventKind.DISK_LOW, disk_free_mb))
    hot = cpu_temp_c is not None and cpu_temp_c >= HOT_C
    if hot and not _noted_lately(s, device, DeviceEventKind.HOT, now):
        events.append((DeviceEventKind.HOT, cpu_temp_c))
    for kind, value in events:
        s.add(DeviceEvent(device_id=device.id, at=now, kind=kind.value, value=value))
    device.heartbeat_at = device.last_seen_at = now
    device.version, device.uptime_s, device.camera_ok = version, uptime_s, camera_ok
    device.cpu_temp_c, device.disk_free_mb, device.load = cpu_temp_c, disk_free_mb, load
    return settings_of(s, device)


def _noted_lately(s: Session, device: Device, kind: DeviceEventKind, now: datetime) -> bool:
    return (
        s.scalar(
            select(DeviceEvent.id)
            .where(
                DeviceEvent.device_id == device.id,
                DeviceEvent.kind == kind.value,
                DeviceEvent.at > now - REPEAT_PROBLEM_AFTER,
            )
            .limit(1)
        )
        is not None
    )


def command_done(
    s: Session, kiosk: Identity, command_id: int, ok: bool, detail: str, now: datetime
) -> None:
    device = _device_of(s, kiosk)
    command = s.get(DeviceCommand, command_id)
    if command is None or command.device_id != device.id:
        raise NotFound(_("That command was not found."))
    command.done_at, command.ok, command.detail = now, ok, detail


# ---------------------------------------------------------------------------------------------
# Settings pushed to kiosks


@dataclass(frozen=True)
class PushedSettings:
    """Kiosk settings as staff set them; None: not set here (inherited, in the end the kiosk's
    own command line). `lang` is the language between visits; times are in seconds."""

    lang: str | None = None
    idle_s: int | None = None
    countdown_s: int | None = None
    room_idle_s: int | None = None
    notice: str | None = None

    def over(self, below: PushedSettings) -> PushedSettings:
        """These settings, with what is not set here taken from `below`."""
        return PushedSettings(
            **{
                name: getattr(below, name) if getattr(self, name) is None else getattr(self, name)
                for name in SETTING_FIELDS
            }
        )

    def payload(self) -> dict[str, Any]:
        """The `device:settings` event (docs/protocol.md): null means the kiosk's own value."""
        return {
            **{name: getattr(self, name) for name in SETTING_FIELDS},
            "notice": self.notice or "",
        }


def _settings_row(
    s: Session, *, site_id: int | None = None, device_id: int | None = None
) -> KioskSettings | None:
    where = (
        KioskSettings.site_id == site_id
        if site_id is not None
        else (KioskSettings.device_id == device_id)
    )
    return s.scalar(select(KioskSettings).where(where))


def _as_settings(row: KioskSettings | None) -> PushedSettings:
    if row is None:
        return PushedSettings()
    return PushedSettings(**{name: getattr(row, name) for name in SETTING_FIELDS})


def settings_of(s: Session, device: Device) -> PushedSettings:
    """What a kiosk runs with: its own settings over its site's."""
    own = _as_settings(_settings_row(s, device_id=device.id))
    return own.over(_as_settings(_settings_row(s, site_id=device.site_id)))


def site_settings(s: Session, actor: Identity, site_id: int) -> PushedSettings:
    """A site's own settings, for its form."""
    return _as_settings(_settings_row(s, site_id=_site_in_scope(s, actor, site_id).id))


def save_site_settings(
    s: Session, actor: Identity, site_id: int, values: PushedSettings
) -> list[tuple[int, PushedSettings]]:
    """Store a site's settings; returns each of its paired kiosks with what it now runs with, for
    the caller to push after the commit."""
    site = _site_in_scope(s, actor, site_id)
    _store_settings(s, _settings_row(s, site_id=site.id) or KioskSettings(site_id=site.id), values)
    s.flush()
    kiosks = s.scalars(select(Device).where(Device.site_id == site.id, Device.revoked_at.is_(None)))
    return [(device.id, settings_of(s, device)) for device in kiosks]


def save_device_settings(
    s: Session, actor: Identity, device_id: int, values: PushedSettings
) -> list[tuple[int, PushedSettings]]:
    """Store one kiosk's own settings; returns it with what it now runs with."""
    device = _in_scope(s, actor, device_id)
    if device.revoked_at is not None:
        raise Conflict(_("This kiosk is already unpaired."))
    row = _settings_row(s, device_id=device.id) or KioskSettings(device_id=device.id)
    _store_settings(s, row, values)
    s.flush()
    return [(device.id, settings_of(s, device))]


def _store_settings(s: Session, row: KioskSettings, values: PushedSettings) -> None:
    for name in SETTING_FIELDS:
        setattr(row, name, getattr(values, name))
    s.add(row)


def _site_in_scope(s: Session, actor: Identity, site_id: int) -> Site:
    site = s.get(Site, site_id)
    if site is None or (actor.role != Role.ADMIN and site.id != actor.site_id):
        raise NotFound(_("There is no such site."))
    return site


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
    user = accounts.create_visitor(s, nickname, grade, device.site_id, now)
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
    attachments.delete_unused_of(s, user.id, attachments_dir)
    accounts.forget_visitor(user)
    visit.ended_at = now
    return notices


# ---------------------------------------------------------------------------------------------
# Housekeeping


def delete_old(s: Session, now: datetime, config: HubConfig) -> None:
    """End visits abandoned long ago, delete the rows of visits older than the retention period
    (with their requests and rooms), and forget spent pairings, old wrong-code counts and kiosks'
    problems older than EVENTS_KEEP."""
    for visit in s.scalars(
        select(KioskVisit).where(
            KioskVisit.ended_at.is_(None), KioskVisit.started_at < now - ABANDONED_VISIT_AGE
        )
    ):
        end_visit(s, visit, now, config.attachments_dir)  # nobody is left to tell
    old = now - timedelta(days=config.visit_retention_days)
    for user_id in s.scalars(select(KioskVisit.user_id).where(KioskVisit.ended_at < old)).all():
        delete_student(s, user_id, config.attachments_dir)
    s.execute(delete(Pairing).where(Pairing.expires_at < now - PAIRING_KEEP))
    s.execute(delete(PairingCodeFailure).where(PairingCodeFailure.last_at < now - GUESSES_KEEP))
    s.execute(delete(DeviceEvent).where(DeviceEvent.at < now - EVENTS_KEEP))
