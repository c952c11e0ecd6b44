"""Document sync throughput of the hub beside the reference y-websocket server.

    .venv/bin/python -m bench.sync [--docs 50] [--updates 400] [--window 10] ...

The reference server (@y/websocket-server, installed on demand outside the repo) and the hub get
the same workload from Python: N documents, a writer and a reader each, a window of updates in
flight. Target (issue 3): the hub's throughput at least half of y-websocket's. See
bench/README.md."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from contextlib import suppress
from pathlib import Path
from typing import Any

import pycrdt

from bench.common import (
    BenchUser,
    LoopLag,
    Samples,
    client_session,
    cpu_seconds,
    finish,
    fmt_cpu,
    fmt_ms,
    hub_options,
    new_result,
    on_fresh_hub,
    progress,
    report_header,
    verdict,
)
from bench.rooms import HubRun, Replica, Room, YClient, room_options, update_key
from lektiecafe.launch import free_port, stop_process

TARGET_RATIO = 0.5
# Pinned: 0.1.1 is @y/websocket-server's last release on Yjs 13, the Yjs the hub's pages vendor.
Y_WEBSOCKET_PACKAGES = {"@y/websocket-server": "0.1.1", "yjs": "13.6.33", "ws": "6.2.7"}
NODE_DIR = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / (
    "lektiecafe-bench/y-websocket-server"
)


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
    for i in range(args.docs):
        writer = Replica(client_id=1_000 + i)
        updates = [writer.type(args.chars) for _ in range(args.updates)]
        streams.append(Stream(i, updates, args.window, latency))
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
            seconds, errors = await pump(streams, send, args.timeout_s)
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
        "description": "y-websocket reference server for bench/sync.py (Lektiecafé)",
        "dependencies": Y_WEBSOCKET_PACKAGES,
    }
    server = node_dir / "node_modules/@y/websocket-server/src/server.js"
    current = None
    with suppress(OSError, ValueError):
        current = json.loads(manifest.read_text())
    if current != wanted or not server.exists():
        npm = shutil.which("npm")
        if npm is None:
            raise SystemExit("bench.sync needs node and npm to install y-websocket")
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
            seconds, errors = await pump(streams, send, args.timeout_s)
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
        f"{args.docs} documents x {args.updates} updates of {args.chars} letters, "
        f"{args.window} in flight per document"
    )


def report(result: dict[str, Any]) -> str:
    s = result["sync"]
    hub, ref = s["hub"], s["y_websocket"]
    lines = report_header("Lektiecafé document sync benchmark", result)
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
            f"{fmt_cpu(row['server_cpu_s']):>12}{fmt_cpu(row['client_cpu_s']):>11}"
            f"{fmt_ms(row['loop_lag']['p99_ms']):>10}"
        )
        if row["delivered"] != row["sent"] or row["strays"] or row["window_timeouts"]:
            lines.append(
                f"    {row['server']}: delivered {row['delivered']}/{row['sent']}, "
                f"strays {row['strays']}, window timeouts {row['window_timeouts']}"
            )
    lines.append(
        f"  ratio hub / y-websocket: {s['ratio']:.2f}   target >= {TARGET_RATIO:g}  "
        f"{verdict(s['ratio'] >= TARGET_RATIO)}; documents intact: hub "
        f"{hub['intact']}, y-websocket {ref['intact']}; hub ack p50/p99 "
        f"{fmt_ms(hub['acks']['p50_ms'])}/{fmt_ms(hub['acks']['p99_ms'])}"
    )
    lines.append(f"\n  config    {json.dumps(result['config'])}")
    return "\n".join(lines)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m bench.sync", description=__doc__.split("\n\n")[0])
    g = p.add_argument_group("load")
    g.add_argument("--docs", type=int, default=50, help="documents (rooms), 2 clients each")
    g.add_argument("--updates", type=int, default=400, help="updates per document")
    g.add_argument("--window", type=int, default=10, help="updates in flight per document")
    g.add_argument("--timeout-s", type=float, default=300.0, help="per server")
    g.add_argument(
        "--node-dir",
        type=Path,
        default=NODE_DIR,
        help="where the y-websocket server is installed on demand (outside the repo)",
    )
    room_options(p)
    hub_options(p)
    return p


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    result = new_result("sync", args)
    versions = ensure_y_websocket(args.node_dir)
    hub, result["database"] = on_fresh_hub(
        args, args.docs, lambda url, users, pid: asyncio.run(sync_hub(args, url, users, pid))
    )
    log = Path(os.environ.get("TMPDIR", "/tmp")) / f"y-websocket-bench-{os.getpid()}.log"
    server = NodeServer(args.node_dir, log)
    try:
        ref = asyncio.run(sync_y_websocket(args, server))
    finally:
        server.stop()
        log.unlink(missing_ok=True)
    result["sync"] = {
        "load": _sync_load(args),
        "versions": versions,
        "hub": hub,
        "y_websocket": ref,
        "ratio": hub["updates_per_s"] / ref["updates_per_s"],
    }
    return finish(result, report, args.json)


if __name__ == "__main__":
    sys.exit(main())
