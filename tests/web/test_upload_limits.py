"""Uploads are checked from spooled files (memory stays flat with the request's size), refused when
the worker could not process them, and bounded in the work one request may buy (issue 10)."""

import io
import random
import tracemalloc

import pytest
import support_images as si
from PIL import Image
from sqlalchemy import func, select
from werkzeug.test import EnvironBuilder

from humanseg.core.models import Job

MiB = 1024 * 1024


@pytest.fixture
def make(make_live_app, db_url):
    """Apps on SQLite and (when configured) PostgreSQL."""
    return lambda **settings: make_live_app(database_url=db_url, **settings)


def job_count(app) -> int:
    with app.extensions["humanseg"].sessions() as s:
        return s.scalar(select(func.count()).select_from(Job))


def stored_originals(app) -> list:
    root = app.extensions["humanseg"].settings.storage_dir / "originals"
    return sorted(root.iterdir()) if root.exists() else []


def png(width: int, height: int) -> bytes:
    return si.blank_png((width, height))


def noise_jpeg(side: int, seed: int) -> bytes:
    """A JPEG that does not compress: side*side random pixels, about 0.6 bytes each at q=95."""
    rng = random.Random(seed)
    img = Image.frombytes("RGB", (side, side), rng.randbytes(side * side * 3))
    return si.encode(img, "JPEG", quality=95)


def post(app, parts: list[tuple[str, bytes]]):
    return app.test_client().post("/api/v1/jobs", content_type="multipart/form-data",
                                  data={"images": [(io.BytesIO(d), n) for n, d in parts]})


def test_a_side_too_long_for_the_worker_is_refused_by_name(make):
    app = make()
    resp = post(app, [("ok.jpg", si.jpeg()), ("strip.png", png(70_000, 1))])
    assert resp.status_code == 413, resp.json
    err = resp.json["error"]
    assert err["code"] == "side_too_long" and err["file"] == "strip.png"
    assert "65500" in err["message"] and "strip.png" in err["message"]
    assert job_count(app) == 0 and stored_originals(app) == []


def test_the_pixels_of_one_request_are_bounded(make):
    # Ten black 1000x1000 PNGs: a few kB of request, ten megapixels of worker time.
    app = make(max_request_pixels=5_000_000, max_files=20)
    resp = post(app, [(f"black{i}.png", png(1000, 1000)) for i in range(10)])
    assert resp.status_code == 413, resp.json
    err = resp.json["error"]
    assert err["code"] == "request_too_many_pixels" and "5000000" in err["message"]
    assert err["file"] == "black5.png"  # the part that went over; the rest was never decoded
    assert job_count(app) == 0 and stored_originals(app) == []
    # within the budget the same images are accepted
    assert post(app, [(f"black{i}.png", png(1000, 1000)) for i in range(5)]).status_code == 202


def _python_peak_bytes(app, parts: list[tuple[str, bytes]]) -> tuple[int, int]:
    """(status, peak bytes Python allocated) while the app handles one multipart upload."""
    builder = EnvironBuilder(method="POST", path="/api/v1/jobs",
                             data={"images": [(io.BytesIO(d), n) for n, d in parts]})
    environ = builder.get_environ()  # the body is built before counting starts
    status = []
    tracemalloc.start()
    try:
        body = app.wsgi_app(environ, lambda s, h, e=None: status.append(s))
        b"".join(body)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
        environ["wsgi.input"].close()
        builder.close()
    return int(status[0].split()[0]), peak


@pytest.mark.parametrize("count,side", [(12, 1400), (60, 400)], ids=["large-parts", "small-parts"])
def test_upload_memory_does_not_grow_with_the_request(make, count, side):
    parts = [(f"n{i}.jpg", noise_jpeg(side, i)) for i in range(count)]
    total = sum(len(d) for _, d in parts)
    largest = max(len(d) for _, d in parts)
    app = make(max_files=100, max_request_bytes=200 * MiB)
    status, peak = _python_peak_bytes(app, parts)
    assert status == 202
    assert job_count(app) == count and len(stored_originals(app)) == count
    # One part at a time is read (to store it); the request as a whole never is.
    assert peak < 2 * largest + 2 * MiB, (peak, largest, total)
    assert peak < total / 3, (peak, total)
