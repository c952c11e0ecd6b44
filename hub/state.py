"""The per-process state every part of the hub reaches through `hub_state()`."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import cast

from flask import current_app

from hub.config import HubConfig
from hub.db import Database


@dataclass
class HubState:
    config: HubConfig
    db: Database
    instance_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    # Wakes the matching loop (see hub.matching.dispatcher); a no-op until the server starts it.
    kick_matching: Callable[[], None] = lambda: None


def hub_state() -> HubState:
    return cast(HubState, current_app.extensions["lektiecafe"])
