"""End to end on real parts: gunicorn web + Celery worker + Redis + SQL + local/S3 storage."""

import io

import numpy as np
import pytest
import requests
import support_images as si
from factories import insert_job
from PIL import Image
from support_live import pending_deliveries, wait_until

from humanseg.core.queue import make_sender, send_segment


def upload(stack, items, **data):
    files = [("images", (name, blob)) for name, blob in items]
    return requests.post(stack.url("/api/v1/jobs"), files=files, data=data, timeout=60)


def fetch(stack, url: str) -> requests.Response:
    # S3 gives presigned URLs (absolute); local results are served by the web tier.
    full = url if url.startswith("http") else stack.url(url)
    resp = requests.get(full, timeout=30)
    assert resp.status_code == 200, resp.text
    return resp


def check_results(stack, job: dict) -> Image.Image:
    assert job["status"] == "succeeded", job
    w, h = job["width"], job["height"]
    mask = Image.open(io.BytesIO(fetch(stack, job["urls"]["mask"]).content))
    assert mask.format == "PNG" and mask.mode == "L" and mask.size == (w, h)
    assert set(np.unique(np.asarray(mask))) <= {0, 255}
    alpha = Image.open(io.BytesIO(fetch(stack, job["urls"]["alpha"]).content))
    assert alpha.format == "PNG" and alpha.mode == "L" and alpha.size == (w, h)
    # one probability map: the mask is where the soft alpha passes half
    assert np.array_equal(np.asarray(mask) == 255, np.asarray(alpha) >= 128)
    cut = Image.open(io.BytesIO(fetch(stack, job["urls"]["cutout"]).content))  # made on request
    assert cut.format == "PNG" and cut.mode == "RGBA" and cut.size == (w, h)
    assert np.array_equal(np.asarray(cut)[..., 3], np.asarray(alpha))
    over = Image.open(io.BytesIO(fetch(stack, job["urls"]["overlay"]).content))
    assert over.format == "JPEG" and over.size == (w, h)
    thumb = Image.open(io.BytesIO(fetch(stack, job["urls"]["thumb"]).content))
    assert thumb.format == "JPEG" and max(thumb.size) <= 256
    assert job["duration_ms"] is not None and job["attempts"] == 1
    return mask


def test_batch_upload_to_masks(stack):
    items = [("a.jpg", si.jpeg()), ("b.png", si.png((50, 70))), ("c.webp", si.webp()),
             ("gray.png", si.png(mode="L")), ("rgba.png", si.png(mode="RGBA")),
             ("cmyk.jpg", si.cmyk_jpeg()), ("deep.png", si.png16()),
             ("../../evil.jpg", si.jpeg())]
    resp = upload(stack, items, batch_name="e2e")
    assert resp.status_code == 202, resp.text
    body = resp.json()
    jobs = [stack.wait_job(j["id"]) for j in body["jobs"]]
    for job in jobs:
        check_results(stack, job)
    batch = requests.get(stack.url(f"/api/v1/batches/{body['batch_id']}"), timeout=10).json()
    assert batch["counts"]["succeeded"] == len(items) and batch["progress"] == 1.0 and batch["done"]


def test_the_same_photo_with_each_model_gets_its_own_results(stack):
    """A real worker loads each model on first use; each job says which one made its masks."""
    photo = si.exif_rotated_jpeg(stored=(80, 40), orientation=6)
    made = {name: upload(stack, [("p.jpg", photo)], model=name).json()["jobs"][0] for name in ("fast", "modnet")}
    masks = {}
    for name, brief in made.items():
        assert brief["model"] == name
        job = stack.wait_job(brief["id"])
        assert job["status"] == "succeeded" and job["model"] == name, job
        masks[name] = np.asarray(check_results(stack, job))
    assert not np.array_equal(masks["fast"], masks["modnet"])
    refused = upload(stack, [("p.jpg", photo)], model="best")
    assert refused.status_code == 400 and refused.json()["error"]["choices"][:2] == ["fast", "modnet"]


def test_exif_rotated_mask_matches_displayed_orientation(stack):
    resp = upload(stack, [("rot.jpg", si.exif_rotated_jpeg(stored=(80, 40), orientation=6))])
    job = stack.wait_job(resp.json()["jobs"][0]["id"])
    assert (job["width"], job["height"]) == (40, 80)
    assert check_results(stack, job).size == (40, 80)


def test_result_redirects_on_s3_and_streams_locally(stack):
    job = stack.wait_job(upload(stack, [("a.jpg", si.jpeg())]).json()["jobs"][0]["id"])
    resp = requests.get(stack.url(f"/api/v1/jobs/{job['id']}/mask"), allow_redirects=False,
                        timeout=10)
    if stack.settings.storage == "s3":
        assert resp.status_code == 302 and "X-Amz-Signature" in resp.headers["Location"]
        assert requests.get(resp.headers["Location"], timeout=10).status_code == 200
    else:
        assert resp.status_code == 200 and resp.headers["Content-Type"] == "image/png"


@pytest.mark.parametrize("output,fmt,mode", [("mask", "PNG", "L"), ("cutout", "PNG", "RGBA"),
                                             ("overlay", "JPEG", "RGB")])
def test_segment_answers_the_image(stack, output, fmt, mode):
    resp = requests.post(stack.url("/api/v1/segment"), files={"image": ("p.jpg", si.jpeg())},
                         data={"output": output}, timeout=60)
    assert resp.status_code == 200, resp.text
    img = Image.open(io.BytesIO(resp.content))
    assert (img.format, img.mode, img.size) == (fmt, mode, (96, 64))
    assert resp.headers["X-Job-Id"]


def test_prefer_wait_returns_finished_jobs(stack):
    resp = requests.post(stack.url("/api/v1/jobs"), files=[("images", ("a.jpg", si.jpeg()))],
                         headers={"Prefer": "wait=15"}, timeout=60)
    assert resp.status_code == 200 and resp.json()["jobs"][0]["status"] == "succeeded"


def test_duplicate_delivery_leaves_one_consistent_result(stack):
    job_id = upload(stack, [("a.jpg", si.jpeg())]).json()["jobs"][0]["id"]
    sender = make_sender(stack.settings)
    try:
        for _ in range(3):
            send_segment(sender, job_id, stack.settings.queue)
        job = stack.wait_job(job_id)
        first = fetch(stack, job["urls"]["mask"]).content
        # the extra deliveries find the job terminal and do nothing: wait until all are acked
        # (acks_late: a message leaves Redis only after its task has run)
        wait_until(lambda: pending_deliveries(stack.settings.broker_url, stack.settings.queue, job_id) == 0,
                   60, "duplicate deliveries acked")
        again = requests.get(stack.url(f"/api/v1/jobs/{job_id}"), timeout=10).json()
        assert again["status"] == "succeeded" and again["attempts"] == 1
        assert again["finished_at"] == job["finished_at"]
        assert fetch(stack, again["urls"]["mask"]).content == first
    finally:
        sender.close()


def test_lost_doorbell_is_recovered_by_sweeper(stack):
    """A job committed without a task (broker flushed) is re-sent by the worker's sweeper."""
    job_id = insert_job(stack.storage, stack.sessions, si.jpeg(), name="lost", width=96, height=64)
    assert stack.wait_job(job_id, timeout=90)["status"] == "succeeded"


def test_bad_image_in_storage_fails_job_with_reason(stack):
    """A corrupt original (replaced after upload) fails the job; the worker keeps going."""
    body = upload(stack, [("a.jpg", si.jpeg())]).json()
    # not racing the worker: this checks the failure path on a fresh job of our own
    job_id = insert_job(stack.storage, stack.sessions, si.truncated_jpeg(), name="broken",
                        width=1, height=1)
    sender = make_sender(stack.settings)
    send_segment(sender, job_id, stack.settings.queue)
    sender.close()
    failed = stack.wait_job(job_id)
    assert failed["status"] == "failed" and "decode" in failed["error"]
    r = requests.get(stack.url(f"/api/v1/jobs/{job_id}/mask"), timeout=10)
    assert r.status_code == 409 and r.json()["error"]["code"] == "job_failed"
    assert stack.wait_job(body["jobs"][0]["id"])["status"] == "succeeded"
