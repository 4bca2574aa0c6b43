"""/readyz: database, broker and storage (a real write), with generic reasons and details in the log."""

from __future__ import annotations

import logging
import shutil
import time

import pytest
import redis

from humanseg.core.heartbeat import beat


@pytest.fixture
def make(make_live_app):
    """Apps on a queue of their own: no other test's worker beats for it."""
    return make_live_app


def _beat(app, age: float = 0.0) -> None:
    """A worker heartbeat `age` seconds old, as worker/heartbeat.py writes it."""
    settings = app.extensions["humanseg"].settings
    client = redis.Redis.from_url(settings.broker_url)
    try:
        beat(client, settings, "test-node", now=time.time() - age)
    finally:
        client.close()


def _stored_files(app) -> list[str]:
    root = app.extensions["humanseg"].storage.root
    return [str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()]


def test_ready_checks_storage_with_a_write_and_leaves_nothing(make):
    app = make()
    _beat(app)
    resp = app.test_client().get("/readyz")
    assert resp.status_code == 200
    assert resp.json["checks"] == {"database": "ok", "broker": "ok", "storage": "ok", "worker": "ok"}
    assert _stored_files(app) == []


def test_not_ready_while_results_cannot_be_written(make, tmp_path, caplog):
    app = make()
    root = app.extensions["humanseg"].storage.root
    shutil.rmtree(root)
    root.write_bytes(b"a file where the storage folder must be")  # every write now fails
    caplog.set_level(logging.WARNING, logger="humanseg")
    _beat(app)
    resp = app.test_client().get("/readyz")
    assert resp.status_code == 503 and resp.json["status"] == "unavailable"
    assert resp.json["checks"] == {"database": "ok", "broker": "ok", "storage": "error: unavailable",
                                   "worker": "ok"}
    assert str(tmp_path) not in resp.get_data(as_text=True)
    logged = [r.getMessage() for r in caplog.records if "check=storage" in r.getMessage()]
    assert logged and "error=StorageError" in logged[0]


def test_broker_error_text_goes_to_the_log_not_the_answer(make, caplog):
    app = make(broker_url="redis://127.0.0.1:1/0")
    caplog.set_level(logging.WARNING, logger="humanseg")
    resp = app.test_client().get("/readyz")
    assert resp.status_code == 503 and resp.json["checks"]["broker"] == "error: unavailable"
    text = resp.get_data(as_text=True)
    assert "127.0.0.1" not in text and "refused" not in text.lower() and "redis" not in text
    logged = [r.getMessage() for r in caplog.records if "check=broker" in r.getMessage()]
    assert logged and "127.0.0.1:1" in logged[0]


def test_not_ready_without_a_worker_heartbeat(make):
    app = make(worker_stale_seconds=30)
    client = app.test_client()
    resp = client.get("/readyz")
    assert resp.status_code == 503
    assert resp.json["checks"] == {"database": "ok", "broker": "ok", "storage": "ok",
                                   "worker": "error: unavailable"}
    _beat(app, age=45)  # a worker that stopped beating 45 s ago
    assert client.get("/readyz").status_code == 503
    _beat(app)
    assert client.get("/readyz").status_code == 200
