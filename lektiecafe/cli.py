"""`lektiecafe SUBCOMMAND`: hub, demo, cluster, migrate, create-admin, backup, restore,
migrate-data, kiosk, provision."""

from __future__ import annotations

import argparse
import dataclasses
import getpass
import logging
import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any


def _hub_options(p: argparse.ArgumentParser, default_port: int = 5000) -> None:
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=default_port, help=f"port (default {default_port})")
    p.add_argument("--data-dir", type=Path, help="folder for the database, uploads and secret key")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="lektiecafe", description="Lektiecafé Online")
    sub = parser.add_subparsers(dest="command", required=True)

    hub = sub.add_parser("hub", help="run the hub from a config file and the environment")
    _hub_options(hub)
    hub.add_argument(
        "--config", type=Path, help="TOML file with hub settings (see docs/operations.md)"
    )
    hub.add_argument(
        "--database-url", help="SQLAlchemy URL, e.g. postgresql+psycopg://user@host/db"
    )
    hub.add_argument(
        "--secret-key", help="session secret (default: generated once in the data dir)"
    )
    hub.add_argument("--message-queue", help="Redis URL shared by several hub processes")
    hub.add_argument(
        "--insecure-cookies", action="store_true", help="allow session cookies over plain HTTP"
    )
    hub.add_argument(
        "--no-migrate", action="store_true", help="do not upgrade the database schema at start"
    )

    demo = sub.add_parser("demo", help="run the hub on a fresh demo database and print the logins")
    _hub_options(demo)
    demo.add_argument("--students", type=int, default=5, help="demo students (default 5)")
    demo.add_argument("--helpers", type=int, default=3, help="demo helpers (default 3)")

    cluster = sub.add_parser(
        "cluster",
        help="run several hub processes on PostgreSQL and Redis behind nginx, on this machine",
    )
    cluster.add_argument("--hubs", type=int, default=2, help="hub processes (default 2)")
    cluster.add_argument(
        "--database-url",
        required=True,
        help="PostgreSQL, e.g. postgresql+psycopg://127.0.0.1:5432/lektiecafe",
    )
    cluster.add_argument(
        "--redis-url", default="redis://127.0.0.1:6379/0", help="default redis://127.0.0.1:6379/0"
    )
    cluster.add_argument(
        "--demo", action="store_true", help="add the demo logins if the database has no accounts"
    )
    cluster.add_argument("--students", type=int, default=5, help="demo students (default 5)")
    cluster.add_argument("--helpers", type=int, default=3, help="demo helpers (default 3)")
    cluster.add_argument(
        "--folder", type=Path, help="for the shared data dir, logs and nginx (default: a new one)"
    )

    _database_options(sub.add_parser("migrate", help="upgrade the database schema and stop"))

    kiosk = sub.add_parser("kiosk", help="run the full-screen kiosk a student uses at a site")
    kiosk.add_argument("--hub", help="the hub's address, e.g. https://lektiecafe.example.dk")
    kiosk.add_argument(
        "--data-dir", type=Path, help="the device's state (default /var/lib/lektiecafe-kiosk)"
    )
    kiosk.add_argument("--fake-camera", action="store_true", help="a synthetic camera and sound")
    kiosk.add_argument("--windowed", action="store_true", help="a 1280x800 window, not full screen")
    kiosk.add_argument("--lang", choices=["da", "en"], default="da", help="language between visits")
    kiosk.add_argument("--name", default="Kiosk", help="the name offered to the hub when pairing")
    kiosk.add_argument(
        "--test-driver", type=Path, metavar="SOCKET", help="answer test commands here"
    )
    kiosk.add_argument("--idle-after", type=float, default=90, help="seconds without a touch")
    kiosk.add_argument("--idle-countdown", type=float, default=15, help="seconds of countdown")
    kiosk.add_argument("--room-idle-after", type=float, default=600, help="the same, in a room")

    admin = sub.add_parser(
        "create-admin",
        help="create an admin account (password from a prompt or LEKTIECAFE_ADMIN_PASSWORD)",
    )
    admin.add_argument("username")
    _database_options(admin)

    backup = sub.add_parser(
        "backup", help="copy the hub's database (and uploads) into one archive, while it runs"
    )
    _database_options(backup)
    backup.add_argument("archive", type=Path, help="the archive to write, e.g. hub-2026-12-02.tar")

    restore = sub.add_parser("restore", help="put a backup archive back (the hub must be stopped)")
    _database_options(restore)
    restore.add_argument("archive", type=Path, help="an archive made by `lektiecafe backup`")
    restore.add_argument(
        "--force", action="store_true", help="replace a database that already has data"
    )

    move = sub.add_parser(
        "migrate-data", help="copy every table from this database into another (e.g. PostgreSQL)"
    )
    _database_options(move)
    move.add_argument(
        "--to", required=True, metavar="URL", help="e.g. postgresql+psycopg://lektiecafe@db/lc"
    )

    # The device's tool; its options live with it (stdlib only, like this module).
    from provisioning.cli import configure

    configure(
        sub.add_parser("provision", help="turn this computer into a kiosk, check it, reset it")
    )
    return parser


def _database_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", type=Path, help="TOML file with hub settings")
    p.add_argument("--database-url", help="SQLAlchemy URL (default: SQLite in the data dir)")
    p.add_argument("--data-dir", type=Path, help="the hub's data dir")


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    logging.getLogger("alembic").setLevel(logging.WARNING)
    if args.command in ("hub", "demo"):
        # Before anything else imports socket, ssl or threading (see docs/architecture.md).
        from gevent import monkey

        monkey.patch_all()
    command = {
        "hub": _run_hub,
        "demo": _run_demo,
        "cluster": _run_cluster,
        "migrate": _migrate,
        "create-admin": _create_admin,
        "backup": _backup,
        "restore": _restore,
        "migrate-data": _migrate_data,
        "kiosk": _run_kiosk,
        "provision": _provision,
    }[args.command]
    return command(args)


def _config(args: argparse.Namespace, **extra: Any) -> Any:
    from hub.config import load_config

    options = {"data_dir": args.data_dir, "database_url": getattr(args, "database_url", None)}
    config = load_config(getattr(args, "config", None), **{**options, **extra})
    config.data_dir.mkdir(parents=True, exist_ok=True)
    return config


def _run_hub(args: argparse.Namespace) -> int:
    from hub.server import build, serve

    config = _config(
        args,
        secret_key=args.secret_key,
        message_queue=args.message_queue,
        secure_cookies=False if args.insecure_cookies else None,
    )
    serve(build(config, migrate=not args.no_migrate), args.host, args.port)
    return 0


def _run_demo(args: argparse.Namespace) -> int:
    from hub import clock
    from hub.db import Database
    from hub.demo import DEMO_PASSWORD, seed_demo
    from hub.server import build, prepare_database, serve

    data_dir: Path = args.data_dir or Path(tempfile.mkdtemp(prefix="lektiecafe-demo-"))
    if args.data_dir and (data_dir / "hub.db").exists():
        for leftover in ("hub.db", "hub.db-wal", "hub.db-shm", "attachments"):
            path = data_dir / leftover
            shutil.rmtree(path) if path.is_dir() else path.unlink(missing_ok=True)
    config = _config(args, data_dir=data_dir, secure_cookies=False, database_url="")
    db = Database(config.resolved_database_url)
    prepare_database(db)
    with db.transaction() as s:
        logins = seed_demo(s, students=args.students, helpers=args.helpers, now=clock.now())
    db.dispose()
    url = f"http://{args.host}:{args.port}"
    lines = [
        f"Lektiecafé demo on {url}/login  (data in {data_dir})",
        f"Every demo login has the password: {DEMO_PASSWORD}",
        *(f"  {role:<12} {username}" for role, username in logins.usernames),
        "Invite codes for new students:",
        *(f"  {name:<20} {code}" for name, code in logins.sites),
        f"Site staff pair kiosks at {url}/admin/devices (staff1: {logins.sites[0][0]})",
    ]
    print("\n".join(lines), flush=True)
    serve(build(config, migrate=False), args.host, args.port)
    return 0


def _run_cluster(args: argparse.Namespace) -> int:
    import secrets
    import signal
    import time

    from sqlalchemy import func, select

    from hub import clock
    from hub.accounts.models import User
    from hub.db import Database
    from hub.demo import DEMO_PASSWORD, seed_demo
    from hub.server import prepare_database
    from lektiecafe.cluster import ClusterDidNotStart, start_cluster

    if not args.database_url.startswith("postgresql"):
        print("Several hub processes need PostgreSQL: give --database-url postgresql+psycopg://…")
        return 2
    if args.hubs < 1:
        print("--hubs must be at least 1.")
        return 2
    folder: Path = args.folder or Path(tempfile.mkdtemp(prefix="lektiecafe-cluster-"))
    db = Database(args.database_url)
    prepare_database(db)
    if args.demo:
        with db.transaction() as s:
            if s.scalar(select(func.count()).select_from(User)):
                print("The database has accounts already: no demo logins added.")
            else:
                seed_demo(s, students=args.students, helpers=args.helpers, now=clock.now())
                print(f"Demo logins added (student1, helper1, admin, …; password {DEMO_PASSWORD}).")
    db.dispose()
    try:
        cluster = start_cluster(
            args.hubs, args.database_url, args.redis_url, folder, secrets.token_hex(32)
        )
    except ClusterDidNotStart as exc:
        print(f"The cluster did not start: {exc}")
        return 1
    assert cluster.front is not None
    lines = [
        f"Lektiecafé: {args.hubs} hub processes behind nginx at {cluster.front.url}/login",
        f"  (a self-signed certificate: {cluster.front.ca}; plain HTTP {cluster.front.http_url})",
        *(
            f"  hub {n}: {hub.url}  pid {hub.pid}  log {hub.log}"
            for n, hub in enumerate(cluster.hubs, 1)
        ),
        f"  nginx: pid {cluster.front.process.pid}  errors {cluster.front.error_log}",
        "Ctrl-C stops everything.",
    ]
    print("\n".join(lines), flush=True)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    told: set[int] = set()
    try:
        # A hub process that dies is reported; nginx sends its clients to the others.
        while len(told) < len(cluster.hubs):
            for number, hub in enumerate(cluster.hubs, 1):
                code = hub.process.poll()
                if code is not None and number not in told:
                    told.add(number)
                    print(f"Hub process {number} stopped (exit code {code}).", flush=True)
            time.sleep(1)
        return 1
    except (KeyboardInterrupt, SystemExit):
        return 0
    finally:
        cluster.stop()


def _migrate(args: argparse.Namespace) -> int:
    from hub.db import Database
    from hub.server import prepare_database

    prepare_database(Database(_config(args).resolved_database_url))
    print("Database is up to date.")
    return 0


def _create_admin(args: argparse.Namespace) -> int:
    from hub import clock
    from hub.accounts.models import Role, User
    from hub.accounts.service import check_new_credentials, hash_password
    from hub.db import Database
    from hub.errors import HubError
    from hub.server import prepare_database

    db = Database(_config(args).resolved_database_url)
    prepare_database(db)
    password = os.environ.get("LEKTIECAFE_ADMIN_PASSWORD") or getpass.getpass("Password: ")
    try:
        with db.transaction() as s:
            username = check_new_credentials(s, args.username, password)
            s.add(
                User(
                    username=username,
                    password_hash=hash_password(password),
                    role=Role.ADMIN.value,
                    display_name=username,
                    created_at=clock.now(),
                )
            )
    except HubError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        return 2
    print(f"Admin {username} created.")
    return 0


def _backup(args: argparse.Namespace) -> int:
    from hub.backup import backup

    return backup(_config(args), args.archive)


def _restore(args: argparse.Namespace) -> int:
    from hub.backup import restore

    return restore(_config(args), args.archive, force=args.force)


def _migrate_data(args: argparse.Namespace) -> int:
    from hub.backup import migrate_data

    return migrate_data(_config(args), args.to)


def _provision(args: argparse.Namespace) -> int:
    from provisioning.cli import run

    return run(args)


def _run_kiosk(args: argparse.Namespace) -> int:
    # Only here: the hub never imports pygame, and the kiosk never imports Flask.
    from appliance.visit import Options
    from kiosk_ui.app import run
    from kiosk_ui.settings import Settings

    options = Options(hub_url=args.hub, fake_camera=args.fake_camera, lang=args.lang)
    if args.data_dir:
        options = dataclasses.replace(options, data_dir=args.data_dir)
    settings = Settings(
        idle_s=args.idle_after,
        countdown_s=args.idle_countdown,
        room_idle_s=args.room_idle_after,
        lang=args.lang,
        kiosk_name=args.name,
    )
    return run(options, settings, windowed=args.windowed, driver_path=args.test_driver)


if __name__ == "__main__":
    sys.exit(main())
