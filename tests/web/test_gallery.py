"""HTML pages: rendering, escaping, CSRF, cursor paging, composite backgrounds."""

from __future__ import annotations

import io
from datetime import datetime, timedelta, timezone

import support_images as si
from gallery_support import add_batch, csrf_from
from PIL import Image

from humanseg.core.db import session_scope
from humanseg.core.models import Job, JobStatus

XSS = "<script>alert(1)</script>.jpg"


def test_upload_page_has_form_token_and_no_external_assets(client):
    resp = client.get("/")
    html = resp.get_data(as_text=True)
    assert resp.status_code == 200
    assert 'enctype="multipart/form-data"' in html and "webkitdirectory" in html
    csrf_from(html)
    # Nothing is loaded from another origin (no CDN, no web fonts).
    assert "http://" not in html and "https://" not in html and "//cdn" not in html


def test_static_assets_and_favicon(client):
    for path in ("/favicon.ico", "/assets/app.css", "/assets/upload.js", "/assets/batch.js",
                 "/assets/favicon.svg"):
        with client.get(path) as resp:
            assert resp.status_code == 200, path
            if path == "/favicon.ico":
                assert resp.mimetype == "image/x-icon"


def test_nojs_upload_queues_and_redirects_to_batch(app, client):
    token = csrf_from(client.get("/").get_data(as_text=True))
    data = {"csrf_token": token,
            "images": [(io.BytesIO(si.solid_jpeg()), "a.jpg"), (io.BytesIO(si.solid_jpeg()), "b.jpg")]}
    resp = client.post("/upload", data=data, content_type="multipart/form-data")
    assert resp.status_code == 303
    assert resp.headers["Location"].startswith("/batches/")
    assert len(app.sent) == 2
    page = client.get(resp.headers["Location"]).get_data(as_text=True)
    assert "a.jpg" in page and "b.jpg" in page and 'id="count-queued">2<' in page


def test_nojs_upload_rejected_file_shows_reason_and_queues_nothing(app, client):
    token = csrf_from(client.get("/").get_data(as_text=True))
    data = {"csrf_token": token,
            "images": [(io.BytesIO(si.solid_jpeg()), "good.jpg"),
                       (io.BytesIO(b"just some text"), "x.jpg")]}
    resp = client.post("/upload", data=data, content_type="multipart/form-data")
    html = resp.get_data(as_text=True)
    assert resp.status_code == 415  # one unsupported file: the API's unsupported_format status
    assert "x.jpg" in html and 'id="upload-errors"' in html
    assert app.sent == []


def test_form_post_without_csrf_token_is_refused(app, client):
    data = {"images": [(io.BytesIO(si.solid_jpeg()), "a.jpg")]}
    resp = client.post("/upload", data=data, content_type="multipart/form-data")
    assert resp.status_code == 400
    assert app.sent == []


def test_form_post_with_wrong_csrf_token_is_refused(app, client):
    client.get("/")  # session gets a token
    data = {"csrf_token": "forged", "images": [(io.BytesIO(si.solid_jpeg()), "a.jpg")]}
    resp = client.post("/upload", data=data, content_type="multipart/form-data")
    assert resp.status_code == 400


def test_delete_forms_require_csrf(app, client):
    batch_id, (job_id,) = add_batch(app, ["a.jpg"])
    assert client.post(f"/jobs/{job_id}/delete").status_code == 400
    assert client.post(f"/batches/{batch_id}/delete", data={"csrf_token": "x"}).status_code == 400
    assert client.get(f"/jobs/{job_id}").status_code == 200  # still there


def test_xss_filename_is_escaped_everywhere(app, client):
    batch_id, (job_id,) = add_batch(app, [XSS])
    _, (failed_id,) = add_batch(app, ["f.jpg"], status=JobStatus.failed,
                                error="<img src=x onerror=alert(2)>")
    pages = [f"/batches/{batch_id}", "/gallery", f"/jobs/{job_id}", f"/jobs/{failed_id}"]
    for path in pages:
        html = client.get(path).get_data(as_text=True)
        assert "<script>alert(1)</script>" not in html, path
        assert "<img src=x" not in html, path
    html = client.get(f"/jobs/{job_id}").get_data(as_text=True)
    assert "&lt;script&gt;alert(1)&lt;/script&gt;.jpg" in html
    assert "&lt;img src=x onerror=alert(2)&gt;" in client.get(f"/jobs/{failed_id}").get_data(as_text=True)


def test_batch_page_counts_and_failed_reason(app, client):
    batch_id, _ = add_batch(app, ["broken.jpg"], status=JobStatus.failed, error="decoder exploded")
    html = client.get(f"/batches/{batch_id}").get_data(as_text=True)
    assert 'id="count-failed">1<' in html and "decoder exploded" in html
    assert 'data-done="true"' in html


def test_unknown_pages_are_friendly_404s(client):
    for path in ("/batches/nope", "/jobs/nope"):
        resp = client.get(path)
        assert resp.status_code == 404 and 'id="error-page"' in resp.get_data(as_text=True)


def test_gallery_empty_state(client):
    html = client.get("/gallery").get_data(as_text=True)
    assert 'id="gallery-empty"' in html and "Nothing here yet" in html


def test_gallery_keyset_paging_newest_first_thumbs_only(app, client):
    base = datetime(2024, 1, 1, tzinfo=timezone.utc)
    ids = []
    for i in range(60):  # 48 per page → two pages
        _, (job_id,) = add_batch(app, [f"img{i:02d}.jpg"], finished_at=base + timedelta(minutes=i))
        ids.append(job_id)
    add_batch(app, ["pending.jpg"], status=JobStatus.queued)
    first = client.get("/gallery").get_data(as_text=True)
    assert first.index("img59.jpg") < first.index("img12.jpg")
    assert "img11.jpg" not in first and "pending.jpg" not in first
    assert "/thumb" in first and "/mask" not in first and "/original" not in first
    import re
    older = re.search(r'id="older" href="([^"]+)"', first).group(1).replace("&amp;", "&")
    second = client.get(older).get_data(as_text=True)
    assert "img11.jpg" in second and "img00.jpg" in second and "img12.jpg" not in second
    assert 'id="older"' not in second


def test_gallery_bad_cursor_falls_back_to_newest(client):
    resp = client.get("/gallery?cursor=%%%not-a-cursor")
    assert resp.status_code == 200 and "not valid any more" in resp.get_data(as_text=True)


def test_gallery_query_uses_the_index(app):
    """The keyset query is answered from (status, finished_at, id), not a full scan."""
    from sqlalchemy import text

    svc = app.extensions["humanseg"]
    with svc.engine.connect() as conn:
        plan = conn.execute(text(
            "EXPLAIN QUERY PLAN SELECT id FROM jobs WHERE status='succeeded' AND finished_at IS NOT NULL "
            "AND (finished_at < '2030-01-01' OR (finished_at = '2030-01-01' AND id < 'f')) "
            "ORDER BY finished_at DESC, id DESC LIMIT 49")).all()
    detail = " ".join(str(row[-1]) for row in plan)
    assert "ix_jobs_status_finished_id" in detail and "TEMP B-TREE" not in detail


def test_job_page_shows_four_views_and_downloads(app, client):
    _, (job_id,) = add_batch(app, ["person.jpg"])
    html = client.get(f"/jobs/{job_id}").get_data(as_text=True)
    for view in ("Original", "Mask", "Cut-out", "Overlay"):
        assert f"<figcaption>{view}</figcaption>" in html
    assert 'class="frame checker"' in html
    assert f"/api/v1/jobs/{job_id}/mask" in html and 'download="person_mask.png"' in html


def test_composite_background(app, client):
    _, (job_id,) = add_batch(app, ["person.jpg"])
    resp = client.get(f"/jobs/{job_id}/composite.png?bg=%23ff0000&download=1")
    assert resp.status_code == 200 and resp.mimetype == "image/png"
    assert "attachment" in resp.headers["Content-Disposition"]
    img = Image.open(io.BytesIO(resp.data))
    assert img.mode == "RGB" and img.size == (64, 48)
    r, g, b = img.getpixel((0, 0))
    # the original's (200, 120, 90) at alpha 128 over red (JPEG: a few levels off)
    assert abs(r - 227) <= 4 and abs(g - 60) <= 4 and abs(b - 45) <= 4
    bad = client.get(f"/jobs/{job_id}/composite.png?bg=javascript:alert(1)")
    assert bad.status_code == 200  # falls back to white
    assert Image.open(io.BytesIO(bad.data)).getpixel((0, 0))[0] > 130


def test_composite_of_unfinished_job_is_404(app, client):
    _, (job_id,) = add_batch(app, ["q.jpg"], status=JobStatus.queued)
    assert client.get(f"/jobs/{job_id}/composite.png").status_code == 404
    html = client.get(f"/jobs/{job_id}").get_data(as_text=True)
    assert 'id="job-pending"' in html


def test_delete_job_via_form(app, client):
    batch_id, (job_id, other) = add_batch(app, ["a.jpg", "b.jpg"])
    token = csrf_from(client.get(f"/jobs/{job_id}").get_data(as_text=True))
    resp = client.post(f"/jobs/{job_id}/delete", data={"csrf_token": token})
    assert resp.status_code == 303 and resp.headers["Location"] == f"/batches/{batch_id}"
    svc = app.extensions["humanseg"]
    assert not svc.storage.exists(f"results/{job_id}/mask.png")
    assert not svc.storage.exists(f"originals/{job_id}.jpg")
    assert svc.storage.exists(f"results/{other}/mask.png")
    with session_scope(svc.sessions) as session:
        assert session.get(Job, job_id) is None
    assert "were deleted" in client.get(resp.headers["Location"]).get_data(as_text=True)


def test_pages_send_a_strict_content_security_policy(app, client):
    batch_id, (job_id,) = add_batch(app, ["a.jpg"])
    for path in ("/", "/gallery", f"/batches/{batch_id}", f"/jobs/{job_id}", "/jobs/nope"):
        resp = client.get(path)
        csp = resp.headers["Content-Security-Policy"]
        assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp, path
        html = resp.get_data(as_text=True)
        assert " onsubmit=" not in html and " onclick=" not in html, path  # no inline handlers
        assert "<script>" not in html, path


def test_delete_batch_form_redirects_home(app, client):
    batch_id, _ = add_batch(app, ["a.jpg"])
    token = csrf_from(client.get(f"/batches/{batch_id}").get_data(as_text=True))
    resp = client.post(f"/batches/{batch_id}/delete", data={"csrf_token": token})
    assert resp.status_code == 303 and resp.headers["Location"] == "/"
    assert client.get(f"/batches/{batch_id}").status_code == 404
