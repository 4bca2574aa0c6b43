"""Migration 0004 on a database that already holds batches and jobs (SQLite keeps foreign keys on)."""

from sqlalchemy import inspect, text

from humanseg.core import migrate
from humanseg.core.db import make_engine


def test_0004_adds_keys_and_owners_to_existing_rows(db_url):
    migrate.downgrade(db_url, "0003")
    engine = make_engine(db_url)
    try:
        with engine.begin() as conn:
            conn.execute(text("INSERT INTO batches (id, name, created_at, job_count) "
                              "VALUES ('b' || 'x', 'old', CURRENT_TIMESTAMP, 1)"))
            conn.execute(text("INSERT INTO jobs (id, batch_id, seq, filename, content_type, width, height,"
                              " bytes, status, attempts, created_at, original_key) VALUES ('j1', 'bx', 0,"
                              " 'a.jpg', 'image/jpeg', 1, 1, 1, 'queued', 0, CURRENT_TIMESTAMP, 'originals/j1.jpg')"))
    finally:
        engine.dispose()
    migrate.upgrade(db_url, "0004")
    engine = make_engine(db_url)
    try:
        assert "api_keys" in inspect(engine).get_table_names()
        with engine.connect() as conn:
            assert conn.execute(text("SELECT owner_key_id FROM batches WHERE id = 'bx'")).one() == (None,)
    finally:
        engine.dispose()
    migrate.downgrade(db_url, "0003")  # with the rows still there
    migrate.upgrade(db_url)
