"""TURN credentials by the TURN REST API shared-secret scheme, checked against OpenSSL's HMAC."""

from __future__ import annotations

import re
import subprocess
from datetime import UTC, datetime

import pytest

from hub.config import HubConfig, load_config
from hub.rooms.ice import ice_servers, ice_transport_policy, turn_password

TURN = HubConfig(
    stun_urls=("stun:turn.example.org:3478",),
    turn_urls=("turn:turn.example.org:3478?transport=udp", "turn:turn.example.org:3478"),
    turn_secret="north-sea-secret",
    turn_ttl_s=600,
)


def openssl_hmac_sha1_base64(secret: str, message: str) -> str:
    digest = subprocess.run(
        ["openssl", "dgst", "-sha1", "-hmac", secret, "-binary"],
        input=message.encode(),
        capture_output=True,
        check=True,
    ).stdout
    return (
        subprocess.run(["base64"], input=digest, capture_output=True, check=True)
        .stdout.decode()
        .strip()
    )


def test_the_password_is_the_base64_hmac_sha1_of_the_username():
    # Computed once with: printf %s 1700003600:0123456789abcdef |
    #   openssl dgst -sha1 -hmac north-sea-secret -binary | base64
    assert turn_password("north-sea-secret", "1700003600:0123456789abcdef") == (
        "0X5ssTDToF/1MANJEoMePbKxejg="
    )


def test_turn_entry_has_an_opaque_username_expiring_after_the_ttl():
    now = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)
    stun, turn = ice_servers(TURN, now)
    assert stun == {"urls": ["stun:turn.example.org:3478"]}
    assert turn["urls"] == list(TURN.turn_urls)
    username = re.fullmatch(r"(\d+):[0-9a-f]{16}", turn["username"])  # expiry, random id
    assert username
    assert int(username[1]) == int(now.timestamp()) + 600
    assert turn["credential"] == openssl_hmac_sha1_base64("north-sea-secret", turn["username"])


def test_credentials_expire_in_the_future_and_differ_per_call():
    first, second = ice_servers(TURN)[1], ice_servers(TURN)[1]
    now = datetime.now(UTC).timestamp()
    assert now < int(first["username"].split(":")[0]) <= now + 600 + 1
    assert first["username"] != second["username"]


@pytest.mark.parametrize(
    "config",
    [
        HubConfig(turn_urls=("turn:turn.example.org:3478",)),  # no secret
        HubConfig(turn_secret="north-sea-secret"),  # no URL
    ],
)
def test_no_turn_entry_without_both_urls_and_secret(config):
    assert ice_servers(config) == []


def test_relay_policy_needs_turn_and_is_handed_out():
    assert ice_transport_policy(HubConfig()) == "all"
    relay = HubConfig(
        turn_urls=TURN.turn_urls, turn_secret=TURN.turn_secret, ice_transport_policy="relay"
    )
    assert ice_transport_policy(relay) == "relay"
    with pytest.raises(ValueError, match="needs turn_urls"):
        HubConfig(ice_transport_policy="relay", turn_urls=TURN.turn_urls)
    with pytest.raises(ValueError, match="'all' or 'relay'"):
        HubConfig(ice_transport_policy="direct")


def test_turn_settings_come_from_the_environment(monkeypatch):
    monkeypatch.setenv("LEKTIECAFE_TURN_URLS", "turn:a.example:3478, turns:a.example:443")
    monkeypatch.setenv("LEKTIECAFE_TURN_SECRET", "s3")
    monkeypatch.setenv("LEKTIECAFE_TURN_TTL_S", "120")
    monkeypatch.setenv("LEKTIECAFE_ICE_TRANSPORT_POLICY", "relay")
    config = load_config()
    assert config.turn_urls == ("turn:a.example:3478", "turns:a.example:443")
    assert (config.turn_secret, config.turn_ttl_s, config.ice_transport_policy) == (
        "s3",
        120,
        "relay",
    )
