"""What the parts of a visit share: the lock, the visit under way, its language and error, the
kiosk's state file, the hub's settings, and the one worker thread that runs everything that talks
to the hub."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, TypeVar

from appliance.doc import DocReplica
from appliance.doclink import DocLink
from appliance.hub import HubCallError
from appliance.state import HubSettings, KioskState
from appliance.visit.values import ChatLine, ErrorView, Lang, Options, Phase

log = logging.getLogger(__name__)
T = TypeVar("T")


@dataclass
class VisitData:
    """Everything of one visit in memory; replaced by a fresh one when the visit finishes, so
    nothing of a student outlives their visit (the outbox on disk excepted, see state.py)."""

    phase: Phase = "idle"
    visit_id: int | None = None
    visit_token: str = ""
    nickname: str = ""
    grade: int = 0
    lang: Lang = "da"
    request_id: int | None = None
    queue_position: int | None = None
    eta_s: int | None = None
    next_shift: str | None = None
    restored: bool = True  # a queue:update or room came since the last resume
    breakroom: list[ChatLine] = field(default_factory=list)
    room_id: str | None = None
    peer_name: str = ""
    peer_present: bool = False
    chat: list[ChatLine] = field(default_factory=list)
    doc: DocReplica | None = None
    doc_link: DocLink | None = None
    doc_version: int = 0
    peer_video: str = "full"  # the helper's video as its rtc:quality said
    peer_video_reason: str = "network"
    room_ended_reason: str | None = None
    room_ended_by: str | None = None


class Context:
    """Shared by the facade and its parts. `lock` guards `v`, `lang` and `error`; `v` is replaced
    (never emptied in place) when a visit starts or finishes, so work queued for the old visit can
    tell it is stale with `v is ctx.v`.

    The worker runs everything that talks to the hub over Socket.IO, one thing at a time and in
    order: the UI's requests and the hub's events alike. So a `room:join` answer is in place
    before the signals that follow it, and the visit's state never sees two changes at once."""

    def __init__(self, options: Options) -> None:
        self.options = options
        self.lock = threading.RLock()
        self.v = VisitData(lang=options.lang)
        self.lang: Lang = options.lang
        self.error: ErrorView | None = None
        self.busy = 0
        self.state: KioskState | None = None  # from Visit.open()
        self.settings = HubSettings()  # pushed from the hub, kept in the state
        self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="visit")

    def home_lang(self) -> Lang:
        """The language between visits: the hub's setting, else the command line's."""
        return "en" if (self.settings.lang or self.options.lang) == "en" else "da"

    def run(self, work: Callable[..., T], *args: Any, quiet: bool = False) -> Future[T]:
        """`work(*args)` on the worker; its HubCallError also becomes the snapshot's error."""
        with self.lock:
            self.busy += 1
            if not quiet:
                self.error = None

        def task() -> T:
            try:
                return work(*args)
            except HubCallError as exc:
                with self.lock:
                    self.error = ErrorView(exc.code, exc.message)
                raise
            finally:
                with self.lock:
                    self.busy -= 1

        return self._worker.submit(task)

    def submit(self, work: Callable[..., Any], *args: Any) -> None:
        """Background work on the worker (after close() there is none)."""
        try:
            self._worker.submit(self._guarded, work, *args)
        except RuntimeError:
            log.debug("not running %s: closed", work)

    def _guarded(self, work: Callable[..., Any], *args: Any) -> None:
        """Failures of background work are logged, never raised into nowhere."""
        try:
            work(*args)
        except HubCallError as exc:
            log.info("%s: %s", getattr(work, "__name__", work), exc)
        except Exception:
            log.exception("%s failed", getattr(work, "__name__", work))

    def drain(self, timeout: float) -> None:
        """Wait until the work queued so far is done; raises when it takes longer."""
        self._worker.submit(lambda: None).result(timeout=timeout)

    def shutdown(self) -> None:
        self._worker.shutdown(wait=True, cancel_futures=True)
