"""Pages of issue 11: light job page (previews, options form), batches list, upload choices, error pages."""

from __future__ import annotations

import io
import re
from datetime import datetime, timedelta, timezone

import pytest
import support_images as si
from gallery_support import add_batch, add_photo_job, csrf_from
from PIL import Image

from humanseg.core.db import session_scope
from humanseg.core.models import Batch, Job, JobStatus


def _img_sources(html: str) -> list[str]:
    return [src.replace("&amp;", "&") for src in re.findall(r'<img[^>]* src="([^"]+)"', html)]


def test_job_page_shows_display_size_previews_only(app, client):
    job_id = add_photo_job(app, size=(1600, 1200), box=(500, 200, 1100, 1150))
    html = client.get(f"/jobs/{job_id}").get_data(as_text=True)
    views = [s for s in _img_sources(html) if f"/api/v1/jobs/{job_id}/" in s]
    assert len(views) == 6  # original, mask, alpha, cut-out, overlay, and the options preview
    for src in views:
        assert "size=720" in src, src  # never the full file
        with client.get(src) as resp:
            assert resp.status_code == 200, src
            img = Image.open(io.BytesIO(resp.data))
            assert max(img.size) == 720, src
    # The full-size files are downloads, not images on the page.
    assert f'href="/api/v1/jobs/{job_id}/cutout" download="person_cutout.png"' in html
    # Transparent results sit on a checkerboard.
    assert '<div class="frame checker"><img id="view-cutout"' in html
    assert 'class="frame checker" id="opt-frame"' in html


def test_job_page_options_without_javascript(app, client):
    job_id = add_photo_job(app)
    html = client.get(f"/jobs/{job_id}?bgmode=colour&bgcolor=%231e40af&format=jpeg&size=60&crop=1"
                      "&margin=10%25").get_data(as_text=True)
    download = re.search(r'id="opt-download" href="([^"]+)"', html).group(1).replace("&amp;", "&")
    assert download.startswith(f"/api/v1/jobs/{job_id}/cutout?")
    for part in ("bg=%231e40af", "format=jpeg", "size=60", "crop=true", "margin=10%25"):
        assert part in download
    with client.get(download) as resp:
        img = Image.open(io.BytesIO(resp.data))
        assert resp.mimetype == "image/jpeg" and max(img.size) == 60
    assert 'class="frame" id="opt-frame"' in html  # on a colour: no checkerboard
    # A swatch button (name=bg) wins over the radio, as the earlier ?bg= links did.
    html = client.get(f"/jobs/{job_id}?bgmode=transparent&bg=%23ff0000").get_data(as_text=True)
    assert "bg=%23ff0000" in re.search(r'id="opt-download" href="([^"]+)"', html).group(1)


def test_job_page_says_what_the_api_would_refuse(app, client):
    job_id = add_photo_job(app)
    resp = client.get(f"/jobs/{job_id}?bgmode=transparent&format=jpeg")
    html = resp.get_data(as_text=True)
    assert resp.status_code == 400
    assert re.search(r'id="opt-error" role="alert" >format: jpeg has no transparency', html)
    assert 'id="opt-preview"' not in html


def test_background_form_without_javascript(app, client):
    job_id = add_photo_job(app)
    token = csrf_from(client.get(f"/jobs/{job_id}").get_data(as_text=True))
    backdrop = si.encode(si.solid((50, 50), (0, 160, 0)), "PNG")
    resp = client.post(f"/jobs/{job_id}/background", content_type="multipart/form-data",
                       data={"csrf_token": token, "image": (io.BytesIO(backdrop), "green.png")})
    assert resp.status_code == 303
    page = client.get(resp.headers["Location"]).get_data(as_text=True)
    bg_id = re.search(r"bgimage=([0-9a-f]{32})", resp.headers["Location"]).group(1)
    assert re.search(f'id="opt-download" href="[^"]*bg=image(:|%3A){bg_id}', page)
    bad = client.post(f"/jobs/{job_id}/background", content_type="multipart/form-data",
                      data={"csrf_token": token, "image": (io.BytesIO(si.text()), "notes.png")})
    assert bad.status_code == 303
    assert "That background was not accepted" in client.get(bad.headers["Location"]).get_data(as_text=True)
    assert client.post(f"/jobs/{job_id}/background", data={}).status_code == 400  # no token


def test_upload_page_has_batch_name_and_outputs(client):
    html = client.get("/").get_data(as_text=True)
    assert 'name="batch_name"' in html
    assert 'name="outputs" value="cutout"' in html and 'name="outputs" value="overlay"' in html


def test_nojs_upload_keeps_batch_name_and_outputs(app, client):
    token = csrf_from(client.get("/").get_data(as_text=True))
    data = {"csrf_token": token, "batch_name": "Team day", "outputs": ["cutout"],
            "images": [(io.BytesIO(si.solid_jpeg()), "a.jpg"), (io.BytesIO(si.solid_jpeg()), "b.jpg")]}
    resp = client.post("/upload", data=data, content_type="multipart/form-data")
    assert resp.status_code == 303 and "/batches/" in resp.headers["Location"]
    batch_id = resp.headers["Location"].rsplit("/", 1)[1]
    with session_scope(app.extensions["humanseg"].sessions) as session:
        assert session.get(Batch, batch_id).name == "Team day"
        jobs = session.query(Job).filter_by(batch_id=batch_id).all()
        assert [j.outputs for j in jobs] == ["cutout", "cutout"]


def test_nojs_upload_of_one_photo_opens_its_own_page(app, client):
    token = csrf_from(client.get("/").get_data(as_text=True))
    resp = client.post("/upload", data={"csrf_token": token, "images": [(io.BytesIO(si.solid_jpeg()), "one.jpg")]},
                       content_type="multipart/form-data")
    assert resp.status_code == 303 and "/jobs/" in resp.headers["Location"]


def test_batch_page_has_a_place_for_rejected_files(app, client):
    batch_id, _ = add_batch(app, ["a.jpg"])
    html = client.get(f"/batches/{batch_id}").get_data(as_text=True)
    assert 'id="rejected" hidden' in html and f'data-batch-id="{batch_id}"' in html


def test_batches_list_newest_first_with_counts(app, client):
    now = datetime.now(timezone.utc)
    old, _ = add_batch(app, ["a.jpg", "b.jpg"], name="Older")
    new, ids = add_batch(app, ["c.jpg", "d.jpg", "e.jpg"], name="Newer")
    with session_scope(app.extensions["humanseg"].sessions) as session:
        session.get(Batch, old).created_at = now - timedelta(hours=1)
        session.get(Batch, new).created_at = now
        session.get(Job, ids[0]).status = JobStatus.failed
    html = client.get("/batches").get_data(as_text=True)
    assert html.index("Newer") < html.index("Older")
    newer = html[html.index(f'id="batch-{new}"'):html.index(f'id="batch-{old}"')]
    assert "3 images" in newer and "2 done" in newer and "1 failed" in newer
    assert '<a href="/batches" class="active">Batches</a>' in html  # in the navigation


def _batch_item(html: str, batch_id: str) -> str:
    """One batch's <li> of the batches list."""
    link = html.index(f'id="batch-{batch_id}"')
    return html[html.rindex("<li", 0, link):html.index("</li>", link)]


def test_batches_list_tells_batches_apart(app, client):
    now = datetime.now(timezone.utc)
    photos, ids = add_batch(app, [f"photo{i}.jpg" for i in range(6)], name="Photos")
    single, _ = add_batch(app, ["solo.png"])
    with session_scope(app.extensions["humanseg"].sessions) as session:
        session.get(Batch, photos).created_at = now - timedelta(minutes=3, seconds=5)
        session.get(Batch, single).created_at = now - timedelta(days=2)
        session.get(Job, ids[1]).status = JobStatus.failed
    html = client.get("/batches").get_data(as_text=True)

    item = _batch_item(html, photos)
    # the first four finished cut-outs, in upload order (the failed one has none)
    assert _img_sources(item) == [f"/api/v1/jobs/{ids[i]}/thumb" for i in (0, 2, 3, 4)]
    assert "photo0.jpg, photo1.jpg, photo2.jpg and 3 more" in item
    assert "3 min ago" in item and "6 images" in item and "5 done" in item and "1 failed" in item
    assert 'class="progress"' not in item  # finished: a full bar would look like every other one
    solo = _batch_item(html, single)
    assert _img_sources(solo) == [f"/api/v1/jobs/{_only_job(app, single)}/thumb"]
    assert "solo.png<" in solo and "more" not in solo and "2 days ago" in solo


def _only_job(app, batch_id: str) -> str:
    with session_scope(app.extensions["humanseg"].sessions) as session:
        return session.query(Job.id).filter(Job.batch_id == batch_id).scalar()


def test_batches_list_costs_the_same_queries_for_many_batches(app, client):
    from sqlalchemy import event

    engine = app.extensions["humanseg"].engine
    statements: list[str] = []

    def count(conn, cursor, statement, *args):
        statements.append(statement)

    def queries() -> int:
        statements.clear()
        event.listen(engine, "before_cursor_execute", count)
        try:
            assert client.get("/batches").status_code == 200
        finally:
            event.remove(engine, "before_cursor_execute", count)
        return len(statements)

    add_batch(app, ["a.jpg", "b.jpg"])
    few = queries()
    for i in range(8):
        add_batch(app, [f"{i}-{j}.jpg" for j in range(5)])
    assert queries() == few  # one query for every batch's thumbnails and names, not one per batch
    thumbs = [src for src in _img_sources(client.get("/batches").get_data(as_text=True)) if src.endswith("/thumb")]
    assert len(thumbs) == 2 + 8 * 4


def test_batches_list_pages_by_cursor(app, client, monkeypatch):
    from humanseg.web import pages

    monkeypatch.setattr(pages, "BATCHES_PAGE", 2)
    now = datetime.now(timezone.utc)
    made = []
    for i in range(5):
        batch_id, _ = add_batch(app, [f"{i}.jpg"], name=f"B{i}")
        made.append(batch_id)
        with session_scope(app.extensions["humanseg"].sessions) as session:
            session.get(Batch, batch_id).created_at = now - timedelta(minutes=10 - i)
    seen, url = [], "/batches"
    while url:
        html = client.get(url).get_data(as_text=True)
        seen += re.findall(r'id="batch-([0-9a-f]{32})"', html)
        more = re.search(r'id="older" href="([^"]+)"', html)
        url = more.group(1).replace("&amp;", "&") if more else None
    assert seen == made[::-1]
    assert "not valid any more" in client.get("/batches?cursor=garbage").get_data(as_text=True)
    assert 'id="batches-empty"' not in client.get("/batches").get_data(as_text=True)


def test_empty_batches_list(client):
    assert 'id="batches-empty"' in client.get("/batches").get_data(as_text=True)


@pytest.mark.parametrize("method,path,status,title", [
    ("GET", "/no/such/page", 404, "Page not found"),
    ("GET", "/batches/x/y", 404, "Page not found"),
    ("DELETE", "/gallery", 405, "Not allowed here"),
    ("PUT", "/upload", 405, "Not allowed here"),
])
def test_html_errors_are_styled_pages(client, method, path, status, title):
    resp = client.open(path, method=method)
    html = resp.get_data(as_text=True)
    assert resp.status_code == status and resp.mimetype == "text/html"
    assert 'id="error-page"' in html and f"<h2>{title}</h2>" in html
    assert 'name="viewport" content="width=device-width' in html  # sized for phones
    assert "/assets/app.css" in html
    if status == 405:
        assert "GET" in resp.headers["Allow"] or "POST" in resp.headers["Allow"]


def test_api_errors_stay_json(client):
    resp = client.get("/api/v1/nothing-here")
    assert resp.status_code == 404 and resp.json["error"]["code"] == "not_found"


def test_a_crash_is_a_styled_500_page(app, client):
    app.config["PROPAGATE_EXCEPTIONS"] = False  # as in production: the handler answers

    @app.get("/boom")
    def boom():
        raise RuntimeError("secret detail /etc/passwd")

    resp = client.get("/boom")
    html = resp.get_data(as_text=True)
    assert resp.status_code == 500 and "<h2>Something went wrong</h2>" in html
    assert "secret detail" not in html and 'id="error-page"' in html


@pytest.mark.parametrize(("seconds", "said"), [
    (0, "just now"), (59, "just now"), (60, "1 min ago"), (3599, "59 min ago"), (3600, "1 h ago"),
    (86399, "23 h ago"), (86400, "1 day ago"), (3 * 86400, "3 days ago"), (-5, "just now")])
def test_batch_age_in_words(seconds, said):
    from humanseg.web.batchlist import ago

    now = datetime(2030, 1, 1, tzinfo=timezone.utc)
    assert ago(now - timedelta(seconds=seconds), now) == said


def test_batches_list_shows_a_bar_while_jobs_wait(app, client):
    waiting, _ = add_batch(app, ["a.jpg", "b.jpg"], status=JobStatus.queued)
    item = _batch_item(client.get("/batches").get_data(as_text=True), waiting)
    assert 'aria-valuenow="0"' in item and "2 queued" in item and _img_sources(item) == []
