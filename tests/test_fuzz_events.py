"""Every socket event's payload, fuzzed: hypothesis sends arbitrary JSON (nothing, numbers, huge
strings, nested objects and lists, a wrong type in each field of the event's payload model, extra
keys) over a real Socket.IO connection, as a role the event is for, from inside a real room. The
hub answers every one with `{"ok": true, ...}` or `{"ok": false, "error": {"code", "message"}}`
and never "internal" (what a handler's crash becomes), keeps the connection and stays up, and a
new room works afterwards."""

from __future__ import annotations

import inspect
import typing
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

from hub import socket_features
from hub.realtime.events import registered_events
from tests.kiosks import paired_kiosk
from tests.test_access import EVENTS, USERS
from tests.test_matching import ask, on_duty
from tests.test_rooms import matched

EXAMPLES = 50  # per event: about 1,000 calls in all, in well under 90 s

SCALARS = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(min_value=2**63 - 2, max_value=2**70)  # past a database integer
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=40)
    | st.sampled_from(["", " ", "\x00", "\u202e", "ok", "r", "1", "-1", "available", "offer"])
    | st.integers(min_value=1, max_value=60_000).map(lambda n: "æ" * n)  # up to ~120 kB
)
JSON = st.recursive(
    SCALARS,
    lambda inner: (
        st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=10), inner, max_size=5)
    ),
    max_leaves=20,
)


class _Recorder:
    """Stands in for the Socket.IO server: what `SocketEvents.register` binds to each event."""

    def __init__(self) -> None:
        self.handlers: dict[str, Any] = {}

    def on_event(self, event: str, handler: Any) -> None:
        self.handlers[event] = handler


def payload_models() -> dict[str, type[BaseModel]]:
    """Each event's payload model: the type of its handler's second parameter."""
    recorder = _Recorder()
    for feature in socket_features():
        feature.events.register(recorder)
    models = {}
    for event, handler in recorder.handlers.items():
        fn = inspect.unwrap(handler)
        data = list(inspect.signature(fn).parameters)[1]
        models[event] = typing.get_type_hints(fn)[data]
    return models


MODELS = payload_models()


HOSTILE_TEXT = (
    st.sampled_from(
        [
            "",
            " \t\n",
            "\x00",
            "a\x00b",
            "\u202eevil.exe",  # right-to-left override
            "<script>alert(1)</script>",
            "'; DROP TABLE users; --",
            "%s%s%n{0}{}",
            "../../../etc/passwd",
            "\U0001f642" * 100,
            "\uffff\ufeff",
        ]
    )
    | st.text(max_size=400)
    | st.integers(min_value=300, max_value=120_000).map(lambda n: "x" * n)
)


def payloads(event: str, real: dict[str, Any]) -> st.SearchStrategy[Any]:
    """Anything at all; the event's well-formed payload (the test table's, with the room's real
    id) with one field wrong, missing or added; with hostile texts in its text fields; and any
    of these with extra keys."""
    model = MODELS[event]
    base = {**EVENTS[event][1], **{k: v for k, v in real.items() if k in model.model_fields}}
    names = sorted(set(model.model_fields) | set(base))
    wrong = JSON | st.just(_MISSING)
    one_wrong = (
        st.tuples(st.sampled_from(names), wrong).map(lambda nv: _with(base, *nv))
        if names
        else st.just(base)
    )
    texts = st.fixed_dictionaries(
        {
            k: (st.just(v) | HOSTILE_TEXT) if isinstance(v, str) else st.just(v)
            for k, v in base.items()
        }
    )
    extra = st.dictionaries(st.text(max_size=12), JSON, max_size=3)
    with_extra = st.builds(lambda more, shaped: {**more, **shaped}, extra, one_wrong | texts)
    return JSON | one_wrong | texts | with_extra


_MISSING = object()


def _with(base: dict[str, Any], name: str, value: Any) -> dict[str, Any]:
    changed = {k: v for k, v in base.items() if k != name}
    if value is not _MISSING:
        changed[name] = value
    return changed


def assert_answered(event: str, payload: Any, answer: Any) -> None:
    assert isinstance(answer, dict), (event, payload, answer)
    if answer.get("ok") is True:
        return
    assert answer.get("ok") is False and set(answer) == {"ok", "error"}, (event, answer)
    error = answer["error"]
    assert isinstance(error, dict) and {"code", "message"} <= set(error) <= {
        "code",
        "message",
        "details",
    }, (event, answer)
    assert isinstance(error["code"], str) and error["code"], (event, answer)
    assert isinstance(error["message"], str) and error["message"], (event, answer)
    assert error["code"] != "internal", f"{event} crashed on {payload!r}: see the hub's log"


def fuzz(event: str, client: Any, strategy: st.SearchStrategy[Any]) -> None:
    @given(payload=strategy)
    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    def answers(payload: Any) -> None:
        answer = client.sio.call(event, payload, timeout=10)
        assert_answered(event, payload, answer)
        assert client.sio.connected, f"the hub dropped the connection on {event} {payload!r}"

    answers()


def test_every_event_answers_every_payload_and_the_hub_stays_usable(hub):
    assert set(MODELS) == set(registered_events()) == set(EVENTS)
    student, helper, room_id = matched(hub, "student1", "helper1")
    clients = {"student": student, "helper": helper, "kiosk": paired_kiosk(hub)}
    for role in {r for allowed, _payload in EVENTS.values() for r in allowed} - set(clients):
        clients[role] = hub.client(USERS[role])
    real = {"room_id": room_id}

    # room:end last: until then the room is open, so the room events get past "which room".
    for event, (allowed, _payload) in sorted(EVENTS.items(), key=lambda e: e[0] == "room:end"):
        client = clients[sorted(allowed)[0]]

        fuzz(event, client, payloads(event, real))
        assert hub.process.poll() is None, f"the hub process died during {event}"

    # The hub still matches a student and a helper into a room, and chat goes through (the
    # fuzzing may have left requests of the kiosk's visit or of student1 waiting: declined).
    helper.call("duty:set", {"status": "off"})
    student2, helper2 = hub.client("student2"), hub.client("helper2")
    on_duty(helper2)
    ask(student2, hub, note="after the fuzzing")
    offer = helper2.wait_for("offer")
    while offer["request"].get("note") != "after the fuzzing":
        helper2.call("offer:decline", {"offer_id": offer["offer_id"]})
        offer = helper2.wait_for("offer")
    room2 = helper2.ok("offer:accept", {"offer_id": offer["offer_id"]})["room_id"]
    assert student2.wait_for("match")["room_id"] == room2
    student2.ok("room:join", {"room_id": room2})
    helper2.ok("room:join", {"room_id": room2})
    sent = student2.ok("chat:send", {"room_id": room2, "text": "hej", "client_msg_id": "after"})
    message = helper2.wait_for("chat:message", where=lambda m: m["client_msg_id"] == "after")
    assert message["text"] == "hej" and message["msg_id"] == sent["msg_id"]
    assert "Traceback" not in hub.log.read_text(errors="replace"), "the hub logged a crash"
