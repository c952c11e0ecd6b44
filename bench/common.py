"""What every hub benchmark needs: a fresh seeded database, a hub in its own process, tokens
minted without logging in, many Socket.IO clients in one asyncio loop, and honest statistics."""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit
from urllib.request import Request, urlopen

import aiohttp
import socketio

from lektiecafe.launch import ROOT, HubProcess, start_hub

T = TypeVar("T")
RESULTS = ROOT / "bench" / "results"
PG_ADMIN = "postgresql://127.0.0.1:5432/test"
DEMO_PASSWORD = "demo-password"
# Headless Chromium for pages in a call: a fake camera and microphone (a test pattern and a beep),
# no permission prompt, software compositing.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-gpu",
    "--use-fake-device-for-media-stream",
    "--use-fake-ui-for-media-stream",
]

# A fragment for a page's init script, inside its function: calls `onRemoteVideo(video)` (which
# the script defines) once, when the page first gives the remote video element a stream.
ON_REMOTE_VIDEO_JS = """
  const media = Object.getOwnPropertyDescriptor(HTMLMediaElement.prototype, "srcObject");
  Object.defineProperty(HTMLMediaElement.prototype, "srcObject", {
    ...media,
    set(value) {
      media.set.call(this, value);
      if (value && this.dataset.testid === "remote-video" && !this.__lcWatched) {
        this.__lcWatched = true;
        onRemoteVideo(this);
      }
    },
  });
"""

SECRET_KEY = "bench-secret"  # the benchmark hub's; tokens are minted with it
HUB_ENV = {
    # Nothing may expire, leave or end on its own during a run.
    "LEKTIECAFE_OFFER_TIMEOUT_S": "600",
    "LEKTIECAFE_STUDENT_GRACE_S": "600",
    "LEKTIECAFE_ROOM_GRACE_S": "600",
}

# ---------------------------------------------------------------------------------------------
# Statistics


def percentile(sorted_values: list[float], p: float) -> float:
    """Nearest-rank percentile of already sorted values (p in 0..100)."""
    if not sorted_values:
        return math.nan
    rank = max(1, math.ceil(p / 100 * len(sorted_values)))
    return sorted_values[rank - 1]


@dataclass
class Samples:
    """Latencies in seconds of one measure, plus the failures seen while taking them."""

    name: str
    values: list[float] = field(default_factory=list)
    errors: dict[str, int] = field(default_factory=dict)

    def add(self, seconds: float) -> None:
        self.values.append(seconds)

    def fail(self, reason: str) -> None:
        self.errors[reason] = self.errors.get(reason, 0) + 1

    def summary(self) -> dict[str, Any]:
        v = sorted(self.values)
        ms = [x * 1000 for x in v]
        return {
            "name": self.name,
            "n": len(v),
            "errors": dict(self.errors),
            "p50_ms": percentile(ms, 50),
            "p90_ms": percentile(ms, 90),
            "p99_ms": percentile(ms, 99),
            "max_ms": ms[-1] if ms else math.nan,
            "mean_ms": sum(ms) / len(ms) if ms else math.nan,
        }


def fmt_ms(value: float) -> str:
    if math.isnan(value):
        return "-"
    return f"{value:.1f} ms" if value < 100 else f"{value:,.0f} ms"


def measure_table(summaries: Sequence[dict[str, Any]], verdicts: dict[str, str]) -> list[str]:
    """Rows of `Samples.summary()`s: n, p50, p99, max, and a verdict where one is given."""
    width = max([36, *(len(s["name"]) + 2 for s in summaries)])
    lines = [f"  {'measure':<{width}}{'n':>7}{'p50':>11}{'p99':>11}{'max':>11}   target"]
    for s in summaries:
        lines.append(
            f"  {s['name']:<{width}}{s['n']:>7}{fmt_ms(s['p50_ms']):>11}"
            f"{fmt_ms(s['p99_ms']):>11}{fmt_ms(s['max_ms']):>11}   {verdicts.get(s['name'], '')}"
        )
        if s["errors"]:
            lines.append(f"  {'':<4}failures: {s['errors']}")
    return lines


def progress(text: str) -> None:
    """What the benchmark is doing, on stderr, so stdout keeps only the report."""
    print(text, file=sys.stderr, flush=True)


def write_results(result: dict[str, Any], target: Path | None, default_name: str) -> Path:
    """The results as JSON, by default in bench/results/ (git-ignored)."""
    target = target or RESULTS / default_name
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(result, indent=2, default=str) + "\n")
    return target


def verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def fmt_cpu(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds:.1f} s"


def new_result(name: str, args: argparse.Namespace) -> dict[str, Any]:
    """The start of a benchmark's results: when, on what machine, at what load, with what
    options (the command line's, and the hub's environment)."""
    return {
        "benchmark": name,
        "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine_info(),
        "load_average_before": os.getloadavg(),
        "config": {
            k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items() if k != "json"
        }
        | {"hub_env": HUB_ENV},
    }


def report_header(title: str, result: dict[str, Any]) -> list[str]:
    return [
        title,
        *machine_lines(result["machine"]),
        f"  database  {result.get('database', '-')}   hub: 1 local process (gevent)",
        load_line(result["load_average_before"], result["load_average_after"]),
    ]


def finish(
    result: dict[str, Any], report: Callable[[dict[str, Any]], str], json_path: Path | None
) -> int:
    """Print the report and write the results (to `json_path`, or to
    bench/results/<benchmark>-<time>.json)."""
    result["load_average_after"] = os.getloadavg()
    print(report(result), flush=True)
    started = datetime.fromisoformat(result["started_at"])
    target = write_results(result, json_path, f"{result['benchmark']}-{started:%Y%m%d-%H%M%S}.json")
    print(f"\nresults written to {os.path.relpath(target)}", flush=True)
    return 0


class LoopLag:
    """How late the benchmark's own event loop wakes up. If this is high, the client side is the
    bottleneck and the latencies it measures are inflated by it."""

    def __init__(self, every_s: float = 0.005) -> None:
        self.every_s = every_s
        self.samples = Samples("client event-loop lag")
        self._task: asyncio.Task[None] | None = None

    async def _run(self) -> None:
        while True:
            start = time.perf_counter()
            await asyncio.sleep(self.every_s)
            self.samples.add(max(0.0, time.perf_counter() - start - self.every_s))

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    def take(self) -> Samples:
        """The lag seen since the last take."""
        taken, self.samples = self.samples, Samples("client event-loop lag")
        return taken

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with suppress(asyncio.CancelledError):
                await self._task


# ---------------------------------------------------------------------------------------------
# The machine


def machine_info() -> dict[str, Any]:
    cpu = platform.processor() or platform.machine()
    with suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    commit = ""
    with suppress(OSError, subprocess.CalledProcessError):
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "commit": commit,
    }


def machine_lines(m: dict[str, Any]) -> list[str]:
    return [
        f"  machine   {m['cpu']}, {m['cores']} cores, {m['os']}",
        f"  python    {m['python']}   commit {m['commit'] or '?'}",
    ]


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU time a local process has used so far."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def process_tree(pid: int) -> list[int]:
    """`pid` and every process below it (children, their children, …), read from /proc."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with suppress(OSError, IndexError, ValueError):
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
                children.setdefault(ppid, []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        found.append(todo.pop())
        todo += children.get(found[-1], [])
    return found


def tree_cpu_seconds(pid: int) -> dict[int, float]:
    """`cpu_seconds` of each process of `process_tree(pid)`."""
    return {p: s for p in process_tree(pid) if (s := cpu_seconds(p)) is not None}


def cpu_used(before: dict[int, float], after: dict[int, float]) -> float:
    """CPU seconds used between two `tree_cpu_seconds` readings. A process that started in
    between counts whole; one that ended in between is missed (its last use is unknown)."""
    return sum(s - before.get(p, 0.0) for p, s in after.items())


def proc_kib(pid: int, file: str, key: str) -> int | None:
    """A "key: N kB" line of /proc/<pid>/<file>: e.g. ("status", "VmRSS"), ("status",
    "VmHWM") for the peak RSS, or ("smaps_rollup", "Pss") for the share of shared pages."""
    with suppress(OSError, ValueError, IndexError):
        for line in Path(f"/proc/{pid}/{file}").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
    return None


def load_line(before: Sequence[float], after: Sequence[float]) -> str:
    return (
        "  load avg  (1/5/15 min) before "
        + "/".join(f"{x:.1f}" for x in before)
        + ", after "
        + "/".join(f"{x:.1f}" for x in after)
        + "  (other work on the machine shows here)"
    )


# ---------------------------------------------------------------------------------------------
# A fresh database


@dataclass
class BenchDatabase:
    url: str  # SQLAlchemy URL the hub and the benchmark use
    backend: str  # "sqlite" or "postgresql"
    data_dir: Path


@contextmanager
def fresh_database(
    database_url: str | None, pg_admin: str = PG_ADMIN, keep: bool = False
) -> Iterator[BenchDatabase]:
    """A new data dir and an empty database: SQLite in the data dir unless `database_url` names
    a PostgreSQL database, which is created here (it must not exist yet) and dropped afterwards."""
    data_dir = Path(tempfile.mkdtemp(prefix="lektiecafe-bench-"))
    pg_name: str | None = None
    try:
        if not database_url or database_url.startswith("sqlite"):
            url = database_url or f"sqlite:///{data_dir / 'hub.db'}"
            yield BenchDatabase(url, "sqlite", data_dir)
            return
        if not database_url.startswith("postgresql"):
            raise SystemExit(f"unsupported database URL: {database_url}")
        import psycopg

        parts = urlsplit(database_url)
        pg_name = parts.path.lstrip("/") or f"lc_bench_{uuid.uuid4().hex[:10]}"
        url = urlunsplit(parts._replace(path=f"/{pg_name}"))
        with psycopg.connect(pg_admin, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{pg_name}"')  # fails if it exists: never reuse one
        yield BenchDatabase(url, "postgresql", data_dir)
    finally:
        if pg_name is not None and not keep:
            import psycopg

            with psycopg.connect(pg_admin, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{pg_name}" WITH (FORCE)')
        if not keep:
            shutil.rmtree(data_dir, ignore_errors=True)


def seed(url: str, students: int, helpers: int) -> None:
    """Migrate and fill the database with the demo data at the given size."""
    from hub import clock
    from hub.db import Database
    from hub.demo import seed_demo
    from hub.server import prepare_database

    db = Database(url)
    try:
        prepare_database(db)
        with db.transaction() as s:
            seed_demo(s, students=students, helpers=helpers, now=clock.now())
    finally:
        db.dispose()


def database_version(url: str) -> str:
    from sqlalchemy import text

    from hub.db import Database

    db = Database(url)
    try:
        with db.transaction() as s:
            if db.is_sqlite:
                return f"SQLite {s.scalar(text('select sqlite_version()'))}"
            return f"PostgreSQL {str(s.scalar(text('show server_version'))).split()[0]}"
    finally:
        db.dispose()


def demo_usernames(students: int, helpers: int) -> list[str]:
    return [f"student{i}" for i in range(1, students + 1)] + [
        f"helper{i}" for i in range(1, helpers + 1)
    ]


# ---------------------------------------------------------------------------------------------
# Users and tokens


@dataclass(frozen=True)
class BenchUser:
    username: str
    user_id: int | None
    token: str


def mint_tokens(database_url: str, secret_key: str, usernames: list[str]) -> list[BenchUser]:
    """Tokens exactly as the hub's `POST /api/auth/token` makes them, without paying for argon2:
    the hub's own `make_token` in an app built on the same secret key and database."""
    from sqlalchemy import select

    from hub import create_app
    from hub.accounts.access import make_token
    from hub.accounts.models import User
    from hub.config import HubConfig
    from hub.state import hub_state

    app = create_app(HubConfig(database_url=database_url, secret_key=secret_key))
    try:
        with app.app_context():
            with hub_state().db.transaction() as s:
                rows = s.execute(select(User.username, User.id).where(User.username.in_(usernames)))
                ids = {username: user_id for username, user_id in rows}
            missing = [u for u in usernames if u not in ids]
            if missing:
                raise SystemExit(
                    f"{len(missing)} users missing from the database (e.g. {missing[0]}); "
                    "was it seeded with enough demo students and helpers?"
                )
            return [BenchUser(u, ids[u], make_token(ids[u])) for u in usernames]
    finally:
        app.extensions["lektiecafe"].db.dispose()


async def login_tokens(
    hub_url: str, usernames: list[str], password: str = DEMO_PASSWORD, in_flight: int = 8
) -> list[BenchUser]:
    """Tokens through `POST /api/auth/token` (slow: one argon2 check per user)."""
    limit = asyncio.Semaphore(in_flight)

    async def one(session: aiohttp.ClientSession, username: str) -> BenchUser:
        async with limit:
            r = await session.post(
                hub_url + "/api/auth/token", json={"username": username, "password": password}
            )
            body = await r.json()
        if not body.get("ok"):
            raise SystemExit(f"login of {username} failed: {body}")
        return BenchUser(username, body.get("user_id"), body["token"])

    async with aiohttp.ClientSession() as session:
        return list(await asyncio.gather(*(one(session, u) for u in usernames)))


def subject_ids(hub_url: str, token: str) -> list[int]:
    request = Request(hub_url + "/api/catalog", headers={"Authorization": f"Bearer {token}"})
    with urlopen(request, timeout=10) as r:
        return [int(s["id"]) for s in json.load(r)["subjects"]]


def _post_json(url: str, body: dict[str, Any]) -> dict[str, Any]:
    request = Request(
        url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
    )
    with urlopen(request, timeout=10) as r:
        answer: dict[str, Any] = json.load(r)
        return answer


def pair_kiosk(
    hub_url: str, database_url: str, secret_key: str, staff: str = "staff1"
) -> dict[str, Any]:
    """A kiosk paired as a real one is: it asks the hub for a code and collects its token over
    HTTP. Site staff's confirmation is the hub's own `confirm` on the same database instead of
    the staff page's form. Returns the poll's answer (`device_token`, `device_id`, `site`)."""
    from sqlalchemy import select

    from hub import clock, create_app
    from hub.accounts.access import Identity
    from hub.accounts.models import User
    from hub.config import HubConfig
    from hub.devices.service import confirm
    from hub.errors import HubError
    from hub.state import hub_state

    code = _post_json(hub_url + "/api/devices/pair", {"name": "Bench kiosk"})
    app = create_app(HubConfig(database_url=database_url, secret_key=secret_key))
    try:
        with app.app_context():
            state = hub_state()
            with state.db.transaction() as s:
                user = s.scalars(select(User).where(User.username == staff)).one()
                found = confirm(
                    s, Identity.of(user), code["user_code"], None, clock.now(), state.config
                )
            if isinstance(found, HubError):
                raise SystemExit(f"pairing the kiosk was refused: {found}")
    finally:
        app.extensions["lektiecafe"].db.dispose()
    return _post_json(hub_url + "/api/devices/pair/poll", {"device_code": code["device_code"]})


# ---------------------------------------------------------------------------------------------
# The hub process (lektiecafe.launch, as the tests start theirs)


@dataclass
class SeededHub:
    hub: HubProcess
    users: list[BenchUser]  # the demo students, then the demo helpers, with minted tokens
    database: str  # e.g. "SQLite 3.46.1"
    db: BenchDatabase


@contextmanager
def seeded_hub(
    database_url: str | None,
    pg_admin: str,
    students: int,
    helpers: int,
    secret_key: str,
    env: dict[str, str],
    keep: bool = False,
) -> Iterator[SeededHub]:
    """A fresh database seeded with the demo data at this size, every user's token, and a hub
    process on it; the hub is stopped (and the database dropped unless `keep`) afterwards."""
    with fresh_database(database_url, pg_admin, keep=keep) as db:
        progress(f"seeding {students} students, {helpers} helpers, {db.backend}")
        seed(db.url, students, helpers)
        users = mint_tokens(db.url, secret_key, demo_usernames(students, helpers))
        hub = start_hub(db.url, db.data_dir, secret_key, env)
        try:
            yield SeededHub(hub, users, database_version(db.url), db)
        except BaseException:
            hub.stop()
            progress(f"hub log tail:\n{hub.tail()}")
            raise
        finally:
            hub.stop()


def hub_options(p: argparse.ArgumentParser) -> None:
    """The options of a benchmark that starts its own hub on a fresh database (`on_fresh_hub`)."""
    g = p.add_argument_group("hub")
    g.add_argument(
        "--database-url",
        help="a PostgreSQL URL whose database is created fresh and dropped afterwards; "
        "default: SQLite in a temporary data dir",
    )
    g.add_argument("--pg-admin-url", default=PG_ADMIN, help="where to CREATE/DROP it")
    g.add_argument("--keep", action="store_true", help="keep the data dirs and databases")
    g.add_argument("--json", type=Path, help="where to write the results (default bench/results/)")


def on_fresh_hub(
    args: argparse.Namespace, pairs: int, run: Callable[[str, list[BenchUser], int], T]
) -> tuple[T, str]:
    """`run(hub_url, users, hub_pid)` against a fresh hub seeded with `pairs` students and
    `pairs` helpers (`hub_options`); what it returned, and the database's name and version."""
    with seeded_hub(
        args.database_url, args.pg_admin_url, pairs, pairs, SECRET_KEY, HUB_ENV, keep=args.keep
    ) as sh:
        return run(sh.hub.url, sh.users, sh.hub.pid), sh.database


# ---------------------------------------------------------------------------------------------
# Clients


def client_session() -> aiohttp.ClientSession:
    """One HTTP session for all clients: no connection limit (each websocket holds one for good)
    and no shared cookies."""
    return aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=0), cookie_jar=aiohttp.DummyCookieJar()
    )


def new_client(http: aiohttp.ClientSession) -> socketio.AsyncClient:
    return socketio.AsyncClient(reconnection=False, http_session=http, handle_sigint=False)


async def connect_all(
    hub_url: str,
    clients: list[tuple[socketio.AsyncClient, str]],
    in_flight: int,
) -> Samples:
    """Connect every (client, token) over the websocket transport; the connect times."""
    limit = asyncio.Semaphore(in_flight)
    samples = Samples("connect")

    async def one(sio: socketio.AsyncClient, token: str) -> None:
        async with limit:
            start = time.perf_counter()
            try:
                await sio.connect(
                    hub_url, auth={"token": token}, transports=["websocket"], wait_timeout=30
                )
            except socketio.exceptions.ConnectionError as exc:
                samples.fail(str(exc) or type(exc).__name__)
                return
            samples.add(time.perf_counter() - start)

    await asyncio.gather(*(one(sio, token) for sio, token in clients))
    return samples


async def disconnect_all(clients: list[socketio.AsyncClient], in_flight: int = 200) -> None:
    limit = asyncio.Semaphore(in_flight)

    async def one(sio: socketio.AsyncClient) -> None:
        async with limit:
            with suppress(Exception):
                await asyncio.wait_for(sio.disconnect(), 5)

    await asyncio.gather(*(one(c) for c in clients))


# ---------------------------------------------------------------------------------------------
# Bulk loading (the statistics benchmark's year of requests)


def bulk_insert(
    url: str, table: str, columns: Sequence[str], rows: Sequence[Sequence[Any]], label: str = ""
) -> float:
    """Insert many rows fast, bypassing the ORM but not the database's triggers: PostgreSQL's
    COPY, SQLite's executemany in one transaction (datetimes and dates written as SQLAlchemy
    writes them there: naive UTC). Prints progress; returns the seconds it took."""
    from datetime import date

    start = time.perf_counter()
    every = 100_000
    if url.startswith("postgresql"):
        import psycopg

        conninfo = url.replace("postgresql+psycopg://", "postgresql://")
        with (
            psycopg.connect(conninfo) as conn,
            conn.cursor() as cur,
            cur.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy,
        ):
            for n, row in enumerate(rows, 1):
                copy.write_row(
                    [
                        v.astimezone(UTC).replace(tzinfo=None)
                        if isinstance(v, datetime) and v.tzinfo
                        else v
                        for v in row
                    ]
                )
                if n % every == 0:
                    progress(f"  {label or table}: {n:,} of {len(rows):,} rows")
    else:
        import sqlite3

        def plain(v: Any) -> Any:
            if isinstance(v, datetime):
                v = v.astimezone(UTC).replace(tzinfo=None) if v.tzinfo else v
                return v.strftime("%Y-%m-%d %H:%M:%S.%f")
            if isinstance(v, date):
                return v.isoformat()
            return v

        lite = sqlite3.connect(url.removeprefix("sqlite:///"), timeout=60)
        try:
            marks = ", ".join("?" * len(columns))
            sql = f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})"
            for at in range(0, len(rows), every):
                chunk = rows[at : at + every]
                lite.executemany(sql, ([plain(v) for v in row] for row in chunk))
                progress(f"  {label or table}: {at + len(chunk):,} of {len(rows):,} rows")
            lite.commit()
        finally:
            lite.close()
    return time.perf_counter() - start
