"""How long the statistics dashboard and its CSV export take on a year of a pilot's data.

    .venv/bin/python -m bench.stats [--students 100] [--helpers 25] [--requests 20000]
        [--archived 0.25] [--repeat 20] [--database-url postgresql+psycopg://127.0.0.1:5432/]

Seeds a fresh database with the demo users and a year of synthetic help requests (most matched,
with rooms and feedback; some given up or left; a share kept only as anonymous archived rows, as
kiosk visits past the retention period are), then times, in the hub's own app and through its
routes (`GET /admin/stats`, `GET /admin/stats/export.csv`, an admin's bearer token, no network):

  year, all sites    the whole year, per week
  30 days, all sites the last 30 days, per day
  year, one site     the whole year at one site, per week
  CSV, year          the export of the whole year

Prints the median and p99 of each with the machine, and writes the figures as JSON to
bench/results/. See bench/README.md."""

from __future__ import annotations

import argparse
import random
import secrets
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bench.common import (
    PG_ADMIN,
    SECRET_KEY,
    Samples,
    database_version,
    fresh_database,
    load_line,
    machine_info,
    machine_lines,
    measure_table,
    percentile,
    progress,
    seed,
    write_results,
)

TARGET_P95_MS = 300.0  # issue 9's target for the dashboard's queries


def seed_year(url: str, requests: int, archived_share: float, rng: random.Random) -> None:
    """A year of finished requests by the demo students, helped by the demo helpers."""
    from sqlalchemy import insert, select

    from hub.accounts.models import Role, User
    from hub.catalog.models import Subject
    from hub.db import Database
    from hub.matching.models import HelpRequest
    from hub.rooms.models import Feedback, Room
    from hub.stats.models import ArchivedRequest

    db = Database(url)
    now = datetime.now(UTC)
    try:
        with db.transaction() as s:
            students = s.execute(
                select(User.id, User.site_id, User.grade).where(User.role == Role.STUDENT)
            ).all()
            helpers = s.execute(
                select(User.id, User.organisation_id).where(User.role == Role.HELPER)
            ).all()
            subjects = list(s.scalars(select(Subject.id)))
            live_requests, rooms, feedback, archived = [], [], [], []
            for n in range(requests):
                asked = now - timedelta(days=rng.uniform(0, 365))
                outcome = rng.choices(["matched", "cancelled", "left"], [85, 10, 5])[0]
                wait = rng.expovariate(1 / 240)
                length = rng.uniform(5, 60) * 60 if outcome == "matched" else None
                student = rng.choice(students)
                helper = rng.choice(helpers)
                ratings = (rng.randint(1, 5), rng.randint(2, 5)) if rng.random() < 0.6 else None
                if rng.random() < archived_share:
                    archived.append(
                        {
                            "asked_at": asked,
                            "site_id": student.site_id,
                            "subject_id": rng.choice(subjects),
                            "grade": student.grade,
                            "channel": "kiosk",
                            "outcome": outcome,
                            "wait_s": wait,
                            "session_s": length,
                            "helper_organisation_id": helper.organisation_id if length else None,
                            "student_rating": ratings[0] if ratings and length else None,
                            "helper_rating": ratings[1] if ratings and length else None,
                            "student_key": secrets.token_hex(16),
                        }
                    )
                    continue
                request_id = n + 1
                ended = asked + timedelta(seconds=wait)
                live_requests.append(
                    {
                        "id": request_id,
                        "student_id": student.id,
                        "subject_id": rng.choice(subjects),
                        "grade": student.grade,
                        "status": outcome,
                        "created_at": asked,
                        "ended_at": ended,
                    }
                )
                if length is None:
                    continue
                room_id = f"r{request_id}"
                rooms.append(
                    {
                        "id": room_id,
                        "request_id": request_id,
                        "student_id": student.id,
                        "helper_id": helper.id,
                        "created_at": ended,
                        "ended_at": ended + timedelta(seconds=length),
                        "ended_reason": "ended",
                    }
                )
                if ratings:
                    for user_id, role, rating in (
                        (student.id, "student", ratings[0]),
                        (helper.id, "helper", ratings[1]),
                    ):
                        feedback.append(
                            {
                                "room_id": room_id,
                                "user_id": user_id,
                                "role": role,
                                "rating": rating,
                                "created_at": ended,
                            }
                        )
            for model, rows in (
                (HelpRequest, live_requests),
                (Room, rooms),
                (Feedback, feedback),
                (ArchivedRequest, archived),
            ):
                if rows:
                    s.execute(insert(model), rows)
    finally:
        db.dispose()


def timed(
    client: Any, path: str, params: dict[str, str], token: str, repeat: int, name: str
) -> Samples:
    samples = Samples(name)
    for _ in range(repeat):
        start = time.perf_counter()
        r = client.get(path, query_string=params, headers={"Authorization": f"Bearer {token}"})
        elapsed = time.perf_counter() - start
        if r.status_code != 200:
            samples.fail(f"HTTP {r.status_code}")
        else:
            samples.add(elapsed)
    return samples


def run(args: argparse.Namespace) -> dict[str, Any]:
    import os

    from sqlalchemy import select

    from hub import create_app
    from hub.accounts.access import make_token
    from hub.accounts.models import User
    from hub.config import HubConfig
    from hub.state import hub_state
    from hub.stats.service import local_day

    rng = random.Random(args.seed)
    load_before = os.getloadavg()
    with fresh_database(args.database_url, args.pg_admin) as db:
        progress(f"seeding {args.students} students, {args.helpers} helpers, {db.backend}")
        seed(db.url, args.students, args.helpers)
        progress(f"seeding {args.requests} requests over a year")
        start = time.perf_counter()
        seed_year(db.url, args.requests, args.archived, rng)
        seeded_s = time.perf_counter() - start
        database = database_version(db.url)

        app = create_app(HubConfig(database_url=db.url, secret_key=SECRET_KEY))
        try:
            with app.app_context():
                with hub_state().db.transaction() as s:
                    admin_id = s.scalar(select(User.id).where(User.username == "admin"))
                assert admin_id is not None
                token = make_token(admin_id)
            today = local_day(datetime.now(UTC))
            year = {"from": (today - timedelta(days=365)).isoformat(), "to": today.isoformat()}
            month = {"from": (today - timedelta(days=29)).isoformat(), "to": today.isoformat()}
            cases = [
                ("dashboard: year, all sites", "/admin/stats", {**year, "by": "week"}),
                ("dashboard: 30 days, all sites", "/admin/stats", {**month, "by": "day"}),
                ("dashboard: year, one site", "/admin/stats", {**year, "by": "week", "site": "1"}),
                ("CSV export: year, all sites", "/admin/stats/export.csv", {**year, "by": "week"}),
            ]
            client = app.test_client()
            samples = []
            for name, path, params in cases:
                progress(f"timing {name} ({args.repeat} times)")
                timed(client, path, params, token, 2, name)  # warm the caches
                samples.append(timed(client, path, params, token, args.repeat, name))
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
            "students": args.students,
            "helpers": args.helpers,
            "requests": args.requests,
            "archived_share": args.archived,
        },
        "seed_s": seeded_s,
        "load_before": load_before,
        "load_after": os.getloadavg(),
        "measures": summaries,
    }


def report(result: dict[str, Any]) -> list[str]:
    size = result["size"]
    verdicts = {
        s["name"]: f"p95 {s['p95_ms']:.0f} ms: "
        + ("PASS" if s["p95_ms"] < TARGET_P95_MS else "MISS")
        + f" (< {TARGET_P95_MS:.0f} ms)"
        for s in result["measures"]
    }
    return [
        "Statistics dashboard, in-process through the routes (compute + render)",
        *machine_lines(result["machine"]),
        f"  database  {result['database']}; {size['students']} students, {size['helpers']} "
        f"helpers, {size['requests']:,} requests over a year "
        f"({size['archived_share']:.0%} archived), seeded in {result['seed_s']:.1f} s",
        load_line(result["load_before"], result["load_after"]),
        *measure_table(result["measures"], verdicts),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--students", type=int, default=100)
    parser.add_argument("--helpers", type=int, default=25)
    parser.add_argument("--requests", type=int, default=20_000)
    parser.add_argument(
        "--archived", type=float, default=0.25, help="share kept only as archived rows"
    )
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--seed", type=int, default=9)
    parser.add_argument("--database-url", default=None)
    parser.add_argument("--pg-admin", default=PG_ADMIN)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    result = run(args)
    print("\n".join(report(result)))
    target = write_results(result, args.json, "stats.json")
    progress(f"results in {target}")


if __name__ == "__main__":
    main()
