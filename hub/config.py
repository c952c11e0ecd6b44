"""Settings of one hub process, from defaults, a TOML file, the environment and the command line
(later ones win). Environment variables are the setting's name in capitals prefixed
`LEKTIECAFE_`, e.g. `LEKTIECAFE_DATABASE_URL`."""

from __future__ import annotations

import os
import secrets
import tomllib
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo


@dataclass(frozen=True)
class HubConfig:
    data_dir: Path = Path("lektiecafe-data")
    database_url: str = ""  # empty: SQLite in data_dir
    secret_key: str = ""  # empty: generated once and kept in data_dir
    # Cookies only over HTTPS. The demo on plain http://127.0.0.1 turns this off.
    secure_cookies: bool = True
    message_queue: str = ""  # e.g. redis://127.0.0.1:6379/0 when several hub processes run
    offer_timeout_s: float = 30.0
    student_grace_s: float = 60.0
    helper_grace_s: float = 0.0
    tick_s: float = 1.0
    typical_session_s: int = 20 * 60  # the wait estimate's guess before any session has ended
    attachment_max_bytes: int = 8 * 1024 * 1024
    pairing_expires_s: int = 600  # a kiosk's pairing code is valid this long
    pairing_interval_s: int = 5  # the kiosk polls no faster than this
    breakroom_burst: int = 5  # messages a student may send ...
    breakroom_window_s: float = 10.0  # ... within this many seconds
    # Wrong passwords from one address for one account before each try waits login_first_wait_s,
    # doubling with each failure up to login_max_wait_s (hub.accounts.throttle); also wrong kiosk
    # pairing codes before each further code waits login_wait_s.
    login_free_failures: int = 5
    login_wait_s: float = 30.0
    login_first_wait_s: float = 2.0
    login_max_wait_s: float = 900.0
    login_address_failures: int = 100  # per hour from one address, any accounts
    login_account_failures: int = 50  # per hour for one account, any addresses
    # Proxies (addresses or networks) whose X-Forwarded-For names the client: the shipped nginx
    # on the same host. The login throttle counts per client address.
    trusted_proxies: tuple[str, ...] = ("127.0.0.1/32", "::1/128")
    token_max_age_s: int = 12 * 3600
    stun_urls: tuple[str, ...] = field(default_factory=tuple)
    # TURN (coturn with use-auth-secret): no secret, no TURN; "relay" hides each side's address
    turn_urls: tuple[str, ...] = field(default_factory=tuple)
    turn_secret: str = ""
    turn_ttl_s: int = 3600  # lifetime of a TURN credential
    ice_transport_policy: str = "all"  # or "relay": every call through TURN
    # Rooms
    room_grace_s: float = 120.0  # a member who dropped may come back this long
    chat_burst: int = 10  # room chat messages one member may send ...
    chat_window_s: float = 10.0  # ... within this many seconds
    doc_compact_every: int = 1000  # document updates between snapshots
    # Retention (hub/housekeeping.py, docs/privacy.md): days each kind is kept. Room content
    # counts from the session's end and is kept while a report on the room is open.
    chat_retention_days: int = 30  # a room's chat, and the comments in its feedback
    document_retention_days: int = 30  # a room's shared notes and whiteboard
    attachment_retention_days: int = 30  # the assignment's photos and PDFs
    ticket_retention_days: int = 180  # helpdesk tickets and room reports, from when closed
    audit_retention_days: int = 365  # the audit log (hub.audit), from when an entry was written
    # A helper's child-protection certificate must be checked again this long after a check.
    certificate_valid_days: int = 2 * 365
    # Shifts: helpers may drop or swap a shift until this many hours before it starts
    shift_change_cutoff_h: float = 24.0
    # ... and are reminded this many minutes before (on the helper station, and by e-mail)
    shift_reminder_minutes: int = 60
    # E-mail (shift reminders); no smtp_host, no e-mail. smtp_starttls upgrades the connection.
    smtp_host: str = ""
    smtp_port: int = 25
    smtp_from: str = "lektiecafe@localhost"
    smtp_starttls: bool = False
    smtp_username: str = ""  # log in to the SMTP server when given
    smtp_password: str = field(default="", repr=False)
    # The café's local time: opening hours and shifts are wall-clock times here (IANA name).
    timezone: str = "Europe/Copenhagen"
    # Operations (docs/operations.md, "Health, metrics and logs")
    log_format: str = "text"  # or "json": one JSON object per line, for a log collector
    metrics_token: str = ""  # /metrics answers anyone with "Authorization: Bearer <this>"
    # ... and, without the token, direct (not proxied) requests from these addresses/networks
    metrics_allow: tuple[str, ...] = ("127.0.0.1/32", "::1/128")
    # Tests only: the clock can be moved forward over HTTP (hub.clock); never on in production.
    test_clock: bool = False

    def __post_init__(self) -> None:
        # Refuse to start rather than run calls that can never connect.
        if self.ice_transport_policy not in ("all", "relay"):
            raise ValueError("ice_transport_policy must be 'all' or 'relay'")
        if self.ice_transport_policy == "relay" and not (self.turn_urls and self.turn_secret):
            raise ValueError("ice_transport_policy 'relay' needs turn_urls and turn_secret")
        ZoneInfo(self.timezone)  # an unknown time zone stops the hub here, not at its first shift

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def visit_retention_days(self) -> int:
        """A kiosk visit's anonymous account goes, with its requests and rooms, once all of its
        rooms' content would have."""
        return max(
            self.chat_retention_days, self.document_retention_days, self.attachment_retention_days
        )

    @property
    def resolved_database_url(self) -> str:
        return self.database_url or f"sqlite:///{(self.data_dir / 'hub.db').resolve()}"

    @property
    def attachments_dir(self) -> Path:
        return self.data_dir / "attachments"

    def with_secret(self) -> HubConfig:
        """The config with a secret key: the given one, or one generated once per data dir."""
        if self.secret_key:
            return self
        self.data_dir.mkdir(parents=True, exist_ok=True)
        key_file = self.data_dir / "secret_key"
        if not key_file.exists():
            key_file.write_text(secrets.token_urlsafe(48))
            key_file.chmod(0o600)
        return replace(self, secret_key=key_file.read_text().strip())


ROOM_CONTENT_RETENTION = (
    "chat_retention_days",
    "document_retention_days",
    "attachment_retention_days",
)


def load_config(file: Path | None = None, **overrides: Any) -> HubConfig:
    values: dict[str, Any] = {}
    if file is not None:
        values.update(tomllib.loads(file.read_text()))
    for f in fields(HubConfig):
        env = os.environ.get(f"LEKTIECAFE_{f.name.upper()}")
        if env is not None:
            values[f.name] = env
    values.update({k: v for k, v in overrides.items() if v is not None})
    # The one retention_days of earlier versions still sets the room content's three periods.
    legacy = values.pop("retention_days", os.environ.get("LEKTIECAFE_RETENTION_DAYS"))
    if legacy is not None:
        for name in ROOM_CONTENT_RETENTION:
            values.setdefault(name, legacy)
    return HubConfig(
        **{f.name: _coerce(f.type, values[f.name]) for f in fields(HubConfig) if f.name in values}
    )


def _coerce(kind: Any, value: Any) -> Any:
    kind = str(kind)
    if kind == "Path":
        return Path(value)
    if kind == "bool" and isinstance(value, str):
        return value.strip().lower() in ("1", "true", "yes", "on")
    if kind in ("float", "int"):
        return {"float": float, "int": int}[kind](value)
    if kind.startswith("tuple") and isinstance(value, str):
        return tuple(v.strip() for v in value.split(",") if v.strip())
    if kind.startswith("tuple"):
        return tuple(value)
    return value
