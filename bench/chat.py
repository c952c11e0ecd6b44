"""Rooms under load: 500 rooms at once on one hub process, both members joined.

    .venv/bin/python -m bench.chat [--rooms 500] [--interval-s 4] [--duration-s 60] ...

Each room sends a chat message and a document update (pycrdt, typing into the Text) every
--interval-s, staggered over the rooms, alternating sides: emit on one member -> the event
arriving at the other member. Target (issue 3): chat and document delivery p99 < 50 ms with 500
rooms. See bench/README.md."""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import sys
import time
from collections.abc import Coroutine
from contextlib import suppress
from pathlib import Path
from typing import Any

import pycrdt
import socketio

from bench.common import (
    BenchUser,
    LoopLag,
    Samples,
    client_session,
    cpu_seconds,
    finish,
    fmt_cpu,
    hub_options,
    measure_table,
    new_result,
    on_fresh_hub,
    progress,
    report_header,
    verdict,
)
from bench.rooms import EVENT_TIMEOUT_S, HubRun, Member, Room, room_options, update_key

TARGET_P99_MS = 50.0
DRAIN_S = 15.0  # after the last send, how long late deliveries are still waited for
CHAT_TEXTS = (
    "Hej, jeg sidder fast i opgave fire",
    "Lad os se på den sammen",
    "Hvad skal jeg gange med først?",
    "Prøv at skrive brøken om",
)


def _error_code(ack: Any) -> str:
    if isinstance(ack, dict):
        return str((ack.get("error") or {}).get("code", "no ok"))
    return f"odd ack {ack!r}"[:60]


async def _sleep_until(at: float) -> None:
    await asyncio.sleep(max(0.0, at - time.perf_counter()))


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
        slow = {s: round(v * 1000) for s, v in sorted(worst.items()) if v * 1000 > TARGET_P99_MS}
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


async def run_chat(
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


def report(result: dict[str, Any]) -> str:
    c = result["chat"]
    lines = report_header("Lektiecafé chat benchmark", result)
    lines += [
        "",
        f"Chat and document updates: {c['rooms']} rooms at once, each 1 chat message + 1 "
        f"document update ({c['chars_per_update']} letters) every {c['interval_s']:g} s, "
        f"staggered = {c['sent_per_s']:.0f} messages/s in; {c['ticks'] - c['warmup_ticks']} "
        f"measured rounds after {c['warmup_ticks']} warm-up",
    ]
    target = f"p99 < {TARGET_P99_MS:.0f} ms"
    verdicts = {s["name"]: f"{target}  {verdict(_delivery_ok(s))}" for s in c["measures"][:2]}
    lines += measure_table([*c["measures"], c["loop_lag"]], verdicts)
    slow = c["slow_seconds"]
    lines.append(
        f"  seconds of load with a delivery over {TARGET_P99_MS:.0f} ms: {slow['slow']} of "
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
        f"  wall {c['wall_s']:.1f} s, hub CPU {fmt_cpu(c['hub_cpu_s'])}, bench CPU "
        f"{fmt_cpu(c['client_cpu_s'])}; documents equal on both sides: {c['documents_equal']}; "
        f"clients dropped: {c['clients_dropped']}; unexpected: {c['unexpected'] or 'none'}"
    )
    lines.append(f"\n  config    {json.dumps(result['config'])}")
    return "\n".join(lines)


def _delivery_ok(s: dict[str, Any]) -> bool:
    return s["n"] > 0 and not s["errors"] and s["p99_ms"] < TARGET_P99_MS


def _pct(value: float) -> str:
    return "-" if math.isnan(value) else f"{value:.0f}%"


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m bench.chat", description=__doc__.split("\n\n")[0])
    g = p.add_argument_group("load")
    g.add_argument("--rooms", type=int, default=500, help="rooms active at once")
    g.add_argument("--interval-s", type=float, default=4.0, help="per room: 1 chat + 1 update")
    g.add_argument("--duration-s", type=float, default=60.0, help="measured load")
    g.add_argument("--warmup-s", type=float, default=4.0, help="load before measuring")
    room_options(p)
    hub_options(p)
    return p


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    result = new_result("chat", args)
    result["chat"], result["database"] = on_fresh_hub(
        args, args.rooms, lambda url, users, pid: asyncio.run(run_chat(args, url, users, pid))
    )
    return finish(result, report, args.json)


if __name__ == "__main__":
    sys.exit(main())
