"""The room's shared document: the replica the student edits (text and whiteboard), its own socket
to the hub (DocLink, on its thread, which takes the visit's lock to read or change the replica),
and the text and strokes the snapshot shows, converted again only when the document changed."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from appliance.doc import DocReplica
from appliance.doclink import DocLink, socket_url
from appliance.visit.connection import HubLink
from appliance.visit.context import Context, VisitData
from appliance.visit.values import Stroke

T = TypeVar("T")


class Document:
    def __init__(self, ctx: Context, link: HubLink) -> None:
        self.ctx = ctx
        self.link = link
        self._cache: tuple[int, tuple[Stroke, ...], str] = (-1, (), "")

    def edit(self, change: Callable[[DocReplica], T]) -> T | None:
        """A local change; the replica hands its update to the room's DocLink."""
        with self.ctx.lock:
            v = self.ctx.v
            if v.phase != "in_room" or v.doc is None:
                return None
            result = change(v.doc)
            v.doc_version += 1
            return result

    def link_doc(self, v: VisitData, doc_url: str) -> None:
        """The document's socket, with the ticket of the `room:join` just answered: started on
        the first, told the fresh address on later ones (it connects at once if it was down)."""
        url = socket_url(self.link.hub().url, doc_url)
        with self.ctx.lock:
            if v.doc is None or v.phase != "in_room":
                return
            if v.doc_link is None:
                v.doc_link = DocLink(
                    v.doc,
                    self.ctx.lock,
                    changed=lambda: self._changed(v),
                    renew=lambda: self.ctx.submit(self._renew_ticket, v),
                )
            v.doc_link.use(url)

    def close_link(self, v: VisitData) -> None:
        """Close the document's socket (the document stays readable)."""
        with self.ctx.lock:
            if v.doc_link is not None:
                v.doc_link.close()
                v.doc_link = None

    def view(self) -> tuple[str, tuple[Stroke, ...]]:
        """Text and strokes, converted again only when the document changed (under the lock)."""
        v = self.ctx.v
        if v.doc is None:
            return "", ()
        version, strokes, text = self._cache
        if version != v.doc_version:
            text = v.doc.text
            strokes = tuple(Stroke(*s) for s in v.doc.strokes())
            self._cache = (v.doc_version, strokes, text)
        return text, strokes

    def forget(self) -> None:
        """The visit is over: drop the converted copy too (under the lock)."""
        self._cache = (-1, (), "")

    @staticmethod
    def _changed(v: VisitData) -> None:
        """The hub changed the document (called under the lock): draw it again."""
        v.doc_version += 1

    def _renew_ticket(self, v: VisitData) -> None:
        """The hub refused the document socket's ticket (4401): a fresh one from `room:join`."""
        if v is self.ctx.v and v.phase == "in_room" and v.room_id is not None:
            answer = self.link.visit_call("room:join", {"room_id": v.room_id})
            self.link_doc(v, str(answer["doc_url"]))
