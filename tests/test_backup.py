"""`lektiecafe backup`, `restore` and `migrate-data` as an IT department runs them: the real
command on a demo database, beside a running hub, then the hub on what came back."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import tarfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg
import pytest
from sqlalchemy import func, select

from hub.accounts.models import User
from hub.db import Database
from hub.models import metadata
from tests.conftest import PG_ADMIN, ROOT, both_backends, start_hub, stop
from tests.hubclient import Browserless
from tests.test_attachments import png_with_secrets, upload


def lektiecafe(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "lektiecafe.cli", *args],
        cwd=ROOT,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


@contextmanager
def empty_postgres() -> Iterator[str]:
    name = f"lc_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"postgresql+psycopg://127.0.0.1:5432/{name}"
    finally:
        with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def every_row(url: str) -> dict[str, list[tuple[Any, ...]]]:
    """Every table's rows, in a stable order. A running hub refreshes its `hub_instances` row
    every few seconds, so that table is compared by id only."""
    db = Database(url)
    try:
        with db.engine.connect() as c:
            rows = {
                t.name: sorted((tuple(r) for r in c.execute(select(t))), key=repr)
                for t in metadata.sorted_tables
            }
    finally:
        db.dispose()
    rows["hub_instances"] = [r[:1] for r in rows["hub_instances"]]
    return rows


@contextmanager
def target_database(backend: str, tmp_path: Path) -> Iterator[list[str]]:
    """The CLI options of a second, empty hub database of the same kind."""
    if backend == "sqlite":
        yield ["--data-dir", str(tmp_path / "restored")]
        return
    with empty_postgres() as url:
        yield ["--data-dir", str(tmp_path / "restored"), "--database-url", url]


@both_backends
def test_a_backup_made_while_the_hub_runs_restores_every_row_and_attachment(
    hub, database_url, tmp_path
):
    attachment = upload(hub, "student1", png_with_secrets()).json()["attachment_id"]
    stored = (hub.data_dir / "attachments" / attachment).read_bytes()
    archive = tmp_path / "hub.tar"

    made = lektiecafe(
        "backup", "--data-dir", str(hub.data_dir), "--database-url", database_url, str(archive)
    )
    assert made.returncode == 0, made.stderr
    assert "✓ attachments: 1 files" in made.stdout
    assert archive.stat().st_mode & 0o077 == 0  # personal data: the owner's only
    with tarfile.open(archive) as tar:
        manifest = json.load(tar.extractfile("manifest.json"))  # type: ignore[arg-type]
        assert "secret_key" not in tar.getnames()
    assert manifest["format"] == 1 and manifest["rows"]["users"] == 11
    assert manifest["schema_revision"] and manifest["created_at"]
    stop(hub.process)
    before = every_row(database_url)

    backend = "sqlite" if database_url.startswith("sqlite") else "postgres"
    with target_database(backend, tmp_path) as target:
        back = lektiecafe("restore", *target, str(archive))
        assert back.returncode == 0, back.stderr
        url = target[-1] if backend == "postgres" else f"sqlite:///{tmp_path / 'restored/hub.db'}"
        assert every_row(url) == before
        assert (tmp_path / "restored/attachments" / attachment).read_bytes() == stored


def test_backup_and_restore_refuse_what_would_lose_data_and_say_what_to_do(
    hub, database_url, tmp_path
):
    archive = tmp_path / "hub.tar"
    options = ["--data-dir", str(hub.data_dir), "--database-url", database_url]
    assert lektiecafe("backup", *options, str(archive)).returncode == 0
    again = lektiecafe("backup", *options, str(archive))
    assert again.returncode == 2 and "already exists" in again.stderr

    running = lektiecafe("restore", *options, "--force", str(archive))
    assert running.returncode == 2 and "A hub is running" in running.stderr
    stop(hub.process)
    full = lektiecafe("restore", *options, str(archive))
    assert full.returncode == 2 and "already has data (11 users" in full.stderr
    assert "--force" in full.stderr

    newer = tmp_path / "newer.tar"
    with tarfile.open(archive) as old, tarfile.open(newer, "w") as new:
        for member in old.getmembers():
            data = old.extractfile(member).read()  # type: ignore[union-attr]
            if member.name == "manifest.json":
                data = json.dumps({**json.loads(data), "schema_revision": "9999"}).encode()
                member.size = len(data)
            new.addfile(member, io.BytesIO(data))
    refused = lektiecafe("restore", "--data-dir", str(tmp_path / "fresh"), str(newer))
    assert refused.returncode == 2 and "newer than this Lektiecafé knows" in refused.stderr

    junk = tmp_path / "junk.tar"
    junk.write_bytes(b"not a tar file")
    unreadable = lektiecafe("restore", "--data-dir", str(tmp_path / "fresh"), str(junk))
    assert unreadable.returncode == 2 and "cannot be read as a backup" in unreadable.stderr
    assert not (tmp_path / "fresh/hub.db").exists()

    nowhere = lektiecafe("backup", "--data-dir", str(tmp_path / "nowhere"), str(tmp_path / "x.tar"))
    assert nowhere.returncode == 2 and "There is no database at" in nowhere.stderr
    assert not (tmp_path / "nowhere/hub.db").exists() and not (tmp_path / "x.tar").exists()

    forced = lektiecafe("restore", *options, "--force", str(archive))
    assert forced.returncode == 0, forced.stderr


@pytest.mark.postgres
def test_migrate_data_moves_every_row_to_postgresql_and_the_hub_runs_on_it(database_url, tmp_path):
    attachments = tmp_path / "attachments"
    attachments.mkdir()
    before = every_row(database_url)
    with empty_postgres() as target:
        options = ["--data-dir", str(tmp_path), "--database-url", database_url]
        moved = lektiecafe("migrate-data", *options, "--to", target)
        assert moved.returncode == 0, moved.stderr
        for table in metadata.sorted_tables:
            assert f"✓ {table.name}: {len(before[table.name])} rows" in moved.stdout
        assert every_row(target) == before
        twice = lektiecafe("migrate-data", *options, "--to", target)
        assert twice.returncode == 2 and "already has data" in twice.stderr

        process, url, _log = start_hub(target, tmp_path)
        try:
            assert Browserless(url).login("student1").status_code == 302
            largest = max(row[0] for row in before["users"])
            # A new row gets the next id: the sequences go on after the copied rows.
            made = lektiecafe(
                "create-admin",
                "newadmin",
                "--database-url",
                target,
                LEKTIECAFE_ADMIN_PASSWORD="a-long-password",
            )
            assert made.returncode == 0, made.stderr
            db = Database(target)
            with db.transaction() as s:
                new_id = s.scalar(select(User.id).where(User.username == "newadmin"))
                assert new_id == largest + 1
                assert s.scalar(select(func.count()).select_from(User)) == len(before["users"]) + 1
            db.dispose()
            assert Browserless(url).login("newadmin", "a-long-password").status_code == 302
        finally:
            stop(process)
