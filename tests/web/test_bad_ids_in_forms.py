"""An id in a form field gets the same public-id check as ids in paths (PostgreSQL: NUL is an error)."""

from __future__ import annotations

import io

import pytest
import support_images as si
from factories import make_settings
from sqlalchemy import func, select
from support_live import queued_job_ids

from humanseg.core.models import Job, new_id
from humanseg.web import create_app


@pytest.fixture
def app(tmp_path, db_url, redis_url, private_queue):
    app = create_app(make_settings(tmp_path, database_url=db_url, broker_url=redis_url, queue=private_queue))
    yield app
    app.extensions["humanseg"].engine.dispose()


@pytest.mark.parametrize("bad", ["a\x00b", "0" * 31 + "\x00", "A" * 32, "x" * 500, new_id()])
def test_append_to_a_malformed_or_unknown_batch_is_a_404(app, bad, redis_url, private_queue):
    client = app.test_client()
    resp = client.post("/api/v1/jobs", data={"images": [(io.BytesIO(si.jpeg()), "a.jpg")],
                                             "batch_id": bad},
                       content_type="multipart/form-data")
    assert resp.status_code == 404 and resp.json["error"]["code"] == "batch_not_found"
    svc = app.extensions["humanseg"]
    with svc.sessions() as s:
        assert s.scalar(select(func.count()).select_from(Job)) == 0
    assert queued_job_ids(redis_url, private_queue) == []
    originals = svc.storage.root / "originals"
    assert not originals.exists() or not any(originals.iterdir())  # the stored original was discarded
