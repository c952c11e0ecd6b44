"""A soak: clients churning on one hub process for half an hour, the hub's memory sampled.

    .venv/bin/python -m bench.soak                        # 30 minutes
    .venv/bin/python -m bench.soak --duration-s 600       # 10 minutes

The same clients and stack as bench/load.py (PostgreSQL, a private Redis, nginx, client
processes), with every student coming back after each visit (connect, ask, wait, matched, chat
and edit for about --session-s, end the room, leave, a pause, again) until the end. The hub's
RSS is sampled every --rss-every-s; the growth is judged from the first sample after
--warmup-s (caches, pools and the allocator's arenas fill in the first minutes) to the last
(target < 5 %). At the end, once every client has left, the hub's /metrics must show nothing
left behind: no connected clients, no waiting requests, no open rooms, no offer made and not
answered. See bench/README.md and docs/performance.md."""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import psutil

from bench.common import (
    SECRET_KEY,
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
from bench.load import (
    LOAD_ENV,
    NGINX_CONNECTIONS,
    hub_gauges,
    private_redis,
    raise_open_files,
    run_hour,
)
from bench.load import (
    parser as load_parser,
)

TARGET_GROWTH = 0.05


class RssSampler:
    """The hub's RSS every `every_s`, in a thread: (seconds since the start, KiB)."""

    def __init__(self, pid: int, every_s: float) -> None:
        self.proc = psutil.Process(pid)
        self.every_s = every_s
        self.start = time.monotonic()
        self.samples: list[tuple[float, int]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _take(self) -> None:
        try:
            rss = self.proc.memory_info().rss // 1024
        except psutil.Error:
            return
        self.samples.append((time.monotonic() - self.start, rss))
        progress(f"  {self.samples[-1][0]:6.0f} s  hub RSS {rss / 1024:.1f} MiB")

    def _run(self) -> None:
        self._take()
        while not self._stop.wait(self.every_s):
            self._take()

    def stop(self) -> list[tuple[float, int]]:
        self._stop.set()
        self._thread.join()
        self._take()
        return self.samples


def growth(samples: list[tuple[float, int]], warmup_s: float) -> dict[str, Any]:
    after = [s for s in samples if s[0] >= warmup_s] or samples
    first, last = after[0][1], samples[-1][1]
    return {
        "from_s": after[0][0],
        "from_kib": first,
        "to_kib": last,
        "max_kib": max(kib for _, kib in samples),
        "growth": (last - first) / first if first else 0.0,
        "growth_from_start": (last - samples[0][1]) / samples[0][1] if samples[0][1] else 0.0,
    }


def parser() -> argparse.ArgumentParser:
    p = load_parser()
    p.prog = "python -m bench.soak"
    p.description = __doc__.split("\n\n")[0]
    g = p.add_argument_group("soak")
    g.add_argument("--duration-s", type=float, default=1800.0, help="30 minutes by default")
    g.add_argument("--rss-every-s", type=float, default=30.0)
    g.add_argument("--warmup-s", type=float, default=120.0, help="growth is judged after this")
    p.set_defaults(students=150, helpers=30, arrive_s=30.0, session_s=20.0, gap_s=10.0, churn=True)
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    args.hour_s = args.duration_s
    limit = raise_open_files()
    result = new_result("soak", args) | {"open_files_limit": limit, "hub_env": LOAD_ENV}
    folder = Path(tempfile.mkdtemp(prefix="lektiecafe-soak-"))
    from lektiecafe.cluster import start_cluster

    with (
        private_redis(folder) as redis_url,
        fresh_database(args.database_url, args.pg_admin_url, keep=args.keep) as db,
    ):
        progress(f"seeding {args.students} students, {args.helpers} helpers ...")
        seed(db.url, args.students, args.helpers)
        users = mint_tokens(db.url, SECRET_KEY, demo_usernames(args.students, args.helpers))
        result["database"] = database_version(db.url)
        cluster = start_cluster(
            1,
            db.url,
            redis_url,
            folder / "cluster",
            SECRET_KEY,
            LOAD_ENV,
            worker_connections=NGINX_CONNECTIONS,
        )
        try:
            assert cluster.front is not None
            hub = cluster.hubs[0]
            front = cluster.front.url.replace("https://localhost:", "https://127.0.0.1:")
            subjects = subject_ids(hub.url, users[0].token)
            result["gauges_before"] = hub_gauges(hub.url)
            rss = RssSampler(hub.pid, args.rss_every_s)
            progress(f"soak: {args.duration_s / 60:.0f} minutes of churn ...")
            result["hour"] = run_hour(
                args,
                front,
                str(cluster.front.ca),
                users,
                args.students,
                subjects,
                {"hub 0": hub.pid, "nginx": cluster.front.process.pid},
                {"hub 0": hub.url},
                args.client_procs,
            )
            result["rss"] = rss.stop()
            result["growth"] = growth(result["rss"], args.warmup_s)
            time.sleep(5)  # the gauges are read from the database at most every few seconds
            result["gauges_after"] = hub_gauges(hub.url)
            result["hub_fds"] = psutil.Process(hub.pid).num_fds()
        finally:
            cluster.stop()
    if not args.keep:
        shutil.rmtree(folder, ignore_errors=True)
    return finish(result, report, args.json)


LEFT_KEYS = (
    "connected",
    "queue_length",
    "rooms_open",
    "offers pending (this process's made - answered)",
)


def report(result: dict[str, Any]) -> str:
    g = result["growth"]
    hour = result["hour"]
    after = result["gauges_after"]
    left = {k: after.get(k) for k in LEFT_KEYS}
    clean = all(v == 0 for v in left.values())
    lines = [
        "Soak (bench/soak.py)",
        *machine_lines(result["machine"]),
        f"  stack     {result['database']}, Redis (private), nginx, 1 hub process",
        load_line(result["load_average_before"], result["load_average_after"]),
        f"  duration  {result['config']['duration_s'] / 60:.0f} min, "
        f"{hour['students']} students churning, {hour['helpers']} helpers",
        "",
        f"  hub RSS   {g['from_kib'] / 1024:.1f} MiB at {g['from_s']:.0f} s -> "
        f"{g['to_kib'] / 1024:.1f} MiB at the end (max {g['max_kib'] / 1024:.1f}): "
        f"{g['growth']:+.1%}  {verdict(g['growth'] < TARGET_GROWTH)} (target < 5 %); "
        f"from the first sample {g['growth_from_start']:+.1%}",
        "  samples   " + " ".join(f"{kib / 1024:.0f}" for _, kib in result["rss"]) + " MiB",
        f"  sessions  {hour['counts'].get('sessions done', 0)} done, "
        f"{hour['counts'].get('requests', 0)} requests, "
        f"{hour['counts'].get('chat delivered', 0)} chat messages delivered",
        f"  errors    {hour['errors'] or 'none'}",
        f"  left behind (/metrics, after every client left): {left}  {verdict(clean)}",
        f"  hub file descriptors at the end: {result['hub_fds']}",
        "",
    ]
    for m in hour["measures"]:
        if m["n"]:
            lines.append(
                f"  {m['name']:<42} p50 {fmt_ms(m['p50_ms']):>10}  p99 {fmt_ms(m['p99_ms']):>10}"
                f"  ({m['n']})"
            )
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
