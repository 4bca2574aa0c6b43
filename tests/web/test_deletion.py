"""Deleting jobs and batches: the JSON API (records, objects, origin check) and seq numbers."""

from __future__ import annotations

import io

import support_images as si
from gallery_support import add_batch
from sqlalchemy import select

from humanseg.core.db import session_scope
from humanseg.core.models import Batch, Job
from humanseg.core.results import stored_kinds


def test_delete_job_api_removes_record_and_files(app, client):
    svc = app.extensions["humanseg"]
    batch_id, (job_id, other) = add_batch(app, ["a.jpg", "b.jpg"])
    resp = client.delete(f"/api/v1/jobs/{job_id}")
    assert resp.status_code == 200
    assert resp.json["deleted"]["objects"] == 1 + len(stored_kinds())  # original + what the worker wrote
    assert client.get(f"/api/v1/jobs/{job_id}").status_code == 404
    assert not any(svc.storage.exists(k) for k in
                   (f"originals/{job_id}.jpg", f"results/{job_id}/thumb.jpg"))
    assert svc.storage.exists(f"results/{other}/thumb.jpg")
    assert client.get(f"/api/v1/batches/{batch_id}").json["job_count"] == 1
    again = client.delete(f"/api/v1/jobs/{job_id}")
    assert again.status_code == 404 and again.json["error"]["code"] == "job_not_found"


def test_delete_batch_api_removes_everything(app, client):
    svc = app.extensions["humanseg"]
    batch_id, ids = add_batch(app, ["a.jpg", "b.jpg", "c.jpg"])
    _keep_batch, (keep,) = add_batch(app, ["keep.jpg"])
    resp = client.delete(f"/api/v1/batches/{batch_id}")
    assert resp.status_code == 200 and resp.json["deleted"]["jobs"] == 3
    assert client.get(f"/api/v1/batches/{batch_id}").status_code == 404
    with session_scope(svc.sessions) as session:
        assert session.get(Batch, batch_id) is None
        assert all(session.get(Job, i) is None for i in ids)
    root = svc.storage.root
    left = sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())
    assert all(keep in p for p in left) and len(left) == 1 + len(stored_kinds())
    assert client.delete(f"/api/v1/batches/{batch_id}").status_code == 404


def test_delete_api_refuses_cross_origin_browsers(app, client):
    batch_id, (job_id,) = add_batch(app, ["a.jpg"])
    evil = {"Origin": "https://evil.example"}
    resp = client.delete(f"/api/v1/jobs/{job_id}", headers=evil)
    assert resp.status_code == 403 and resp.json["error"]["code"] == "cross_origin"
    assert client.delete(f"/api/v1/batches/{batch_id}", headers=evil).status_code == 403
    assert client.get(f"/api/v1/jobs/{job_id}").status_code == 200
    same = {"Origin": "http://localhost"}
    assert client.delete(f"/api/v1/jobs/{job_id}", headers=same).status_code == 200


def test_append_after_delete_keeps_seq_numbers_unique(app, client):
    """Paging (API cursor, archive) walks seq: a deletion must not let an append reuse one."""
    batch_id, ids = add_batch(app, ["a.jpg", "b.jpg", "c.jpg"])
    assert client.delete(f"/api/v1/jobs/{ids[0]}").status_code == 200
    resp = client.post("/api/v1/jobs", data={"images": [(io.BytesIO(si.solid_jpeg()), "d.jpg")],
                                             "batch_id": batch_id},
                       content_type="multipart/form-data")
    assert resp.status_code == 202, resp.json
    with session_scope(app.extensions["humanseg"].sessions) as session:
        seqs = sorted(session.scalars(select(Job.seq).where(Job.batch_id == batch_id)))
    assert seqs == [1, 2, 3]
    page = client.get(f"/api/v1/batches/{batch_id}?limit=2").json
    rest = client.get(f"/api/v1/batches/{batch_id}?limit=2&cursor={page['next_cursor']}").json
    assert [j["filename"] for j in page["jobs"] + rest["jobs"]] == ["b.jpg", "c.jpg", "d.jpg"]
    assert page["job_count"] == 3
