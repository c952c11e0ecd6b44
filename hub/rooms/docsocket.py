"""The room document's WebSocket (see hub.rooms.docsync and docs/protocol.md, "The shared
document"): a thin edge that checks the ticket and membership once, then hands every message to
the process's DocSync."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, current_app, request
from flask_babel import gettext as _
from simple_websocket import ConnectionClosed

from hub.accounts.access import load_identity
from hub.errors import HubError
from hub.extensions import sock
from hub.rooms import docsync, service
from hub.state import hub_state
from lektiecafe import ysync

bp = Blueprint("room_doc", __name__)


def doc_sync() -> docsync.DocSync:
    """This process's document sync, made on first use."""
    extensions = current_app.extensions
    if "lektiecafe.doc_sync" not in extensions:
        state = hub_state()
        extensions["lektiecafe.doc_sync"] = docsync.DocSync(
            current_app._get_current_object(),  # type: ignore[attr-defined]
            state.db,
            state.config,
            docsync.Channels(state.bus),
        )
    sync: docsync.DocSync = extensions["lektiecafe.doc_sync"]
    return sync


@sock.route("/rooms/<room_id>/doc", bp=bp)
def room_doc(ws: Any, room_id: str) -> None:
    state = hub_state()
    ticket = docsync.read_ticket(state.config, request.args.get("ticket", ""))
    identity = load_identity(ticket.user_id) if ticket is not None else None
    if ticket is None or identity is None or ticket.room_id != room_id:
        ws.close(ysync.CLOSE_UNAUTHORISED, _("Please join the room again."))
        return
    try:
        with state.db.transaction() as s:
            room = service.member_room(s, identity, room_id)
            stored, _seq = service.document_state(s, room.id)
    except HubError as exc:
        ws.close(ysync.CLOSE_FORBIDDEN, exc.message)
        return
    sync = doc_sync()
    conn = docsync.DocConnection(ws, ticket)
    sync.channels.add(conn)
    try:
        conn.send(docsync.step1_for(stored))
        while True:
            data = ws.receive()
            try:
                message = docsync.read_client_message(data)
            except HubError as exc:
                conn.send(docsync.error_message(exc))
                continue
            if message is not None:
                sync.receive(conn, message)
    except ConnectionClosed:
        pass
    finally:
        sync.channels.remove(conn)
        conn.finish()
