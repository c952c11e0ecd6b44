"""Alembic environment: the hub's models on the connection or URL given by `hub.migrate`."""

from alembic import context
from sqlalchemy import create_engine

from hub.models import metadata

config = context.config


def run() -> None:
    connection = config.attributes.get("connection")
    if connection is None:
        with create_engine(config.get_main_option("sqlalchemy.url") or "").begin() as conn:
            config.attributes["connection"] = conn
            run()
        return
    context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()


run()
