"""The ICE servers handed to both sides of a room."""

from __future__ import annotations

from typing import Any

from hub.config import HubConfig


def ice_servers(config: HubConfig) -> list[dict[str, Any]]:
    return [{"urls": list(config.stun_urls)}] if config.stun_urls else []
