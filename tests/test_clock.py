"""The hub's test clock (hub.clock): tests move it forward over HTTP, and only tests can."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import requests

from tests.hubclient import advance_clock


def test_a_test_moves_the_hubs_clock_forward(hub):
    before = datetime.now(UTC)
    answer = requests.post(hub.url + "/api/test-only/clock", json={"advance_s": 3600}, timeout=10)
    assert answer.status_code == 200 and answer.json()["ok"] is True
    moved_to = datetime.fromisoformat(answer.json()["now"])
    assert (
        before + timedelta(hours=1) <= moved_to < datetime.now(UTC) + timedelta(hours=1, seconds=5)
    )
    advance_clock(hub.url, 60)
    assert hub.client("student1").call("test-only:settle") == {"ok": True}


@pytest.mark.parametrize("hub_env", [{"LEKTIECAFE_TEST_CLOCK": "0"}])
def test_without_the_flag_the_test_clock_is_not_there(hub):
    answer = requests.post(hub.url + "/api/test-only/clock", json={"advance_s": 3600}, timeout=10)
    assert answer.status_code == 404 and answer.json()["error"]["code"] == "not_found"
    settle = hub.client("student1").call("test-only:settle")
    assert settle["ok"] is False and settle["error"]["code"] == "not_found"


@pytest.mark.parametrize("advance_s", [0, -5, "soon", 400 * 24 * 3600])
def test_the_clock_only_moves_forward_by_a_sensible_amount(hub, advance_s):
    answer = requests.post(
        hub.url + "/api/test-only/clock", json={"advance_s": advance_s}, timeout=10
    )
    assert answer.status_code == 400 and answer.json()["error"]["code"] == "invalid"
