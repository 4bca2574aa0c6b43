"""web/lookup.py: one id check and one 404 on every id route; one definition of batch counts."""

from __future__ import annotations

import re
from urllib.parse import quote

import pytest
from factories import batch_row
from gallery_support import add_batch, csrf_from, make_app
from sqlalchemy import update

from humanseg.core.counts import status_counts
from humanseg.core.db import session_scope
from humanseg.core.models import Job, JobStatus, new_id

BAD_IDS = [
    "nope",
    "a\x00b",  # PostgreSQL refuses NUL bytes in text with an error, not a miss
    "0" * 31 + "\x00",
    "A" * 32,  # ids are lower-case hex
    "a" * 33,
    "x" * 500,
    "ünï",
    new_id(),  # well-formed, but names nothing
]

# The id routes as they are today; the walk below must find every one of them.
ID_ROUTES = {
    ("GET", "/api/v1/jobs/<job_id>"), ("GET", "/api/v1/jobs/<job_id>/<kind>"),
    ("DELETE", "/api/v1/jobs/<job_id>"), ("GET", "/api/v1/batches/<batch_id>"),
    ("DELETE", "/api/v1/batches/<batch_id>"), ("GET", "/api/v1/batches/<batch_id>/archive"),
    ("GET", "/jobs/<job_id>"), ("GET", "/jobs/<job_id>/composite.png"),
    ("POST", "/jobs/<job_id>/delete"), ("POST", "/jobs/<job_id>/background"),
    ("GET", "/batches/<batch_id>"),
    ("POST", "/batches/<batch_id>/delete"),
    ("POST", "/jobs/<job_id>/cancel"), ("POST", "/jobs/<job_id>/retry"),
    ("POST", "/batches/<batch_id>/cancel"), ("POST", "/batches/<batch_id>/retry"),
    ("POST", "/api/v1/jobs/<job_id>/cancel"), ("POST", "/api/v1/jobs/<job_id>/retry"),
    ("POST", "/api/v1/batches/<batch_id>/cancel"), ("POST", "/api/v1/batches/<batch_id>/retry"),
    ("GET", "/api/v1/batches/<batch_id>/webhooks"),
}


@pytest.fixture
def sql_app(tmp_path, monkeypatch, db_url):
    """The app on a migrated database: SQLite, and PostgreSQL when one is configured."""
    app = make_app(tmp_path, monkeypatch, database_url=db_url)
    yield app
    app.extensions["humanseg"].engine.dispose()


def _id_routes(app) -> list[tuple[str, str]]:
    found = []
    for rule in app.url_map.iter_rules():
        if rule.arguments & {"job_id", "batch_id"}:
            found += [(m, rule.rule) for m in sorted(rule.methods - {"HEAD", "OPTIONS"})]
    return found


def test_bad_ids_are_404_on_every_id_route(sql_app):
    client = sql_app.test_client()
    add_batch(sql_app, ["a.jpg"])  # something real in the tables
    token = csrf_from(client.get("/").get_data(as_text=True))
    routes = _id_routes(sql_app)
    assert set(routes) == ID_ROUTES
    for method, rule in routes:
        for bad in BAD_IDS:
            path = re.sub(r"<(job_id|batch_id)>", quote(bad, safe=""), rule)
            path = path.replace("<kind>", "mask")
            data = {"csrf_token": token} if method == "POST" else None
            resp = client.open(path, method=method, data=data)
            where = f"{method} {rule} {bad[:40]!r}"
            assert resp.status_code == 404, where
            if rule.startswith("/api/"):
                assert resp.json["error"]["code"] in ("job_not_found", "batch_not_found"), where
            else:
                assert 'id="error-page"' in resp.get_data(as_text=True), where


def test_html_404_pages_say_what_is_missing(client):
    job_page = client.get(f"/jobs/{new_id()}").get_data(as_text=True)
    batch_page = client.get("/batches/" + quote("a\x00b")).get_data(as_text=True)
    assert "Image not found" in job_page and "Batch not found" in batch_page


def _set_statuses(app, ids, statuses):
    with session_scope(app.extensions["humanseg"].sessions) as session:
        for job_id, status in zip(ids, statuses, strict=False):
            session.execute(update(Job).where(Job.id == job_id).values(status=status))


def test_status_counts_total_and_finished(app, client):
    batch_id, ids = add_batch(app, ["a.jpg", "b.jpg", "c.jpg", "d.jpg", "e.jpg"])
    _set_statuses(app, ids, [JobStatus.queued, JobStatus.running, JobStatus.succeeded,
                             JobStatus.failed, JobStatus.failed])
    with session_scope(app.extensions["humanseg"].sessions) as session:
        counts = status_counts(session, batch_id)
    assert dict(counts.by_status) == {"queued": 1, "running": 1, "succeeded": 1, "failed": 2,
                                  "cancelled": 0}
    assert (counts.total, counts.finished, counts.done, counts.progress) == (5, 3, False, 0.6)
    # The API and the page tell the same story.
    body = client.get(f"/api/v1/batches/{batch_id}").json
    assert body["job_count"] == 5 and body["counts"] == dict(counts.by_status)
    assert body["progress"] == 0.6 and body["done"] is False
    html = client.get(f"/batches/{batch_id}").get_data(as_text=True)
    assert 'id="count-total">5<' in html and "3 of 5 finished" in html
    assert 'data-done="false"' in html and 'aria-valuenow="60"' in html
    _set_statuses(app, ids[:2], [JobStatus.succeeded, JobStatus.failed])
    body = client.get(f"/api/v1/batches/{batch_id}").json
    assert body["done"] is True and body["progress"] == 1.0
    assert 'data-done="true"' in client.get(f"/batches/{batch_id}").get_data(as_text=True)


def test_empty_batch_counts(app, client):
    with session_scope(app.extensions["humanseg"].sessions) as session:
        batch_id = batch_row(session).id
    with session_scope(app.extensions["humanseg"].sessions) as session:
        counts = status_counts(session, batch_id)
    assert (counts.total, counts.finished, counts.done, counts.progress) == (0, 0, True, 1.0)
    body = client.get(f"/api/v1/batches/{batch_id}").json
    assert body["job_count"] == 0 and body["done"] is True and body["progress"] == 1.0
    html = client.get(f"/batches/{batch_id}").get_data(as_text=True)
    assert 'data-done="true"' in html and 'id="batch-empty"' in html
