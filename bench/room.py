"""Rooms under load, document sync beside y-websocket, and how fast a call starts.

    .venv/bin/python -m bench.room [--part chat|sync|video|all] [--rooms 500] ...

chat   500 rooms at once on one hub process, both members joined. Each room sends a chat message
       and a document update (pycrdt, typing into the Text) every --interval-s, staggered over the
       rooms, alternating sides: emit on one member -> the event arriving at the other member.
sync   Document sync throughput of the hub beside the reference y-websocket server
       (@y/websocket-server, installed on demand outside the repo), the same workload from
       Python: N documents, a writer and a reader each, a window of updates in flight.
video  `offer:accept` clicked -> the first remote video frame on both sides, two headless
       Chromium pages with fake camera and microphone, a fresh match each time.

Targets (issue 3): chat and document delivery p99 < 50 ms with 500 rooms; sync throughput at
least half of y-websocket's; accept -> first frame p50 < 1 s. See bench/README.md."""

from __future__ import annotations

import argparse
import asyncio
import base64
import gc
import json
import math
import os
import shutil
import socket
import subprocess
import sys
import time
from collections import deque
from collections.abc import Awaitable, Callable, Coroutine
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import pycrdt
import socketio

from bench.common import (
    CHROMIUM_ARGS,
    DEMO_PASSWORD,
    HUB_ENV,
    ON_REMOTE_VIDEO_JS,
    PG_ADMIN,
    SECRET_KEY,
    BenchUser,
    LoopLag,
    Samples,
    client_session,
    connect_all,
    cpu_seconds,
    disconnect_all,
    fmt_ms,
    machine_info,
    machine_lines,
    measure_table,
    new_client,
    progress,
    seeded_hub,
    subject_ids,
    write_results,
)
from lektiecafe import ysync
from lektiecafe.launch import free_port, stop_process

DELIVERY_TARGET_P99_MS = TARGET_MS = 50.0
SYNC_TARGET_RATIO = 0.5
VIDEO_TARGET_P50_MS = 1000.0
EVENT_TIMEOUT_S = 60.0
DRAIN_S = 15.0  # after the last send, how long late deliveries are still waited for

# The reference server, pinned: the server moved out of `y-websocket` (3.x) into
# `@y/websocket-server`; 0.1.1 is its last release on Yjs 13, the Yjs the hub's pages vendor
# (0.1.5 requires a Yjs 14 pre-release).
Y_WEBSOCKET_PACKAGES = {"@y/websocket-server": "0.1.1", "yjs": "13.6.33", "ws": "6.2.7"}
NODE_DIR = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / (
    "lektiecafe-bench/y-websocket-server"
)

CHAT_TEXTS = (
    "Hej, jeg sidder fast i opgave fire",
    "Lad os se på den sammen",
    "Hvad skal jeg gange med først?",
    "Prøv at skrive brøken om",
)
LETTERS = "abcdefghijklmnopqrstuvwxyzæøå "


def _ok(ack: Any, what: str) -> dict[str, Any]:
    """The acknowledgement of a setup step, or the run stops: setup must not fail."""
    if isinstance(ack, dict) and ack.get("ok"):
        return ack
    raise SystemExit(f"{what} was refused: {ack!r}"[:300])


def _error_code(ack: Any) -> str:
    if isinstance(ack, dict):
        return str((ack.get("error") or {}).get("code", "no ok"))
    return f"odd ack {ack!r}"[:60]


async def _sleep_until(at: float) -> None:
    await asyncio.sleep(max(0.0, at - time.perf_counter()))


def _grade(user: BenchUser) -> int:
    """The demo student's own grade (hub.demo.seed_demo: 8 + (i - 1) % 3)."""
    return 8 + (int(user.username.removeprefix("student")) - 1) % 3


# ---------------------------------------------------------------------------------------------
# Yjs


class Replica:
    """One side's copy of a room's document; typing into its Text makes a genuine Yjs update."""

    def __init__(self, state: bytes = b"", client_id: int | None = None) -> None:
        self.doc: pycrdt.Doc[Any] = pycrdt.Doc(client_id=client_id)
        if state:
            self.doc.apply_update(state)
        self.text = self.doc.get("text", type=pycrdt.Text)
        self.typed = 0

    def type(self, chars: int) -> bytes:
        """Append `chars` letters at the end, as typing would; the update that makes."""
        before = self.doc.get_state()
        start = self.typed
        self.text += "".join(LETTERS[(start + i) % len(LETTERS)] for i in range(chars))
        self.typed += chars
        return self.doc.get_update(before)

    def apply(self, update: bytes) -> None:
        self.doc.apply_update(update)


def update_key(update: bytes) -> tuple[int, int]:
    """(client, clock) of an update's first struct. The same for the update a writer made and
    for what a server sends on, even re-encoded (y-websocket re-encodes what it broadcasts)."""
    d = pycrdt.Decoder(update)
    d.read_var_uint()  # clients in the update
    d.read_var_uint()  # structs of the first client
    return d.read_var_uint(), d.read_var_uint()


OnAnswer = Callable[[bool], None]


class YClient:
    """A client of a document socket in the y-protocols' words (the hub's, or the reference
    y-websocket server's): sync step 1 on open, step 2 in reply to the server's step 1, and sync
    updates. The server's sync updates go to `on_update(update, frame bytes)`; the server's step 2
    is applied to `doc`. The hub also answers every step 2 and update with STORED or ERROR, in
    order (`answers=True`): each goes to the callback given with its `send_update`."""

    def __init__(
        self,
        ws: aiohttp.ClientWebSocketResponse,
        on_update: Callable[[bytes, int], None],
        doc: pycrdt.Doc[Any] | None = None,
        answers: bool = False,
    ) -> None:
        self.ws = ws
        self.on_update = on_update
        self.doc: pycrdt.Doc[Any] = doc if doc is not None else pycrdt.Doc()
        self.answers = answers
        self._waiting: deque[OnAnswer | None] = deque()
        self.synced = asyncio.Event()
        self.task = asyncio.get_running_loop().create_task(self._read())

    async def send_update(self, message: bytes, on_answer: OnAnswer | None = None) -> None:
        if self.answers:
            self._waiting.append(on_answer)
        await self.ws.send_bytes(message)

    async def _read(self) -> None:
        await self.ws.send_bytes(pycrdt.create_sync_message(self.doc))
        async for msg in self.ws:
            if msg.type != aiohttp.WSMsgType.BINARY:
                continue
            data: bytes = msg.data
            try:
                message = ysync.read(data)
            except ysync.Unreadable:
                continue  # a message type neither server sends this client
            if message is None:
                continue  # awareness
            if not isinstance(message, ysync.Sync):  # the hub's STORED or ERROR
                on_answer = self._waiting.popleft()
                if on_answer is not None:
                    on_answer(isinstance(message, ysync.Stored))
            elif message.kind == ysync.UPDATE:
                self.on_update(message.payload, len(data))
            else:
                reply = pycrdt.handle_sync_message(data[1:], self.doc)
                if reply is not None:  # the answer to the server's step 1
                    await self.send_update(reply)
                if message.kind == ysync.STEP2:
                    self.synced.set()

    async def close(self) -> None:
        await self.ws.close()
        self.task.cancel()
        with suppress(asyncio.CancelledError, Exception):
            await self.task


# ---------------------------------------------------------------------------------------------
# Members and rooms on the hub


@dataclass
class Member:
    user: BenchUser
    sio: socketio.AsyncClient
    role: str  # "student" | "helper"
    offer: asyncio.Future[dict[str, Any]] | None = None
    dropped: bool = False


@dataclass
class Room:
    index: int
    room_id: str
    student: Member
    helper: Member
    replicas: dict[str, Replica] = field(default_factory=dict)  # by role
    doc_urls: dict[str, str] = field(default_factory=dict)  # by role, from room:join
    links: dict[str, YClient] = field(default_factory=dict)  # document sockets, by role


class Lobby:
    """Students and helpers connected to one hub and matched into rooms through the real
    events, as in bench/matching.py: `help:request`, `duty:set`, the `offer`, `offer:accept`,
    the student's `match`, then `room:join` on both sides."""

    def __init__(self, http: aiohttp.ClientSession, users: list[BenchUser], pairs: int) -> None:
        self.students = [Member(u, new_client(http), "student") for u in users[:pairs]]
        self.helpers = [Member(u, new_client(http), "helper") for u in users[pairs : 2 * pairs]]
        self.matched: dict[str, asyncio.Future[Member]] = {}
        self.unexpected: dict[str, int] = {}
        for s in self.students:
            self._watch_student(s)
        for h in self.helpers:
            self._watch_helper(h)

    @property
    def everyone(self) -> list[Member]:
        return self.students + self.helpers

    def _matched(self, room_id: str) -> asyncio.Future[Member]:
        return self.matched.setdefault(room_id, asyncio.get_running_loop().create_future())

    def _watch_student(self, member: Member) -> None:
        def on_match(data: Any = None) -> None:
            future = self._matched(str((data or {}).get("room_id")))
            if not future.done():
                future.set_result(member)

        member.sio.on("match", on_match)
        self._watch_common(member)

    def _watch_helper(self, member: Member) -> None:
        def on_offer(data: Any = None) -> None:
            if member.offer is not None and not member.offer.done():
                member.offer.set_result(data or {})
            else:
                self.note("offer outside a match")

        member.sio.on("offer", on_offer)
        self._watch_common(member)

    def _watch_common(self, member: Member) -> None:
        def on_disconnect(*_args: Any) -> None:
            member.dropped = True

        member.sio.on("disconnect", on_disconnect)

    def note(self, what: str) -> None:
        self.unexpected[what] = self.unexpected.get(what, 0) + 1

    async def connect(self, hub_url: str, in_flight: int) -> None:
        started = time.perf_counter()
        connects = await connect_all(
            hub_url, [(m.sio, m.user.token) for m in self.everyone], in_flight
        )
        if connects.errors:
            raise SystemExit(f"not every client could connect: {connects.errors}")
        progress(f"  {len(connects.values)} connected in {time.perf_counter() - started:.1f} s")

    async def match(self, subjects: list[int], in_flight: int) -> list[Room]:
        """A room for every student: `in_flight` pairs at a time, each student asking and a
        helper going on duty; the hub offers whichever student waits longest, so a helper may
        end up with another pair's student, which is fine."""
        rooms: list[Room] = []
        todo = list(range(len(self.students) - 1, -1, -1))

        async def pair(i: int) -> None:
            student, helper = self.students[i], self.helpers[i]
            helper.offer = asyncio.get_running_loop().create_future()
            _ok(
                await student.sio.call(
                    "help:request",
                    {"subject": subjects[i % len(subjects)], "grade": _grade(student.user)},
                    timeout=EVENT_TIMEOUT_S,
                ),
                "help:request",
            )
            _ok(
                await helper.sio.call("duty:set", {"status": "available"}, timeout=EVENT_TIMEOUT_S),
                "duty:set",
            )
            offer = await asyncio.wait_for(helper.offer, EVENT_TIMEOUT_S)
            ack = _ok(
                await helper.sio.call(
                    "offer:accept", {"offer_id": offer["offer_id"]}, timeout=EVENT_TIMEOUT_S
                ),
                "offer:accept",
            )
            room_id = str(ack["room_id"])
            matched = await asyncio.wait_for(self._matched(room_id), EVENT_TIMEOUT_S)
            room = Room(len(rooms), room_id, matched, helper)
            rooms.append(room)
            for member in (matched, helper):
                joined = _ok(
                    await member.sio.call(
                        "room:join", {"room_id": room_id}, timeout=EVENT_TIMEOUT_S
                    ),
                    "room:join",
                )
                room.replicas[member.role] = Replica(base64.b64decode(joined["doc_state"]))
                room.doc_urls[member.role] = str(joined["doc_url"])

        async def worker() -> None:
            while todo:
                await pair(todo.pop())

        await asyncio.gather(*(worker() for _ in range(in_flight)))
        return rooms


class HubRun:
    """A part's clients on the hub: connected, matched into rooms with both document sockets
    open, disconnected."""

    def __init__(
        self, args: argparse.Namespace, http: aiohttp.ClientSession, users: list[BenchUser]
    ) -> None:
        self.args = args
        self.http = http
        self.pairs = len(users) // 2
        self.lobby = Lobby(http, users, self.pairs)
        self.rooms: list[Room] = []
        # (room, receiving role, update, frame bytes): set by the part that measures them
        self.doc_updates: Callable[[Room, str, bytes, int], None] = lambda *_: None

    async def start(self, hub_url: str, users: list[BenchUser]) -> None:
        progress(f"connecting {2 * self.pairs} clients ...")
        await self.lobby.connect(hub_url, self.args.connects_in_flight)
        progress(f"matching {self.pairs} rooms ({self.args.pairs_in_flight} at a time) ...")
        started = time.perf_counter()
        subjects = subject_ids(hub_url, users[0].token)
        self.rooms = await self.lobby.match(subjects, self.args.pairs_in_flight)
        await self._open_documents(hub_url)
        progress(
            f"  {len(self.rooms)} rooms, both joined, documents open, "
            f"in {time.perf_counter() - started:.1f} s"
        )
        # Long-lived clients: keep the collector from walking them again and again, which would
        # stall this loop and add its pauses to the latencies measured.
        gc.collect()
        gc.freeze()

    async def _open_documents(self, hub_url: str) -> None:
        """Both members' document sockets, synced; what they receive goes to `doc_updates`."""
        gate = asyncio.Semaphore(self.args.connects_in_flight)
        ws_base = "ws" + hub_url.removeprefix("http")

        async def open_one(room: Room, role: str) -> None:
            async with gate:
                ws = await self.http.ws_connect(ws_base + room.doc_urls[role], max_msg_size=0)
                room.links[role] = link = YClient(
                    ws,
                    lambda update, wire: self.doc_updates(room, role, update, wire),
                    doc=room.replicas[role].doc,
                    answers=True,
                )
                await asyncio.wait_for(link.synced.wait(), EVENT_TIMEOUT_S)

        await asyncio.gather(
            *(open_one(r, role) for r in self.rooms for role in ("student", "helper"))
        )

    async def stop(self) -> None:
        await asyncio.gather(*(link.close() for r in self.rooms for link in r.links.values()))
        await disconnect_all([m.sio for m in self.lobby.everyone])
        gc.unfreeze()


# ---------------------------------------------------------------------------------------------
# Part 1: chat and document updates in 500 rooms at once


class ChatLoad:
    """Each room sends a chat message and, half an interval later, a document update, once per
    interval, the rooms staggered evenly over the interval and the sides taking turns. Open
    loop: a send is not held back by slow answers to the previous ones."""

    def __init__(self, args: argparse.Namespace, rooms: list[Room]) -> None:
        self.args = args
        self.rooms = rooms
        self.chat = Samples("chat:send -> chat:message at the other side")
        self.doc = Samples("document update -> the other side (doc socket)")
        self.chat_ack = Samples("chat:send -> ack (stored)")
        self.doc_ack = Samples("document update -> STORED")
        # what is on its way: client_msg_id / update_key -> (sent at, measured?)
        self.chat_sent: dict[str, tuple[float, bool]] = {}
        self.doc_sent: dict[tuple[int, int], tuple[float, bool]] = {}
        self.unexpected: dict[str, int] = {}
        self.tasks: set[asyncio.Task[None]] = set()
        self.deliveries: list[tuple[float, float]] = []  # (sent at, latency) of chat and doc
        for room in rooms:
            for member in (room.student, room.helper):
                self._watch(room, member)

    def _note(self, what: str) -> None:
        self.unexpected[what] = self.unexpected.get(what, 0) + 1

    def _watch(self, room: Room, member: Member) -> None:
        def on_chat(data: Any = None) -> None:
            now = time.perf_counter()
            if not isinstance(data, dict) or data.get("from_role") == member.role:
                return  # the sender's own copy
            sent = self.chat_sent.pop(str(data.get("client_msg_id")), None)
            if sent is None:
                self._note("chat:message not sent by this run")
            elif sent[1]:
                self.chat.add(now - sent[0])
                self.deliveries.append((sent[0], now - sent[0]))

        member.sio.on("chat:message", on_chat)

    def on_doc(self, room: Room, role: str, update: bytes, _wire: int) -> None:
        now = time.perf_counter()
        sent = self.doc_sent.pop(update_key(update), None)
        if sent is None:
            self._note("document update not sent by this run")
            return
        if sent[1]:
            self.doc.add(now - sent[0])
            self.deliveries.append((sent[0], now - sent[0]))
        room.replicas[role].apply(update)

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _send_doc(self, room: Room, tick: int, measured: bool) -> None:
        """One update over the sender's document socket; STORED is its ack."""
        role = "student" if tick % 2 == 0 else "helper"
        update = room.replicas[role].type(self.args.chars)
        key = update_key(update)
        start = time.perf_counter()
        self.doc_sent[key] = (start, measured)

        def on_answer(stored: bool) -> None:
            if stored:
                if measured:
                    self.doc_ack.add(time.perf_counter() - start)
                return
            self.doc_sent.pop(key, None)
            self.doc_ack.fail("ERROR")
            if measured:
                self.doc.fail("refused")

        await room.links[role].send_update(pycrdt.create_update_message(update), on_answer)

    async def _send_chat(self, room: Room, tick: int, measured: bool) -> None:
        """One chat message; its ack comes once stored, its delivery at the other member."""
        sender = room.student if tick % 2 == 0 else room.helper
        msg_id = f"bench-{room.index}-{tick}"
        payload = {"room_id": room.room_id, "text": CHAT_TEXTS[tick % 4], "client_msg_id": msg_id}
        start = time.perf_counter()
        self.chat_sent[msg_id] = (start, measured)
        try:
            ack = await sender.sio.call("chat:send", payload, timeout=EVENT_TIMEOUT_S)
        except socketio.exceptions.SocketIOError as exc:
            self.chat_ack.fail(type(exc).__name__)
            return
        if isinstance(ack, dict) and ack.get("ok"):
            if measured:
                self.chat_ack.add(time.perf_counter() - start)
            return
        self.chat_sent.pop(msg_id, None)
        self.chat_ack.fail(_error_code(ack))
        if measured:
            self.chat.fail(f"refused: {_error_code(ack)}")

    async def _room(self, room: Room, t0: float, ticks: int, warmup: int) -> None:
        interval = self.args.interval_s
        offset = room.index / len(self.rooms) * interval
        for tick in range(ticks):
            at = t0 + offset + tick * interval
            await _sleep_until(at)
            self._spawn(self._send_chat(room, tick, tick >= warmup))
            await _sleep_until(at + interval / 2)
            self._spawn(self._send_doc(room, tick, tick >= warmup))

    async def run(self) -> dict[str, Any]:
        interval = self.args.interval_s
        warmup = math.ceil(self.args.warmup_s / interval)
        ticks = warmup + max(1, round(self.args.duration_s / interval))
        t0 = time.perf_counter() + 0.5
        await asyncio.gather(*(self._room(r, t0, ticks, warmup) for r in self.rooms))
        sending_s = time.perf_counter() - t0
        deadline = time.perf_counter() + DRAIN_S
        while (self.chat_sent or self.doc_sent or self.tasks) and time.perf_counter() < deadline:
            await asyncio.sleep(0.05)
        for task in list(self.tasks):
            task.cancel()
        for samples, left in ((self.chat, self.chat_sent), (self.doc, self.doc_sent)):
            for _sent_at, measured in left.values():
                if measured:
                    samples.fail(f"not delivered within {DRAIN_S:.0f} s")
        return {
            "ticks": ticks,
            "warmup_ticks": warmup,
            "sending_s": sending_s,
            "sent_per_s": 2 * len(self.rooms) / interval,
            "slow_seconds": self._slow_seconds(t0 + warmup * interval),
        }

    def _slow_seconds(self, start: float) -> dict[str, Any]:
        """Whether the slow deliveries bunch up (stalls) or spread out (steady overload): per
        second of the measured load, the slowest delivery sent in it, for the seconds where
        that missed the target."""
        worst: dict[int, float] = {}
        for sent, latency in self.deliveries:
            second = int(sent - start)
            worst[second] = max(worst.get(second, 0.0), latency)
        slow = {s: round(v * 1000) for s, v in sorted(worst.items()) if v * 1000 > TARGET_MS}
        return {
            "start": start,
            "seconds": len(worst),
            "slow": len(slow),
            "worst_ms_by_second": slow,
        }


def _machine_jiffies() -> tuple[int, int]:
    """(busy, total) CPU time of the whole machine so far, in clock ticks."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:8]]
    return sum(fields) - fields[3] - fields[4], sum(fields)  # idle and iowait are not busy


class CpuWatch:
    """Once a second: how much CPU the hub got and how busy the whole machine was. Slow
    seconds with the machine saturated by other work point at the machine; slow seconds with
    the hub idle point at a stall inside it."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.seconds: list[tuple[float, float, float]] = []  # (at, hub %, machine busy %)
        self._task: asyncio.Task[None] | None = None

    async def _run(self) -> None:
        hub, machine, at = cpu_seconds(self.pid), _machine_jiffies(), time.perf_counter()
        while True:
            await asyncio.sleep(1.0)
            hub2, machine2, at2 = cpu_seconds(self.pid), _machine_jiffies(), time.perf_counter()
            if hub is not None and hub2 is not None:
                busy = 100 * (machine2[0] - machine[0]) / max(1, machine2[1] - machine[1])
                self.seconds.append((at, 100 * (hub2 - hub) / (at2 - at), busy))
            hub, machine, at = hub2, machine2, at2

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with suppress(asyncio.CancelledError):
                await self._task

    def compare(self, start: float, slow: dict[int, int]) -> dict[str, Any]:
        """Median hub CPU and machine busy in the slow seconds and in the others."""

        def median(values: list[float]) -> float:
            return sorted(values)[len(values) // 2] if values else math.nan

        split: dict[bool, list[tuple[float, float]]] = {True: [], False: []}
        for at, hub, busy in self.seconds:
            if at >= start:
                split[int(at - start) in slow].append((hub, busy))
        return {
            key: {
                "seconds": len(rows),
                "hub_cpu_pct": median([r[0] for r in rows]),
                "machine_busy_pct": median([r[1] for r in rows]),
            }
            for key, rows in (("slow", split[True]), ("others", split[False]))
        } | {"by_second": [(round(a - start, 1), round(h), round(b)) for a, h, b in self.seconds]}


async def chat_part(
    args: argparse.Namespace, hub_url: str, users: list[BenchUser], pid: int
) -> dict[str, Any]:
    lag = LoopLag()
    watch = CpuWatch(pid)
    async with client_session() as http:
        run = HubRun(args, http, users)
        lag.start()
        try:
            await run.start(hub_url, users)
            load = ChatLoad(args, run.rooms)
            run.doc_updates = load.on_doc
            progress(
                f"load: {args.rooms} rooms x (1 chat + 1 doc update) every {args.interval_s:g} s "
                f"= {2 * args.rooms / args.interval_s:.0f} messages/s for {args.duration_s:g} s "
                f"(+ {args.warmup_s:g} s warm-up) ..."
            )
            lag.take()
            watch.start()
            cpu, client_cpu, started = cpu_seconds(pid), time.process_time(), time.perf_counter()
            info = await load.run()
            wall = time.perf_counter() - started
            await watch.stop()
            cpu_after = cpu_seconds(pid)
            client_cpu = time.process_time() - client_cpu
            loop_lag = lag.take()
            ok = _same_text(run.rooms)
            dropped = sum(1 for m in run.lobby.everyone if m.dropped)
        finally:
            await watch.stop()
            await lag.stop()
            await run.stop()
    slow = info["slow_seconds"]
    return {
        "rooms": len(run.rooms),
        "interval_s": args.interval_s,
        "chars_per_update": args.chars,
        "measures": [s.summary() for s in (load.chat, load.doc, load.chat_ack, load.doc_ack)],
        "wall_s": wall,
        "hub_cpu_s": None if cpu is None or cpu_after is None else cpu_after - cpu,
        "client_cpu_s": client_cpu,
        "loop_lag": loop_lag.summary(),
        "documents_equal": ok,
        "clients_dropped": dropped,
        "unexpected": {**run.lobby.unexpected, **load.unexpected},
        "cpu_in_slow_seconds": watch.compare(slow["start"], slow["worst_ms_by_second"]),
        **info,
    }


def _same_text(rooms: list[Room]) -> str:
    """Both sides' copies should read the same once everything arrived."""
    same = sum(
        1 for r in rooms if str(r.replicas["student"].text) == str(r.replicas["helper"].text)
    )
    return f"{same}/{len(rooms)} rooms"


# ---------------------------------------------------------------------------------------------
# Part 2: document sync throughput, the hub beside y-websocket


class Stream:
    """One document's writer -> reader stream: precomputed updates, at most `window` of them on
    their way at once (sent, not yet at the reader), and when each arrived."""

    def __init__(self, index: int, updates: list[bytes], window: int, latency: Samples) -> None:
        self.index = index
        self.updates = updates
        self.keys = [update_key(u) for u in updates]
        self.window = asyncio.Semaphore(window)
        self.latency = latency
        self.sent_at: dict[tuple[int, int], float] = {}
        self.received: list[bytes] = []
        self.update_bytes = 0
        self.wire_bytes = 0
        self.last_at = 0.0
        self.strays = 0
        self.done = asyncio.Event()

    def delivered(self, update: bytes, wire: int) -> None:
        now = time.perf_counter()
        sent = self.sent_at.pop(update_key(update), None)
        if sent is None:
            self.strays += 1
            return
        self.latency.add(now - sent)
        self.received.append(update)
        self.update_bytes += len(update)
        self.wire_bytes += wire
        self.last_at = now
        self.window.release()
        if len(self.received) == len(self.updates):
            self.done.set()

    def intact(self) -> bool:
        """The reader's copy reads as the writer's (applied after the timed run)."""
        writer: pycrdt.Doc[Any] = pycrdt.Doc()
        reader: pycrdt.Doc[Any] = pycrdt.Doc()
        for u in self.updates:
            writer.apply_update(u)
        for u in self.received:
            reader.apply_update(u)
        return str(writer.get("text", type=pycrdt.Text)) == str(
            reader.get("text", type=pycrdt.Text)
        )


def make_streams(args: argparse.Namespace, latency: Samples) -> list[Stream]:
    """The same updates for both servers: per document, `sync_updates` times `chars` letters
    typed at the end of a Text, each keystroke batch one update."""
    streams = []
    for i in range(args.sync_docs):
        writer = Replica(client_id=1_000 + i)
        updates = [writer.type(args.chars) for _ in range(args.sync_updates)]
        streams.append(Stream(i, updates, args.sync_window, latency))
    return streams


Send = Callable[[Stream, int], Awaitable[None]]


async def pump(streams: list[Stream], send: Send, timeout_s: float) -> tuple[float, int]:
    """Every writer sends its updates as fast as its window allows; (seconds, errors)."""
    t0 = time.perf_counter()
    deadline = t0 + timeout_s
    errors = 0

    async def writer(stream: Stream) -> None:
        nonlocal errors
        for j in range(len(stream.updates)):
            try:
                await asyncio.wait_for(stream.window.acquire(), deadline - time.perf_counter())
            except TimeoutError:
                errors += 1
                return
            stream.sent_at[stream.keys[j]] = time.perf_counter()
            await send(stream, j)
        with suppress(TimeoutError):
            await asyncio.wait_for(stream.done.wait(), max(0.0, deadline - time.perf_counter()))

    await asyncio.gather(*(writer(s) for s in streams))
    last = max((s.last_at for s in streams), default=t0)
    return max(last - t0, 1e-9), errors


def sync_summary(
    name: str,
    streams: list[Stream],
    latency: Samples,
    seconds: float,
    server_cpu: float | None,
    client_cpu: float,
    loop_lag: Samples,
    extra: dict[str, Any],
) -> dict[str, Any]:
    delivered = sum(len(s.received) for s in streams)
    total = sum(len(s.updates) for s in streams)
    return {
        "server": name,
        "sent": total,
        "delivered": delivered,
        "seconds": seconds,
        "updates_per_s": delivered / seconds,
        "update_bytes_per_s": sum(s.update_bytes for s in streams) / seconds,
        "wire_bytes_per_update": sum(s.wire_bytes for s in streams) / max(delivered, 1),
        "latency": latency.summary(),
        "server_cpu_s": server_cpu,
        "client_cpu_s": client_cpu,
        "loop_lag": loop_lag.summary(),
        "strays": sum(s.strays for s in streams),
        "intact": f"{sum(1 for s in streams if s.intact())}/{len(streams)} documents",
        **extra,
    }


async def sync_hub(
    args: argparse.Namespace, hub_url: str, users: list[BenchUser], pid: int
) -> dict[str, Any]:
    """The hub: the student writes over its document socket (STORED once stored), the helper
    reads the updates the hub sends on over its own."""
    latency = Samples("hub update -> other side")
    streams = make_streams(args, latency)
    lag = LoopLag()
    acks = Samples("hub update -> STORED")
    async with client_session() as http:
        run = HubRun(args, http, users)
        lag.start()
        try:
            await run.start(hub_url, users)
            by_room = {
                room.room_id: stream for room, stream in zip(run.rooms, streams, strict=True)
            }

            def on_update(room: Room, role: str, update: bytes, wire: int) -> None:
                if role == "helper":
                    by_room[room.room_id].delivered(update, wire)

            run.doc_updates = on_update
            messages = [[pycrdt.create_update_message(u) for u in s.updates] for s in streams]

            async def send(stream: Stream, j: int) -> None:
                start = time.perf_counter()

                def on_answer(stored: bool) -> None:
                    if stored:
                        acks.add(time.perf_counter() - start)
                    else:
                        acks.fail("ERROR")

                link = run.rooms[stream.index].links["student"]
                await link.send_update(messages[stream.index][j], on_answer)

            progress(f"sync: hub, {_sync_load(args)} ...")
            lag.take()
            cpu, client_cpu = cpu_seconds(pid), time.process_time()
            seconds, errors = await pump(streams, send, args.sync_timeout_s)
            cpu_after = cpu_seconds(pid)
            result = sync_summary(
                "hub",
                streams,
                latency,
                seconds,
                None if cpu is None or cpu_after is None else cpu_after - cpu,
                time.process_time() - client_cpu,
                lag.take(),
                {"window_timeouts": errors, "acks": acks.summary()},
            )
        finally:
            await lag.stop()
            await run.stop()
    return result


# --- the reference server --------------------------------------------------------------------


def ensure_y_websocket(node_dir: Path) -> dict[str, str]:
    """Install the pinned reference server into `node_dir` (outside the repo) unless it is
    there already; its versions. npm runs no install scripts (--ignore-scripts)."""
    manifest = node_dir / "package.json"
    wanted = {
        "private": True,
        "description": "y-websocket reference server for bench/room.py (Lektiecafé)",
        "dependencies": Y_WEBSOCKET_PACKAGES,
    }
    server = node_dir / "node_modules/@y/websocket-server/src/server.js"
    current = None
    with suppress(OSError, ValueError):
        current = json.loads(manifest.read_text())
    if current != wanted or not server.exists():
        npm = shutil.which("npm")
        if npm is None:
            raise SystemExit("the sync part needs node and npm to install y-websocket")
        node_dir.mkdir(parents=True, exist_ok=True)
        manifest.write_text(json.dumps(wanted, indent=2) + "\n")
        progress(
            f"installing {', '.join(f'{k}@{v}' for k, v in Y_WEBSOCKET_PACKAGES.items())} "
            f"into {node_dir} ..."
        )
        subprocess.run(
            [npm, "install", "--no-audit", "--no-fund", "--ignore-scripts", "--loglevel=error"],
            cwd=node_dir,
            check=True,
            timeout=600,
        )
    versions = {}
    for package in Y_WEBSOCKET_PACKAGES:
        meta = json.loads((node_dir / "node_modules" / package / "package.json").read_text())
        versions[package] = str(meta["version"])
    versions["node"] = subprocess.run(
        ["node", "--version"], capture_output=True, text=True, check=True
    ).stdout.strip()
    return versions


class NodeServer:
    """`y-websocket-server` in its own process on a free loopback port, documents in memory."""

    def __init__(self, node_dir: Path, log: Path) -> None:
        self.port = free_port()
        self.log = log
        self.process = subprocess.Popen(
            ["node", str(node_dir / "node_modules/@y/websocket-server/src/server.js")],
            cwd=node_dir,
            env={**os.environ, "HOST": "127.0.0.1", "PORT": str(self.port)},
            stdout=log.open("ab"),
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise SystemExit(f"y-websocket-server exited:\n{log.read_text()[-2000:]}")
            with suppress(OSError), socket.create_connection(("127.0.0.1", self.port), 0.5):
                return
            time.sleep(0.1)
        self.stop()
        raise SystemExit("y-websocket-server did not start")

    def stop(self) -> None:
        stop_process(self.process)


async def sync_y_websocket(args: argparse.Namespace, server: NodeServer) -> dict[str, Any]:
    latency = Samples("y-websocket update -> other side")
    streams = make_streams(args, latency)
    lag = LoopLag()
    writers: list[YClient] = []
    readers: list[YClient] = []
    echo_bytes = 0

    def echo(_update: bytes, wire: int) -> None:
        """The server sends every update to all the document's connections, its writer too."""
        nonlocal echo_bytes
        echo_bytes += wire

    async with client_session() as http:
        lag.start()
        try:
            for stream in streams:
                url = f"ws://127.0.0.1:{server.port}/bench-{stream.index}"
                for into, on_update in ((writers, echo), (readers, stream.delivered)):
                    ws = await asyncio.wait_for(http.ws_connect(url, max_msg_size=0), 30)
                    into.append(YClient(ws, on_update))
            await asyncio.wait_for(
                asyncio.gather(*(c.synced.wait() for c in writers + readers)), 30
            )
            messages = [[pycrdt.create_update_message(u) for u in s.updates] for s in streams]

            async def send(stream: Stream, j: int) -> None:
                await writers[stream.index].send_update(messages[stream.index][j])

            progress(f"sync: y-websocket, {_sync_load(args)} ...")
            lag.take()
            cpu, client_cpu = cpu_seconds(server.process.pid), time.process_time()
            seconds, errors = await pump(streams, send, args.sync_timeout_s)
            cpu_after = cpu_seconds(server.process.pid)
            result = sync_summary(
                "y-websocket",
                streams,
                latency,
                seconds,
                None if cpu is None or cpu_after is None else cpu_after - cpu,
                time.process_time() - client_cpu,
                lag.take(),
                {
                    "window_timeouts": errors,
                    "echo_bytes_to_writers": echo_bytes,
                },
            )
        finally:
            await lag.stop()
            await asyncio.gather(*(c.close() for c in writers + readers))
    return result


def _sync_load(args: argparse.Namespace) -> str:
    return (
        f"{args.sync_docs} documents x {args.sync_updates} updates of {args.chars} letters, "
        f"{args.sync_window} in flight per document"
    )


# ---------------------------------------------------------------------------------------------
# Part 3: offer:accept -> first remote video frame, browser to browser

# In every page before its scripts: the epoch-based time (performance.timeOrigin + now(), one
# clock for both pages of the same machine) of the accept click, of the first RTCPeerConnection
# (the page has entered the room), of the first frame the remote video element presents
# (requestVideoFrameCallback) and of the first time getStats() reports a decoded inbound video
# frame (polled every 10 ms).
TIMING_SCRIPT = (
    """
(() => {
  const now = () => performance.timeOrigin + performance.now();
  const t = (window.__lcTimes = {});
  document.addEventListener("click", (e) => {
    if (e.target.closest && e.target.closest('[data-testid="offer-accept"]')) t.accept ??= now();
  }, true);
  function onRemoteVideo(video) {
    video.requestVideoFrameCallback(() => { t.frame ??= now(); });
  }
"""
    + ON_REMOTE_VIDEO_JS
    + """
  const Native = window.RTCPeerConnection;
  window.RTCPeerConnection = class extends Native {
    constructor(...args) {
      super(...args);
      t.peerConnection ??= now();
      const poll = async () => {
        if (t.decoded || this.connectionState === "closed") return;
        try {
          const stats = await this.getStats();
          stats.forEach((s) => {
            if (s.type === "inbound-rtp" && s.kind === "video" && s.framesDecoded > 0) {
              t.decoded ??= now();
            }
          });
        } catch (_) { /* closed meanwhile */ }
        if (!t.decoded) setTimeout(poll, 10);
      };
      setTimeout(poll, 10);
    }
  };
})();
"""
)


VIDEO_MEASURES = (  # (key in window.__lcTimes, what it is); the first is the target's
    ("frame", "first remote frame shown"),
    ("decoded", "framesDecoded > 0"),
    ("peerConnection", "room entered (RTCPeerConnection)"),
)


def video_part(args: argparse.Namespace, hub_url: str, users: list[BenchUser]) -> dict[str, Any]:
    """Each round: a fresh student and helper log in through the form in their own browser
    contexts, the student asks, the helper goes on duty and clicks accept; then both pages are
    watched until their remote video presents a frame."""
    from playwright.sync_api import Error as PlaywrightError
    from playwright.sync_api import expect, sync_playwright

    subject = subject_ids(hub_url, users[0].token)[0]
    measures = {
        (role, key): Samples(f"{role}: accept -> {label}")
        for key, label in VIDEO_MEASURES
        for role in ("student", "helper")
    }
    rounds: list[dict[str, Any]] = []
    timeout_ms = args.video_timeout_s * 1000
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=args.chromium, args=CHROMIUM_ARGS)
        version = browser.version
        try:
            for i in range(1, args.video_repeats + 1):
                contexts = [browser.new_context(base_url=hub_url, locale="da-DK") for _ in "sh"]
                try:
                    pages = {}
                    for role, context in zip(("student", "helper"), contexts, strict=True):
                        context.add_init_script(TIMING_SCRIPT)
                        page = context.new_page()
                        page.set_default_timeout(timeout_ms)
                        page.goto("/login")
                        page.get_by_test_id("login-username").fill(f"{role}{i}")
                        page.get_by_test_id("login-password").fill(DEMO_PASSWORD)
                        page.get_by_test_id("login-submit").click()
                        page.wait_for_url(lambda url: not url.endswith("/login"))
                        pages[role] = page
                    student, helper = pages["student"], pages["helper"]
                    student.get_by_test_id("ask-subject").select_option(str(subject))
                    student.get_by_test_id("ask-submit").click()
                    expect(student.get_by_test_id("queue-position")).to_have_text("1")
                    expect(helper.get_by_test_id("connection")).to_have_attribute(
                        "data-state", "connected"
                    )
                    helper.get_by_test_id("duty-toggle").click()
                    helper.get_by_test_id("offer-accept").click()
                    times = {}
                    for role, page in pages.items():
                        page.wait_for_function(
                            "() => window.__lcTimes.frame && window.__lcTimes.decoded",
                            timeout=timeout_ms,
                        )
                        times[role] = page.evaluate("() => window.__lcTimes")
                except PlaywrightError as exc:
                    for samples in measures.values():
                        samples.fail(type(exc).__name__)
                    progress(f"  round {i}: failed: {str(exc).splitlines()[0]}")
                    continue
                finally:
                    for context in contexts:
                        context.close()
                accept = times["helper"]["accept"]
                for (role, key), samples in measures.items():
                    samples.add((times[role][key] - accept) / 1000)
                rounds.append({r: {k: v - accept for k, v in t.items()} for r, t in times.items()})
                progress(
                    f"  round {i}: first frame at the student after "
                    f"{times['student']['frame'] - accept:.0f} ms, "
                    f"at the helper after {times['helper']['frame'] - accept:.0f} ms"
                )
        finally:
            browser.close()
    return {
        "repeats": args.video_repeats,
        "browser": f"Chromium {version} ({args.chromium}), headless, fake camera and microphone",
        "measures": [m.summary() for m in measures.values()],
        "rounds_ms": rounds,
    }


# ---------------------------------------------------------------------------------------------
# Report


def _verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def report(result: dict[str, Any]) -> str:
    cfg = result["config"]
    lines = ["Lektiecafé room benchmark", *machine_lines(result["machine"])]
    lines.append(f"  database  {result.get('database', '-')}   hub: 1 local process (gevent)")
    lines.append(
        "  load avg  (1/5/15 min) before "
        + "/".join(f"{x:.1f}" for x in result["load_average_before"])
        + ", after "
        + "/".join(f"{x:.1f}" for x in result["load_average_after"])
        + "  (other work on the machine shows here)"
    )
    parts = result["parts"]
    if "chat" in parts:
        c = parts["chat"]
        lines += [
            "",
            f"Chat and document updates: {c['rooms']} rooms at once, each 1 chat message + 1 "
            f"document update ({c['chars_per_update']} letters) every {c['interval_s']:g} s, "
            f"staggered = {c['sent_per_s']:.0f} messages/s in; {c['ticks'] - c['warmup_ticks']} "
            f"measured rounds after {c['warmup_ticks']} warm-up",
        ]
        target = f"p99 < {DELIVERY_TARGET_P99_MS:.0f} ms"
        verdicts = {s["name"]: f"{target}  {_verdict(_delivery_ok(s))}" for s in c["measures"][:2]}
        lines += measure_table([*c["measures"], c["loop_lag"]], verdicts)
        slow = c["slow_seconds"]
        lines.append(
            f"  seconds of load with a delivery over {TARGET_MS:.0f} ms: {slow['slow']} of "
            f"{slow['seconds']}"
            + (
                "; slowest per such second (s: ms): "
                + ", ".join(f"{k}: {v:,}" for k, v in list(slow["worst_ms_by_second"].items())[:12])
                if slow["slow"]
                else ""
            )
        )
        cmp = c["cpu_in_slow_seconds"]
        lines.append(
            "  medians per second, slow seconds / the others: hub CPU "
            f"{_pct(cmp['slow']['hub_cpu_pct'])} / {_pct(cmp['others']['hub_cpu_pct'])} of a core, "
            f"machine busy {_pct(cmp['slow']['machine_busy_pct'])} / "
            f"{_pct(cmp['others']['machine_busy_pct'])} of all cores"
        )
        lines.append(
            f"  wall {c['wall_s']:.1f} s, hub CPU {_cpu(c['hub_cpu_s'])}, bench CPU "
            f"{_cpu(c['client_cpu_s'])}; documents equal on both sides: {c['documents_equal']}; "
            f"clients dropped: {c['clients_dropped']}; unexpected: {c['unexpected'] or 'none'}"
        )
    if "sync" in parts:
        s = parts["sync"]
        hub, ref = s["hub"], s["y_websocket"]
        lines += [
            "",
            f"Document sync throughput: {s['load']}; the same updates to both servers",
            f"  y-websocket: {s['versions']}, documents in memory; hub: acknowledged after "
            f"storing ({result.get('database', '-')})",
            f"  {'server':<13}{'updates/s':>11}{'KiB/s':>9}{'wire B/upd':>12}{'p50':>10}"
            f"{'p99':>10}{'max':>10}{'server CPU':>12}{'bench CPU':>11}{'lag p99':>10}",
        ]
        for row in (hub, ref):
            lat = row["latency"]
            lines.append(
                f"  {row['server']:<13}{row['updates_per_s']:>11,.0f}"
                f"{row['update_bytes_per_s'] / 1024:>9,.1f}{row['wire_bytes_per_update']:>12.0f}"
                f"{fmt_ms(lat['p50_ms']):>10}{fmt_ms(lat['p99_ms']):>10}{fmt_ms(lat['max_ms']):>10}"
                f"{_cpu(row['server_cpu_s']):>12}{_cpu(row['client_cpu_s']):>11}"
                f"{fmt_ms(row['loop_lag']['p99_ms']):>10}"
            )
            if row["delivered"] != row["sent"] or row["strays"] or row["window_timeouts"]:
                lines.append(
                    f"    {row['server']}: delivered {row['delivered']}/{row['sent']}, "
                    f"strays {row['strays']}, window timeouts {row['window_timeouts']}"
                )
        lines.append(
            f"  ratio hub / y-websocket: {s['ratio']:.2f}   target >= {SYNC_TARGET_RATIO:g}  "
            f"{_verdict(s['ratio'] >= SYNC_TARGET_RATIO)}; documents intact: hub "
            f"{hub['intact']}, y-websocket {ref['intact']}; hub ack p50/p99 "
            f"{fmt_ms(hub['acks']['p50_ms'])}/{fmt_ms(hub['acks']['p99_ms'])}"
        )
    if "video" in parts:
        v = parts["video"]
        lines += [
            "",
            f"Call start, browser to browser: {v['repeats']} fresh matches, {v['browser']}",
        ]
        target = f"p50 < {VIDEO_TARGET_P50_MS:.0f} ms"
        verdicts = {
            m["name"]: f"{target}  {_verdict(m['n'] > 0 and m['p50_ms'] < VIDEO_TARGET_P50_MS)}"
            for m in v["measures"]
            if m["name"].endswith(VIDEO_MEASURES[0][1])
        }
        lines += measure_table(v["measures"], verdicts)
    lines.append(f"\n  config    {json.dumps(cfg)}")
    return "\n".join(lines)


def _delivery_ok(s: dict[str, Any]) -> bool:
    return s["n"] > 0 and not s["errors"] and s["p99_ms"] < DELIVERY_TARGET_P99_MS


def _pct(value: float) -> str:
    return "-" if math.isnan(value) else f"{value:.0f}%"


def _cpu(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds:.1f} s"


# ---------------------------------------------------------------------------------------------
# Main


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m bench.room", description=__doc__.split("\n\n")[0] if __doc__ else ""
    )
    p.add_argument("--part", choices=("chat", "sync", "video", "all"), default="all")
    g = p.add_argument_group("chat")
    g.add_argument("--rooms", type=int, default=500, help="rooms active at once")
    g.add_argument("--interval-s", type=float, default=4.0, help="per room: 1 chat + 1 update")
    g.add_argument("--duration-s", type=float, default=60.0, help="measured load")
    g.add_argument("--warmup-s", type=float, default=4.0, help="load before measuring")
    g.add_argument("--chars", type=int, default=8, help="letters typed per document update")
    g.add_argument("--pairs-in-flight", type=int, default=10, help="rooms matched at once")
    g.add_argument("--connects-in-flight", type=int, default=50)
    g = p.add_argument_group("sync")
    g.add_argument("--sync-docs", type=int, default=50, help="documents (rooms), 2 clients each")
    g.add_argument("--sync-updates", type=int, default=400, help="updates per document")
    g.add_argument("--sync-window", type=int, default=10, help="updates in flight per document")
    g.add_argument("--sync-timeout-s", type=float, default=300.0, help="per server")
    g.add_argument(
        "--node-dir",
        type=Path,
        default=NODE_DIR,
        help="where the y-websocket server is installed on demand (outside the repo)",
    )
    g = p.add_argument_group("video")
    g.add_argument("--video-repeats", type=int, default=10)
    g.add_argument("--video-timeout-s", type=float, default=30.0)
    g.add_argument("--chromium", default="/usr/bin/chromium")
    g = p.add_argument_group("hub")
    g.add_argument(
        "--database-url",
        help="a PostgreSQL URL whose database is created fresh for each part and dropped "
        "afterwards (as in bench.matching); default: SQLite in a temporary data dir",
    )
    g.add_argument("--pg-admin-url", default=PG_ADMIN, help="where to CREATE/DROP it")
    g.add_argument("--keep", action="store_true", help="keep the data dirs and databases")
    g.add_argument("--json", type=Path, help="where to write the results (default bench/results/)")
    return p


def _on_hub(
    args: argparse.Namespace, pairs: int, fn: Callable[[str, list[BenchUser], int], Any]
) -> tuple[Any, str]:
    """Run `fn(hub_url, users, hub_pid)` against a fresh hub seeded with `pairs` of each."""
    with seeded_hub(
        args.database_url, args.pg_admin_url, pairs, pairs, SECRET_KEY, HUB_ENV, keep=args.keep
    ) as sh:
        return fn(sh.hub.url, sh.users, sh.hub.pid), sh.database


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    parts = ("chat", "sync", "video") if args.part == "all" else (args.part,)
    started_at = datetime.now(UTC)
    result: dict[str, Any] = {
        "benchmark": "room",
        "started_at": started_at.isoformat(timespec="seconds"),
        "machine": machine_info(),
        "load_average_before": os.getloadavg(),
        "config": {
            k: (str(v) if isinstance(v, Path) else v)
            for k, v in vars(args).items()
            if k not in ("json",)
        }
        | {"hub_env": HUB_ENV},
        "parts": {},
    }
    if "chat" in parts:
        chat, result["database"] = _on_hub(
            args, args.rooms, lambda url, users, pid: asyncio.run(chat_part(args, url, users, pid))
        )
        result["parts"]["chat"] = chat
    if "sync" in parts:
        versions = ensure_y_websocket(args.node_dir)
        hub, result["database"] = _on_hub(
            args,
            args.sync_docs,
            lambda url, users, pid: asyncio.run(sync_hub(args, url, users, pid)),
        )
        log = Path(os.environ.get("TMPDIR", "/tmp")) / f"y-websocket-bench-{os.getpid()}.log"
        server = NodeServer(args.node_dir, log)
        try:
            ref = asyncio.run(sync_y_websocket(args, server))
        finally:
            server.stop()
            log.unlink(missing_ok=True)
        result["parts"]["sync"] = {
            "load": _sync_load(args),
            "versions": versions,
            "hub": hub,
            "y_websocket": ref,
            "ratio": hub["updates_per_s"] / ref["updates_per_s"],
        }
    if "video" in parts:
        video, result["database"] = _on_hub(
            args, args.video_repeats, lambda url, users, _pid: video_part(args, url, users)
        )
        result["parts"]["video"] = video
    result["load_average_after"] = os.getloadavg()
    print(report(result), flush=True)
    target = write_results(
        result, args.json, f"room-{started_at:%Y%m%d-%H%M%S}-{'-'.join(parts)}.json"
    )
    print(f"\nresults written to {os.path.relpath(target)}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
