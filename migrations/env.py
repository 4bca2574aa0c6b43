"""Alembic environment: URL from core.settings, metadata from core.models."""

from __future__ import annotations

from alembic import context

from humanseg.core.db import make_engine
from humanseg.core.models import Base
from humanseg.core.settings import Settings

config = context.config
target_metadata = Base.metadata


def _url() -> str:
    # An explicit URL (set by core.migrate) wins over the environment.
    return config.get_main_option("sqlalchemy.url") or Settings.from_env().database_url


def run_migrations_offline() -> None:
    context.configure(url=_url(), target_metadata=target_metadata, literal_binds=True,
                      render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    engine = make_engine(_url())
    try:
        with engine.connect() as conn:
            _run(conn)
    finally:
        engine.dispose()


def _run(connection) -> None:
    context.configure(connection=connection, target_metadata=target_metadata,
                      render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
