"""Bring a database to the newest schema with the Alembic migrations shipped in the package."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config

from hub.db import Database

MIGRATIONS = Path(__file__).parent / "migrations"


def alembic_config(url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def upgrade(db: Database) -> None:
    cfg = alembic_config(db.url)
    with db.engine.begin() as connection:
        if not db.is_sqlite:
            # Several hub processes may start at once; one migrates, the others wait.
            connection.exec_driver_sql("SELECT pg_advisory_xact_lock(4243)")
        cfg.attributes["connection"] = connection
        command.upgrade(cfg, "head")
