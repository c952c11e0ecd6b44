"""The ICE servers handed to both sides of a room: STUN, and TURN with short-lived credentials.

TURN uses the "TURN REST API" shared-secret scheme that coturn checks with `use-auth-secret`:
the username is "<unix expiry>:<random id>" and the password base64(HMAC-SHA1(secret,
username)). coturn recomputes the password from its copy of the secret and refuses a username
whose expiry has passed, so the hub stores nothing and a leaked credential dies on its own. The
random id keeps names and user ids out of coturn's logs. coturn checks the expiry only when an
allocation is made: a call that started in time keeps its relay, and a client that needs a new
allocation later (an ICE restart after the TTL) asks the hub again (`room:join`)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from datetime import datetime
from typing import Any

from hub import clock
from hub.config import HubConfig


def ice_servers(config: HubConfig, now: datetime | None = None) -> list[dict[str, Any]]:
    """RTCIceServer entries for RTCPeerConnection; TURN only when a secret is configured."""
    servers: list[dict[str, Any]] = []
    if config.stun_urls:
        servers.append({"urls": list(config.stun_urls)})
    if config.turn_urls and config.turn_secret:
        expiry = int((now or clock.now()).timestamp()) + config.turn_ttl_s
        username = f"{expiry}:{secrets.token_hex(8)}"
        servers.append(
            {
                "urls": list(config.turn_urls),
                "username": username,
                "credential": turn_password(config.turn_secret, username),
            }
        )
    return servers


def turn_password(secret: str, username: str) -> str:
    digest = hmac.new(secret.encode(), username.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


def ice_transport_policy(config: HubConfig) -> str:
    """`relay` sends every call through TURN, so neither side learns the other's IP address."""
    return config.ice_transport_policy
