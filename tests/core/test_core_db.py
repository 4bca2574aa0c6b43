from datetime import timedelta

from factories import batch_row, job_row
from sqlalchemy import inspect, select

from humanseg.core import migrate
from humanseg.core.db import make_engine, make_sessionmaker, ping, session_scope
from humanseg.core.models import Job, JobStatus, utcnow


def test_migration_creates_schema_and_round_trips(db_url):
    engine = make_engine(db_url)
    try:
        insp = inspect(engine)
        assert {"batches", "jobs", "alembic_version"} <= set(insp.get_table_names())
        index_cols = {tuple(ix["column_names"]) for ix in insp.get_indexes("jobs")}
        assert ("status", "finished_at", "id") in index_cols
        ping(engine)
        sessions = make_sessionmaker(engine)
        with session_scope(sessions) as s:
            b = batch_row(s, name="b", job_count=1)
            job_row(s, b.id, filename="../x.jpg", width=3, height=2, bytes=10, original_key="originals/a.jpg")
        with session_scope(sessions) as s:
            job = s.scalars(select(Job)).one()
            assert job.status is JobStatus.queued and not job.status.is_terminal()
            assert job.created_at.tzinfo is not None and job.duration_ms is None
            job.started_at = utcnow()
            job.finished_at = job.started_at + timedelta(milliseconds=1500)
            assert job.duration_ms == 1500
    finally:
        engine.dispose()
    migrate.downgrade(db_url, "base")
    engine = make_engine(db_url)
    assert "jobs" not in inspect(engine).get_table_names()
    engine.dispose()
    migrate.upgrade(db_url)  # repeatable


def test_status_terminality():
    assert [s.value for s in JobStatus if s.is_terminal()] == ["succeeded", "failed", "cancelled"]
