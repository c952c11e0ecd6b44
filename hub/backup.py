"""`lektiecafe backup`, `restore` and `migrate-data`: the hub's data out of one database and into
another, for an IT department.

A backup is one tar file: `manifest.json` (format, program version, schema revision, when, rows
per table), the database (`hub.db`, a copy made through SQLite's online backup API, or
`hub.pgdump`, `pg_dump`'s custom format) and the uploaded attachments. Both copies are consistent
while the hub runs. The secret key is left out on purpose: it signs sessions and API tokens, so
whoever holds it can act as any user on the live hub; without it a restored hub on a new machine
asks everyone to log in once (kiosks stay paired: their tokens are stored hashed in the database).
"""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import sqlite3
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from datetime import datetime, timedelta
from importlib import metadata as package_metadata
from pathlib import Path
from typing import Any

from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from sqlalchemy import Connection, Engine, MetaData, func, inspect, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError

from hub import clock
from hub.config import HubConfig
from hub.db import Database
from hub.matching.dispatcher import HEARTBEAT_EVERY_S
from hub.migrate import alembic_config, upgrade
from hub.models import metadata
from hub.realtime.models import HubInstance

FORMAT = 1
MANIFEST = "manifest.json"
MANIFEST_KEYS = {"format", "version", "schema_revision", "created_at", "database", "rows"}
SQLITE_FILE = "hub.db"
PG_DUMP_FILE = "hub.pgdump"
ATTACHMENTS = "attachments"
BATCH = 1000  # rows per INSERT when copying between databases
HUB_ALIVE = timedelta(seconds=30)  # hub_instances rows older than this are stopped hubs


class BackupError(Exception):
    """What went wrong and what to do next, for the person at the terminal."""


def backup(config: HubConfig, archive: Path) -> int:
    return _run(lambda: _backup(config, archive))


def restore(config: HubConfig, archive: Path, force: bool) -> int:
    return _run(lambda: _restore(config, archive, force))


def migrate_data(config: HubConfig, to_url: str) -> int:
    return _run(lambda: _migrate_data(config, to_url))


def _run(action: Callable[[], None]) -> int:
    try:
        action()
    except BackupError as exc:
        print(f"✗ {exc}", file=sys.stderr, flush=True)
        return 2
    return 0


def _say(line: str) -> None:
    print(line, flush=True)


# --- backup -------------------------------------------------------------------------------------


def _backup(config: HubConfig, archive: Path) -> None:
    if archive.exists():
        raise BackupError(f"{archive} already exists: choose another name or move it away first.")
    if not archive.parent.is_dir():
        raise BackupError(f"The folder {archive.parent} does not exist: create it first.")
    with _source(config.resolved_database_url) as db:
        revision = _schema_revision(db.engine)
        if revision is None:
            raise BackupError(
                "The database has no Lektiecafé tables: check --database-url / --data-dir."
            )
        with tempfile.TemporaryDirectory(prefix=".lektiecafe-backup-", dir=archive.parent) as tmp:
            if db.is_sqlite:
                database_file = Path(tmp) / SQLITE_FILE
                _sqlite_copy(_sqlite_path(db.url), database_file)
                with _database(f"sqlite:///{database_file}") as copy:
                    rows = _row_counts(copy.engine)
            else:
                database_file = Path(tmp) / PG_DUMP_FILE
                rows = _pg_dump(db, database_file)
            _say(f"✓ database ({_backend(db)}, schema {revision}): {_rows_text(rows)}")
            manifest = {
                "format": FORMAT,
                "version": package_metadata.version("lektiecafe"),
                "schema_revision": revision,
                "created_at": clock.now().isoformat(timespec="seconds"),
                "database": _backend(db),
                "rows": rows,
            }
            partial = archive.with_name(archive.name + ".partial")
            try:
                files, size = _write_archive(partial, manifest, database_file, config)
            except OSError as exc:
                partial.unlink(missing_ok=True)
                raise BackupError(f"Cannot write {archive}: {exc}") from exc
            _say(f"✓ attachments: {files} files, {size / 1e6:.1f} MB")
            partial.rename(archive)
    _say(
        f"✓ wrote {archive} ({archive.stat().st_size / 1e6:.1f} MB). It holds personal data: "
        "keep it as safe as the server. The secret key is not in it (docs/operations.md)."
    )


def _write_archive(
    path: Path, manifest: dict[str, Any], database_file: Path, config: HubConfig
) -> tuple[int, int]:
    """The tar file; the attachments that went in (count, bytes)."""
    files = size = 0
    # The archive holds the children's data: readable by its owner only.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as out, tarfile.open(fileobj=out, mode="w") as tar:
        _add_bytes(tar, MANIFEST, json.dumps(manifest, indent=2).encode())
        tar.add(database_file, arcname=database_file.name)
        for f in _files(config.attachments_dir):
            with suppress(FileNotFoundError):  # deleted by retention meanwhile
                size += f.stat().st_size
                tar.add(f, arcname=f"{ATTACHMENTS}/{f.name}")
                files += 1
    return files, size


def _sqlite_copy(source: Path, target: Path) -> None:
    """A consistent copy through SQLite's online backup API; the hub may keep writing."""
    src, dst = sqlite3.connect(source, timeout=30), sqlite3.connect(target)
    try:
        src.backup(dst)
    finally:
        dst.close()
        src.close()


def _pg_dump(db: Database, target: Path) -> dict[str, int]:
    """pg_dump of one exported snapshot, and the rows per table in that same snapshot."""
    _check_pg_tool("pg_dump", db.engine)
    with db.engine.connect() as c:
        c = c.execution_options(isolation_level="REPEATABLE READ")
        with c.begin():
            snapshot = c.scalar(text("SELECT pg_export_snapshot()"))
            rows = _row_counts_on(c)
            _pg_tool(
                db.url,
                "pg_dump",
                "--format=custom",
                "--no-owner",
                "--no-privileges",
                f"--snapshot={snapshot}",
                f"--file={target}",
            )
    return rows


def _files(folder: Path) -> list[Path]:
    return sorted(f for f in folder.iterdir() if f.is_file()) if folder.is_dir() else []


def _add_bytes(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mode, info.mtime = len(data), 0o600, int(clock.now().timestamp())
    tar.addfile(info, io.BytesIO(data))


# --- restore ------------------------------------------------------------------------------------


def _restore(config: HubConfig, archive: Path, force: bool) -> None:
    if not archive.is_file():
        raise BackupError(f"{archive} does not exist.")
    with tempfile.TemporaryDirectory(prefix=".lektiecafe-restore-", dir=config.data_dir) as tmp:
        manifest = _unpack(archive, Path(tmp))
        revision = manifest["schema_revision"]
        _say(f"Backup of {manifest['created_at']}, Lektiecafé {manifest['version']}, {revision}")
        if not _known_revision(revision):
            raise BackupError(
                f"The backup's schema ({revision}) is newer than this Lektiecafé knows "
                f"({_head_revision()}): install the version that made it, then restore."
            )
        with _database(config.resolved_database_url) as db:
            if manifest["database"] != _backend(db):
                raise BackupError(
                    f"The backup is of a {manifest['database']} database and this hub uses "
                    f"{_backend(db)}: restore it with the hub's {manifest['database']} settings, "
                    "then move the data with `lektiecafe migrate-data`."
                )
            _refuse_running_hub(db.engine)
            users = _row_counts(db.engine).get("users", 0)
            attachments = _files(config.attachments_dir)
            if (users or attachments) and not force:
                raise BackupError(
                    f"The hub already has data ({users} users, {len(attachments)} attachments). "
                    "Restoring replaces all of it: run again with --force."
                )
            if db.is_sqlite:
                _sqlite_copy(Path(tmp) / SQLITE_FILE, _sqlite_path(db.url))
            else:
                dump = Path(tmp) / PG_DUMP_FILE
                _check_pg_tool("pg_restore", db.engine)
                # Read the whole dump before anything is dropped: a damaged one stops here.
                _pg_tool(None, "pg_restore", "--file=/dev/null", str(dump))
                _drop_all_tables(db.engine)
                _pg_tool(
                    db.url,
                    "pg_restore",
                    "--no-owner",
                    "--no-privileges",
                    "--single-transaction",
                    "--exit-on-error",
                    str(dump),
                )
            rows = _row_counts(db.engine)
            if rows != manifest["rows"]:
                raise BackupError(
                    f"The restored database differs from the backup ({_rows_text(rows)}, the "
                    f"backup has {_rows_text(manifest['rows'])}): the archive may be damaged."
                )
            _say(f"✓ database ({_backend(db)}): {_rows_text(rows)}, as in the backup")
            shutil.rmtree(config.attachments_dir, ignore_errors=True)
            shutil.move(Path(tmp) / ATTACHMENTS, config.attachments_dir)
            _say(f"✓ attachments: {len(_files(config.attachments_dir))} files")
            if revision != _head_revision():
                upgrade(db)
                _say(f"✓ schema upgraded from {revision} to {_head_revision()}")
    _say("✓ restored. Users log in again unless this hub has the same secret key as before.")


def _unpack(archive: Path, into: Path) -> dict[str, Any]:
    """The manifest, with the database file and attachments extracted into `into`."""
    try:
        with tarfile.open(archive) as tar:
            names = set(tar.getnames())
            if MANIFEST not in names:
                raise BackupError(f"{archive} is not a Lektiecafé backup (no {MANIFEST}).")
            tar.extractall(into, filter="data")
    except (tarfile.TarError, OSError) as exc:
        raise BackupError(f"{archive} cannot be read as a backup: {exc}") from exc
    try:
        manifest: dict[str, Any] = json.loads((into / MANIFEST).read_text())
    except ValueError as exc:
        raise BackupError(f"{archive} has a damaged {MANIFEST}: {exc}") from exc
    if manifest.get("format") != FORMAT:
        raise BackupError(
            f"{archive} has backup format {manifest.get('format')!r}; this Lektiecafé reads "
            f"format {FORMAT}: restore it with the version that made it."
        )
    missing = MANIFEST_KEYS - manifest.keys()
    if missing:
        raise BackupError(f"{archive} has an incomplete {MANIFEST} (no {', '.join(missing)}).")
    database_file = SQLITE_FILE if manifest["database"] == "sqlite" else PG_DUMP_FILE
    if not (into / database_file).is_file():
        raise BackupError(f"{archive} has no {database_file}: the archive is incomplete.")
    (into / ATTACHMENTS).mkdir(exist_ok=True)
    return manifest


def _drop_all_tables(engine: Engine) -> None:
    """Empty PostgreSQL for pg_restore: every table, including ones a newer schema added."""
    existing = MetaData()
    existing.reflect(engine)
    existing.drop_all(engine)


# --- migrate-data -------------------------------------------------------------------------------


def _migrate_data(config: HubConfig, to_url: str) -> None:
    source_url = config.resolved_database_url
    if make_url(to_url) == make_url(source_url):
        raise BackupError("--to names the database the hub uses now: give the new database.")
    with _source(source_url) as source, _database(to_url) as target:
        revision = _schema_revision(source.engine)
        if revision != _head_revision():
            raise BackupError(
                f"The source database is at schema {revision}, not {_head_revision()}: run "
                "`lektiecafe migrate` with the same settings first."
            )
        _refuse_running_hub(source.engine)
        try:
            full = _first_table_with_rows(target.engine)
        except SQLAlchemyError as exc:
            raise BackupError(f"Cannot use the target database: {_reason(exc)}") from exc
        if full:
            raise BackupError(
                f"The target database already has data ({full}): give an empty database."
            )
        upgrade(target)
        _say(f"✓ target schema created ({_head_revision()})")
        with source.engine.connect() as src:
            counts = _row_counts_on(src)
            try:
                with target.engine.begin() as dst:
                    for table in metadata.sorted_tables:
                        _copy_table(src, dst, table.name)
                        _say(f"✓ {table.name}: {counts[table.name]} rows")
                    if target.engine.dialect.name == "postgresql":
                        _fix_sequences(dst)
            except SQLAlchemyError as exc:
                raise BackupError(
                    f"Copying failed, nothing was kept in the target: {_reason(exc)}"
                ) from exc
        copied = _row_counts(target.engine)
        names = [t.name for t in metadata.sorted_tables]
        wrong = [f"{t}: {counts[t]} → {copied.get(t)}" for t in names if copied.get(t) != counts[t]]
        if wrong:
            raise BackupError("Row counts differ after copying: " + ", ".join(wrong))
    _say(
        f"✓ every table copied and counted ({_rows_text(counts)}). Attachments stay in "
        f"{config.attachments_dir}. Now set database_url = {to_url!r} and restart the hub."
    )


def _copy_table(src: Connection, dst: Connection, name: str) -> None:
    table = metadata.tables[name]
    keys = [c.key for c in table.columns]
    query = select(*table.columns).order_by(*table.primary_key.columns)
    for batch in src.execution_options(yield_per=BATCH).execute(query).partitions():
        dst.execute(table.insert(), [dict(zip(keys, row, strict=True)) for row in batch])


def _fix_sequences(dst: Connection) -> None:
    """Copied rows kept their ids; each id sequence must go on after the largest one."""
    quote = dst.dialect.identifier_preparer.quote
    for table in metadata.sorted_tables:
        column = table.autoincrement_column
        if column is None:
            continue
        t, c = quote(table.name), quote(column.name)
        dst.execute(
            text(
                f"SELECT setval(pg_get_serial_sequence(:t, :c), coalesce(max({c}), 0) + 1, false)"
                f" FROM {t}"
            ),
            {"t": t, "c": column.name},
        )


def _first_table_with_rows(engine: Engine) -> str | None:
    full = {name: n for name, n in _row_counts(engine).items() if n}
    return next((f"{name} has {n} rows" for name, n in full.items()), None)


# --- shared -------------------------------------------------------------------------------------


@contextmanager
def _source(url: str) -> Iterator[Database]:
    """A database to read from; a missing SQLite file is an error, not a new empty database."""
    if url.startswith("sqlite") and not _sqlite_path(url).is_file():
        raise BackupError(
            f"There is no database at {_sqlite_path(url)}: check --data-dir / --database-url."
        )
    with _database(url) as db:
        yield db


@contextmanager
def _database(url: str) -> Iterator[Database]:
    try:
        db = Database(url)
    except (SQLAlchemyError, ValueError) as exc:
        raise BackupError(f"Cannot use the database URL {url!r}: {exc}") from exc
    try:
        yield db
    except SQLAlchemyError as exc:
        raise BackupError(f"The database failed: {_reason(exc)}") from exc
    finally:
        db.dispose()


def _reason(exc: SQLAlchemyError) -> str:
    return str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]


def _backend(db: Database) -> str:
    return "sqlite" if db.is_sqlite else "postgresql"


def _sqlite_path(url: str) -> Path:
    return Path(make_url(url).database or "")


def _schema_revision(engine: Engine) -> str | None:
    with engine.connect() as c:
        return MigrationContext.configure(c).get_current_revision()


def _scripts() -> ScriptDirectory:
    return ScriptDirectory.from_config(alembic_config("sqlite://"))


def _head_revision() -> str:
    return str(_scripts().get_current_head())


def _known_revision(revision: str) -> bool:
    try:
        return _scripts().get_revision(revision) is not None
    except CommandError:
        return False


def _row_counts(engine: Engine) -> dict[str, int]:
    with engine.connect() as c:
        return _row_counts_on(c)


def _row_counts_on(c: Connection) -> dict[str, int]:
    """Rows in every table the database has (whatever schema revision it is at)."""
    quote = c.dialect.identifier_preparer.quote
    names = sorted(set(inspect(c).get_table_names()) - {"alembic_version"})
    return {name: int(c.scalar(text(f"SELECT count(*) FROM {quote(name)}")) or 0) for name in names}


def _rows_text(rows: dict[str, int]) -> str:
    return f"{len(rows)} tables, {sum(rows.values())} rows"


def _refuse_running_hub(engine: Engine) -> None:
    """A hub process refreshes its `hub_instances` row every few seconds and leaves it behind
    when stopped: a recent row that stays unchanged for one refresh period is a stopped hub."""
    if "hub_instances" not in inspect(engine).get_table_names():
        return
    last = _last_seen(engine)
    if last is None or last < clock.now() - HUB_ALIVE:
        return
    _say("… a hub was running on this database lately; checking that it has stopped")
    deadline = time.monotonic() + HEARTBEAT_EVERY_S * 1.5
    while time.monotonic() < deadline:
        time.sleep(0.5)
        if _last_seen(engine) != last:
            raise BackupError(
                "A hub is running on this database: stop it first "
                "(`systemctl stop lektiecafe-hub`), then run this again."
            )


def _last_seen(engine: Engine) -> datetime | None:
    with engine.connect() as c:
        return c.scalar(select(func.max(HubInstance.seen_at)))


def _pg_env(url: str) -> tuple[str, dict[str, str]]:
    """A libpq connection string without the password, which goes into the environment."""
    parsed = make_url(url)
    env = {**os.environ}
    if parsed.password:
        env["PGPASSWORD"] = str(parsed.password)
    plain = parsed.set(drivername="postgresql", password=None)
    return plain.render_as_string(hide_password=False), env


def _check_pg_tool(tool: str, engine: Engine) -> None:
    """pg_dump and pg_restore refuse a server newer than themselves; say which client fits."""
    if shutil.which(tool) is None:
        raise BackupError(f"{tool} is missing: install Debian's postgresql-client package.")
    found = re.search(
        r"(\d+)\.", subprocess.run([tool, "--version"], capture_output=True, text=True).stdout
    )
    with engine.connect() as c:
        server = int(c.scalar(text("SHOW server_version_num")) or 0) // 10000
    if found is None or int(found.group(1)) < server:
        raise BackupError(
            f"{tool} {found.group(1) if found else '?'} is older than the PostgreSQL server "
            f"({server}): install postgresql-client-{server}."
        )


def _pg_tool(url: str | None, tool: str, *args: str) -> None:
    """Run pg_dump or pg_restore, against the database at `url` (None: none)."""
    command, env = [tool, *args], None
    if url is not None:
        dsn, env = _pg_env(url)
        command.append(f"--dbname={dsn}")
    result = subprocess.run(command, env=env, capture_output=True, text=True)
    if result.returncode != 0:
        raise BackupError(f"{tool} failed: {result.stderr.strip()[-2000:]}")
