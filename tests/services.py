"""Private Redis and PostgreSQL servers for the fault tests: started on free loopback ports for one
test, so a test may stop and restart them while other tests use the machine's shared servers
(127.0.0.1:6379 and :5432), which must never be restarted.

    def test_x(private_redis, private_postgres): ...
        private_redis.url            # redis://127.0.0.1:<port>/0
        private_postgres.url         # a migrated database with the demo data
        with private_postgres.down(): ...   # stopped inside the block, started again after
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, suppress
from pathlib import Path
from typing import Any

import psycopg
import pytest

from hub import clock
from hub.db import Database
from hub.demo import seed_demo
from hub.server import prepare_database
from lektiecafe.launch import free_port

REDIS_SERVER = "/usr/bin/redis-server"
POSTGRES_BIN = sorted(Path("/usr/lib/postgresql").glob("*/bin"))


class ServiceDidNotStart(RuntimeError):
    """The server exited or did not answer in time; the message ends with its log's tail."""


def _tail(log: Path) -> str:
    with suppress(OSError):
        return log.read_text(errors="replace")[-3000:]
    return ""


class PrivateRedis:
    """redis-server on a port of its own, without persistence (as the hub's bus needs none)."""

    def __init__(self, folder: Path) -> None:
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.log = folder / f"redis-{self.port}.log"
        self.process: subprocess.Popen[bytes] | None = None
        self.start()

    def start(self) -> None:
        command = [REDIS_SERVER, "--port", str(self.port), "--bind", "127.0.0.1"]
        command += ["--save", "", "--appendonly", "no", "--daemonize", "no"]
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise ServiceDidNotStart(f"redis-server exited: {_tail(self.log)}")
            if self.ping():
                return
            time.sleep(0.05)
        raise ServiceDidNotStart(f"redis-server did not start: {_tail(self.log)}")

    def ping(self) -> bool:
        import redis

        try:
            return bool(redis.Redis(port=self.port, socket_connect_timeout=0.5).ping())
        except redis.RedisError:
            return False

    def stop(self) -> None:
        """Gone, as when the service stops: every client's connection is closed."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(10)
        self.process = None

    @contextmanager
    def down(self) -> Iterator[None]:
        self.stop()
        try:
            yield
        finally:
            self.start()


class PrivatePostgres:
    """A throwaway PostgreSQL cluster: initdb into a temporary folder owned by the `postgres`
    user (PostgreSQL refuses to run as root), trust authentication, loopback only."""

    def __init__(self) -> None:
        if not POSTGRES_BIN:
            raise ServiceDidNotStart("no PostgreSQL server in /usr/lib/postgresql")
        self.bin = POSTGRES_BIN[-1]
        self.port = free_port()
        # Not in pytest's tmp_path: its folders are root's alone, the server runs as postgres.
        self.folder = Path(tempfile.mkdtemp(prefix="lc-pg-"))
        self.data = self.folder / "data"
        self.log = self.folder / "server.log"
        self.user = "postgres" if os.geteuid() == 0 else None
        if self.user:
            account = pwd.getpwnam(self.user)
            os.chown(self.folder, account.pw_uid, account.pw_gid)
        self._run("initdb", "-D", str(self.data), "-A", "trust", "-U", "postgres", "--no-sync")
        self.start()

    def _run(self, tool: str, *args: str) -> subprocess.CompletedProcess[str]:
        command = [str(self.bin / tool), *args]
        if self.user:
            command = ["runuser", "-u", self.user, "--", *command]
        done = subprocess.run(command, capture_output=True, text=True, cwd=self.folder)
        if done.returncode != 0:
            raise ServiceDidNotStart(f"{tool}: {done.stdout}{done.stderr}{_tail(self.log)}")
        return done

    def admin_url(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def start(self) -> None:
        options = f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-o", options, "-w", "start")

    def stop(self, mode: str = "fast") -> None:
        """`fast`: as a service stop (sessions are ended); `immediate`: as a crash."""
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "stop")

    @contextmanager
    def down(self, mode: str = "fast") -> Iterator[None]:
        self.stop(mode)
        try:
            yield
        finally:
            self.start()

    def create_database(self, name: str) -> str:
        """A new empty database; its SQLAlchemy URL."""
        with psycopg.connect(self.admin_url(), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{name}"

    def remove(self) -> None:
        with suppress(ServiceDidNotStart):
            self.stop("immediate")
        shutil.rmtree(self.folder, ignore_errors=True)


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[PrivateRedis]:
    server = PrivateRedis(tmp_path)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def private_postgres(request: pytest.FixtureRequest) -> Iterator[PrivateDatabase]:
    """A private PostgreSQL server with one migrated database holding the demo data (the `demo`
    marker sizes it, as for `database_url`)."""
    server = PrivatePostgres()
    try:
        url = server.create_database("lektiecafe")
        for seeded in seeded_with_demo(url, request):
            yield PrivateDatabase(server, seeded)
    finally:
        server.remove()


class PrivateDatabase:
    """The database `private_postgres` made, and its server."""

    def __init__(self, server: PrivatePostgres, url: str) -> None:
        self.server = server
        self.url = url

    def down(self, mode: str = "fast") -> AbstractContextManager[None]:
        """PostgreSQL stopped inside the block and started again after it."""
        return self.server.down(mode)


def seeded_with_demo(url: str, request: pytest.FixtureRequest) -> Iterator[str]:
    """The database at `url` migrated and seeded with the demo (sizes from a `demo` marker)."""
    marker = request.node.get_closest_marker("demo")
    sizes: dict[str, Any] = {"students": 5, "helpers": 3, **(marker.kwargs if marker else {})}
    db = Database(url)
    prepare_database(db)
    with db.transaction() as s:
        seed_demo(s, now=clock.now(), **sizes)
    db.dispose()
    yield url
