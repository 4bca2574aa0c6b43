"""Transient storage errors: backoff that spans minutes (bounded by the lease), reasons without paths."""

from __future__ import annotations

import pytest
import support_images as si
from factories import insert_job, make_settings
from support_live import load_job

from humanseg.core import migrate
from humanseg.core.db import make_engine, make_sessionmaker
from humanseg.core.models import JobStatus
from humanseg.core.storage import LocalStorage
from humanseg.worker.pipeline import run_job


@pytest.fixture
def make_env(tmp_path):
    """make_env(**settings) -> (settings, sessions, storage, job_id) with a job whose original
    cannot be read: a folder where the file must be (an OSError, not "missing")."""
    db_url = f"sqlite:///{tmp_path / 'w.db'}"
    migrate.upgrade(db_url)
    engine = make_engine(db_url)
    sessions, storage = make_sessionmaker(engine), LocalStorage(tmp_path / "storage")

    def build(**overrides):
        settings = make_settings(tmp_path, database_url=db_url, **overrides)
        job_id = insert_job(storage, sessions, si.jpeg())
        original = storage.root / load_job(sessions, job_id).original_key
        original.unlink()
        original.mkdir()
        return settings, sessions, storage, job_id

    yield build
    engine.dispose()


def _deliveries(settings, sessions, storage, job_id):
    """Deliver the job until it is failed for good; the outcome of every delivery."""
    outcomes = []
    while not outcomes or outcomes[-1].status == "retry":
        outcomes.append(run_job(job_id, settings, storage, sessions, None))
        assert len(outcomes) <= settings.max_attempts
    return outcomes


def test_storage_errors_back_off_for_minutes_before_the_job_fails(make_env):
    settings, sessions, storage, job_id = make_env(max_attempts=3, lease_seconds=300)
    outcomes = _deliveries(settings, sessions, storage, job_id)
    delays = [o.retry_in for o in outcomes if o.status == "retry"]
    assert [o.status for o in outcomes] == ["retry", "retry", "failed"]
    assert delays == sorted(delays) and delays[0] >= 10 and sum(delays) >= 60
    job = load_job(sessions, job_id)
    assert job.status is JobStatus.failed and job.attempts == 3
    assert job.error.startswith("gave up after 3 attempts: reading original")


def test_backoff_never_exceeds_the_lease(make_env):
    settings, sessions, storage, job_id = make_env(max_attempts=6, lease_seconds=40)
    delays = [o.retry_in for o in _deliveries(settings, sessions, storage, job_id)
              if o.status == "retry"]
    assert len(delays) == 5 and max(delays) == 40 and all(d <= 40 for d in delays)


def test_recorded_reasons_name_no_server_path(make_env, tmp_path):
    settings, sessions, storage, job_id = make_env(max_attempts=2)
    first = run_job(job_id, settings, storage, sessions, None)
    retrying = load_job(sessions, job_id).error
    assert first.status == "retry" and retrying.startswith("retrying: reading original")
    run_job(job_id, settings, storage, sessions, None)
    failed = load_job(sessions, job_id).error
    assert failed.startswith("gave up after 2 attempts: reading original")
    for error in (retrying, failed):
        assert str(tmp_path) not in error and "/storage/" not in error, error
        assert f"originals/{job_id}.jpg" in error  # the storage key still says which object
