"""Pairing the kiosk with the hub: a code to show until site staff confirm it (appliance.pairing
does the talking), replaced by a fresh one when it runs out, and what the snapshot shows of it."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import replace
from typing import Literal

from appliance.pairing import (
    Pairing,
    PairingCancelled,
    PairingCode,
    PairingDenied,
    PairingError,
    PairingExpired,
)
from appliance.visit.context import Context
from appliance.visit.values import PairingView


class KioskPairing:
    """Whether the kiosk is paired, and the pairing under way (on a thread of its own: waiting
    for staff takes minutes and must not hold up the worker)."""

    def __init__(self, ctx: Context, connect: Callable[[str, str], None]) -> None:
        """`connect(hub_url, device_token)` starts the hub connection once paired."""
        self.ctx = ctx
        self.paired = False  # a copy of "the state has an identity": snapshot() runs per frame
        self._connect = connect
        self._view: PairingView | None = None
        self._code: PairingCode | None = None
        self._stop = threading.Event()

    def pair(self, name: str) -> Future[None]:
        future: Future[None] = Future()
        self._stop.clear()
        threading.Thread(
            target=self._pair, args=(name, future), name="pairing", daemon=True
        ).start()
        return future

    def stop(self) -> None:
        self._stop.set()

    def forget(self) -> None:
        """The hub no longer knows the kiosk (it was unpaired): forget the identity; the UI pairs
        again."""
        if self.ctx.state is not None:
            self.ctx.state.forget_identity()
        self.paired = False
        with self.ctx.lock:
            self._view = None

    def view(self) -> PairingView | None:
        """What to show now, with the seconds the code has left."""
        view, code = self._view, self._code
        if view is None or code is None:
            return view
        return replace(view, expires_in_s=max(0.0, code.expires_at - time.monotonic()))

    def _pair(self, name: str, future: Future[None]) -> None:
        state = self.ctx.state
        url = self.ctx.options.hub_url or (state.hub_url if state else None)
        if state is None or not url:
            self._show(PairingView("failed", message="No hub address is set."))
            future.set_exception(PairingError("No hub address is set."))
            return
        pairing = Pairing(url, state, self.ctx.lang)
        while not self._stop.is_set():
            self._show(PairingView("requesting"))
            try:
                code = pairing.request_code(name)
                self._code = code
                self._show(
                    PairingView(
                        "waiting",
                        user_code=code.user_code,
                        verification_uri=code.verification_uri,
                        verification_uri_complete=code.verification_uri_complete,
                        qr=code.qr,
                    )
                )
                identity = pairing.wait_for_token(code, self._stop)
            except PairingExpired:
                continue  # a fresh code at once
            except PairingError as exc:
                status: Literal["denied", "failed"] = (
                    "denied" if isinstance(exc, PairingDenied) else "failed"
                )
                self._show(PairingView(status, message=exc.message))
                future.set_exception(exc)
                return
            pairing.store(identity)
            self.paired = True
            self._show(PairingView("paired"))
            self._connect(url, identity.device_token)
            future.set_result(None)
            return
        future.set_exception(PairingCancelled("cancelled"))

    def _show(self, view: PairingView) -> None:
        with self.ctx.lock:
            self._view = view
            if view.status != "waiting":
                self._code = None
