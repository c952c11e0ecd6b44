"""Messages to send once a unit of work has committed. Domain code returns them; the edge sends
them, so nothing is announced that was not stored, and nothing is sent while a transaction is open.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from hub.extensions import socketio


@dataclass(frozen=True)
class Notice:
    user_id: int
    event: str
    payload: dict[str, Any]


def user_room(user_id: int) -> str:
    return f"user:{user_id}"


def deliver(notices: list[Notice]) -> None:
    for notice in notices:
        socketio.emit(notice.event, notice.payload, to=user_room(notice.user_id))
