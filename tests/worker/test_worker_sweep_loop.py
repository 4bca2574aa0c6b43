"""The one sweep loop, run as a worker's thread and as `humanseg sweep` (once or as a loop)."""

import os
import signal
import subprocess
import sys
import threading
from datetime import timedelta
from pathlib import Path

import pytest
import support_images as si
from factories import insert_job, make_settings, settings_env
from support_live import queued_job_ids, wait_until

from humanseg.cli import main
from humanseg.core.db import make_engine, make_sessionmaker
from humanseg.core.models import utcnow
from humanseg.core.queue import make_sender
from humanseg.core.settings import Settings
from humanseg.core.storage import LocalStorage
from humanseg.worker.sweeper import SweeperThread, interval, run_loop

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def env(tmp_path, db_url, redis_url, private_queue):
    values = settings_env(data_dir=tmp_path, database_url=db_url, broker_url=redis_url, queue=private_queue,
                          stale_queued_seconds=60)  # a child process gets them too
    engine = make_engine(db_url)
    yield values, Settings.from_env(values), make_sessionmaker(engine), LocalStorage(tmp_path / "storage")
    engine.dispose()


def _stale_job(storage, sessions) -> str:
    """A queued job whose doorbell was lost an hour ago: every sweep re-sends it."""
    return insert_job(storage, sessions, si.jpeg(), name="lost", created_at=utcnow() - timedelta(hours=1))


def test_loop_sweeps_at_once_then_every_interval_until_stopped(env, redis_url):
    _, settings, sessions, storage = env
    job_id = _stale_job(storage, sessions)
    sender = make_sender(settings)
    stop = threading.Event()
    loop = threading.Thread(target=run_loop, args=(settings, sessions, sender, stop, 0.2))
    try:
        loop.start()
        # the first pass runs at once (a worker's thread does not wait an interval before it)
        wait_until(lambda: queued_job_ids(redis_url, settings.queue) == [job_id], 10, "first pass")
        assert loop.is_alive()
    finally:
        stop.set()
        loop.join(10)
        sender.close()
    assert not loop.is_alive()


def test_loop_survives_a_failing_pass(env, tmp_path):
    _, settings, _, _ = env
    # A database with no tables: every pass fails; the loop logs and goes on until stopped.
    engine = make_engine(f"sqlite:///{tmp_path / 'empty.db'}")
    sender = make_sender(settings)
    thread = SweeperThread(settings, make_sessionmaker(engine), sender, every=0.05)
    thread.start()
    try:
        thread.join(0.3)
        assert thread.is_alive()
    finally:
        thread.stop()
        thread.join(10)
        sender.close()
        engine.dispose()
    assert not thread.is_alive()


def test_interval_follows_the_timeouts():
    assert interval(make_settings()) == 30.0  # half of worker_stale_seconds: a killed worker's held jobs
    assert interval(make_settings(worker_stale_seconds=600)) == 60.0
    assert interval(make_settings(lease_seconds=30, stale_queued_seconds=5)) == 5.0
    assert interval(make_settings(lease_seconds=40, stale_queued_seconds=600)) == 20.0
    assert interval(make_settings(worker_stale_seconds=3)) == 5.0


def test_sweep_command_runs_one_pass(env, redis_url, monkeypatch, capsys):
    values, settings, sessions, storage = env
    job_id = _stale_job(storage, sessions)
    for key in [k for k in os.environ if k.startswith("HUMANSEG_")]:
        monkeypatch.delenv(key)
    for key, value in values.items():
        monkeypatch.setenv(key, value)
    assert main(["sweep"]) == 0
    assert capsys.readouterr().out.strip() == "requeued=0 resent=1 failed=0 held=0"
    assert queued_job_ids(redis_url, settings.queue) == [job_id]


def test_sweep_command_loops_until_sigterm(env, redis_url, tmp_path):
    values, settings, sessions, storage = env
    job_id = _stale_job(storage, sessions)
    child_env = {k: v for k, v in os.environ.items() if not k.startswith("HUMANSEG_")}
    child_env.update(values)
    with open(tmp_path / "sweep.log", "wb") as log:
        proc = subprocess.Popen([sys.executable, "-m", "humanseg.cli", "sweep", "--every", "0.2"],
                                env=child_env, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT)
        try:
            wait_until(lambda: job_id in queued_job_ids(redis_url, settings.queue) or proc.poll() is not None,
                       60, "the loop's first pass")
            assert proc.poll() is None
        finally:
            proc.send_signal(signal.SIGTERM)
            code = proc.wait(30)
    out = (tmp_path / "sweep.log").read_text(errors="replace")
    assert code == 0, out
    assert "event=sweeper_started standalone=1 every=0" in out and "Traceback" not in out, out
