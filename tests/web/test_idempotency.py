"""Idempotency-Key on POST /api/v1/jobs, on a migrated SQLite (and PostgreSQL when configured)."""

import io
from datetime import timedelta

import pytest
import support_images as si
from gallery_support import make_app
from sqlalchemy import func, select

from humanseg.core.db import session_scope
from humanseg.core.models import Batch, IdempotencyKey, utcnow
from humanseg.web.idempotency import fingerprint


@pytest.fixture
def app(tmp_path, monkeypatch, db_url):
    app = make_app(tmp_path, monkeypatch, database_url=db_url)
    yield app
    app.extensions["humanseg"].engine.dispose()


def _form(*images: bytes, name: str = "one") -> dict:
    return {"images": [(io.BytesIO(data), f"p{i}.jpg") for i, data in enumerate(images)],
            "batch_name": name}


def _post(client, key: str | None, form: dict):
    headers = {"Idempotency-Key": key} if key is not None else {}
    return client.post("/api/v1/jobs", data=form, headers=headers,
                       content_type="multipart/form-data")


def _batches(app) -> int:
    with session_scope(app.extensions["humanseg"].sessions) as s:
        return s.scalar(select(func.count()).select_from(Batch))


def test_the_same_key_and_body_answers_the_first_answer(app):
    client = app.test_client()
    first = _post(client, "k-1", _form(si.jpeg(), si.png()))
    assert first.status_code == 202 and "Idempotent-Replayed" not in first.headers
    again = _post(client, "k-1", _form(si.jpeg(), si.png()))
    assert again.status_code == 202 and again.headers["Idempotent-Replayed"] == "true"
    assert again.json == first.json and again.headers["Location"] == first.headers["Location"]
    assert _batches(app) == 1 and len(app.sent) == 2  # nothing was stored or queued twice
    other = _post(client, "k-2", _form(si.jpeg(), si.png()))
    assert other.status_code == 202 and other.json["batch_id"] != first.json["batch_id"]
    plain = _post(client, None, _form(si.jpeg(), si.png()))
    assert plain.status_code == 202 and _batches(app) == 3


def test_the_same_key_with_another_body_is_refused(app):
    client = app.test_client()
    assert _post(client, "k", _form(si.jpeg())).status_code == 202
    for form in (_form(si.jpeg(size=(97, 64))), _form(si.jpeg(), name="two"),
                 _form(si.jpeg(), si.jpeg())):
        resp = _post(client, "k", form)
        assert resp.status_code == 422 and resp.json["error"]["code"] == "idempotency_key_reused"
    assert _batches(app) == 1


def test_a_refused_request_leaves_its_key_free(app):
    client = app.test_client()
    bad = _post(client, "k", {"images": [(io.BytesIO(b"not an image"), "x.jpg")]})
    assert bad.status_code == 415
    good = _post(client, "k", _form(si.jpeg()))
    assert good.status_code == 202 and "Idempotent-Replayed" not in good.headers


@pytest.mark.parametrize("key", ["", " ", "x" * 201, "ключ", "a\tb"])
def test_malformed_keys_are_400(app, key):
    resp = _post(app.test_client(), key, _form(si.jpeg()))
    assert resp.status_code == 400 and resp.json["error"]["code"] == "bad_idempotency_key"
    assert _batches(app) == 0


def test_a_key_in_progress_is_409_and_old_keys_are_forgotten(app):
    form = _form(si.jpeg())
    with app.test_request_context("/api/v1/jobs", method="POST", data=_form(si.jpeg()),
                                  content_type="multipart/form-data"):
        request_hash = fingerprint()
    sessions = app.extensions["humanseg"].sessions
    with session_scope(sessions) as s:  # another request with this key is being answered
        s.add(IdempotencyKey(key="-:busy", request_hash=request_hash))
        s.add(IdempotencyKey(key="-:old", request_hash="0" * 64, status_code=202, response="{}",
                             created_at=utcnow() - timedelta(hours=25)))
    client = app.test_client()
    resp = _post(client, "busy", form)
    assert resp.status_code == 409 and resp.json["error"]["code"] == "idempotency_key_in_progress"
    fresh = _post(client, "old", _form(si.jpeg()))  # a day later the key is new again
    assert fresh.status_code == 202 and "Idempotent-Replayed" not in fresh.headers
