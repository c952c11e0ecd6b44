"""The operator's view of a real hub: /readyz with its database and Redis up and down, /metrics
counting a real request, offer and room, who may read /metrics, and JSON log lines that name
nobody."""

from __future__ import annotations

import json
import re

import pytest
import requests
from sqlalchemy import text

from hub.db import Database
from tests.conftest import both_backends, free_port, start_hub, stop
from tests.hubclient import Client

TOKEN = "metrics-test-token"


def metric(hub_url: str, name: str, **labels: str) -> float:
    """One sample of /metrics (0 if the series is not there yet)."""
    text = requests.get(hub_url + "/metrics", timeout=5).text
    wanted = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    pattern = re.escape(name) + (r"\{" + re.escape(wanted) + r"\}" if labels else "") + r" (\S+)"
    found = re.search(r"^" + pattern + r"$", text, re.MULTILINE)
    return float(found.group(1)) if found else 0.0


def catalog_subject(hub_url: str) -> int:
    catalog = requests.get(hub_url + "/api/catalog", timeout=5).json()
    return int(next(s["id"] for s in catalog["subjects"] if s["key"] == "math"))


def test_ready_with_its_database(hub):
    answer = requests.get(hub.url + "/readyz", timeout=5)
    assert answer.status_code == 200
    assert answer.json() == {"ok": True, "checks": {"database": "ok"}}


def test_ready_with_redis_and_not_without_it(database_url, tmp_path):
    redis_up = {"LEKTIECAFE_MESSAGE_QUEUE": "redis://127.0.0.1:6379/0"}
    process, url, _log = start_hub(database_url, tmp_path, redis_up)
    try:
        answer = requests.get(url + "/readyz", timeout=5)
        assert answer.status_code == 200
        assert answer.json()["checks"] == {"database": "ok", "redis": "ok"}
    finally:
        stop(process)

    redis_down = {"LEKTIECAFE_MESSAGE_QUEUE": f"redis://127.0.0.1:{free_port()}/0"}
    process, url, _log = start_hub(database_url, tmp_path, redis_down)
    try:
        before = metric(url, "lektiecafe_http_server_errors_total", status="503")
        answer = requests.get(url + "/readyz", timeout=10)
        assert answer.status_code == 503
        assert answer.json()["down"] == ["redis"]
        assert answer.json()["checks"] == {"database": "ok", "redis": "down"}
        assert metric(url, "lektiecafe_http_server_errors_total", status="503") == before + 1
    finally:
        stop(process)


def test_metrics_count_a_request_its_offer_and_room(hub):
    names = {
        "made": ("lektiecafe_offers_total", {"outcome": "made"}),
        "accepted": ("lektiecafe_offers_total", {"outcome": "accepted"}),
        "opened": ("lektiecafe_rooms_opened_total", {}),
        "ended": ("lektiecafe_rooms_ended_total", {"reason": "ended"}),
        "asked": ("lektiecafe_socket_event_seconds_count", {"event": "help:request"}),
        "not_found": (
            "lektiecafe_socket_event_errors_total",
            {"event": "offer:accept", "code": "not_found"},
        ),
    }
    before = {key: metric(hub.url, name, **labels) for key, (name, labels) in names.items()}
    student, helper = hub.client("student1"), hub.client("helper1")
    helper.ok("duty:set", {"status": "available"})
    student.ok("help:request", {"subject": catalog_subject(hub.url), "grade": 9})
    offer = helper.wait_for("offer")
    assert helper.call("offer:accept", {"offer_id": 999_999})["error"]["code"] == "not_found"
    room_id = helper.ok("offer:accept", {"offer_id": offer["offer_id"]})["room_id"]
    student.wait_for("match")
    student.ok("room:join", {"room_id": room_id})
    student.ok("room:end", {"room_id": room_id})
    helper.wait_for("room:ended")

    after = {key: metric(hub.url, name, **labels) for key, (name, labels) in names.items()}
    deltas = {key: after[key] - before[key] for key in names}
    assert deltas == {
        "made": 1,
        "accepted": 1,
        "opened": 1,
        "ended": 1,
        "asked": 1,
        "not_found": 1,
    }
    text = requests.get(hub.url + "/metrics", timeout=5).text
    assert metric(hub.url, "lektiecafe_queue_length") >= 0
    assert "lektiecafe_connected_clients{role=" in text
    assert "process_resident_memory_bytes" in text


def test_metrics_are_refused_to_others(database_url, tmp_path):
    only_elsewhere = {
        "LEKTIECAFE_METRICS_ALLOW": "10.0.0.0/8",
        "LEKTIECAFE_METRICS_TOKEN": TOKEN,
    }
    process, url, _log = start_hub(database_url, tmp_path, only_elsewhere)
    try:
        assert requests.get(url + "/metrics", timeout=5).status_code == 403
        wrong = {"Authorization": "Bearer not-the-token"}
        assert requests.get(url + "/metrics", headers=wrong, timeout=5).status_code == 403
        right = {"Authorization": f"Bearer {TOKEN}"}
        answer = requests.get(url + "/metrics", headers=right, timeout=5)
        assert answer.status_code == 200 and "lektiecafe_offers_total" in answer.text
    finally:
        stop(process)


def test_metrics_through_a_proxy_are_refused_even_from_loopback(hub):
    assert requests.get(hub.url + "/metrics", timeout=5).status_code == 200
    proxied = {"X-Forwarded-Proto": "https"}
    assert requests.get(hub.url + "/metrics", headers=proxied, timeout=5).status_code == 403


def test_json_logs_parse_and_name_nobody(database_url, tmp_path):
    process, url, log = start_hub(database_url, tmp_path, {"LEKTIECAFE_LOG_FORMAT": "json"})
    try:
        token = requests.post(
            url + "/api/auth/token",
            json={"username": "student1", "password": "demo-password"},
            timeout=5,
        ).json()["token"]
        student = Client(url, token=token).connect()
        student.ok("help:request", {"subject": catalog_subject(url), "grade": 9, "note": "brøk"})
        student.close()
    finally:
        stop(process)
    lines = [line for line in log.read_text().splitlines() if line.startswith("{")]
    assert lines, "no JSON log line"
    for line in lines:
        record = json.loads(line)
        assert {"time", "level", "logger", "message"} <= record.keys()
    text = log.read_text()
    for personal in ("student1", "Elev 1", "brøk"):
        assert personal not in text


@both_backends
def test_a_database_error_never_carries_the_values_of_the_row(database_url):
    """An error is logged with its message: the statement may be shown, a child's name never."""
    db = Database(database_url)
    try:
        with pytest.raises(Exception) as failed, db.transaction() as s:
            s.execute(text("INSERT INTO no_such_table VALUES (:nickname)"), {"nickname": "Zainab"})
        assert "Zainab" not in str(failed.value)
    finally:
        db.dispose()
