"""Uploading while the broker is down: the jobs are accepted and the sweeper rings their doorbells later."""

import io
import os
import re
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import support_images as si
from factories import settings_env
from support_live import load_job, queued_job_ids

from humanseg.core.models import JobStatus
from humanseg.core.settings import Settings
from humanseg.web import create_app

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def dead_broker_url():
    """A loopback port that is bound but never listens: every connection is refused at once."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        yield f"redis://127.0.0.1:{s.getsockname()[1]}/0"


def test_upload_with_broker_down_is_accepted_and_recovered_by_the_sweeper(
        tmp_path, db_url, redis_url, private_queue, dead_broker_url):
    # the sweep's child process gets them too
    env = settings_env(data_dir=tmp_path, database_url=db_url, queue=private_queue, secret_key="t",
                       stale_queued_seconds=0)
    app = create_app(Settings.from_env({**env, "HUMANSEG_BROKER_URL": dead_broker_url}))
    sessions = app.extensions["humanseg"].sessions
    try:
        files = [(io.BytesIO(si.jpeg()), f"p{i}.jpg") for i in range(3)]
        resp = app.test_client().post("/api/v1/jobs", data={"images": files},
                                      content_type="multipart/form-data")
        # The database is the record, the broker only a doorbell: the upload is accepted.
        assert resp.status_code == 202, resp.json
        ids = [j["id"] for j in resp.json["jobs"]]
        assert [j["status"] for j in resp.json["jobs"]] == ["queued"] * 3
        assert all(load_job(sessions, i).status is JobStatus.queued for i in ids)
    finally:
        app.extensions["humanseg"].engine.dispose()
    assert queued_job_ids(redis_url, private_queue) == []

    # Later, with the broker back: one `humanseg sweep` re-sends every job that never got a task.
    sweep_env = {k: v for k, v in os.environ.items() if not k.startswith("HUMANSEG_")}
    sweep_env.update(env, HUMANSEG_BROKER_URL=redis_url)
    proc = subprocess.run([sys.executable, "-m", "humanseg.cli", "sweep"], check=False, env=sweep_env,
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert re.search(r"^requeued=0 resent=3 failed=0 held=0$", proc.stdout, re.MULTILINE), proc.stdout
    assert sorted(queued_job_ids(redis_url, private_queue)) == sorted(ids)
