"""Fixtures that start a real hub process on a real database (SQLite file or a fresh PostgreSQL
database) and hand out logged-in clients."""

from __future__ import annotations

import subprocess
import uuid
from collections.abc import Iterator
from contextlib import suppress
from pathlib import Path

import psycopg
import pytest
import requests

from hub.db import Database
from lektiecafe import launch
from lektiecafe.launch import ROOT as ROOT  # the test modules import these from here
from lektiecafe.launch import free_port as free_port
from lektiecafe.launch import stop_process as stop
from tests.hubclient import PASSWORD, Browserless, Client, DocSocket
from tests.services import private_postgres as private_postgres  # fixtures for any test module
from tests.services import private_redis as private_redis
from tests.services import seeded_with_demo

PG_ADMIN = "postgresql://127.0.0.1:5432/test"

# Short timings so the tests watch offers expire and students leave within seconds.
FAST = {
    "LEKTIECAFE_OFFER_TIMEOUT_S": "2",
    "LEKTIECAFE_STUDENT_GRACE_S": "1.5",
    "LEKTIECAFE_TICK_S": "0.2",
    "LEKTIECAFE_LOGIN_FREE_FAILURES": "3",
    "LEKTIECAFE_LOGIN_WAIT_S": "2",
    "LEKTIECAFE_TEST_CLOCK": "1",  # hub/clock.py's test-only edges (Client.nothing's barrier)
    # Tests move the hub's clock on by days (shifts, reminders, retention): logins would run out
    # (12 h by default) in the middle of them. tests/test_tokens.py checks the expiry itself.
    "LEKTIECAFE_TOKEN_MAX_AGE_S": str(400 * 24 * 3600),
}


class RunningHub:
    def __init__(
        self,
        url: str,
        database: Database,
        data_dir: Path,
        process: subprocess.Popen[bytes],
        log: Path,
    ) -> None:
        self.url = url
        self.db = database
        self.data_dir = data_dir
        self.process = process
        self.log = log
        self._clients: list[Client | DocSocket] = []

    def token(self, username: str, password: str = PASSWORD) -> str:
        r = requests.post(
            self.url + "/api/auth/token",
            json={"username": username, "password": password},
            timeout=10,
        )
        assert r.status_code == 200, r.text
        return str(r.json()["token"])

    def client(self, username: str, connect: bool = True) -> Client:
        c = Client(self.url, token=self.token(username))
        self._clients.append(c)
        return c.connect() if connect else c

    def doc_socket(self, doc_url: str, sync: bool = True, state: bytes = b"") -> DocSocket:
        d = DocSocket(self.url, doc_url, sync=sync, state=state)
        self._clients.append(d)
        return d

    def browserless(self) -> Browserless:
        return Browserless(self.url)

    def close_clients(self) -> None:
        for c in self._clients:
            with suppress(Exception):
                c.close()


def start_hub(
    database_url: str,
    data_dir: Path,
    extra_env: dict[str, str] | None = None,
    port: int | None = None,
) -> tuple[subprocess.Popen[bytes], str, Path]:
    """A hub process with the FAST timings; (process, url, log)."""
    hub = launch.start_hub(
        database_url, data_dir, "test-secret", {**FAST, **(extra_env or {})}, port
    )
    return hub.process, hub.url, hub.log


@pytest.fixture
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, migrated database with demo data; SQLite unless the test is parametrised."""
    backend = getattr(request, "param", "sqlite")
    if backend == "sqlite":
        url = f"sqlite:///{tmp_path / 'hub.db'}"
        yield from seeded_with_demo(url, request)
        return
    name = f"lc_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield from seeded_with_demo(f"postgresql+psycopg://127.0.0.1:5432/{name}", request)
    finally:
        with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def hub_env() -> dict[str, str]:
    """Extra environment for the `hub` fixture's process; a test module overrides this fixture."""
    return {}


@pytest.fixture
def hub(database_url: str, tmp_path: Path, hub_env: dict[str, str]) -> Iterator[RunningHub]:
    process, url, log = start_hub(database_url, tmp_path, hub_env)
    running = RunningHub(url, Database(database_url), tmp_path, process, log)
    try:
        yield running
    finally:
        # The hub of the end (a test may have restarted it), first, so clients see the close at
        # once instead of waiting on it.
        stop(running.process)
        running.close_clients()
        running.db.dispose()


both_backends = pytest.mark.parametrize(
    "database_url", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True
)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "demo(students=N, helpers=M): size of the demo data")
