"""The room document socket's messages (docs/protocol.md, "The shared document socket"), defined
once for the hub (hub.rooms.docsync), the kiosk (appliance.doclink) and the benchmarks: the
y-protocols sync messages, framed with pycrdt's helpers, and the hub's own answers STORED and
ERROR. The browser's side of the same bytes is hub/static/js/doc.js.

Here, not under hub/: the kiosk installs without the hub's dependencies; both have pycrdt."""

from __future__ import annotations

import json
from typing import NamedTuple

import pycrdt

SYNC, AWARENESS = pycrdt.YMessageType.SYNC, pycrdt.YMessageType.AWARENESS
STEP1, STEP2, UPDATE = (
    pycrdt.YSyncMessageType.SYNC_STEP1,
    pycrdt.YSyncMessageType.SYNC_STEP2,
    pycrdt.YSyncMessageType.SYNC_UPDATE,
)
# The hub's own message types, after y-protocols' 0 (sync) and 1 (awareness).
STORED = 100  # [100, varuint seq]: one step 2 or update of this connection is stored (0: empty)
ERROR = 101  # [101, varstring JSON {"code", "message"}]: one was refused
EMPTY_UPDATE = b"\x00\x00"  # a Yjs v1 update that changes nothing
# Close codes (4000-4999 are the application's own).
CLOSE_UNAUTHORISED = 4401  # no ticket, a bad one, or another room's: join the room again
CLOSE_FORBIDDEN = 4403  # not a member of the room: trying again will not help
CLOSE_TOO_SLOW = 4408  # the client read too slowly
CLOSE_STORAGE = 1011  # storing failed: reconnect, the sync exchange sends it again


class Sync(NamedTuple):
    """A sync message: STEP1 (payload: a state vector), STEP2 or UPDATE (payload: an update)."""

    kind: int
    payload: bytes


class Stored(NamedTuple):
    seq: int  # the stored update's place in the room's document (0: it was empty)


class Refused(NamedTuple):
    code: str
    message: str


class Unreadable(ValueError):
    """Not a message of this protocol; `str(exc)` says which part could not be read."""


# An update message is pycrdt.create_update_message(update); pycrdt's public names have no maker
# of a step 1 from a bare state vector or of a step 2 from a bare update, which the hub needs
# (it keeps the stored document as bytes, not as a Doc).


def step1_message(state_vector: bytes) -> bytes:
    return bytes([SYNC, STEP1]) + pycrdt.write_message(state_vector)


def step2_message(update: bytes) -> bytes:
    return bytes([SYNC, STEP2]) + pycrdt.write_message(update)


def stored_message(seq: int) -> bytes:
    return bytes([STORED]) + pycrdt.write_var_uint(seq)


def error_message(code: str, message: str) -> bytes:
    body = json.dumps({"code": code, "message": message}).encode()
    return bytes([ERROR]) + pycrdt.write_message(body)


def read(data: bytes) -> Sync | Stored | Refused | None:
    """One binary message off the socket; None for awareness (not used here)."""
    if len(data) < 2:
        raise Unreadable("not a sync message")
    if data[0] == AWARENESS:
        return None
    try:
        if data[0] == SYNC and data[1] in (STEP1, STEP2, UPDATE):
            return Sync(data[1], pycrdt.read_message(data[2:]))
        if data[0] == STORED:
            return Stored(pycrdt.Decoder(data[1:]).read_var_uint())
        if data[0] == ERROR:
            error = json.loads(pycrdt.read_message(data[1:]))
            return Refused(str(error["code"]), str(error["message"]))
    except (AssertionError, IndexError, RuntimeError) as exc:
        raise Unreadable("length") from exc
    except (ValueError, TypeError, KeyError) as exc:
        raise Unreadable("error") from exc
    raise Unreadable("type")
