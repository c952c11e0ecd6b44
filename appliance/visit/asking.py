"""Asking for help: the visit's start (nickname and grade), what can be asked about, the request
with its photo, the place in the queue while waiting (and the break room's history), cancelling,
and noticing a place in the queue that was lost while the connection was down."""

from __future__ import annotations

import threading
from typing import Any

from appliance.hub import HubCallError, unreachable
from appliance.texts import _, translate
from appliance.visit.chat import Chat
from appliance.visit.connection import HubLink
from appliance.visit.context import Context, VisitData
from appliance.visit.outbox import Outbox
from appliance.visit.values import Catalog, ErrorView, Language, Subject

RESTORE_WAIT_S = 5.0  # after a resume, the hub's queue:update or room:rejoined comes within this


class Asking:
    def __init__(self, ctx: Context, link: HubLink, chat: Chat, outbox: Outbox) -> None:
        self.ctx = ctx
        self.link = link
        self.chat = chat
        self.outbox = outbox
        self._catalog: Catalog | None = None
        link.on("queue:update", self._queue_update)

    def start(self, nickname: str, grade: int) -> None:
        ctx = self.ctx
        if ctx.v.phase != "idle":
            raise HubCallError("conflict", "A visit is already under way.")
        conn = self.link.wait_connected()
        self.outbox.flush()
        if self.outbox.waiting():
            raise unreachable("offline", ctx.lang)
        epoch = conn.epoch
        payload = {"nickname": nickname, "grade": grade}
        try:
            answer = conn.call("visit:start", payload)
        except HubCallError as exc:
            if exc.code != "conflict" or "visit_id" not in exc.details:
                raise
            conn.call("visit:end")  # a visit the kiosk lost track of
            answer = conn.call("visit:start", payload)
        visit_id = int(answer["visit_id"])
        with ctx.lock:
            ctx.v = VisitData(
                phase="asking",
                visit_id=visit_id,
                visit_token=str(answer["visit_token"]),
                nickname=nickname,
                grade=grade,
                lang=ctx.lang,
            )
            self.link.act_for(epoch, visit_id)
            ctx.error = None

    def catalog(self) -> Catalog:
        """Subjects and languages in Danish and English (fetched once)."""
        if self._catalog is not None:
            return self._catalog
        conn = self.link.hub()
        by_lang = {lang: conn.http("GET", "/api/catalog", lang=lang) for lang in ("da", "en")}
        da, en = by_lang["da"], by_lang["en"]
        en_subjects = {s["id"]: s["name"] for s in en["subjects"]}
        en_languages = {x["code"]: x["name"] for x in en["languages"]}
        self._catalog = Catalog(
            subjects=tuple(
                Subject(
                    int(s["id"]),
                    str(s.get("key", "")),
                    {"da": s["name"], "en": en_subjects.get(s["id"], s["name"])},
                )
                for s in da["subjects"]
            ),
            languages=tuple(
                Language(x["code"], {"da": x["name"], "en": en_languages.get(x["code"], x["name"])})
                for x in da["languages"]
            ),
            grades=tuple(int(g) for g in da["grades"]),
        )
        return self._catalog

    def ask(
        self, subject_id: int, language: str | None, note: str, photo: bytes | None, scan: bool
    ) -> None:
        v = self.ctx.v
        if v.phase != "asking":
            raise HubCallError("conflict", "Start a visit first.")
        conn = self.link.hub()
        attachments = [conn.upload_attachment(photo, v.visit_token, scan=scan)] if photo else []
        answer = self.link.visit_call(
            "help:request",
            {
                "subject": subject_id,
                "grade": v.grade,
                "language": language,
                "note": note,
                "attachment_ids": attachments,
            },
        )
        with self.ctx.lock:
            v.phase, v.request_id = "waiting", int(answer["request_id"])
            v.queue_position, v.eta_s = answer.get("position"), answer.get("eta_s")
            v.next_shift, v.breakroom = answer.get("next_shift"), []
        try:
            history = self.link.visit_call("breakroom:history")["messages"]
        except HubCallError:
            return  # the break room stays empty until its next message
        for message in history:
            self.chat.got_line(v.breakroom, message)

    def cancel(self) -> None:
        v = self.ctx.v
        if v.phase != "waiting" or v.request_id is None:
            return
        self.link.visit_call("help:cancel", {"request_id": v.request_id})
        with self.ctx.lock:
            v.phase, v.request_id, v.queue_position, v.eta_s = "asking", None, None, None
            v.breakroom = []

    def expect_restore(self, v: VisitData) -> None:
        """After a resume while waiting: the hub tells a returning student its place soon; if it
        does not, the request is gone and the student asks again."""
        timer = threading.Timer(RESTORE_WAIT_S, self._check_restored, args=(v,))
        timer.daemon = True
        timer.start()

    def _check_restored(self, v: VisitData) -> None:
        ctx = self.ctx

        def check() -> None:
            if v is ctx.v and v.phase == "waiting" and not v.restored:
                with ctx.lock:
                    v.phase, v.request_id, v.queue_position, v.eta_s = "asking", None, None, None
                    message = translate(
                        _(
                            "Your place in the queue was lost while the connection was down. "
                            "Please ask again."
                        ),
                        ctx.lang,
                    )
                    ctx.error = ErrorView("request_lost", message)

        ctx.submit(check)

    def _queue_update(self, data: dict[str, Any]) -> None:
        v = self.ctx.v
        if data.get("request_id") == v.request_id:
            with self.ctx.lock:
                v.queue_position, v.eta_s = data.get("position"), data.get("eta_s")
                v.next_shift, v.restored = data.get("next_shift"), True
