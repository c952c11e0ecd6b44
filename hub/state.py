"""The per-process state every part of the hub reaches through `hub_state()`."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import cast

from flask import current_app

from hub.bus import Bus, make_bus
from hub.config import HubConfig
from hub.db import Database


@dataclass
class HubState:
    config: HubConfig
    db: Database
    instance_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    # Wakes the matching loop (see hub.matching.dispatcher); a no-op until the server starts it.
    kick_matching: Callable[[], None] = lambda: None
    # Waits until a matching pass after the call has finished (Dispatcher.settle; tests only).
    settle_matching: Callable[[float], bool] = lambda _timeout_s: True
    # To the other hub processes, Socket.IO's emits included (hub.bus); from `message_queue`.
    bus: Bus = field(init=False)

    def __post_init__(self) -> None:
        self.bus = make_bus(self.config.message_queue, self.instance_id)


def hub_state() -> HubState:
    return cast(HubState, current_app.extensions["lektiecafe"])
