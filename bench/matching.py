"""Matching under load: thousands of students waiting, hundreds of helpers going on duty.

    .venv/bin/python -m bench.matching [--students 2000] [--helpers 300]
        [--database-url postgresql+psycopg://127.0.0.1:5432/] [--hub-url URL]

Phase A  every student asks for help while nobody is on duty (bounded in flight):
         `help:request` emitted -> its acknowledgement.
Phase B  helpers go on duty one at a time while all those students wait:
         `duty:set available` emitted -> the `offer` event arriving at that helper.
Phase C  each helper accepts its offer: `offer:accept` emitted -> the student's `match` event.

The target for one hub process is p99 < 20 ms for A and B. A is judged on open-loop arrivals
(`--request-rate`): a closed loop keeps `--requests-in-flight` requests waiting on purpose, so its
latency is that number divided by the hub's throughput (Little's law), not the wait a student
sees. See bench/README.md."""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import math
import os
import random
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import socketio

from bench.common import (
    HUB_ENV,
    RESULTS,
    SECRET_KEY,
    BenchUser,
    LoopLag,
    Samples,
    client_session,
    connect_all,
    cpu_seconds,
    database_version,
    disconnect_all,
    fmt_ms,
    fresh_database,
    login_tokens,
    machine_info,
    mint_tokens,
    new_client,
    seed,
    subject_ids,
)
from lektiecafe.launch import HubProcess, start_hub

TARGET_P99_MS = 20.0
EVENT_TIMEOUT_S = 60.0


@dataclass
class Actor:
    """One connected student or helper and what the hub has told it."""

    user: BenchUser
    sio: socketio.AsyncClient
    index: int  # 1-based, as in the demo usernames
    queue_updates: int = 0
    offer: asyncio.Future[tuple[float, dict[str, Any]]] | None = None
    offer_id: int | None = None
    dropped: bool = False


@dataclass
class Phase:
    name: str
    wall_s: float = 0.0
    queue_updates: int = 0
    drain_s: float = 0.0  # after the last measure, until the queue:update fan-out went quiet
    hub_cpu_s: float | None = None
    loop_lag: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)


class MatchingBench:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.students: list[Actor] = []
        self.helpers: list[Actor] = []
        self.queue_updates = 0
        self.last_queue_update = time.perf_counter()
        self.matches: dict[str, asyncio.Future[float]] = {}
        self.unexpected: dict[str, int] = {}
        self.unexpected_log: list[dict[str, Any]] = []
        self.phase = "connect"
        self.hub_pid: int | None = None
        self.lag = LoopLag()

    # --- wiring -------------------------------------------------------------------------------

    def _future(self) -> asyncio.Future[Any]:
        return asyncio.get_running_loop().create_future()

    def _watch_student(self, actor: Actor) -> None:
        def on_queue_update(_data: Any = None) -> None:
            actor.queue_updates += 1
            self.queue_updates += 1
            self.last_queue_update = time.perf_counter()

        def on_match(data: Any = None) -> None:
            now = time.perf_counter()
            room_id = str((data or {}).get("room_id"))
            future = self.matches.setdefault(room_id, self._future())
            if not future.done():
                future.set_result(now)

        actor.sio.on("queue:update", on_queue_update)
        actor.sio.on("match", on_match)
        self._watch_common(actor)

    def _watch_helper(self, actor: Actor) -> None:
        def on_offer(data: Any = None) -> None:
            now = time.perf_counter()
            if actor.offer is not None and not actor.offer.done():
                actor.offer.set_result((now, data or {}))
            else:
                self._unexpected("offer outside a measure", actor, data)

        def on_expired(data: Any = None) -> None:
            self._unexpected("offer:expired", actor, data)

        actor.sio.on("offer", on_offer)
        actor.sio.on("offer:expired", on_expired)
        self._watch_common(actor)

    def _watch_common(self, actor: Actor) -> None:
        def on_disconnect(*_args: Any) -> None:
            actor.dropped = True

        actor.sio.on("disconnect", on_disconnect)

    def _unexpected(self, what: str, actor: Actor, data: Any) -> None:
        self.unexpected[what] = self.unexpected.get(what, 0) + 1
        if len(self.unexpected_log) < 50:
            self.unexpected_log.append(
                {"what": what, "phase": self.phase, "user": actor.user.username, "data": data}
            )

    # --- phases -------------------------------------------------------------------------------

    def _begin(self, name: str) -> tuple[Phase, float, int, float | None]:
        self.lag.take()
        self.phase = name
        cpu = cpu_seconds(self.hub_pid) if self.hub_pid else None
        return Phase(name), time.perf_counter(), self.queue_updates, cpu

    async def _end(self, phase: Phase, started: float, updates: int, cpu: float | None) -> Phase:
        phase.wall_s = time.perf_counter() - started
        phase.drain_s = await self._drain()
        phase.queue_updates = self.queue_updates - updates
        if cpu is not None and self.hub_pid:
            after = cpu_seconds(self.hub_pid)
            phase.hub_cpu_s = None if after is None else after - cpu
        phase.loop_lag = self.lag.take().summary()
        return phase

    async def _drain(self, quiet_s: float = 1.0, limit_s: float = 300.0) -> float:
        """Wait until no `queue:update` arrived for `quiet_s`; how long the fan-out still ran."""
        start = time.perf_counter()
        while time.perf_counter() - start < limit_s:
            idle = time.perf_counter() - self.last_queue_update
            if idle >= quiet_s:
                return max(0.0, self.last_queue_update - start)
            await asyncio.sleep(quiet_s - idle)
        return limit_s

    async def phase_a(self, subjects: list[int]) -> tuple[Phase, Samples]:
        """Every student asks for help while nobody is on duty, `requests_in_flight` at a time
        or arriving at `request_rate` per second."""
        samples = Samples("A  help:request -> ack")
        rng = random.Random(self.args.seed)
        todo = list(self.students)
        rng.shuffle(todo)
        payloads = {
            a.user.username: {"subject": rng.choice(subjects), "grade": 8 + (a.index - 1) % 3}
            for a in todo
        }
        phase, started, updates, cpu = self._begin("A")

        async def ask(actor: Actor) -> None:
            start = time.perf_counter()
            try:
                ack = await actor.sio.call(
                    "help:request", payloads[actor.user.username], timeout=EVENT_TIMEOUT_S
                )
            except socketio.exceptions.SocketIOError as exc:
                samples.fail(type(exc).__name__)
                return
            elapsed = time.perf_counter() - start
            if isinstance(ack, dict) and ack.get("ok"):
                samples.add(elapsed)
            else:
                samples.fail(_error_code(ack))

        async def worker() -> None:
            while todo:
                await ask(todo.pop())

        async def arrive(actor: Actor, at_s: float) -> None:
            await asyncio.sleep(max(0.0, started + at_s - time.perf_counter()))
            await ask(actor)

        rate = self.args.request_rate
        if rate:  # open loop: students arrive at a steady rate, however slow the answers
            await asyncio.gather(*(arrive(a, i / rate) for i, a in enumerate(reversed(todo))))
        else:  # closed loop: a fixed number in flight, the next sent as soon as one is answered
            await asyncio.gather(*(worker() for _ in range(self.args.requests_in_flight)))
        phase = await self._end(phase, started, updates, cpu)
        phase.extra["throughput_per_s"] = len(samples.values) / phase.wall_s
        return phase, samples

    async def phase_b(self) -> tuple[Phase, Samples, Samples]:
        """Helpers go on duty `helpers_in_flight` at a time; each waits for its offer."""
        to_offer = Samples("B  duty:set -> offer delivered")
        to_ack = Samples("B' duty:set -> ack")
        todo = list(reversed(self.helpers))
        phase, started, updates, cpu = self._begin("B")

        async def worker() -> None:
            while todo:
                actor = todo.pop()
                actor.offer = self._future()
                start = time.perf_counter()
                try:
                    ack = await actor.sio.call(
                        "duty:set", {"status": "available"}, timeout=EVENT_TIMEOUT_S
                    )
                except socketio.exceptions.SocketIOError as exc:
                    to_ack.fail(type(exc).__name__)
                    to_offer.fail("no ack")
                    continue
                if not (isinstance(ack, dict) and ack.get("ok")):
                    to_ack.fail(_error_code(ack))
                    to_offer.fail("duty refused")
                    continue
                to_ack.add(time.perf_counter() - start)
                try:
                    arrived, offer = await asyncio.wait_for(actor.offer, EVENT_TIMEOUT_S)
                except TimeoutError:
                    to_offer.fail("no offer within 60 s")
                    continue
                to_offer.add(arrived - start)
                actor.offer_id = int(offer["offer_id"])
                await asyncio.sleep(self.args.helper_gap_ms / 1000)

        await asyncio.gather(*(worker() for _ in range(self.args.helpers_in_flight)))
        return await self._end(phase, started, updates, cpu), to_offer, to_ack

    async def phase_c(self) -> tuple[Phase, Samples, Samples]:
        """Each helper with an offer accepts it; measured to the student's `match`."""
        to_match = Samples("C  offer:accept -> student's match")
        to_ack = Samples("C' offer:accept -> ack")
        todo = [h for h in reversed(self.helpers) if h.offer_id is not None]
        phase, started, updates, cpu = self._begin("C")

        async def worker() -> None:
            while todo:
                actor = todo.pop()
                start = time.perf_counter()
                try:
                    ack = await actor.sio.call(
                        "offer:accept", {"offer_id": actor.offer_id}, timeout=EVENT_TIMEOUT_S
                    )
                except socketio.exceptions.SocketIOError as exc:
                    to_ack.fail(type(exc).__name__)
                    to_match.fail("no ack")
                    continue
                if not (isinstance(ack, dict) and ack.get("ok")):
                    to_ack.fail(_error_code(ack))
                    to_match.fail("accept refused")
                    continue
                to_ack.add(time.perf_counter() - start)
                future = self.matches.setdefault(str(ack["room_id"]), self._future())
                try:
                    arrived = await asyncio.wait_for(future, EVENT_TIMEOUT_S)
                except TimeoutError:
                    to_match.fail("no match within 60 s")
                    continue
                to_match.add(arrived - start)

        await asyncio.gather(*(worker() for _ in range(self.args.helpers_in_flight)))
        return await self._end(phase, started, updates, cpu), to_match, to_ack

    # --- the run ------------------------------------------------------------------------------

    async def run(
        self, hub_url: str, users: list[BenchUser], subjects: list[int]
    ) -> dict[str, Any]:
        args = self.args
        async with client_session() as http:
            for i, user in enumerate(users[: args.students], start=1):
                actor = Actor(user, new_client(http), i)
                self._watch_student(actor)
                self.students.append(actor)
            for i, user in enumerate(users[args.students :], start=1):
                actor = Actor(user, new_client(http), i)
                self._watch_helper(actor)
                self.helpers.append(actor)
            everyone = self.students + self.helpers
            self.lag.start()
            _progress(f"connecting {len(everyone)} clients ...")
            started = time.perf_counter()
            connects = await connect_all(
                hub_url, [(a.sio, a.user.token) for a in everyone], args.connects_in_flight
            )
            connect_wall = time.perf_counter() - started
            _progress(
                f"  {len(connects.values)} connected in {connect_wall:.1f} s"
                + (f", failures: {connects.errors}" if connects.errors else "")
            )
            if connects.errors:
                raise SystemExit("not every client could connect; see above")
            # The clients are long-lived: keep the collector from walking them again and again,
            # which would stall this loop and add its pauses to the hub's latencies.
            gc.collect()
            gc.freeze()
            await self._drain()

            _progress(f"phase A: {args.students} requests, {_a_load(vars(args))}")
            a, a_samples = await self.phase_a(subjects)
            _progress(f"  done in {a.wall_s:.1f} s")
            _progress(f"phase B: {args.helpers} helpers on duty, {args.helpers_in_flight} at once")
            b, b_offer, b_ack = await self.phase_b()
            _progress(f"  done in {b.wall_s:.1f} s, fan-out drained {b.drain_s:.1f} s later")
            phases = [a, b]
            measures = [a_samples, b_offer, b_ack]
            if not args.no_accept:
                _progress("phase C: helpers accept their offers")
                c, c_match, c_ack = await self.phase_c()
                _progress(f"  done in {c.wall_s:.1f} s, fan-out drained {c.drain_s:.1f} s later")
                phases.append(c)
                measures += [c_match, c_ack]
            await self.lag.stop()
            dropped = sum(1 for a in everyone if a.dropped)
            return {
                "connect": {**connects.summary(), "wall_s": connect_wall},
                "measures": [m.summary() for m in measures],
                "phases": [vars(p) for p in phases],
                "queue_updates_total": self.queue_updates,
                "clients_dropped": dropped,
                "unexpected_events": dict(self.unexpected),
                "unexpected_log": self.unexpected_log,
                "_clients": [a.sio for a in everyone],
            }


def _a_load(cfg: dict[str, Any]) -> str:
    if cfg["request_rate"]:
        return f"open loop, {cfg['request_rate']:g} arrivals/s"
    return f"closed loop, {cfg['requests_in_flight']} in flight"


def _error_code(ack: Any) -> str:
    if isinstance(ack, dict):
        return str((ack.get("error") or {}).get("code", "no ok"))
    return f"odd ack {ack!r}"[:60]


def _progress(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------------------------
# Report


TARGETS = {"A  help:request -> ack", "B  duty:set -> offer delivered"}


def _loads(averages: list[float]) -> str:
    return " ".join(f"{a:.2f}" for a in averages)


def _verdict(measure: dict[str, Any], cfg: dict[str, Any]) -> str:
    """PASS or MISS against the target; A in a closed loop is a throughput figure, not judged."""
    if measure["name"] not in TARGETS:
        return ""
    if measure["name"].startswith("A") and not cfg["request_rate"]:
        return "not judged: closed loop (see below)"
    ok = measure["n"] > 0 and not measure["errors"] and measure["p99_ms"] < TARGET_P99_MS
    return f"p99 < {TARGET_P99_MS:.0f} ms  {'PASS' if ok else 'MISS'}"


def _a_throughput(phase: dict[str, Any], cfg: dict[str, Any]) -> str:
    rate = phase["extra"]["throughput_per_s"]
    line = f"  throughput A: {rate:.0f} requests/s"
    if cfg["request_rate"]:
        return line
    in_flight = cfg["requests_in_flight"]
    return (
        f"{line}; closed loop: {in_flight} in flight / {rate:.0f} per s = "
        f"{1000 * in_flight / rate:.0f} ms mean by Little's law. A is judged on open-loop "
        f"arrivals: run with --request-rate 50"
    )


def report(result: dict[str, Any]) -> str:
    m, cfg = result["machine"], result["config"]
    lines = [
        "Lektiecafé matching benchmark",
        f"  machine   {m['cpu']}, {m['cores']} cores, {m['os']}",
        f"  python    {m['python']}   commit {m['commit'] or '?'}",
        f"  database  {result['database']}",
        f"  hub       {cfg['hub']}",
        f"  load      {cfg['students']} students, {cfg['helpers']} helpers; "
        f"A: {_a_load(cfg)}; B, C: {cfg['helpers_in_flight']} helper(s) at a time"
        + (f", {cfg['helper_gap_ms']:.0f} ms apart" if cfg["helper_gap_ms"] else ""),
        f"  load avg  {_loads(result['load_average_before'])} before, "
        f"{_loads(result['load_average_after'])} after (other work on these cores inflates "
        "every latency)",
        "",
        f"  {'measure':<36}{'n':>6}{'p50':>11}{'p99':>11}{'max':>11}   target",
    ]
    for s in result["measures"]:
        lines.append(
            f"  {s['name']:<36}{s['n']:>6}{fmt_ms(s['p50_ms']):>11}"
            f"{fmt_ms(s['p99_ms']):>11}{fmt_ms(s['max_ms']):>11}   {_verdict(s, cfg)}"
        )
        if s["errors"]:
            lines.append(f"  {'':<4}failures: {s['errors']}")
    lines += [
        "",
        f"  {'phase':<8}{'wall':>9}{'hub CPU':>10}{'queue:update':>14}"
        f"{'drain':>9}{'client lag p99':>16}",
    ]
    for p in result["phases"]:
        cpu = "-" if p["hub_cpu_s"] is None else f"{p['hub_cpu_s']:.1f} s"
        lines.append(
            f"  {p['name']:<8}{p['wall_s']:>7.1f} s{cpu:>10}{p['queue_updates']:>14,}"
            f"{p['drain_s']:>7.1f} s{fmt_ms(p['loop_lag'].get('p99_ms', math.nan)):>16}"
        )
    c = result["connect"]
    lines += [
        "",
        _a_throughput(result["phases"][0], cfg),
        f"  connect: {c['n']} clients in {c['wall_s']:.1f} s (p99 {fmt_ms(c['p99_ms'])})",
        f"  queue:update received in all: {result['queue_updates_total']:,}; "
        f"clients dropped: {result['clients_dropped']}; "
        f"unexpected events: {result['unexpected_events'] or 'none'}",
    ]
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------
# Main


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m bench.matching", description=__doc__.split("\n\n")[0] if __doc__ else ""
    )
    p.add_argument("--students", type=int, default=2000)
    p.add_argument("--helpers", type=int, default=300)
    p.add_argument(
        "--database-url",
        help="without --hub-url: a PostgreSQL URL whose database is created fresh and dropped "
        "afterwards (a name ending the URL must not exist yet; no name: a generated one); "
        "default: SQLite in a temporary data dir. With --hub-url: the running hub's database, "
        "read to mint tokens",
    )
    p.add_argument(
        "--pg-admin-url",
        default="postgresql://127.0.0.1:5432/test",
        help="where to CREATE/DROP the PostgreSQL database",
    )
    p.add_argument(
        "--hub-url",
        help="bench a hub already running on demo data of at least this size (fresh: no open "
        "requests, helpers off duty). Tokens are minted from --database-url and --secret-key, "
        "or without --database-url by logging in (slow)",
    )
    p.add_argument("--secret-key", default=SECRET_KEY, help="the hub's secret key (--hub-url)")
    p.add_argument("--requests-in-flight", type=int, default=20)
    p.add_argument(
        "--request-rate",
        type=float,
        metavar="PER_S",
        help="phase A open loop: students arrive at this steady rate instead of "
        "--requests-in-flight at a time",
    )
    p.add_argument("--helpers-in-flight", type=int, default=1)
    p.add_argument(
        "--helper-gap-ms",
        type=float,
        default=0.0,
        help="phase B: pause after a helper's offer before the next helper goes on duty",
    )
    p.add_argument("--connects-in-flight", type=int, default=50)
    p.add_argument("--no-accept", action="store_true", help="skip phase C")
    p.add_argument("--seed", type=int, default=1, help="random seed for the subjects asked about")
    p.add_argument(
        "--py-spy",
        type=Path,
        metavar="FILE",
        help="profile the local hub through phases A-C with py-spy (.svg flamegraph, "
        ".json speedscope, anything else: collapsed stacks)",
    )
    p.add_argument(
        "--statements",
        action="store_true",
        help="instead of the benchmark: count the SQL statements of each matching step, run in "
        "this process as the socket handlers run them, on a fresh database (40 students and 5 "
        "helpers unless --students/--helpers say otherwise)",
    )
    p.add_argument("--keep", action="store_true", help="keep the data dir and database")
    p.add_argument("--json", type=Path, help="where to write the results (default bench/results/)")
    return p


def _usernames(args: argparse.Namespace) -> list[str]:
    return [f"student{i}" for i in range(1, args.students + 1)] + [
        f"helper{i}" for i in range(1, args.helpers + 1)
    ]


def _start_py_spy(target: Path, pid: int) -> subprocess.Popen[bytes]:
    fmt = {".svg": "flamegraph", ".json": "speedscope"}.get(target.suffix, "raw")
    py_spy = Path(sys.executable).with_name("py-spy")
    return subprocess.Popen(
        [
            str(py_spy if py_spy.exists() else "py-spy"),
            "record",
            "--pid",
            str(pid),
            "--rate",
            "200",
            "--nonblocking",
            "--format",
            fmt,
            "--output",
            str(target),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def _stop_py_spy(process: subprocess.Popen[bytes]) -> None:
    process.send_signal(signal.SIGINT)
    try:
        process.wait(60)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


async def _bench(
    args: argparse.Namespace,
    hub_url: str,
    users: list[BenchUser],
    subjects: list[int],
    hub: HubProcess | None,
) -> dict[str, Any]:
    bench = MatchingBench(args)
    bench.hub_pid = hub.pid if hub else None
    profiler = _start_py_spy(args.py_spy, hub.pid) if args.py_spy and hub else None
    clients: list[socketio.AsyncClient] = []
    try:
        result = await bench.run(hub_url, users, subjects)
        clients = result.pop("_clients")
        return result
    finally:
        if profiler is not None:
            _stop_py_spy(profiler)
        if hub is not None:
            hub.stop()  # first, so closing 2,300 clients does not wait on the hub
        await disconnect_all(clients or [a.sio for a in bench.students + bench.helpers])


def count_statements(url: str, students: int, helpers: int) -> list[str]:
    """The statements each matching step sends, counted by a `before_cursor_execute` listener
    in this process: the steps run as hub/matching/events.py and dispatcher.py run them, on the
    same service functions. BEGIN and COMMIT are one round trip each more on PostgreSQL
    (psycopg sends them itself); the pool's ping of a connection that rested (hub/db.py) does not
    happen here, since the steps follow each other at once."""
    from sqlalchemy import event, select

    from hub import clock, create_app
    from hub.accounts.access import Identity, load_identity
    from hub.accounts.models import User
    from hub.catalog.models import Subject
    from hub.config import HubConfig
    from hub.matching import service
    from hub.matching.dispatcher import TELL_CHUNK
    from hub.matching.models import DutyStatus
    from hub.rooms import service as rooms
    from hub.state import HubState

    app = create_app(HubConfig(database_url=url, secret_key=SECRET_KEY))
    state: HubState = app.extensions["lektiecafe"]
    sent: list[str] = []
    event.listen(
        state.db.engine,
        "before_cursor_execute",
        lambda _c, _cur, statement, *_rest: sent.append(" ".join(statement.split())[:90]),
    )
    lines: list[str] = []

    def step(name: str, run: Any, times: int) -> None:
        counts = []
        for i in range(times):
            sent.clear()
            run(i)
            counts.append(len(sent))
        lines.append(f"  {name:34s} {min(counts):3d}-{max(counts):<3d} ({times} times)")
        lines.extend(f"      {s}" for s in sent)

    with app.app_context():
        with state.db.transaction() as s:
            ids = dict(s.execute(select(User.username, User.id)).all())
            math = s.scalar(select(Subject.id).where(Subject.key == "math"))

        def who(username: str) -> Identity:
            identity = load_identity(ids[username])
            assert identity is not None
            return identity

        pupils = [who(f"student{i}") for i in range(1, students + 1)]
        crew = [who(f"helper{i}") for i in range(1, helpers + 1)]
        assert math is not None
        offers: dict[int, int] = {}

        def ask(i: int) -> None:
            with state.db.matching_transaction() as s:
                service.create_request(
                    s, pupils[i], subject_id=math, grade=9, language_code=None, note="",
                    attachment_ids=[], now=clock.now(), config=state.config,
                )  # fmt: skip

        def duty(i: int) -> None:
            now = clock.now()
            with state.db.matching_transaction() as s:
                notices = service.set_duty(s, crew[i], DutyStatus.AVAILABLE, now)
                notices += service.offer_free_helpers(s, now, state.config)
            offers[i] = next(n.payload["offer_id"] for n in notices if n.event == "offer")

        def accept(i: int) -> None:
            with state.db.matching_transaction() as s:
                service.accept_offer(s, crew[i], offers[i], clock.now(), [])

        def tell(_i: int) -> None:
            with state.db.transaction() as s:
                waiting = service.waiting_in_order(s)
            with state.db.transaction() as s:
                at_hand = service.help_at_hand(s, state.config)
            changed = service.changed_places(waiting, at_hand, pause=lambda: None)
            with state.db.transaction() as s:
                service.tell_places(s, changed[:TELL_CHUNK])

        def dispatch(_i: int) -> None:
            now = clock.now()
            with state.db.matching_transaction() as s:
                rooms.end_abandoned(s, now, state.config)
                service.dispatch(s, now, state.config)
                service.next_deadline(s)

        step("help:request (nobody on duty)", ask, min(students, 20))
        step("duty:set available, with its offer", duty, min(helpers, 3))
        step("offer:accept", accept, min(helpers, 3))
        step(f"places pass, telling {TELL_CHUNK}", tell, 1)
        step("dispatcher pass (nothing to do)", dispatch, 2)
    state.db.dispose()
    return lines


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.statements:
        students = 40 if args.students == 2000 else args.students
        helpers = 5 if args.helpers == 300 else args.helpers
        with fresh_database(args.database_url, args.pg_admin_url, keep=args.keep) as db:
            seed(db.url, students, helpers)
            print(f"statements per matching step, {database_version(db.url)}, commit "
                  f"{machine_info().get('commit', '?')}:")  # fmt: skip
            print("\n".join(count_statements(db.url, students, helpers)), flush=True)
        return 0
    names = _usernames(args)
    started_at = datetime.now(UTC)
    load_before = os.getloadavg()
    if args.hub_url:
        hub_url = args.hub_url.rstrip("/")
        if args.database_url:
            users = mint_tokens(args.database_url, args.secret_key, names)
            db_label = database_version(args.database_url)
        else:
            _progress(f"logging in {len(names)} users (argon2, slow) ...")
            users = asyncio.run(login_tokens(hub_url, names))
            db_label = "unknown (running hub)"
        subjects = subject_ids(hub_url, users[0].token)
        result = asyncio.run(_bench(args, hub_url, users, subjects, None))
        hub_label = f"running hub at {hub_url}"
    else:
        with fresh_database(args.database_url, args.pg_admin_url, keep=args.keep) as db:
            _progress(f"seeding {args.students} students, {args.helpers} helpers, {db.backend}")
            seed(db.url, args.students, args.helpers)
            users = mint_tokens(db.url, SECRET_KEY, names)
            db_label = database_version(db.url)
            hub = start_hub(db.url, db.data_dir, SECRET_KEY, HUB_ENV)
            try:
                subjects = subject_ids(hub.url, users[0].token)
                result = asyncio.run(_bench(args, hub.url, users, subjects, hub))
            except BaseException:
                hub.stop()
                _progress(f"hub log tail:\n{hub.tail()}")
                raise
            hub_label = f"1 local process (gevent), {hub.url}" + (
                f", data kept in {db.data_dir}" if args.keep else ""
            )
    result = {
        "benchmark": "matching",
        "started_at": started_at.isoformat(timespec="seconds"),
        "machine": machine_info(),
        "load_average_before": load_before,
        "load_average_after": os.getloadavg(),
        "database": db_label,
        "config": {
            "hub": hub_label,
            "students": args.students,
            "helpers": args.helpers,
            "requests_in_flight": args.requests_in_flight,
            "request_rate": args.request_rate,
            "helpers_in_flight": args.helpers_in_flight,
            "helper_gap_ms": args.helper_gap_ms,
            "hub_env": HUB_ENV if not args.hub_url else {},
            "target_p99_ms": TARGET_P99_MS,
        },
        **result,
    }
    print(report(result), flush=True)
    target = args.json or RESULTS / (
        f"matching-{started_at:%Y%m%d-%H%M%S}-{db_label.split()[0].lower()}.json"
    )
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(result, indent=2, default=str) + "\n")
    print(f"\nresults written to {os.path.relpath(target)}", flush=True)
    if args.py_spy:
        print(f"profile written to {args.py_spy}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
