"""Pairing a kiosk with its hub, as explicit steps with named errors. The shape is OAuth's device
authorisation grant (RFC 8628), as hub/devices implements it:

1. `request_code()`: `POST /api/devices/pair` (with the site's code from `provision install
   --site`, if any) → a secret device code for the kiosk, and a short user code with the page
   where site staff type it (`verification_uri`, and
   `verification_uri_complete` with the code in it, for the QR code).
2. The caller shows the code large, with the QR code (`PairingCode.qr`).
3. `wait_for_token()`: `POST /api/devices/pair/poll` every `interval` seconds until staff
   confirm (→ the device token), turn the kiosk down (`PairingDenied`) or the code runs out
   (`PairingExpired`). "slow_down" makes the interval longer, as the RFC says.
4. `store()`: the token and the site go into the kiosk's state; the hub connection can start.

`run()` does all four."""

from __future__ import annotations

import platform
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import segno

from appliance.hub import HubCallError, request_json
from appliance.state import Identity, KioskState


class PairingError(Exception):
    """Pairing did not succeed; `message` is for the screen, in the kiosk's language."""

    code = "pairing_failed"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class PairingExpired(PairingError):
    code = "expired_token"


class PairingDenied(PairingError):
    code = "access_denied"


class PairingCancelled(PairingError):
    code = "cancelled"


class SlowDown(PairingError):
    """The hub counted the polls as too eager: wait `interval` seconds from now on."""

    code = "slow_down"

    def __init__(self, message: str, interval: float) -> None:
        super().__init__(message)
        self.interval = interval


@dataclass(frozen=True)
class PairingCode:
    device_code: str  # the kiosk's secret; never shown
    user_code: str  # "ABCD-EFGH", shown large
    verification_uri: str
    verification_uri_complete: str
    expires_at: float  # time.monotonic() when the code runs out
    interval: float

    @property
    def qr(self) -> tuple[tuple[bool, ...], ...]:
        """The QR code of `verification_uri_complete`: rows of modules (True = dark), with the
        quiet zone around it, for the UI to draw at any size."""
        code = segno.make(self.verification_uri_complete, error="m")
        return tuple(tuple(bool(m) for m in row) for row in code.matrix_iter(scale=1, border=4))


class Pairing:
    """One pairing run against `hub_url`, with the hub's messages in `lang`."""

    def __init__(self, hub_url: str, state: KioskState, lang: str = "da") -> None:
        self.hub_url = hub_url.rstrip("/")
        self.state = state
        self.lang = lang

    def _post(self, path: str, body: dict[str, str]) -> dict[str, Any]:
        return request_json("POST", self.hub_url + path, self.lang, json=body)

    def request_code(self, name: str = "Kiosk") -> PairingCode:
        """Step 1. Raises PairingError when the hub cannot be reached or refuses."""
        try:
            answer = self._post(
                "/api/devices/pair",
                {"name": name, "model": _model(), "site_code": self.state.site_code},
            )
        except HubCallError as exc:
            raise PairingError(exc.message) from exc
        return PairingCode(
            device_code=str(answer["device_code"]),
            user_code=str(answer["user_code"]),
            verification_uri=str(answer["verification_uri"]),
            verification_uri_complete=str(answer["verification_uri_complete"]),
            expires_at=time.monotonic() + float(answer["expires_in"]),
            interval=float(answer["interval"]),
        )

    def poll_once(self, code: PairingCode) -> Identity | None:
        """One poll: the identity once staff confirmed, None while they have not. A hub that
        cannot be reached counts as "not yet": the kiosk keeps its code until it runs out."""
        try:
            answer = self._post("/api/devices/pair/poll", {"device_code": code.device_code})
        except HubCallError as exc:
            if exc.code in ("authorization_pending", "offline", "timeout"):
                return None
            if exc.code == "slow_down":
                raise SlowDown(exc.message, float(exc.details.get("interval", 0))) from exc
            if exc.code == "expired_token":
                raise PairingExpired(exc.message) from exc
            if exc.code == "access_denied":
                raise PairingDenied(exc.message) from exc
            raise PairingError(exc.message) from exc
        return identity_from_answer(answer)

    def wait_for_token(self, code: PairingCode, stop: threading.Event) -> Identity:
        """Step 3: poll every `interval` seconds until there is an answer. `stop` cancels."""
        interval = code.interval
        while True:
            if stop.wait(interval):
                raise PairingCancelled("cancelled")
            if time.monotonic() >= code.expires_at:
                raise PairingExpired("expired")
            try:
                identity = self.poll_once(code)
            except SlowDown as exc:
                interval = max(interval + 5, exc.interval)  # RFC 8628 §3.5
                continue
            if identity is not None:
                return identity

    def store(self, identity: Identity) -> None:
        """Step 4."""
        self.state.hub_url = self.hub_url
        self.state.store_identity(identity)

    def run(
        self, show: Callable[[PairingCode], None], stop: threading.Event, name: str = "Kiosk"
    ) -> Identity:
        """The whole flow; `show(code)` puts the code on the screen."""
        code = self.request_code(name)
        show(code)
        identity = self.wait_for_token(code, stop)
        self.store(identity)
        return identity


def identity_from_answer(answer: dict[str, Any]) -> Identity:
    """The device's identity from the hub's answer to a confirmed poll (`device_token`,
    `device_id`, `site`): what `Pairing.store()` keeps, and what a test or benchmark that paired
    a kiosk itself stores before starting it."""
    site = answer["site"]
    return Identity(
        device_token=str(answer["device_token"]),
        device_id=int(answer["device_id"]),
        site_id=int(site["id"]),
        site_name=str(site["name"]),
    )


def _model() -> str:
    """What the device is, for the staff's list of kiosks (e.g. "Raspberry Pi 5 Model B")."""
    try:
        with open("/proc/device-tree/model", encoding="utf-8", errors="replace") as f:
            return f.read().strip("\x00\n ")[:80]
    except OSError:
        return f"{platform.system()} {platform.machine()}"[:80]
