"""Rooms on one hub for the chat and sync benchmarks (bench/chat.py, bench/sync.py): students and
helpers matched into rooms through the real events, both members' document sockets open, and
each member's pycrdt copy of the room's document."""

from __future__ import annotations

import argparse
import asyncio
import base64
import gc
import time
from collections import deque
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import pycrdt
import socketio

from bench.common import (
    BenchUser,
    connect_all,
    disconnect_all,
    new_client,
    progress,
    subject_ids,
)
from lektiecafe import ysync

EVENT_TIMEOUT_S = 60.0
LETTERS = "abcdefghijklmnopqrstuvwxyzæøå "


def room_options(p: argparse.ArgumentParser) -> None:
    """How the rooms are made and what a document update holds (`HubRun`, `Replica.type`)."""
    g = p.add_argument_group("rooms")
    g.add_argument("--chars", type=int, default=8, help="letters typed per document update")
    g.add_argument("--pairs-in-flight", type=int, default=10, help="rooms matched at once")
    g.add_argument("--connects-in-flight", type=int, default=50)


def ok_ack(ack: Any, what: str) -> dict[str, Any]:
    """The acknowledgement of a setup step, or the run stops: setup must not fail."""
    if isinstance(ack, dict) and ack.get("ok"):
        return ack
    raise SystemExit(f"{what} was refused: {ack!r}"[:300])


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
            ok_ack(
                await student.sio.call(
                    "help:request",
                    {"subject": subjects[i % len(subjects)], "grade": _grade(student.user)},
                    timeout=EVENT_TIMEOUT_S,
                ),
                "help:request",
            )
            ok_ack(
                await helper.sio.call("duty:set", {"status": "available"}, timeout=EVENT_TIMEOUT_S),
                "duty:set",
            )
            offer = await asyncio.wait_for(helper.offer, EVENT_TIMEOUT_S)
            ack = ok_ack(
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
                joined = ok_ack(
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
    """A benchmark's clients on the hub: connected, matched into rooms with both document sockets
    open, disconnected."""

    def __init__(
        self, args: argparse.Namespace, http: aiohttp.ClientSession, users: list[BenchUser]
    ) -> None:
        self.args = args
        self.http = http
        self.pairs = len(users) // 2
        self.lobby = Lobby(http, users, self.pairs)
        self.rooms: list[Room] = []
        # (room, receiving role, update, frame bytes): set by the benchmark that measures them
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
