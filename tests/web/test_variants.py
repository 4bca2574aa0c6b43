"""Result options through the API (background, format, size, crop), on local storage and on S3 (moto)."""

from __future__ import annotations

import io

import numpy as np
import pytest
import requests
import support_images as si
from gallery_support import add_batch, add_photo_job, make_app
from PIL import Image

from humanseg.core.models import JobStatus


@pytest.fixture(params=["local", "s3"])
def app(request, tmp_path, monkeypatch):
    """The app on local storage, then on a bucket of the moto S3 server (presigned redirects)."""
    storage = None
    if request.param == "s3":
        from uuid import uuid4

        storage = request.getfixturevalue("make_s3_storage")(f"v-{uuid4().hex[:8]}")
    app = make_app(tmp_path, monkeypatch, storage_obj=storage)
    app.storage_kind = request.param
    return app


def get(client, url: str, **kw) -> tuple[int, str, bytes]:
    """(status, content type, body) of a result URL, following S3's presigned redirect."""
    with client.get(url, **kw) as resp:
        if resp.status_code == 302:
            location = resp.headers["Location"]
            assert "Signature=" in location  # presigned: served by S3, not by us
            far = requests.get(location, timeout=10)
            return far.status_code, far.headers["Content-Type"], far.content
        return resp.status_code, resp.mimetype, resp.data


def image(client, url: str) -> tuple[Image.Image, str]:
    status, ctype, body = get(client, url)
    assert status == 200, body[:300]
    img = Image.open(io.BytesIO(body))
    img.load()
    return img, ctype


def stored(app, job_id: str) -> set[str]:
    """Names of the variants cached for a job."""
    storage = app.extensions["humanseg"].storage
    if app.storage_kind == "local":
        folder = storage.root / "results" / job_id / "variants"
        return {p.name for p in folder.iterdir()} if folder.is_dir() else set()
    listed = storage.client.list_objects_v2(Bucket=storage.bucket, Prefix=f"results/{job_id}/variants/")
    return {o["Key"].rsplit("/", 1)[1] for o in listed.get("Contents", [])}


def test_plain_cutout_is_made_on_first_request_then_served_from_storage(app):
    client = app.test_client()
    job_id = add_photo_job(app)
    storage = app.extensions["humanseg"].storage
    key = f"results/{job_id}/cutout.png"
    assert not storage.exists(key)
    cut, ctype = image(client, f"/api/v1/jobs/{job_id}/cutout")
    assert ctype == "image/png" and cut.mode == "RGBA" and cut.size == (120, 90)
    assert storage.exists(key)
    alpha = Image.open(io.BytesIO(storage.get(f"results/{job_id}/alpha.png")))
    assert np.array_equal(np.asarray(cut.getchannel("A")), np.asarray(alpha))  # soft, not binary
    assert len(np.unique(np.asarray(alpha))) > 2
    # Nothing of the photo under alpha 0: dropping the alpha must not show the removed background.
    assert (np.asarray(alpha) == 0).sum() > 1000 and not np.asarray(cut)[np.asarray(alpha) == 0].any()
    storage.put(key, b"\x89PNG cached", "image/png")  # a repeat request is a storage hit
    assert get(client, f"/api/v1/jobs/{job_id}/cutout")[2] == b"\x89PNG cached"


def test_background_colour_as_jpeg_scaled(app):
    client = app.test_client()
    job_id = add_photo_job(app)
    img, ctype = image(client, f"/api/v1/jobs/{job_id}/cutout?bg=%23ff0000&format=jpg&size=60")
    assert ctype == "image/jpeg" and img.format == "JPEG" and img.mode == "RGB" and img.size == (60, 45)
    r, g, b = img.getpixel((2, 2))
    assert r > 240 and g < 20 and b < 20  # the red shows where there is no person
    # the same variant however it is spelled: one object in storage
    image(client, f"/api/v1/jobs/{job_id}/cutout?size=60&format=JPEG&bg=FF0000&quality=90")
    assert stored(app, job_id) == {"cutout_bg-ff0000_s60_q90.jpg"}


def test_uploaded_background_image(app):
    client = app.test_client()
    job_id = add_photo_job(app)
    backdrop = si.solid((300, 200), (0, 200, 0))
    resp = client.post("/api/v1/backgrounds", data={"image": (io.BytesIO(si.encode(backdrop, "PNG")), "green.png")},
                       content_type="multipart/form-data")
    assert resp.status_code == 201, resp.json
    body = resp.json
    assert body["bg"] == f"image:{body['id']}" and (body["width"], body["height"]) == (300, 200)
    assert resp.headers["Location"] == body["url"]
    assert get(client, body["url"])[:2] == (200, "image/png")
    img, _ = image(client, f"/api/v1/jobs/{job_id}/cutout?bg=image:{body['id']}&format=webp")
    assert img.format == "WEBP" and img.mode == "RGB" and img.size == (120, 90)
    assert img.getpixel((2, 2)) == (0, 200, 0)  # lossless: the backdrop exactly
    assert img.getpixel((60, 50))[2] > 120  # the person (blue) in front
    assert client.delete(body["url"]).status_code == 200
    gone = client.get(f"/api/v1/jobs/{job_id}/cutout?bg=image:{body['id']}&format=webp&size=50")
    assert gone.status_code == 400 and gone.json["error"]["parameter"] == "bg"
    assert client.get(body["url"]).json["error"]["code"] == "background_not_found"


def test_background_uploads_are_validated_like_photos(app):
    client = app.test_client()

    def post(data, name):
        return client.post("/api/v1/backgrounds", data={"image": (io.BytesIO(data), name)},
                           content_type="multipart/form-data")

    assert post(si.text(), "notes.png").json["error"]["code"] == "unsupported_format"
    assert post(si.text(), "notes.png").status_code == 415
    assert post(si.truncated_jpeg(), "half.jpg").json["error"]["code"] == "corrupt_image"
    assert post(si.png_bomb(), "bomb.png").status_code == 413
    empty = client.post("/api/v1/backgrounds", data={}, content_type="multipart/form-data")
    assert empty.status_code == 400 and empty.json["error"]["code"] == "no_files"


def test_background_images_are_decoded_off_the_event_loop(app, monkeypatch):
    """As uploads are (web/offload.py): the decode and checks go through off_loop, refusals too."""
    from humanseg.web import backgrounds, offload

    offloaded = []

    def spy(fn, *args):
        offloaded.append(fn.__name__)
        return offload.off_loop(fn, *args)

    monkeypatch.setattr(backgrounds, "off_loop", spy)
    client = app.test_client()
    for data, status in ((si.jpeg(), 201), (si.truncated_jpeg(), 400)):
        resp = client.post("/api/v1/backgrounds", data={"image": (io.BytesIO(data), "bg.jpg")},
                           content_type="multipart/form-data")
        assert resp.status_code == status
    assert offloaded == ["validate", "validate"]


def test_webp_lossless_and_with_alpha(app):
    client = app.test_client()
    job_id = add_photo_job(app)
    lossless, ctype = image(client, f"/api/v1/jobs/{job_id}/cutout?format=webp")
    plain, _ = image(client, f"/api/v1/jobs/{job_id}/cutout")
    assert ctype == "image/webp" and lossless.mode == "RGBA"
    a, b = np.asarray(lossless), np.asarray(plain)
    seen = b[..., 3] > 0  # WebP drops the colour of fully transparent pixels; the rest is exact
    assert np.array_equal(a[..., 3], b[..., 3]) and np.array_equal(a[seen], b[seen])
    lossy, _ = image(client, f"/api/v1/jobs/{job_id}/cutout?format=webp&quality=60")
    assert lossy.mode == "RGBA" and lossy.size == (120, 90)
    assert np.asarray(lossy.getchannel("A"))[0, 0] == 0  # still transparent round the person


def test_crop_to_the_subject_with_a_margin(app):
    client = app.test_client()
    job_id = add_photo_job(app, box=(40, 15, 80, 85))  # soft rim: alpha > 0 on 39..81 x 14..86
    tight, _ = image(client, f"/api/v1/jobs/{job_id}/cutout?crop=true")
    assert tight.size == (43, 73)
    margin, _ = image(client, f"/api/v1/jobs/{job_id}/cutout?crop=1&margin=10px")
    assert margin.size == (63, 86)  # 10 px each side; at the bottom the photo ends after 3
    share, _ = image(client, f"/api/v1/jobs/{job_id}/cutout?crop=1&margin=10%25&size=40")
    assert max(share.size) == 40
    mask, _ = image(client, f"/api/v1/jobs/{job_id}/mask?crop=1")
    assert mask.size == (43, 73) and set(np.unique(np.asarray(mask))) <= {0, 255}


def test_other_kinds_take_their_options(app):
    client = app.test_client()
    job_id = add_photo_job(app)
    over, ctype = image(client, f"/api/v1/jobs/{job_id}/overlay?size=60&format=png")
    assert ctype == "image/png" and over.mode == "RGB" and over.size == (60, 45)
    alpha, _ = image(client, f"/api/v1/jobs/{job_id}/alpha?size=30&format=webp")
    assert alpha.format == "WEBP" and alpha.size == (30, 22)
    preview, ctype = image(client, f"/api/v1/jobs/{job_id}/original?size=40&quality=70")
    assert ctype == "image/jpeg" and preview.size == (40, 30)
    status, ctype, body = get(client, f"/api/v1/jobs/{job_id}/original")
    assert status == 200 and ctype == "image/jpeg" and body[:3] == b"\xff\xd8\xff"  # the upload as is


@pytest.mark.parametrize("query,parameter", [
    ("format=jpeg", "format"), ("bg=tomato", "bg"), ("size=3", "size"), ("margin=5", "margin"),
    ("quality=50", "quality"), ("crop=sideways", "crop"), ("zoom=2", "zoom"), ("size=20&size=30", "size"),
    ("bg=image:" + "0" * 32, "bg"),
])
def test_bad_options_are_400_naming_the_parameter(app, query, parameter):
    client = app.test_client()
    job_id = add_photo_job(app)
    resp = client.get(f"/api/v1/jobs/{job_id}/cutout?{query}")
    assert resp.status_code == 400 and resp.json["error"]["code"] == "bad_parameter"
    assert resp.json["error"]["parameter"] == parameter
    assert resp.json["error"]["message"].startswith(f"{parameter}: ")
    assert stored(app, job_id) == set()


def test_options_wait_for_the_job_and_thumb_takes_none(app):
    client = app.test_client()
    _, (queued,) = add_batch(app, ["q.jpg"], status=JobStatus.queued)
    resp = client.get(f"/api/v1/jobs/{queued}/cutout?bg=%23ffffff&format=jpeg")
    assert resp.status_code == 409 and resp.json["error"]["code"] == "not_ready"
    assert get(client, f"/api/v1/jobs/{queued}/original?size=32")[0] == 200  # the upload is there already
    job_id = add_photo_job(app)
    resp = client.get(f"/api/v1/jobs/{job_id}/thumb?size=100")
    assert resp.status_code == 400 and "thumb takes no options" in resp.json["error"]["message"]


def test_job_json_points_at_results_made_on_request(app):
    client = app.test_client()
    job_id = add_photo_job(app)
    urls = client.get(f"/api/v1/jobs/{job_id}").json["urls"]
    # cut-outs and overlays may not exist yet: our URL makes them; stored kinds are direct on S3
    assert urls["cutout"] == f"/api/v1/jobs/{job_id}/cutout"
    assert urls["overlay"] == f"/api/v1/jobs/{job_id}/overlay"
    if app.storage_kind == "s3":
        assert "Signature=" in urls["alpha"] and "Signature=" in urls["thumb"]
    else:
        assert urls["alpha"] == f"/api/v1/jobs/{job_id}/alpha"


def test_outputs_at_upload_are_recorded_and_checked(tmp_path, monkeypatch):
    from humanseg.core.db import session_scope
    from humanseg.core.models import Job

    app = make_app(tmp_path, monkeypatch)
    client = app.test_client()
    resp = client.post("/api/v1/jobs", data={"images": [(io.BytesIO(si.jpeg()), "a.jpg")],
                                             "outputs": "overlay,cutout"},
                       content_type="multipart/form-data")
    assert resp.status_code == 202, resp.json
    with session_scope(app.extensions["humanseg"].sessions) as session:
        assert session.get(Job, resp.json["jobs"][0]["id"]).outputs == "cutout,overlay"
    bad = client.post("/api/v1/jobs", data={"images": [(io.BytesIO(si.jpeg()), "a.jpg")], "outputs": "glitter"},
                      content_type="multipart/form-data")
    assert bad.status_code == 400 and bad.json["error"]["parameter"] == "outputs"
    assert len(app.sent) == 1  # nothing queued for the refused request


def test_segment_checks_its_options_first_and_asks_the_worker_for_a_plain_output(tmp_path, monkeypatch):
    from humanseg.core.db import session_scope
    from humanseg.core.models import Job

    app = make_app(tmp_path, monkeypatch, segment_wait_seconds=0)  # no worker here: 202 at once
    client = app.test_client()
    bad = client.post("/api/v1/segment", data={"image": (io.BytesIO(si.jpeg()), "a.jpg"), "output": "cutout",
                                               "format": "jpeg"}, content_type="multipart/form-data")
    assert bad.status_code == 400 and bad.json["error"]["parameter"] == "format" and app.sent == []
    plain = client.post("/api/v1/segment", data={"image": (io.BytesIO(si.jpeg()), "a.jpg"), "output": "cutout"},
                        content_type="multipart/form-data")
    styled = client.post("/api/v1/segment", content_type="multipart/form-data",
                         data={"image": (io.BytesIO(si.jpeg()), "b.jpg"), "output": "cutout",
                               "bg": "#ffffff", "format": "jpeg"})
    assert plain.status_code == styled.status_code == 202
    with session_scope(app.extensions["humanseg"].sessions) as session:
        assert session.get(Job, plain.json["id"]).outputs == "cutout"  # the worker makes it
        assert session.get(Job, styled.json["id"]).outputs is None  # made here when it is done
