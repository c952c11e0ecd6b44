"""Paired kiosks, pairings under way, commands sent to kiosks, what went wrong on them, the
settings site staff push to them, and kiosk visits."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import CheckConstraint, ForeignKey, Index, String, text
from sqlalchemy.orm import Mapped, mapped_column

from hub.db import Base


class Device(Base):
    """A kiosk paired with a site. Its connections act as its own user row (role `kiosk`, no
    password), so presence and Socket.IO user rooms work for it as for people. Only a hash of
    its token is kept; a revoked kiosk keeps its row, without a token."""

    __tablename__ = "devices"

    id: Mapped[int] = mapped_column(primary_key=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("sites.id"), index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), unique=True)
    name: Mapped[str] = mapped_column(String(60))
    model: Mapped[str] = mapped_column(String(80), default="")
    token_hash: Mapped[str | None] = mapped_column(String(64), unique=True, default=None)
    created_at: Mapped[datetime]
    revoked_at: Mapped[datetime | None] = mapped_column(default=None)
    last_seen_at: Mapped[datetime | None] = mapped_column(default=None)
    # The last heartbeat only; there is no history.
    heartbeat_at: Mapped[datetime | None] = mapped_column(default=None)
    version: Mapped[str] = mapped_column(String(40), default="")
    uptime_s: Mapped[int | None] = mapped_column(default=None)
    camera_ok: Mapped[bool | None] = mapped_column(default=None)
    cpu_temp_c: Mapped[float | None] = mapped_column(default=None)
    disk_free_mb: Mapped[int | None] = mapped_column(default=None)
    load: Mapped[float | None] = mapped_column(default=None)


class PairingStatus(StrEnum):
    PENDING = "pending"  # waiting for site staff
    APPROVED = "approved"  # confirmed; the kiosk has not collected its token yet
    COLLECTED = "collected"  # the kiosk has its token; the codes are spent
    DENIED = "denied"


class Pairing(Base):
    """One run of the device authorisation grant (RFC 8628): the kiosk holds the secret device
    code (only its hash is kept here) and shows the short user code for site staff to confirm."""

    __tablename__ = "device_pairings"

    id: Mapped[int] = mapped_column(primary_key=True)
    device_code_hash: Mapped[str] = mapped_column(String(64), unique=True)
    user_code: Mapped[str] = mapped_column(String(8), index=True)  # without the dash
    name: Mapped[str] = mapped_column(String(60))
    model: Mapped[str] = mapped_column(String(80), default="")
    status: Mapped[str] = mapped_column(String(12), default=PairingStatus.PENDING)
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime]
    last_polled_at: Mapped[datetime | None] = mapped_column(default=None)
    device_id: Mapped[int | None] = mapped_column(
        ForeignKey("devices.id", ondelete="CASCADE"), default=None
    )
    # The site the kiosk was set up for (`provision install --site CODE`): pre-selected on the
    # staff's confirm form, and only that site's staff (or an admin) may take the kiosk.
    site_id: Mapped[int | None] = mapped_column(
        ForeignKey("sites.id", ondelete="SET NULL", name="fk_device_pairings_site_id"),
        default=None,
    )


class PairingCodeFailure(Base):
    """Recent wrong pairing codes per staff account, to slow down guessing."""

    __tablename__ = "pairing_code_failures"

    user_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    count: Mapped[int] = mapped_column(default=0)
    last_at: Mapped[datetime]


class DeviceCommand(Base):
    """A command sent from the staff page to a kiosk, and what the kiosk answered."""

    __tablename__ = "device_commands"

    id: Mapped[int] = mapped_column(primary_key=True)
    device_id: Mapped[int] = mapped_column(ForeignKey("devices.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(20))
    created_at: Mapped[datetime]
    done_at: Mapped[datetime | None] = mapped_column(default=None)
    ok: Mapped[bool | None] = mapped_column(default=None)
    detail: Mapped[str] = mapped_column(String(500), default="")


class DeviceEventKind(StrEnum):
    STARTED = "started"  # the kiosk program started (after a crash, a restart, a power cut)
    CAMERA_LOST = "camera_lost"
    CAMERA_BACK = "camera_back"
    HUB_UNREACHABLE = "hub_unreachable"  # value: seconds without the hub, told on reconnecting
    DISK_LOW = "disk_low"  # value: MB free
    HOT = "hot"  # value: °C


class DeviceEvent(Base):
    """Something that went wrong on a kiosk (or came right again), from its heartbeats: the
    history on the staff page. Nothing about people; deleted after `service.EVENTS_KEEP`."""

    __tablename__ = "device_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    device_id: Mapped[int] = mapped_column(ForeignKey("devices.id", ondelete="CASCADE"), index=True)
    at: Mapped[datetime] = mapped_column(index=True)
    kind: Mapped[str] = mapped_column(String(20))
    value: Mapped[float | None] = mapped_column(default=None)


class KioskSettings(Base):
    """Settings site staff push to kiosks, for a whole site or one kiosk (exactly one of the
    two). A field left None is inherited: a kiosk's own row over its site's, over the kiosk's
    command line."""

    __tablename__ = "kiosk_settings"
    __table_args__ = (
        CheckConstraint(
            "(site_id IS NULL) <> (device_id IS NULL)", name="ck_kiosk_settings_one_scope"
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    site_id: Mapped[int | None] = mapped_column(
        ForeignKey("sites.id", ondelete="CASCADE"), unique=True, default=None
    )
    device_id: Mapped[int | None] = mapped_column(
        ForeignKey("devices.id", ondelete="CASCADE"), unique=True, default=None
    )
    lang: Mapped[str | None] = mapped_column(String(2), default=None)  # between visits
    idle_s: Mapped[int | None] = mapped_column(default=None)
    countdown_s: Mapped[int | None] = mapped_column(default=None)
    room_idle_s: Mapped[int | None] = mapped_column(default=None)
    notice: Mapped[str | None] = mapped_column(String(200), default=None)  # on the attract screen


class KioskVisit(Base):
    """A student's visit at a kiosk. The visit's user row (a student without a password) is what
    matching and rooms see; this row marks it as a kiosk visit. At most one open visit per kiosk.
    """

    __tablename__ = "kiosk_visits"
    __table_args__ = (
        Index(
            "ux_kiosk_visits_open_per_device",
            "device_id",
            unique=True,
            sqlite_where=text("ended_at IS NULL"),
            postgresql_where=text("ended_at IS NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    device_id: Mapped[int] = mapped_column(ForeignKey("devices.id", ondelete="CASCADE"))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), unique=True)
    started_at: Mapped[datetime]
    ended_at: Mapped[datetime | None] = mapped_column(default=None, index=True)
