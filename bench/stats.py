"""How long the statistics dashboard and its CSV export take on a year of a national service.

    .venv/bin/python -m bench.stats [--requests 500000] [--sites 100] [--students 20000]
        [--helpers 500] [--archived 0.25] [--repeat 30]
        [--database-url postgresql+psycopg://127.0.0.1:5432/] [--reuse]

Seeds a fresh database (SQLite in a temporary data dir, or a new PostgreSQL database) with the
demo users, `--sites` sites with the students spread over them, and a year of finished help
requests written straight into the hub's tables by bulk load (COPY on PostgreSQL): most matched,
with rooms and feedback; some given up or left; a share (`--archived`) only as the anonymous facts
a deleted account leaves. The database's triggers mark every request as they would in the hub;
the hub's own `hub.stats.service.refresh` then builds the facts and the days' figures (timed).
Then it times, in the hub's own app and through its routes (`GET /admin/stats`,
`GET /admin/stats/export.csv`, bearer tokens, no network):

  year, all sites              the whole year, per week
  30 days, all sites           the last 30 days, per day
  year, one site               the whole year at one site (an admin's filter)
  site staff, year             the same as site staff see it (their own site)
  year, after 10 finished      all sites again, each time after 10 of today's requests changed
  CSV export, year             the export of the whole year, all sites

With `--reuse` the seeded database is kept (SQLite: bench/results/stats-bench.db, PostgreSQL: the
database `stats_bench`, or the one `--database-url` names) and a later run with `--reuse` migrates
it to the hub's schema and times it again without seeding (a year takes some ten minutes per
engine to seed); delete it to reseed.

Prints the median, p95 and p99 of each, and writes the figures as JSON to bench/results/. See
bench/README.md."""

from __future__ import annotations

import argparse
import os
import random
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bench.common import (
    PG_ADMIN,
    RESULTS,
    SECRET_KEY,
    BenchDatabase,
    Samples,
    bulk_insert,
    database_version,
    fresh_database,
    load_line,
    machine_info,
    machine_lines,
    percentile,
    progress,
    seed,
    write_results,
)

TARGET_P95_MS = 300.0  # issue 9's target for the dashboard's queries
KEPT_SQLITE = RESULTS / "stats-bench.db"
KEPT_PG_NAME = "stats_bench"


@contextmanager
def kept_database(database_url: str | None, pg_admin: str) -> Iterator[BenchDatabase]:
    """The benchmark's own database, created if missing and never dropped (`--reuse`)."""
    if not database_url or database_url.startswith("sqlite"):
        if not database_url:
            KEPT_SQLITE.parent.mkdir(parents=True, exist_ok=True)
        url = database_url or f"sqlite:///{KEPT_SQLITE}"
        yield BenchDatabase(url, "sqlite", KEPT_SQLITE.parent)
        return
    from urllib.parse import urlsplit, urlunsplit

    import psycopg

    parts = urlsplit(database_url)
    name = parts.path.lstrip("/") or KEPT_PG_NAME
    with psycopg.connect(pg_admin, autocommit=True) as conn:
        if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone() is None:
            conn.execute(f'CREATE DATABASE "{name}"')
    yield BenchDatabase(urlunsplit(parts._replace(path=f"/{name}")), "postgresql", RESULTS)


def seeded(url: str) -> bool:
    """Whether a kept database holds a seeded year already (its days' figures are built last)."""
    from sqlalchemy import inspect, select

    from hub.db import Database
    from hub.stats.models import StatsDay

    db = Database(url)
    try:
        if "stats_days" not in inspect(db.engine).get_table_names():
            return False
        with db.transaction() as s:
            return s.scalar(select(StatsDay.day).limit(1)) is not None
    finally:
        db.dispose()


def migrate(url: str) -> None:
    """Bring a kept database's schema up to the hub's (its data stays)."""
    from hub.db import Database
    from hub.migrate import upgrade

    db = Database(url)
    try:
        upgrade(db)
    finally:
        db.dispose()


def spread_users(url: str, sites: int, organisations: int) -> None:
    """Add sites and partner organisations up to the given numbers, and spread the demo students
    over the sites and the helpers over the organisations, round robin."""
    from sqlalchemy import select, update

    from hub.accounts.models import Organisation, Role, Site, User
    from hub.db import Database

    db = Database(url)
    try:
        with db.transaction() as s:
            have = s.scalar(select(Site.id).order_by(Site.id.desc()).limit(1)) or 0
            s.add_all(
                Site(name=f"Bench-sted {n:03d}", kind="school", invite_code=f"bench{n}", contact="")
                for n in range(have + 1, sites + 1)
            )
            have = len(s.scalars(select(Organisation.id)).all())
            s.add_all(
                Organisation(name=f"Bench-frivillige {n:02d}")
                for n in range(have + 1, organisations + 1)
            )
            s.flush()
            site_ids = list(s.scalars(select(Site.id).order_by(Site.id)))
            org_ids = list(s.scalars(select(Organisation.id).order_by(Organisation.id)))
            for role, column, targets in (
                (Role.STUDENT, User.site_id, site_ids),
                (Role.HELPER, User.organisation_id, org_ids),
            ):
                ids = list(s.scalars(select(User.id).where(User.role == role).order_by(User.id)))
                for n, target in enumerate(targets):
                    chosen = ids[n :: len(targets)]
                    if chosen:
                        s.execute(update(User).where(User.id.in_(chosen)).values({column: target}))
    finally:
        db.dispose()


def seed_year(url: str, args: argparse.Namespace, rng: random.Random) -> dict[str, float]:
    """A year of finished requests by the students, helped by the helpers, bulk-loaded."""
    from sqlalchemy import select

    from hub.accounts.models import Role, User
    from hub.catalog.models import Subject
    from hub.db import Database
    from hub.stats.service import local_day, new_student_key

    db = Database(url)
    try:
        with db.transaction() as s:
            students = s.execute(
                select(User.id, User.site_id, User.grade).where(User.role == Role.STUDENT)
            ).all()
            helpers = s.execute(
                select(User.id, User.organisation_id).where(User.role == Role.HELPER)
            ).all()
            subjects = list(s.scalars(select(Subject.id)))
    finally:
        db.dispose()
    # Kiosk visitors whose accounts are gone: a quarter as many as students, several requests each.
    archived_keys = [new_student_key() for _ in range(max(1, len(students) // 4))]
    now = datetime.now(UTC)
    requests: list[tuple[Any, ...]] = []
    rooms: list[tuple[Any, ...]] = []
    feedback: list[tuple[Any, ...]] = []
    facts: list[tuple[Any, ...]] = []
    start = time.perf_counter()
    for n in range(args.requests):
        asked = now - timedelta(days=rng.uniform(0, 365))
        outcome = rng.choices(["matched", "cancelled", "left"], [85, 10, 5])[0]
        wait = rng.expovariate(1 / 240)
        length = rng.uniform(5, 60) * 60 if outcome == "matched" else None
        student = rng.choice(students)
        helper = rng.choice(helpers)
        subject = rng.choice(subjects)
        ratings = (rng.randint(1, 5), rng.randint(2, 5)) if rng.random() < 0.6 else None
        if rng.random() < args.archived:
            facts.append(
                (
                    local_day(asked),
                    asked,
                    student.site_id,
                    subject,
                    student.grade,
                    "kiosk",
                    outcome,
                    round(wait),
                    None if length is None else round(length),
                    helper.organisation_id if length else None,
                    ratings[0] if ratings and length else None,
                    ratings[1] if ratings and length else None,
                    rng.choice(archived_keys),
                )
            )
            continue
        request_id = n + 1
        ended = asked + timedelta(seconds=wait)
        requests.append((request_id, student.id, subject, student.grade, "", outcome, asked, ended))
        if length is None:
            continue
        room_id = f"r{request_id}"
        rooms.append(
            (room_id, request_id, student.id, helper.id, ended, ended + timedelta(seconds=length))
        )
        if ratings:
            feedback.append((room_id, student.id, "student", ratings[0], "", ended))
            feedback.append((room_id, helper.id, "helper", ratings[1], "", ended))
    timings = {"generate_s": time.perf_counter() - start}
    progress(
        f"  generated {len(requests):,} requests, {len(rooms):,} rooms, {len(feedback):,} "
        f"ratings, {len(facts):,} archived facts in {timings['generate_s']:.1f} s"
    )
    loads: list[tuple[str, str, list[tuple[Any, ...]]]] = [
        (
            "help_requests",
            "id student_id subject_id grade note status created_at ended_at",
            requests,
        ),
        ("rooms", "id request_id student_id helper_id created_at ended_at", rooms),
        ("feedback", "room_id user_id role rating comment created_at", feedback),
        (
            "stats_facts",
            "day asked_at site_id subject_id grade channel outcome wait_s session_s "
            "helper_organisation_id student_rating helper_rating student_key",
            facts,
        ),
    ]
    for table, columns, rows in loads:
        timings[f"load_{table}_s"] = bulk_insert(url, table, columns.split(), rows)
        progress(f"  {table}: {len(rows):,} rows in {timings[f'load_{table}_s']:.1f} s")
    return timings


def build_facts(url: str) -> float:
    """The hub's own refresh: each request the triggers marked becomes a fact; then the days."""
    from hub.db import Database
    from hub.stats import service

    db = Database(url)
    try:
        start = time.perf_counter()
        with db.transaction() as s:
            looked_at = service.refresh(s)
        took = time.perf_counter() - start
        progress(f"  refresh: {looked_at:,} requests to facts and days in {took:.1f} s")
        if not db.is_sqlite:
            with db.engine.connect() as conn:
                conn.exec_driver_sql("COMMIT")
                conn.exec_driver_sql("ANALYZE")
        return took
    finally:
        db.dispose()


def touch_today(url: str, rng: random.Random, count: int) -> None:
    """As if `count` of today's requests had just finished: the triggers mark them."""
    from sqlalchemy import select, update

    from hub.db import Database
    from hub.matching.models import HelpRequest

    db = Database(url)
    try:
        with db.transaction() as s:
            since = datetime.now(UTC) - timedelta(hours=12)
            ids = list(s.scalars(select(HelpRequest.id).where(HelpRequest.created_at >= since)))
            chosen = rng.sample(ids, min(count, len(ids)))
            s.execute(
                update(HelpRequest)
                .where(HelpRequest.id.in_(chosen))
                .values(ended_at=HelpRequest.ended_at)
            )
    finally:
        db.dispose()


def timed(
    client: Any,
    path: str,
    params: dict[str, str],
    token: str,
    repeat: int,
    name: str,
    before: Any = None,
) -> Samples:
    samples = Samples(name)
    for _ in range(repeat):
        if before is not None:
            before()
        start = time.perf_counter()
        r = client.get(path, query_string=params, headers={"Authorization": f"Bearer {token}"})
        elapsed = time.perf_counter() - start
        if r.status_code != 200:
            samples.fail(f"HTTP {r.status_code}")
        else:
            samples.add(elapsed)
    return samples


def seed_all(db: BenchDatabase, args: argparse.Namespace, rng: random.Random) -> dict[str, float]:
    """Users, sites and a year of requests, then the hub's refresh; how long each part took."""
    progress(f"seeding {args.students:,} students, {args.helpers:,} helpers, {db.backend}")
    start = time.perf_counter()
    seed(db.url, args.students, args.helpers)
    spread_users(db.url, args.sites, args.organisations)
    timings = {"users_s": time.perf_counter() - start}
    progress(f"  users in {timings['users_s']:.1f} s")
    progress(f"seeding {args.requests:,} requests over a year across {args.sites} sites")
    start = time.perf_counter()
    timings |= seed_year(db.url, args, rng)
    timings["refresh_s"] = build_facts(db.url)
    timings["seed_s"] = time.perf_counter() - start
    return timings


def run(args: argparse.Namespace) -> dict[str, Any]:
    from sqlalchemy import func, select

    from hub import create_app
    from hub.accounts.access import make_token
    from hub.accounts.models import User
    from hub.config import HubConfig
    from hub.state import hub_state
    from hub.stats.models import StatsDay, StatsFact
    from hub.stats.service import local_day

    rng = random.Random(args.seed)
    load_before = os.getloadavg()
    timings: dict[str, float] = {}
    database_context = (
        kept_database(args.database_url, args.pg_admin)
        if args.reuse
        else fresh_database(args.database_url, args.pg_admin)
    )
    with database_context as db:
        if args.reuse and seeded(db.url):
            progress(f"reusing the seeded {db.backend} database {db.url}")
            migrate(db.url)  # e.g. a table added since it was seeded (stats_months)
        else:
            timings = seed_all(db, args, rng)
        database = database_version(db.url)

        app = create_app(HubConfig(database_url=db.url, secret_key=SECRET_KEY))
        try:
            with app.app_context():
                with hub_state().db.transaction() as s:
                    admin_id = s.scalar(select(User.id).where(User.username == "admin"))
                    staff = s.execute(
                        select(User.id, User.site_id).where(User.username == "staff1")
                    ).one()
                    counts = {
                        "facts": s.scalar(select(func.count()).select_from(StatsFact)),
                        "days": s.scalar(select(func.count()).select_from(StatsDay)),
                        "facts_at_staff_site": s.scalar(
                            select(func.count()).where(StatsFact.site_id == staff.site_id)
                        ),
                    }
                assert admin_id is not None
                admin_token, staff_token = make_token(admin_id), make_token(staff.id)
            progress(f"  {counts}")
            today = local_day(datetime.now(UTC))
            year = {"from": (today - timedelta(days=364)).isoformat(), "to": today.isoformat()}
            month = {"from": (today - timedelta(days=29)).isoformat(), "to": today.isoformat()}
            one_site = {**year, "by": "week", "site": str(staff.site_id)}
            cases = [
                ("dashboard: year, all sites", "/admin/stats", {**year, "by": "week"}, None),
                ("dashboard: 30 days, all sites", "/admin/stats", {**month, "by": "day"}, None),
                ("dashboard: year, one site", "/admin/stats", one_site, None),
                ("dashboard: site staff, year", "/admin/stats", {**year, "by": "week"}, "staff"),
                (
                    "dashboard: year, after 10 finished",
                    "/admin/stats",
                    {**year, "by": "week"},
                    "touch",
                ),
                ("CSV export: year, all sites", "/admin/stats/export.csv", {**year}, None),
            ]
            client = app.test_client()
            samples = []
            for name, path, params, how in cases:
                progress(f"timing {name} ({args.repeat} times)")
                token = staff_token if how == "staff" else admin_token
                before = (lambda: touch_today(db.url, rng, 10)) if how == "touch" else None
                timed(client, path, params, token, 2, name, before)  # warm the caches
                samples.append(timed(client, path, params, token, args.repeat, name, before))
        finally:
            app.extensions["lektiecafe"].db.dispose()
    summaries = []
    for sample in samples:
        summary = sample.summary()
        summary["p95_ms"] = percentile(sorted(x * 1000 for x in sample.values), 95)
        summaries.append(summary)
    return {
        "benchmark": "stats",
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine_info(),
        "database": database,
        "size": {
            "sites": args.sites,
            "organisations": args.organisations,
            "students": args.students,
            "helpers": args.helpers,
            "requests": args.requests,
            "archived_share": args.archived,
            **counts,
        },
        "timings_s": timings,
        "load_before": load_before,
        "load_after": os.getloadavg(),
        "measures": summaries,
    }


def report(result: dict[str, Any]) -> list[str]:
    size, t = result["size"], result["timings_s"]
    lines = [
        "Statistics dashboard, in-process through the routes (refresh + compute + render)",
        *machine_lines(result["machine"]),
        f"  database  {result['database']}; {size['sites']} sites, {size['students']:,} "
        f"students, {size['helpers']:,} helpers, {size['requests']:,} requests over a year "
        f"({size['archived_share']:.0%} archived); {size['facts']:,} facts, {size['days']} days",
        (
            f"  seeding   {t['seed_s']:.1f} s: generate {t['generate_s']:.1f}, load "
            + ", ".join(f"{k[5:-2]} {v:.1f}" for k, v in t.items() if k.startswith("load_"))
            + f", refresh (facts + days) {t['refresh_s']:.1f} s; users {t['users_s']:.1f} s"
            if t
            else "  seeding   none: the database of an earlier run (--reuse)"
        ),
        load_line(result["load_before"], result["load_after"]),
        f"  {'measure':<38}{'n':>5}{'p50':>10}{'p95':>10}{'p99':>10}{'max':>10}   target",
    ]
    for s in result["measures"]:
        verdict = "PASS" if s["p95_ms"] < TARGET_P95_MS else "MISS"
        lines.append(
            f"  {s['name']:<38}{s['n']:>5}{s['p50_ms']:>8.0f}ms{s['p95_ms']:>8.0f}ms"
            f"{s['p99_ms']:>8.0f}ms{s['max_ms']:>8.0f}ms   p95 < {TARGET_P95_MS:.0f} ms: {verdict}"
        )
        if s["errors"]:
            lines.append(f"      failures: {s['errors']}")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--requests", type=int, default=500_000)
    parser.add_argument("--sites", type=int, default=100)
    parser.add_argument("--organisations", type=int, default=20)
    parser.add_argument("--students", type=int, default=20_000)
    parser.add_argument("--helpers", type=int, default=500)
    parser.add_argument(
        "--archived", type=float, default=0.25, help="share kept only as archived facts"
    )
    parser.add_argument("--repeat", type=int, default=30)
    parser.add_argument("--seed", type=int, default=9)
    parser.add_argument("--database-url", default=None)
    parser.add_argument("--pg-admin", default=PG_ADMIN)
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument(
        "--reuse", action="store_true", help="keep the seeded database; seed it only if empty"
    )
    args = parser.parse_args()
    result = run(args)
    print("\n".join(report(result)))
    target = write_results(result, args.json, f"stats-{result['database'].split()[0]}.json")
    progress(f"results in {target}")


if __name__ == "__main__":
    main()
