"""A simulated opening hour on 1 hub process and on 4 (PostgreSQL, Redis, nginx), side by side in
one run, and the hub's chat throughput beside a bare python-socketio echo server.

    .venv/bin/python -m bench.load                                  # a quick look, ~2-3 minutes
    .venv/bin/python -m bench.load --students 5000 --helpers 200 --arrive-s 120 --hour-s 240 \\
        --configs 1x1                                               # issue 10's 5,000 on one

Clients run in separate processes (`--client-procs`, multiprocessing, each an asyncio loop of
python-socketio AsyncClients and aiohttp document sockets). Students arrive spread over
`--arrive-s`, ask (`help:request`), wait, are matched, chat (`chat:send`) and edit the room's
document (its document socket, Yjs updates) for about `--session-s`, end the room and leave;
helpers are on duty from the start, accept every offer, work in the room until it ends and go
on duty again. Everything goes through nginx with the shipped configuration
(lektiecafe/cluster.py `start_cluster`), each client from a loopback address of its own so
nginx's `ip_hash` spreads them over the hub processes. Targets (issue 10): one process holds
5,000 connected clients with chat delivery p99 < 100 ms; four processes carry at least 3x one's
load at the same p99. See bench/README.md and docs/performance.md."""

from __future__ import annotations

import argparse
import asyncio
import base64
import multiprocessing as mp
import os
import random
import re
import resource
import ssl
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.request import urlopen

import aiohttp
import psutil
import pycrdt
import socketio

from bench.common import (
    HUB_ENV,
    PG_ADMIN,
    SECRET_KEY,
    Samples,
    database_version,
    demo_usernames,
    finish,
    fmt_ms,
    fresh_database,
    load_line,
    machine_lines,
    mint_tokens,
    new_result,
    progress,
    seed,
    subject_ids,
    verdict,
)
from bench.rooms import Replica, YClient, update_key
from lektiecafe.launch import ROOT, free_port, stop_process

CHAT_TARGET_P99_MS = 100.0
PG_URL = "postgresql+psycopg://127.0.0.1:5432/"
EVENT_TIMEOUT_S = 30.0
CHAT_TEXTS = (
    "Hej, jeg sidder fast i opgave fire",
    "Lad os se på den sammen",
    "Hvad skal jeg gange med først?",
    "Prøv at skrive brøken om",
)
# The hub's settings for the run: nothing expires by itself (as in the other benchmarks), and
# no chat rate limit, which the throughput phase would hit at once (the hour's members send far
# below it anyway: one message per --chat-every-s).
LOAD_ENV = {**HUB_ENV, "LEKTIECAFE_CHAT_BURST": "1000000"}
# Through nginx a client's WebSocket is four connections of its one worker (in at the stream
# front, on to the TLS server, in there, on to a hub); the shipped front's 4,096 hold ~1,000.
NGINX_CONNECTIONS = 65536


def mono() -> float:
    """CLOCK_MONOTONIC: one clock for every process on the machine, so a message sent in one
    client process and received in another is timed on the same clock."""
    return time.monotonic()


def raise_open_files(want: int = 1 << 20) -> int:
    """As many file descriptors as the system lets this process (and the hubs, nginx and
    clients it starts, which inherit the limit) have: each client is a socket, and through
    nginx four."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    for limit in (want, 1 << 18, 1 << 16, hard):
        with suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (limit, max(limit, hard)))
            return limit
    with suppress(ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        return hard
    return soft


# ---------------------------------------------------------------------------------------------
# What a client process is told and what it tells back


@dataclass
class Person:
    username: str
    token: str
    arrive_s: float = 0.0  # after the hour's start
    session_s: float = 0.0  # how long to stay in the room


@dataclass
class WorkerSpec:
    index: int
    mode: str  # "hour" (the opening hour), "throughput" (hub rooms), "echo"
    url: str  # where the clients connect (nginx, or a hub or the echo server directly)
    ca: str | None  # the front's self-signed certificate
    students: list[Person]
    helpers: list[Person]
    subjects: list[int]
    hour_s: float
    chat_every_s: float
    doc_every_s: float
    chars: int
    connects_in_flight: int
    addresses: list[str]  # loopback source addresses, one aiohttp session each
    churn: bool = False  # students come back after leaving, until the end (bench/soak.py)
    gap_s: float = 5.0  # between a student's visits when churning
    pairs: int = 0  # throughput/echo: rooms of this process
    window: int = 4  # throughput/echo: chat messages in flight per member
    seed: int = 0


@dataclass
class WorkerResult:
    index: int
    samples: dict[str, list[float]] = field(default_factory=dict)
    errors: Counter[str] = field(default_factory=Counter)
    counts: Counter[str] = field(default_factory=Counter)
    accepts: dict[str, float] = field(default_factory=dict)  # room_id -> offer:accept emitted
    matches: dict[str, float] = field(default_factory=dict)  # room_id -> student's match
    doc_sent: dict[tuple[int, int], float] = field(default_factory=dict)
    doc_recv: dict[tuple[int, int], float] = field(default_factory=dict)
    delivered_at: list[float] = field(default_factory=list)  # throughput: chat arrivals
    connected: list[tuple[float, int]] = field(default_factory=list)  # (time, clients) samples
    cpu_s: float = 0.0
    rss_kib: int = 0


def _grade(username: str) -> int:
    return 8 + (int(username.removeprefix("student")) - 1) % 3  # hub.demo.seed_demo's grades


def _code(ack: Any) -> str:
    if isinstance(ack, dict):
        return str((ack.get("error") or {}).get("code", "no ok"))
    return "no answer" if ack is None else "odd answer"


class Worker:
    """One client process's asyncio side."""

    def __init__(self, spec: WorkerSpec, out: Any, commands: Any) -> None:
        self.spec = spec
        self.out = out
        self.commands = commands
        self.r = WorkerResult(spec.index)
        self.rng = random.Random(spec.seed)
        self.sessions: list[aiohttp.ClientSession] = []
        self.t0 = 0.0
        self.end = float("inf")
        self.closing = False
        self.live = 0  # connected Socket.IO clients
        self.seq = 0
        self.tasks: set[asyncio.Task[Any]] = set()
        self.ssl: ssl.SSLContext | bool = True
        if spec.ca:
            self.ssl = ssl.create_default_context(cafile=spec.ca)

    # --- plumbing ----------------------------------------------------------------------------

    def add(self, name: str, seconds: float) -> None:
        self.r.samples.setdefault(name, []).append(seconds)

    def spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self.tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self.tasks.discard(task)
        if not task.cancelled() and (exc := task.exception()) is not None:
            self.r.errors[f"client task: {type(exc).__name__}"] += 1

    def session(self, n: int) -> aiohttp.ClientSession:
        return self.sessions[n % len(self.sessions)]

    async def wait_command(self) -> Any:
        return await asyncio.get_running_loop().run_in_executor(None, self.commands.get)

    async def sleep_until(self, at: float) -> None:
        await asyncio.sleep(max(0.0, at - mono()))

    def client(self, n: int) -> socketio.AsyncClient:
        return socketio.AsyncClient(
            reconnection=False, http_session=self.session(n), handle_sigint=False
        )

    async def connect(self, sio: socketio.AsyncClient, token: str, gate: asyncio.Semaphore) -> bool:
        async with gate:
            start = mono()
            try:
                await sio.connect(
                    self.spec.url,
                    auth={"token": token},
                    transports=["websocket"],
                    wait_timeout=EVENT_TIMEOUT_S,
                )
            except Exception as exc:
                self.r.errors[f"connect: {str(exc)[:60] or type(exc).__name__}"] += 1
                return False
        self.add("connect", mono() - start)
        self.live += 1
        return True

    async def call(self, sio: socketio.AsyncClient, event: str, data: Any) -> Any:
        """An event's acknowledgement, or None (counted as an error) if it did not come."""
        try:
            return await sio.call(event, data, timeout=EVENT_TIMEOUT_S)
        except Exception as exc:
            self.r.errors[f"{event}: {type(exc).__name__}"] += 1
            return None

    async def leave(self, sio: socketio.AsyncClient) -> None:
        with suppress(Exception):
            await asyncio.wait_for(sio.disconnect(), 10)

    async def sample_connected(self) -> None:
        while True:
            self.r.connected.append((mono(), self.live))
            await asyncio.sleep(1.0)

    # --- a room, from either side ------------------------------------------------------------

    async def in_room(
        self, sio: socketio.AsyncClient, role: str, room_id: str, until: float, ended: asyncio.Event
    ) -> None:
        """Join, open the document socket, chat and type until `until` or the room ends."""
        joined = await self.call(sio, "room:join", {"room_id": room_id})
        if not (isinstance(joined, dict) and joined.get("ok")):
            self.r.errors[f"room:join: {_code(joined)}"] += 1
            return
        replica = Replica(base64.b64decode(joined["doc_state"]))
        ws_base = "ws" + self.spec.url.removeprefix("http")
        link: YClient | None = None

        def on_update(update: bytes, _wire: int) -> None:
            self.r.doc_recv[update_key(update)] = mono()
            replica.apply(update)

        try:
            ws = await sio.eio.http.ws_connect(
                ws_base + joined["doc_url"], ssl=self.ssl, max_msg_size=0
            )
            link = YClient(ws, on_update, doc=replica.doc, answers=True)
            await asyncio.wait_for(link.synced.wait(), EVENT_TIMEOUT_S)
        except Exception as exc:
            self.r.errors[f"document socket: {type(exc).__name__}"] += 1
        self.r.counts[f"{role}s in a room"] += 1
        next_chat = mono() + self.rng.uniform(0.2, self.spec.chat_every_s)
        next_doc = mono() + self.rng.uniform(0.2, self.spec.doc_every_s)
        while not ended.is_set() and not self.closing and mono() < until:
            if mono() >= next_chat:
                next_chat += self.spec.chat_every_s
                self.spawn(self.send_chat(sio, role, room_id))
            if link is not None and mono() >= next_doc:
                next_doc += self.spec.doc_every_s
                self.send_doc(link, replica)
            with suppress(TimeoutError):
                await asyncio.wait_for(ended.wait(), max(0.0, min(next_chat, next_doc) - mono()))
        if link is not None:
            await link.close()

    async def send_chat(self, sio: socketio.AsyncClient, role: str, room_id: str) -> None:
        self.seq += 1
        start = mono()
        msg_id = f"{role}-{self.spec.index}-{self.seq}-{start!r}"
        text = CHAT_TEXTS[self.seq % len(CHAT_TEXTS)]
        payload = {"room_id": room_id, "text": text, "client_msg_id": msg_id}
        if self.spec.mode == "echo":
            payload["from_role"] = role  # the hub knows it; the echo server is told
        ack = await self.call(sio, "chat:send", payload)
        if isinstance(ack, dict) and ack.get("ok"):
            self.add("chat ack", mono() - start)
            self.r.counts["chat sent"] += 1
        elif ack is not None:
            self.r.errors[f"chat:send: {_code(ack)}"] += 1

    def on_chat(self, role: str) -> Callable[[Any], None]:
        def handler(data: Any = None) -> None:
            now = mono()
            if not isinstance(data, dict) or data.get("from_role") == role:
                return  # the sender's own copy
            with suppress(ValueError, IndexError, AttributeError):
                sent = float(str(data.get("client_msg_id")).rsplit("-", 1)[1])
                self.add("chat", now - sent)
                self.r.counts["chat delivered"] += 1
                if self.spec.mode != "hour":
                    self.r.delivered_at.append(now)

        return handler

    def send_doc(self, link: YClient, replica: Replica) -> None:
        update = replica.type(self.spec.chars)
        start = mono()
        self.r.doc_sent[update_key(update)] = start

        def on_answer(stored: bool) -> None:
            if stored:
                self.add("doc stored", mono() - start)
            else:
                self.r.errors["document update: ERROR"] += 1

        self.spawn(link.send_update(pycrdt.create_update_message(update), on_answer))

    # --- the opening hour ----------------------------------------------------------------------

    async def student(self, n: int, person: Person, gate: asyncio.Semaphore) -> None:
        visit = 0
        at = self.t0 + person.arrive_s
        while True:
            await self.sleep_until(at)
            if self.closing or mono() >= self.end:
                return
            visit += 1
            await self.student_visit(n, person, gate)
            if not self.spec.churn:
                return
            at = mono() + self.rng.uniform(0.5, 1.5) * self.spec.gap_s

    async def student_visit(self, n: int, person: Person, gate: asyncio.Semaphore) -> None:
        sio = self.client(n)
        matched: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        ended = asyncio.Event()
        leaving = False

        def on_match(data: Any = None) -> None:
            now = mono()
            room_id = str((data or {}).get("room_id"))
            self.r.matches[room_id] = now
            if not matched.done():
                matched.set_result(room_id)

        def on_disconnect(*_: Any) -> None:
            if not leaving and not self.closing:
                self.r.errors["student dropped"] += 1
            self.live -= 1
            ended.set()

        sio.on("match", on_match)
        sio.on("chat:message", self.on_chat("student"))
        sio.on("room:ended", lambda *_: ended.set())
        sio.on("disconnect", on_disconnect)
        if not await self.connect(sio, person.token, gate):
            return
        try:
            start = mono()
            ack = await self.call(
                sio,
                "help:request",
                {"subject": self.rng.choice(self.spec.subjects), "grade": _grade(person.username)},
            )
            if not (isinstance(ack, dict) and ack.get("ok")):
                if ack is not None:
                    self.r.errors[f"help:request: {_code(ack)}"] += 1
                return
            asked = mono()
            self.add("request ack", asked - start)
            self.r.counts["requests"] += 1
            try:
                room_id = await asyncio.wait_for(asyncio.shield(matched), self.end - mono())
            except TimeoutError:
                self.r.counts["still waiting at the end"] += 1
                await self.call(sio, "help:cancel", {"request_id": ack["request_id"]})
                await asyncio.sleep(0.5)  # a match on its way meanwhile: end that room too
                if matched.done():
                    await self.call(sio, "room:end", {"room_id": matched.result()})
                return
            self.add("queue wait", mono() - asked)
            until = min(mono() + person.session_s, self.end)
            await self.in_room(sio, "student", room_id, until, ended)
            if not ended.is_set():
                await self.call(sio, "room:end", {"room_id": room_id})
            self.r.counts["sessions done"] += 1
        finally:
            leaving = True
            await self.leave(sio)

    async def helper(self, n: int, person: Person, gate: asyncio.Semaphore) -> None:
        sio = self.client(n)
        ended = asyncio.Event()
        busy = False
        leaving = False
        room_over = False

        async def take(offer: dict[str, Any]) -> None:
            nonlocal busy, room_over
            ended.clear()
            room_over = False
            start = mono()
            ack = await self.call(sio, "offer:accept", {"offer_id": offer.get("offer_id")})
            if not (isinstance(ack, dict) and ack.get("ok")):
                self.r.errors[f"offer:accept: {_code(ack)}"] += 1
                busy = False
                await self.call(sio, "duty:set", {"status": "available"})
                return
            room_id = str(ack["room_id"])
            self.r.accepts[room_id] = start
            self.add("accept ack", mono() - start)
            await self.in_room(sio, "helper", room_id, self.end, ended)
            if not room_over:  # closing time: the helper ends the room
                await self.call(sio, "room:end", {"room_id": room_id})
            busy = False
            if not self.closing and not leaving:
                await self.call(sio, "duty:set", {"status": "available"})

        def on_offer(data: Any = None) -> None:
            nonlocal busy
            if busy or self.closing:
                self.r.errors["offer while busy"] += int(busy)
                return
            busy = True
            self.spawn(take(data or {}))

        def on_disconnect(*_: Any) -> None:
            if not leaving and not self.closing:
                self.r.errors["helper dropped"] += 1
            self.live -= 1
            ended.set()

        def on_room_ended(*_: Any) -> None:
            nonlocal room_over
            room_over = True
            ended.set()

        sio.on("offer", on_offer)
        sio.on("chat:message", self.on_chat("helper"))
        sio.on("room:ended", on_room_ended)
        sio.on("disconnect", on_disconnect)
        if not await self.connect(sio, person.token, gate):
            return
        ack = await self.call(sio, "duty:set", {"status": "available"})
        if not (isinstance(ack, dict) and ack.get("ok")):
            self.r.errors[f"duty:set: {_code(ack)}"] += 1
        self.helpers_ready += 1
        await self.started.wait()
        await self.sleep_until(self.end)
        leaving = True
        await self.call(sio, "duty:set", {"status": "off"})
        while busy:
            await asyncio.sleep(0.1)
        await self.leave(sio)

    async def hour(self) -> None:
        spec = self.spec
        gate = asyncio.Semaphore(spec.connects_in_flight)
        self.helpers_ready = 0
        self.started = asyncio.Event()
        self.end = float("inf")
        helpers = [asyncio.create_task(self.helper(i, h, gate)) for i, h in enumerate(spec.helpers)]
        while self.helpers_ready + sum(self.r.errors.values()) < len(spec.helpers):
            await asyncio.sleep(0.05)
        self.out.put(("ready", spec.index))
        self.t0 = await self.wait_command()
        self.end = self.t0 + spec.hour_s
        self.started.set()
        sampler = asyncio.create_task(self.sample_connected())
        students = [
            asyncio.create_task(self.student(len(spec.helpers) + i, s, gate))
            for i, s in enumerate(spec.students)
        ]
        await asyncio.gather(*students, *helpers, return_exceptions=True)
        self.closing = True
        sampler.cancel()

    # --- chat throughput: rooms on the hub, or the echo server ---------------------------------

    async def throughput(self) -> None:
        spec = self.spec
        gate = asyncio.Semaphore(spec.connects_in_flight)
        members: list[tuple[socketio.AsyncClient, str, str]] = []  # (client, role, room)
        if spec.mode == "echo":
            for i in range(spec.pairs):
                for role in ("student", "helper"):
                    sio = self.client(len(members))
                    sio.on("chat:message", self.on_chat(role))
                    if await self.connect(sio, "echo", gate):
                        room = f"w{spec.index}-{i}"
                        await self.call(sio, "room:join", {"room_id": room})
                        members.append((sio, role, room))
        else:
            members = await self.hub_rooms(gate)
        self.out.put(("ready", spec.index))
        start, end = await self.wait_command()
        await self.sleep_until(start)

        async def sender(sio: socketio.AsyncClient, role: str, room: str) -> None:
            while mono() < end:
                await self.send_chat(sio, role, room)

        await asyncio.gather(
            *(sender(*m) for m in members for _ in range(spec.window)), return_exceptions=True
        )
        await asyncio.sleep(1.0)  # the last deliveries
        await asyncio.gather(*(self.leave(sio) for sio, _, _ in members))

    async def hub_rooms(
        self, gate: asyncio.Semaphore
    ) -> list[tuple[socketio.AsyncClient, str, str]]:
        """Each pair meets through the real events; a helper may get another process's student
        (the hub offers whoever waits longest), which is fine: it sends to its own room."""
        spec = self.spec
        members: list[tuple[socketio.AsyncClient, str, str]] = []

        async def pair(i: int) -> None:
            student, helper = spec.students[i], spec.helpers[i]
            s_sio, h_sio = self.client(2 * i), self.client(2 * i + 1)
            s_sio.on("chat:message", self.on_chat("student"))
            h_sio.on("chat:message", self.on_chat("helper"))
            matched: asyncio.Future[str] = asyncio.get_running_loop().create_future()
            offered: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()

            def on_match(d: Any = None) -> None:
                if not matched.done():
                    matched.set_result(str(d["room_id"]))

            def on_offer(d: Any = None) -> None:
                if not offered.done():
                    offered.set_result(d)

            s_sio.on("match", on_match)
            h_sio.on("offer", on_offer)
            if not (await self.connect(s_sio, student.token, gate)):
                return
            if not (await self.connect(h_sio, helper.token, gate)):
                return
            await self.call(
                s_sio,
                "help:request",
                {"subject": spec.subjects[0], "grade": _grade(student.username)},
            )
            await self.call(h_sio, "duty:set", {"status": "available"})
            offer = await asyncio.wait_for(offered, 60)
            ack = await self.call(h_sio, "offer:accept", {"offer_id": offer["offer_id"]})
            room_h = str(ack["room_id"])
            room_s = await asyncio.wait_for(matched, 60)
            for sio, role, room in ((s_sio, "student", room_s), (h_sio, "helper", room_h)):
                await self.call(sio, "room:join", {"room_id": room})
                members.append((sio, role, room))

        limit = asyncio.Semaphore(10)

        async def limited(i: int) -> None:
            async with limit:
                try:
                    await pair(i)
                except Exception as exc:
                    self.r.errors[f"pairing: {type(exc).__name__}"] += 1

        await asyncio.gather(*(limited(i) for i in range(spec.pairs)))
        return members

    # --- the process -----------------------------------------------------------------------

    async def run(self) -> None:
        me = psutil.Process()
        cpu0 = sum(me.cpu_times()[:2])
        self.sessions = [
            aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=0, ssl=self.ssl, local_addr=(address, 0)),
                cookie_jar=aiohttp.DummyCookieJar(),
            )
            for address in self.spec.addresses
        ]
        try:
            if self.spec.mode == "hour":
                await self.hour()
            else:
                await self.throughput()
        finally:
            for task in list(self.tasks):
                task.cancel()
            await asyncio.gather(*(s.close() for s in self.sessions), return_exceptions=True)
        self.r.cpu_s = sum(me.cpu_times()[:2]) - cpu0
        self.r.rss_kib = me.memory_info().rss // 1024


def worker_main(spec: WorkerSpec, out: Any, commands: Any) -> None:
    worker = Worker(spec, out, commands)
    try:
        asyncio.run(worker.run())
    except BaseException as exc:
        worker.r.errors[f"client process: {type(exc).__name__}: {exc}"[:120]] += 1
    out.put(("done", spec.index, worker.r))


# ---------------------------------------------------------------------------------------------
# The server side: hubs behind nginx, the echo server, and what their processes use


def source_addresses(worker: int, count: int) -> list[str]:
    """Loopback addresses in different /24s (nginx's ip_hash keys on the first three octets)."""
    return [f"127.{1 + worker}.{n}.1" for n in range(count)]


class ProcessWatch:
    """CPU seconds and RSS of named processes, sampled every `every_s` in a thread; and, for hub
    processes, their /metrics gauges."""

    def __init__(self, processes: dict[str, int], metrics: dict[str, str], every_s: float = 2.0):
        self.procs = {name: psutil.Process(pid) for name, pid in processes.items()}
        self.metrics = metrics  # name -> base URL of a hub process
        self.every_s = every_s
        self.cpu0 = {name: self._cpu(p) for name, p in self.procs.items()}
        self.rss: dict[str, list[int]] = {name: [] for name in self.procs}
        self.gauges: list[tuple[float, dict[str, dict[str, float]]]] = []
        self.machine0 = psutil.cpu_times()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    @staticmethod
    def _cpu(p: psutil.Process) -> float:
        with suppress(psutil.Error):
            t = p.cpu_times()
            return float(t.user + t.system)
        return 0.0

    def _run(self) -> None:
        while not self._stop.wait(self.every_s):
            for name, p in self.procs.items():
                with suppress(psutil.Error):
                    self.rss[name].append(p.memory_info().rss // 1024)
            if self.metrics:
                self.gauges.append((mono(), {n: hub_gauges(u) for n, u in self.metrics.items()}))

    def stop(self) -> dict[str, Any]:
        self._stop.set()
        self._thread.join()
        m = psutil.cpu_times()
        busy = sum(getattr(m, f) - getattr(self.machine0, f) for f in ("user", "system", "nice"))
        total = sum(m) - sum(self.machine0)
        return {
            "cpu_s": {n: self._cpu(p) - self.cpu0[n] for n, p in self.procs.items()},
            "rss_kib_max": {n: max(v, default=0) for n, v in self.rss.items()},
            "rss_kib": self.rss,
            "machine_busy": busy / total if total else 0.0,
        }


GAUGE_LINE = re.compile(r"^(lektiecafe_[a-z_]+)(\{[^}]*\})? ([0-9.eE+-]+)$")


def hub_gauges(base_url: str) -> dict[str, float]:
    """A hub process's own /metrics (asked directly on its port, from loopback): the connected
    clients by role, the queue, offers pending (made - answered) and rooms open."""
    try:
        with urlopen(base_url + "/metrics", timeout=5) as r:
            text = r.read().decode()
    except OSError:
        return {}
    found: dict[str, float] = {}
    for line in text.splitlines():
        m = GAUGE_LINE.match(line)
        if not m:
            continue
        name, labels, value = m[1], m[2] or "", float(m[3])
        if name == "lektiecafe_connected_clients":
            found[f"connected {labels[7:-1].strip(chr(34))}"] = value
            found["connected"] = found.get("connected", 0.0) + value
        elif name in ("lektiecafe_queue_length", "lektiecafe_rooms_open"):
            found[name.removeprefix("lektiecafe_")] = value
        elif name == "lektiecafe_offers_total":
            outcome = labels.split('"')[1]
            found[f"offers {outcome}"] = value
    made = found.get("offers made", 0.0)
    answered = sum(v for k, v in found.items() if k.startswith("offers ") and k != "offers made")
    found["offers pending (this process's made - answered)"] = made - answered
    return found


@contextmanager
def private_redis(folder: Path) -> Iterator[str]:
    """A redis-server of the run's own (the machine's shared one carries other work)."""
    from tests.services import PrivateRedis

    redis = PrivateRedis(folder)
    try:
        yield redis.url
    finally:
        redis.stop()


@contextmanager
def echo_server(folder: Path) -> Iterator[tuple[str, int]]:
    port = free_port()
    log = folder / "echo.log"
    import subprocess

    process = subprocess.Popen(
        [sys.executable, "-m", "bench.echo", "--port", str(port)],
        cwd=ROOT,
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
    )
    try:
        from lektiecafe.cluster import wait_for_port

        wait_for_port(port, process, log, "the echo server")
        yield f"http://127.0.0.1:{port}", process.pid
    finally:
        stop_process(process)


# ---------------------------------------------------------------------------------------------
# Driving the client processes


class Clients:
    """The client processes of one phase: started, told when to begin, their results merged."""

    def __init__(self, specs: list[WorkerSpec]) -> None:
        ctx = mp.get_context("spawn")
        self.out = ctx.Queue()
        self.commands = [ctx.Queue() for _ in specs]
        self.procs = [
            ctx.Process(target=worker_main, args=(s, self.out, q), daemon=True)
            for s, q in zip(specs, self.commands, strict=True)
        ]
        for p in self.procs:
            p.start()
        self.results: list[WorkerResult] = []

    def wait_ready(self, timeout_s: float) -> None:
        ready = 0
        deadline = mono() + timeout_s
        while ready < len(self.procs):
            kind, *rest = self.out.get(timeout=max(1.0, deadline - mono()))
            if kind == "ready":
                ready += 1
            else:  # a worker that gave up before it was ready
                self.results.append(rest[1])
                ready += 1

    def start(self, command: Any) -> None:
        for q in self.commands:
            q.put(command)

    def join(self, timeout_s: float) -> list[WorkerResult]:
        while len(self.results) < len(self.procs):
            kind, *rest = self.out.get(timeout=timeout_s)
            if kind == "done":
                self.results.append(rest[1])
        for p in self.procs:
            p.join(10)
            if p.is_alive():
                p.kill()
        return self.results

    @property
    def pids(self) -> list[int]:
        return [p.pid for p in self.procs if p.pid is not None]


def merge(results: list[WorkerResult]) -> WorkerResult:
    total = WorkerResult(-1)
    for r in results:
        for name, values in r.samples.items():
            total.samples.setdefault(name, []).extend(values)
        total.errors.update(r.errors)
        total.counts.update(r.counts)
        total.accepts.update(r.accepts)
        total.matches.update(r.matches)
        total.doc_sent.update(r.doc_sent)
        total.doc_recv.update(r.doc_recv)
        total.delivered_at.extend(r.delivered_at)
        total.cpu_s += r.cpu_s
        total.rss_kib += r.rss_kib
    return total


def joined_samples(name: str, sent: dict[Any, float], received: dict[Any, float]) -> Samples:
    """Latencies of what was sent in one process and received in another (one clock)."""
    samples = Samples(name)
    for key, at in sent.items():
        if key in received:
            samples.add(received[key] - at)
    return samples


def connected_series(results: list[WorkerResult]) -> tuple[int, float]:
    """The most clients connected at once over all client processes (by 1 s samples), and when
    (seconds after the first sample)."""
    by_second: Counter[int] = Counter()
    start = min((t for r in results for t, _ in r.connected), default=0.0)
    for r in results:
        seen: dict[int, int] = {}
        for t, n in r.connected:
            seen[int(t - start)] = n
        by_second.update(seen)
    if not by_second:
        return 0, 0.0
    second, peak = max(by_second.items(), key=lambda kv: kv[1])
    return peak, float(second)


# ---------------------------------------------------------------------------------------------
# The phases


def people(
    args: argparse.Namespace, users: list[Any], students: int, rng: random.Random
) -> tuple[list[Person], list[Person]]:
    studs = [
        Person(
            u.username,
            u.token,
            arrive_s=rng.uniform(0, args.arrive_s),
            session_s=rng.uniform(0.5, 1.5) * args.session_s,
        )
        for u in users[:students]
    ]
    helps = [Person(u.username, u.token) for u in users[students:]]
    return studs, helps


def split(items: list[Any], parts: int) -> list[list[Any]]:
    return [items[i::parts] for i in range(parts)]


def run_hour(
    args: argparse.Namespace,
    url: str,
    ca: str | None,
    users: list[Any],
    students: int,
    subjects: list[int],
    watch_processes: dict[str, int],
    hub_urls: dict[str, str],
    procs: int,
) -> dict[str, Any]:
    rng = random.Random(args.seed)
    studs, helps = people(args, users, students, rng)
    specs = [
        WorkerSpec(
            index=w,
            mode="hour",
            url=url,
            ca=ca,
            students=s,
            helpers=h,
            subjects=subjects,
            hour_s=args.hour_s,
            chat_every_s=args.chat_every_s,
            doc_every_s=args.doc_every_s,
            chars=args.chars,
            connects_in_flight=args.connects_in_flight,
            addresses=source_addresses(w, args.addresses),
            churn=args.churn,
            gap_s=args.gap_s,
            seed=args.seed + w,
        )
        for w, (s, h) in enumerate(zip(split(studs, procs), split(helps, procs), strict=True))
    ]
    clients = Clients(specs)
    progress(f"  {procs} client processes: {len(helps)} helpers connecting, going on duty ...")
    clients.wait_ready(300)
    watch = ProcessWatch(
        {**watch_processes, **{f"client {i}": p for i, p in enumerate(clients.pids)}},
        hub_urls,
        every_s=args.sample_s,
    )
    load_before = os.getloadavg()
    t0 = mono() + 1.0
    progress(
        f"  the hour: {len(studs)} students arriving over {args.arrive_s:.0f} s, "
        f"{args.hour_s:.0f} s in all ..."
    )
    clients.start(t0)
    results = clients.join(args.hour_s + 300)
    wall = mono() - t0
    used = watch.stop()
    time.sleep(args.settle_s)
    after = {name: hub_gauges(u) for name, u in hub_urls.items()}
    total = merge(results)
    peak, peak_at = connected_series(results)
    measures = [
        Samples("connect", sorted(total.samples.get("connect", []))),
        Samples("help:request -> ack", total.samples.get("request ack", [])),
        joined_samples("offer:accept -> student's match", total.accepts, total.matches),
        Samples("chat:send -> chat:message at the peer", total.samples.get("chat", [])),
        joined_samples("document update -> the peer", total.doc_sent, total.doc_recv),
        Samples("chat:send -> ack", total.samples.get("chat ack", [])),
        Samples("document update -> STORED", total.samples.get("doc stored", [])),
        Samples("offer:accept -> ack", total.samples.get("accept ack", [])),
        Samples("queue wait (ask -> match)", total.samples.get("queue wait", [])),
    ]
    hub_peaks: dict[str, float] = {}
    for _t, gauges in watch.gauges if hasattr(watch, "gauges") else []:
        for name, g in gauges.items():
            hub_peaks[name] = max(hub_peaks.get(name, 0.0), g.get("connected", 0.0))
    return {
        "students": len(studs),
        "helpers": len(helps),
        "wall_s": wall,
        "load_average_before": load_before,
        "load_average_after": os.getloadavg(),
        "peak_connected_clients": peak,
        "peak_connected_at_s": peak_at,
        "peak_connected_per_hub": hub_peaks,
        "measures": [m.summary() for m in measures],
        "errors": dict(total.errors),
        "counts": dict(total.counts),
        "processes": used,
        "client_cpu_s": total.cpu_s,
        "hub_gauges_after": after,
        "hub_gauges_series": [(t - t0, g) for t, g in watch.gauges],
    }


def run_throughput(
    args: argparse.Namespace,
    mode: str,
    url: str,
    users: list[Any],
    subjects: list[int],
    server_pid: int,
) -> dict[str, Any]:
    pairs = args.throughput_pairs
    procs = args.client_procs
    studs = [Person(u.username, u.token) for u in users[:pairs]]
    helps = [Person(u.username, u.token) for u in users[pairs : 2 * pairs]]
    specs = [
        WorkerSpec(
            index=w,
            mode=mode,
            url=url,
            ca=None,
            students=s,
            helpers=h,
            subjects=subjects,
            hour_s=0,
            chat_every_s=1,
            doc_every_s=1,
            chars=args.chars,
            connects_in_flight=args.connects_in_flight,
            addresses=["127.0.0.1"],
            pairs=len(s) if mode != "echo" else pairs // procs,
            window=args.window,
            seed=args.seed + w,
        )
        for w, (s, h) in enumerate(zip(split(studs, procs), split(helps, procs), strict=True))
    ]
    clients = Clients(specs)
    clients.wait_ready(300)
    watch = ProcessWatch({"server": server_pid}, {})
    start = mono() + 0.5
    measured_from = start + args.throughput_warmup_s
    end = measured_from + args.throughput_s
    clients.start((start, end))
    results = clients.join(args.throughput_s + 120)
    used = watch.stop()
    total = merge(results)
    delivered = sum(1 for t in total.delivered_at if measured_from <= t < end)
    chat = Samples(
        "chat:send -> chat:message at the peer (saturated)", total.samples.get("chat", [])
    )
    return {
        "mode": mode,
        "pairs": pairs,
        "window": args.window,
        "delivered_per_s": delivered / args.throughput_s,
        "chat": chat.summary(),
        "errors": dict(total.errors),
        "server_cpu_s": used["cpu_s"]["server"],
        "server_rss_kib_max": used["rss_kib_max"]["server"],
        "client_cpu_s": total.cpu_s,
        "machine_busy": used["machine_busy"],
        "load_average": os.getloadavg(),
    }


def run_config(
    args: argparse.Namespace, hubs: int, scale: float, redis_url: str, folder: Path
) -> dict[str, Any]:
    from lektiecafe.cluster import start_cluster

    students = round(args.students * scale)
    helpers = round(args.helpers * scale)
    extra = 2 * args.throughput_pairs if hubs == 1 and args.throughput_s > 0 else 0
    label = f"{hubs} hub{'s' if hubs > 1 else ''}, {scale:g}x load"
    progress(f"{label}: {students} students, {helpers} helpers")
    with fresh_database(args.database_url, args.pg_admin_url, keep=args.keep) as db:
        # The throughput pairs are extra demo students and helpers after the hour's.
        n_students, n_helpers = students + extra // 2, helpers + extra // 2
        progress(f"  seeding {n_students} students, {n_helpers} helpers ...")
        seed(db.url, n_students, n_helpers)
        names = demo_usernames(n_students, n_helpers)
        minted = {u.username: u for u in mint_tokens(db.url, SECRET_KEY, names)}
        hour_users = [minted[f"student{i}"] for i in range(1, students + 1)] + [
            minted[f"helper{i}"] for i in range(1, helpers + 1)
        ]
        cluster = start_cluster(
            hubs,
            db.url,
            redis_url,
            folder / f"cluster-{hubs}-{scale:g}",
            SECRET_KEY,
            LOAD_ENV,
            worker_connections=NGINX_CONNECTIONS,
        )
        try:
            assert cluster.front is not None
            front = cluster.front.url.replace("https://localhost:", "https://127.0.0.1:")
            subjects = subject_ids(cluster.hubs[0].url, hour_users[0].token)
            watched = {f"hub {i}": h.pid for i, h in enumerate(cluster.hubs)}
            watched["nginx"] = cluster.front.process.pid
            hub_urls = {f"hub {i}": h.url for i, h in enumerate(cluster.hubs)}
            direct = args.direct and hubs == 1
            hour = run_hour(
                args,
                cluster.hubs[0].url if direct else front,
                None if direct else str(cluster.front.ca),
                hour_users,
                students,
                subjects,
                watched,
                hub_urls,
                args.client_procs,
            )
            result: dict[str, Any] = {
                "hubs": hubs,
                "scale": scale,
                "label": label + (", direct" if direct else ""),
                "database": database_version(db.url),
                "hour": hour,
            }
            if extra:
                progress(f"  chat throughput, {args.throughput_pairs} rooms, straight to hub 0 ...")
                pair_users = [
                    minted[f"student{i}"] for i in range(students + 1, n_students + 1)
                ] + [minted[f"helper{i}"] for i in range(helpers + 1, n_helpers + 1)]
                result["throughput"] = run_throughput(
                    args,
                    "throughput",
                    cluster.hubs[0].url,
                    pair_users,
                    subjects,
                    cluster.hubs[0].pid,
                )
            return result
        except BaseException:
            for hub in cluster.hubs:
                progress(f"hub log tail:\n{hub.tail(1500)}")
            raise
        finally:
            cluster.stop()


# ---------------------------------------------------------------------------------------------
# The report


def hub_cpu(hour: dict[str, Any]) -> float:
    return sum(v for k, v in hour["processes"]["cpu_s"].items() if k.startswith("hub"))


def deliveries(hour: dict[str, Any]) -> int:
    """Chat messages and document updates that reached the peer: the hour's unit of work."""
    by_name = {m["name"]: m["n"] for m in hour["measures"]}
    return int(
        by_name.get("chat:send -> chat:message at the peer", 0)
        + by_name.get("document update -> the peer", 0)
    )


def cpu_per_delivery(hour: dict[str, Any]) -> float:
    """Hub CPU milliseconds (every hub process) per delivery: everything else the hub does in
    the hour (connects, matching, queue places) counted in, so it compares configurations."""
    return 1000 * hub_cpu(hour) / max(1, deliveries(hour))


def cpu_per_session(hour: dict[str, Any]) -> float:
    return hub_cpu(hour) / max(1, hour["counts"].get("sessions done", 0))


def _measure_rows(measures: list[list[dict[str, Any]]], labels: list[str]) -> list[str]:
    lines = ["  " + f"{'measure, p50 / p99':<42}" + "".join(f"{lab:>30}" for lab in labels)]
    for i, first in enumerate(measures[0]):
        cells = []
        for ms in measures:
            m = ms[i]
            cells.append(
                f"{fmt_ms(m['p50_ms'])} / {fmt_ms(m['p99_ms'])} ({m['n']})" if m["n"] else "-"
            )
        lines.append("  " + f"{first['name']:<42}" + "".join(f"{c:>30}" for c in cells))
    return lines


def report(result: dict[str, Any]) -> str:
    configs = result["configs"]
    lines = [
        "Opening hour (bench/load.py)",
        *machine_lines(result["machine"]),
        f"  stack     {configs[0]['database'] if configs else '-'}, Redis (private), nginx "
        "(shipped configuration, TLS), hubs on gevent",
        load_line(result["load_average_before"], result["load_average_after"]),
        "",
    ]
    if configs:
        labels = [c["label"] for c in configs]
        lines += _measure_rows([c["hour"]["measures"] for c in configs], labels)
        lines.append("")

        def row(name: str, cell: Callable[[dict[str, Any]], str]) -> str:
            return "  " + f"{name:<42}" + "".join(f"{cell(c):>30}" for c in configs)

        h = lambda c: c["hour"]  # noqa: E731
        lines += [
            row("students / helpers", lambda c: f"{h(c)['students']} / {h(c)['helpers']}"),
            row("peak connected clients", lambda c: f"{h(c)['peak_connected_clients']:,}"),
            row(
                "  per hub process (/metrics)",
                lambda c: " ".join(f"{v:.0f}" for v in h(c)["peak_connected_per_hub"].values()),
            ),
            row("sessions done", lambda c: str(h(c)["counts"].get("sessions done", 0))),
            row(
                "still waiting at the end",
                lambda c: str(h(c)["counts"].get("still waiting at the end", 0)),
            ),
            row("chat messages delivered", lambda c: str(h(c)["counts"].get("chat delivered", 0))),
            row("errors", lambda c: str(sum(h(c)["errors"].values()))),
            row(
                "hub CPU s (each process)",
                lambda c: " ".join(
                    f"{v:.0f}" for k, v in h(c)["processes"]["cpu_s"].items() if k.startswith("hub")
                ),
            ),
            row(
                "hub RSS MiB max (each)",
                lambda c: " ".join(
                    f"{v / 1024:.0f}"
                    for k, v in h(c)["processes"]["rss_kib_max"].items()
                    if k.startswith("hub")
                ),
            ),
            row("nginx CPU s", lambda c: f"{h(c)['processes']['cpu_s'].get('nginx', 0):.0f}"),
            row("client processes CPU s", lambda c: f"{h(c)['client_cpu_s']:.0f}"),
            row("hub CPU ms per delivery (all hubs)", lambda c: f"{cpu_per_delivery(h(c)):.2f}"),
            row("hub CPU s per session (all hubs)", lambda c: f"{cpu_per_session(h(c)):.2f}"),
            row("wall s", lambda c: f"{h(c)['wall_s']:.0f}"),
            row("machine busy", lambda c: f"{h(c)['processes']['machine_busy']:.0%}"),
            row(
                "load avg before -> after",
                lambda c: (
                    f"{h(c)['load_average_before'][0]:.1f} -> {h(c)['load_average_after'][0]:.1f}"
                ),
            ),
        ]
        for c in configs:
            if c["hour"]["errors"]:
                lines.append(f"  errors, {c['label']}: {c['hour']['errors']}")
        lines.append("")
        for c in configs:
            chat = next(
                m for m in c["hour"]["measures"] if m["name"].startswith("chat:send -> chat")
            )
            lines.append(
                f"  {c['label']}: chat delivery p99 {fmt_ms(chat['p99_ms'])} with "
                f"{c['hour']['peak_connected_clients']:,} clients connected at the peak: "
                f"{verdict(chat['p99_ms'] < CHAT_TARGET_P99_MS)} (target p99 < 100 ms)"
            )
        for c in configs:
            left = {
                name: {
                    k: v for k, v in g.items() if k in ("connected", "queue_length", "rooms_open")
                }
                for name, g in c["hour"]["hub_gauges_after"].items()
            }
            lines.append(f"  left behind after {c['label']} (/metrics): {left}")
    tp = result.get("throughput", {})
    if tp.get("echo") and tp.get("hub"):
        e, hb = tp["echo"], tp["hub"]
        lines += [
            "",
            f"  chat throughput, {e['pairs']} rooms, {e['window']} messages in flight per member, "
            "straight to the server:",
            f"    echo server   {e['delivered_per_s']:>8,.0f} messages/s delivered to the peer, "
            f"server CPU {e['server_cpu_s']:.1f} s, machine busy {e['machine_busy']:.0%}",
            f"    hub (1 proc.) {hb['delivered_per_s']:>8,.0f} messages/s delivered to the peer, "
            f"server CPU {hb['server_cpu_s']:.1f} s, machine busy {hb['machine_busy']:.0%}",
            f"    ratio hub / echo: {hb['delivered_per_s'] / max(e['delivered_per_s'], 1e-9):.2f}",
        ]
        for name, t in (("echo", e), ("hub", hb)):
            if t["errors"]:
                lines.append(f"    errors ({name}): {t['errors']}")
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m bench.load", description=__doc__.split("\n\n")[0])
    g = p.add_argument_group("the hour (per 1x of load)")
    g.add_argument("--students", type=int, default=200, help="students arriving")
    g.add_argument("--helpers", type=int, default=30, help="helpers on duty from the start")
    g.add_argument("--arrive-s", type=float, default=30.0, help="students arrive over this long")
    g.add_argument("--hour-s", type=float, default=55.0, help="the 'hour', start to closing")
    g.add_argument("--session-s", type=float, default=12.0, help="time in a room (+-50 %%)")
    g.add_argument("--chat-every-s", type=float, default=3.0, help="per member in a room")
    g.add_argument("--doc-every-s", type=float, default=2.0, help="per member in a room")
    g.add_argument("--chars", type=int, default=8, help="letters per document update")
    g.add_argument(
        "--configs",
        default="1x1,4x3",
        help="hub processes x load, comma-separated (4x3: four processes, 3x the students "
        "and helpers)",
    )
    g.add_argument("--client-procs", type=int, default=2, help="client processes")
    g.add_argument("--addresses", type=int, default=32, help="loopback source addresses each")
    g.add_argument("--connects-in-flight", type=int, default=50)
    g.add_argument("--sample-s", type=float, default=2.0, help="CPU/RSS/metrics sampling")
    g.add_argument("--settle-s", type=float, default=3.0, help="before reading what is left")
    g.add_argument("--churn", action="store_true", help="students come again after leaving")
    g.add_argument("--gap-s", type=float, default=5.0, help="between visits, with --churn")
    g.add_argument("--seed", type=int, default=1)
    g.add_argument(
        "--direct",
        action="store_true",
        help="1 hub process: clients straight to it, not through nginx (nginx needs 4 open "
        "files per WebSocket: 5,000 clients need a limit above 20,000)",
    )
    t = p.add_argument_group("chat throughput against the echo server")
    t.add_argument("--throughput-pairs", type=int, default=50, help="rooms (0: skip)")
    t.add_argument("--window", type=int, default=4, help="messages in flight per member")
    t.add_argument("--throughput-s", type=float, default=10.0, help="measured (0: skip)")
    t.add_argument("--throughput-warmup-s", type=float, default=2.0)
    s = p.add_argument_group("servers")
    s.add_argument("--database-url", default=PG_URL, help="PostgreSQL server (fresh database)")
    s.add_argument("--pg-admin-url", default=PG_ADMIN)
    s.add_argument("--keep", action="store_true", help="keep databases and folders")
    s.add_argument("--json", type=Path)
    return p


def parse_configs(text: str) -> list[tuple[int, float]]:
    configs = []
    for part in text.split(","):
        hubs, _, scale = part.strip().partition("x")
        configs.append((int(hubs), float(scale or 1)))
    return configs


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if args.throughput_pairs == 0:
        args.throughput_s = 0
    limit = raise_open_files()
    progress(f"open files limit {limit}")
    result = new_result("load", args) | {"open_files_limit": limit, "hub_env": LOAD_ENV}
    folder = Path(tempfile.mkdtemp(prefix="lektiecafe-load-"))
    result["configs"] = []
    result["throughput"] = {}
    with private_redis(folder) as redis_url:
        for hubs, scale in parse_configs(args.configs):
            config = run_config(args, hubs, scale, redis_url, folder)
            result["configs"].append(config)
            if "throughput" in config:
                result["throughput"]["hub"] = config["throughput"]
    if args.throughput_s > 0:
        progress(f"chat throughput, {args.throughput_pairs} rooms, the echo server ...")
        with echo_server(folder) as (url, pid):
            result["throughput"]["echo"] = run_throughput(args, "echo", url, [], [], pid)
    if not args.keep:
        import shutil

        shutil.rmtree(folder, ignore_errors=True)
    return finish(result, report, args.json)


if __name__ == "__main__":
    sys.exit(main())
