"""The kiosk's small local state in one TinyDB file: who the device is, where its hub is, the site
it was set up for, the settings site staff pushed from the hub, and an outbox of calls waiting for
the network.

TinyDB is a JSON file without transactions, right for a handful of values written rarely by one
process. The kiosk keeps nothing of a student here except what waits in the outbox (a report or
feedback not yet delivered, and the `visit:end` after it), and each entry is removed as soon as the
hub has it. A lock makes the object safe to use from the kiosk's several threads."""

from __future__ import annotations

import os
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tinydb import Query, TinyDB
from tinydb.storages import JSONStorage

DEFAULT_DATA_DIR = Path("/var/lib/lektiecafe-kiosk")
STATE_FILE = "kiosk.json"
SITE_CODE_ENV = "LEKTIECAFE_SITE_CODE"  # written by `provision install --site` (kiosk.env)
# Holds the kiosk's pid while someone uses the screen: `provision update` waits for it to go.
VISIT_MARKER = "visit-active"


def mark_in_use(data_dir: Path, in_use: bool) -> None:
    """Write or remove VISIT_MARKER (a crashed kiosk's stale pid is for the reader to check)."""
    marker = data_dir / VISIT_MARKER
    if in_use:
        marker.write_text(str(os.getpid()))
    else:
        marker.unlink(missing_ok=True)


@dataclass(frozen=True)
class Identity:
    """What pairing gave the device."""

    device_token: str
    device_id: int
    site_id: int
    site_name: str


@dataclass(frozen=True)
class HubSettings:
    """Settings site staff push from the hub (`device:settings`, docs/protocol.md); None: the
    kiosk's own value from its command line. Times in seconds."""

    lang: str | None = None  # "da" | "en": the language between visits
    idle_s: float | None = None
    countdown_s: float | None = None
    room_idle_s: float | None = None
    notice: str = ""  # shown on the attract screen

    @classmethod
    def from_payload(cls, data: Any) -> HubSettings:
        """What the hub sent, leaving out anything out of shape (the kiosk keeps its own)."""
        if not isinstance(data, dict):
            return cls()
        times = {
            name: float(value)
            for name in ("idle_s", "countdown_s", "room_idle_s")
            if isinstance(value := data.get(name), int | float)
            and not isinstance(value, bool)
            and 0 < value <= 86400
        }
        lang = data.get("lang") if data.get("lang") in ("da", "en") else None
        notice = data.get("notice")
        return cls(lang=lang, notice=notice[:200] if isinstance(notice, str) else "", **times)


@dataclass(frozen=True)
class OutboxItem:
    """A hub call to make once the hub is reachable, on behalf of the visit `visit_id` (None:
    on behalf of the kiosk itself)."""

    id: str
    event: str
    payload: dict[str, Any]
    visit_id: int | None
    created_at: float


class KioskState:
    """The state file in `data_dir`; every write reaches the disk before the method returns."""

    def __init__(self, data_dir: Path = DEFAULT_DATA_DIR) -> None:
        data_dir.mkdir(parents=True, exist_ok=True)
        self.path = data_dir / STATE_FILE
        self._lock = threading.Lock()
        self._db = TinyDB(self.path, storage=JSONStorage, indent=1)
        self._settings = self._db.table("settings")
        self._outbox = self._db.table("outbox")

    def close(self) -> None:
        with self._lock:
            self._db.close()

    # ---- settings and identity -------------------------------------------------------------

    def get(self, key: str, default: Any = None) -> Any:
        with self._lock:
            row = self._settings.get(Query().key == key)
        return default if row is None else row["value"]

    def set(self, key: str, value: Any) -> None:
        with self._lock:
            self._settings.upsert({"key": key, "value": value}, Query().key == key)

    def delete(self, key: str) -> None:
        with self._lock:
            self._settings.remove(Query().key == key)

    def reload(self) -> None:
        """Read the file again (after provisioning changed it while the kiosk ran)."""
        with self._lock:
            self._db.clear_cache()

    @property
    def hub_url(self) -> str | None:
        url = self.get("hub_url")
        return str(url) if url else None

    @hub_url.setter
    def hub_url(self, url: str) -> None:
        self.set("hub_url", url.rstrip("/"))

    @property
    def identity(self) -> Identity | None:
        data = self.get("identity")
        return Identity(**data) if data else None

    def store_identity(self, identity: Identity) -> None:
        self.set("identity", identity.__dict__)

    def forget_identity(self) -> None:
        """The hub refused the token (the kiosk was unpaired): pair again. The settings of the
        site it was paired with go too."""
        self.delete("identity")
        self.delete("hub_settings")

    @property
    def site_code(self) -> str:
        """The site's code from `provision install --site`, offered to the hub when pairing."""
        return str(self.get("site_code") or "")

    @site_code.setter
    def site_code(self, code: str) -> None:
        self.set("site_code", code.strip())

    @property
    def hub_settings(self) -> HubSettings:
        return HubSettings.from_payload(self.get("hub_settings"))

    def store_hub_settings(self, settings: HubSettings) -> None:
        self.set("hub_settings", settings.__dict__)

    # ---- outbox ----------------------------------------------------------------------------

    def enqueue(self, event: str, payload: dict[str, Any], visit_id: int | None) -> OutboxItem:
        item = OutboxItem(uuid.uuid4().hex, event, payload, visit_id, time.time())
        with self._lock:
            self._outbox.insert(item.__dict__)
        return item

    def outbox(self) -> list[OutboxItem]:
        """Waiting calls, oldest first."""
        with self._lock:
            rows = sorted(self._outbox.all(), key=lambda row: row.doc_id)  # insertion order
        return [OutboxItem(**row) for row in rows]

    def remove(self, item_id: str) -> None:
        with self._lock:
            self._outbox.remove(Query().id == item_id)

    def remove_visit(self, visit_id: int) -> None:
        """Drop what waits for a visit the hub no longer has (it ended it on its own)."""
        with self._lock:
            self._outbox.remove(Query().visit_id == visit_id)
