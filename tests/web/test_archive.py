"""Batch archive (streamed zip), plus the names it uses and one run against S3."""

from __future__ import annotations

import http.client
import io
import os
import threading
import tracemalloc
import zipfile

import pytest
from gallery_support import add_batch, make_app
from werkzeug.serving import make_server

from humanseg.core.db import session_scope
from humanseg.core.models import Job, JobStatus
from humanseg.core.results import on_request_kinds, stored_kinds
from humanseg.web.filenames import safe_stem, unique_name


def _zip(resp) -> zipfile.ZipFile:
    return zipfile.ZipFile(io.BytesIO(resp.get_data()))


def test_archive_holds_masks_and_cutouts_with_safe_unique_names(app, client):
    names = ["a.jpg", "a.jpg", "../../etc/A.png", "<script>x</script>.jpg", "ünïcødé photo.webp"]
    batch_id, _ = add_batch(app, names, name="Holiday 2024")
    add_batch(app, ["bad.jpg"], status=JobStatus.failed, error="boom")
    resp = client.get(f"/api/v1/batches/{batch_id}/archive")
    assert resp.status_code == 200 and resp.mimetype == "application/zip"
    assert 'filename="Holiday 2024.zip"' in resp.headers["Content-Disposition"]
    zf = _zip(resp)
    assert zf.testzip() is None
    listed = zf.namelist()
    masks = sorted(n for n in listed if n.startswith("masks/"))
    assert masks == sorted(["masks/a.png", "masks/a-2.png", "masks/A-3.png",
                            "masks/script.png", "masks/ünïcødé photo.png"])
    assert len([n for n in listed if n.startswith("cutouts/")]) == 5
    assert all(".." not in n and not n.startswith("/") for n in listed)
    assert zf.read("masks/a.png")[:8] == b"\x89PNG\r\n\x1a\n"


def test_archive_lists_unfinished_jobs(app, client):
    svc = app.extensions["humanseg"]
    batch_id, ids = add_batch(app, ["ok.jpg", "bad.jpg"])
    with session_scope(svc.sessions) as session:
        job = session.get(Job, ids[1])
        job.status, job.error = JobStatus.failed, "could not decode"
    zf = _zip(client.get(f"/api/v1/batches/{batch_id}/archive"))
    assert "masks/ok.png" in zf.namelist() and "masks/bad.png" not in zf.namelist()
    assert "bad.jpg\tfailed\tcould not decode" in zf.read("not_included.txt").decode()


def test_archive_errors(app, client):
    assert client.get("/api/v1/batches/nope/archive").status_code == 404
    batch_id, _ = add_batch(app, ["q.jpg"], status=JobStatus.queued)
    resp = client.get(f"/api/v1/batches/{batch_id}/archive")
    assert resp.status_code == 409 and resp.json["error"]["code"] == "nothing_finished"


def test_archive_streams_with_flat_memory_for_500_images(app, client):
    """500 jobs x 192 KiB of results: peak Python memory stays a small constant."""
    svc = app.extensions["humanseg"]
    batch_id, ids = add_batch(app, [f"p{i}.jpg" for i in range(500)])
    blob_mask, blob_cut = os.urandom(64 * 1024), os.urandom(128 * 1024)
    for job_id in ids:
        svc.storage.put(f"results/{job_id}/mask.png", blob_mask, "image/png")
        svc.storage.put(f"results/{job_id}/cutout.png", blob_cut, "image/png")
    resp = client.get(f"/api/v1/batches/{batch_id}/archive", buffered=False)
    assert resp.is_streamed and "Content-Length" not in resp.headers
    tracemalloc.start()
    try:
        total, chunks = 0, 0
        for chunk in resp.response:
            total += len(chunk)
            chunks += 1
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
        resp.close()
    assert total > 500 * 192 * 1024  # everything went through …
    assert chunks > 1000              # … in many pieces, as it was written
    assert peak < 8 * 1024 * 1024, f"peak {peak} bytes"  # never the whole 96 MiB archive


def test_archive_uses_chunked_transfer_on_a_real_server(app):
    batch_id, _ = add_batch(app, ["a.jpg", "b.jpg", "c.jpg"])
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        conn = http.client.HTTPConnection("127.0.0.1", server.server_port, timeout=10)
        conn.request("GET", f"/api/v1/batches/{batch_id}/archive")
        resp = conn.getresponse()
        body = resp.read()
        conn.close()
    finally:
        server.shutdown()
        server.server_close()
    assert resp.status == 200
    assert resp.getheader("Transfer-Encoding") == "chunked"
    assert resp.getheader("Content-Length") is None
    names = zipfile.ZipFile(io.BytesIO(body)).namelist()
    assert sorted(n for n in names if n.startswith("masks/")) == ["masks/a.png", "masks/b.png",
                                                                  "masks/c.png"]


@pytest.mark.parametrize("raw, expected", [
    ("photo.JPG", "photo"), ("../../x.png", "x"), ("C:\\Users\\me\\pic.jpeg", "pic"),
    ("...", "image"), ("", "image"), ("a\x00b\nc.webp", "abc"), ('q"u<o>te.jpg', "q_u_o_te"),
    ("x" * 300 + ".jpg", "x" * 100),
])
def test_safe_stem(raw, expected):
    assert safe_stem(raw) == expected


def test_unique_name_disambiguates_case_insensitively():
    taken: set[str] = set()
    assert [unique_name(n, taken) for n in ("a", "A", "a", "a-2")] == ["a", "A-2", "a-3", "a-2-2"]


def test_archive_and_delete_on_s3(tmp_path, monkeypatch, moto_endpoint):
    """The same archive and deletion against moto's S3 server (streaming bodies, prefixes)."""
    import uuid

    from humanseg.core.storage import S3Storage
    from tests.conftest import S3_ENV

    for key, value in S3_ENV.items():  # moto's credentials, scoped to this test
        monkeypatch.setenv(key, value)
    storage = S3Storage(f"g-{uuid.uuid4().hex[:8]}", endpoint_url=moto_endpoint)
    storage.ensure_bucket()
    app = make_app(tmp_path, monkeypatch, storage_obj=storage)
    client = app.test_client()
    batch_id, (a, _b) = add_batch(app, ["a.jpg", "b.jpg"])
    zf = _zip(client.get(f"/api/v1/batches/{batch_id}/archive"))
    assert sorted(n for n in zf.namelist() if n.startswith("masks/")) == ["masks/a.png", "masks/b.png"]
    page = client.get(f"/jobs/{a}").get_data(as_text=True)
    assert moto_endpoint in page  # result images come straight from presigned S3 URLs
    csp = client.get(f"/jobs/{a}").headers["Content-Security-Policy"]
    assert moto_endpoint in csp  # … and the page's CSP allows exactly that origin
    # per job: the original, what the worker wrote, and the cut-out the archive made (kept)
    made = 1 + len(stored_kinds()) + len([k for k in on_request_kinds() if k.archive_folder])
    assert client.delete(f"/api/v1/batches/{batch_id}").json["deleted"]["objects"] == 2 * made
    assert not storage.exists(f"results/{a}/mask.png")


def test_archive_takes_the_cutouts_result_options(app, client):
    from PIL import Image

    batch_id, _ = add_batch(app, ["alice.jpg", "bob.jpg"])
    resp = client.get(f"/api/v1/batches/{batch_id}/archive?bg=white&format=jpeg&size=32")
    assert resp.status_code == 200
    zf = _zip(resp)
    assert sorted(zf.namelist()) == ["cutouts/alice.jpg", "cutouts/bob.jpg", "masks/alice.png", "masks/bob.png"]
    with Image.open(io.BytesIO(zf.read("cutouts/alice.jpg"))) as img:
        assert img.format == "JPEG" and max(img.size) == 32 and img.mode == "RGB"
    with Image.open(io.BytesIO(zf.read("masks/alice.png"))) as mask:
        assert mask.size == (64, 48)  # masks stay as they are
    refused = client.get(f"/api/v1/batches/{batch_id}/archive?format=jpeg")  # transparent JPEG: impossible
    assert refused.status_code == 400 and "jpeg has no transparency" in refused.json["error"]["message"]
    assert client.get(f"/api/v1/batches/{batch_id}/archive?colour=red").json["error"]["code"] == "bad_parameter"
