"""Models vs migrations: a database built by the migrations matches core.models exactly."""

import os
import subprocess
import sys
from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from humanseg.core.db import make_engine
from humanseg.core.models import Base

ROOT = Path(__file__).resolve().parent.parent


def drift(url: str) -> list:
    """What `alembic revision --autogenerate` would write for this database (empty: no drift)."""
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={"compare_type": True,
                                                             "compare_server_default": True})
            return compare_metadata(context, Base.metadata)
    finally:
        engine.dispose()


def test_migrated_schema_matches_models(db_url):
    # db_url is upgraded to head by core.migrate (SQLite; PostgreSQL too when configured).
    assert drift(db_url) == []


def test_cli_db_upgrade_builds_the_models_schema(tmp_path):
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("HUMANSEG_")}
    env.update(HUMANSEG_DATA_DIR=str(tmp_path), HUMANSEG_DATABASE_URL=url)
    proc = subprocess.run([sys.executable, "-m", "humanseg.cli", "db", "upgrade"], check=False, env=env,
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert drift(url) == []
