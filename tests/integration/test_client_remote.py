"""humanseg.client and `humanseg remote segment` against the live stack (gunicorn + worker)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import support_images as si
from PIL import Image

from humanseg.client import ApiError, Client

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def client(stack):
    api = Client(stack.base_url, timeout=60)
    yield api
    api.close()


def test_client_uploads_waits_downloads_and_controls_jobs(stack, client, tmp_path):
    (tmp_path / "a.jpg").write_bytes(si.jpeg((80, 60)))
    (tmp_path / "b.png").write_bytes(si.png((50, 70)))
    created = client.upload([tmp_path / "a.jpg", tmp_path / "b.png"], batch_name="client",
                            idempotency_key="client-test-" + stack.kind)
    assert [j.filename for j in created.jobs] == ["a.jpg", "b.png"] and not created.replayed
    again = client.upload([tmp_path / "a.jpg", tmp_path / "b.png"], batch_name="client",
                          idempotency_key="client-test-" + stack.kind)
    assert again.replayed and again.batch_id == created.batch_id

    seen = []
    batch = client.wait_batch(created.batch_id, timeout=120, every=0.2,
                              on_progress=lambda b: seen.append(b.progress))
    assert batch.done and batch.counts["succeeded"] == 2 and seen[-1] == 1.0
    assert {j.status for j in batch.jobs} == {"succeeded"} and batch.job_count == 2
    counts_only = client.progress(created.batch_id)  # what each poll of the wait asked for
    assert counts_only.jobs == [] and counts_only.counts == batch.counts and counts_only.done
    job = client.job(created.jobs[1].id)
    assert (job.width, job.height, job.done) == (50, 70, True)
    path = client.download(job.id, "cutout", tmp_path / "b-cut.webp", format="webp", bg="#ffffff")
    with Image.open(path) as img:
        assert img.format == "WEBP" and img.size == (50, 70)
    with Image.open(client.download(job.id, "mask", tmp_path / "b-mask.png")) as img:
        assert img.mode == "L" and img.size == (50, 70)

    with pytest.raises(ApiError) as refused:
        client.cancel_job(job.id)
    assert refused.value.status == 409 and refused.value.code == "job_finished"
    with pytest.raises(ApiError) as missing:
        client.job("0" * 32)
    assert missing.value.status == 404 and missing.value.code == "job_not_found"
    assert client.retry_batch(created.batch_id, include_cancelled=True) == []
    assert client.deliveries(created.batch_id) == []


def _remote(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "humanseg.cli", "remote", "segment", *args],
                          cwd=ROOT, capture_output=True, text=True, timeout=300, check=False)


def test_remote_segment_does_a_folder_reports_failures_and_resumes(stack, client, tmp_path):
    src, out = tmp_path / "photos", tmp_path / "out"
    src.mkdir()
    for i in range(5):
        (src / f"p{i}.jpg").write_bytes(si.jpeg((64 + i, 48)))
    (src / "p0.png").write_bytes(si.png((40, 30)))  # the same stem as p0.jpg
    (src / "broken.jpg").write_bytes(b"\xff\xd8\xff not really a jpeg")
    (src / "notes.txt").write_text("not an image; never sent")

    run = _remote(str(src), "--server", stack.base_url, "--out", str(out),
                  "--outputs", "cutout,mask", "--chunk", "2", "--every", "0.2")
    assert run.returncode == 1, run.stderr
    assert "6 succeeded, 1 failed" in run.stderr and "broken.jpg: rejected" in run.stderr
    assert "] 6/6 finished, 0 failed, 0 cancelled" in run.stderr  # the progress bar
    names = sorted(p.name for p in (out / "cutout").iterdir())
    assert names == ["p0_jpg.png", "p0_png.png", "p1.png", "p2.png", "p3.png", "p4.png"]
    with Image.open(out / "cutout" / "p3.png") as img:
        assert img.mode == "RGBA" and img.size == (67, 48)
    with Image.open(out / "mask" / "p0_png.png") as img:
        assert img.mode == "L" and img.size == (40, 30)

    state = json.loads((out / ".humanseg-remote.json").read_text())
    batch_id = state["batch_id"]
    assert len(state["jobs"]) == 6 and set(state["rejected"]) == {"broken.jpg"}
    # An interrupted run: one result never made it to disk.
    (out / "cutout" / "p2.png").unlink()
    state["downloaded"]["p2.jpg"].remove("cutout")
    (out / ".humanseg-remote.json").write_text(json.dumps(state))
    (src / "broken.jpg").unlink()

    again = _remote(str(src), "--server", stack.base_url, "--out", str(out),
                    "--outputs", "cutout,mask", "--chunk", "2", "--every", "0.2")
    assert again.returncode == 0, again.stderr
    assert "uploaded" not in again.stderr  # nothing sent twice
    assert (out / "cutout" / "p2.png").exists()
    assert client.batch(batch_id).job_count == 6

    fresh = _remote(str(src), "--server", stack.base_url, "--out", str(tmp_path / "out2"))
    assert fresh.returncode == 0, fresh.stderr
    assert "6 succeeded, 0 failed" in fresh.stderr
    assert len(list((tmp_path / "out2" / "cutout").iterdir())) == 6


def test_remote_segment_exits_2_when_the_server_is_unreachable(tmp_path):
    (tmp_path / "a.jpg").write_bytes(si.jpeg())
    run = _remote(str(tmp_path), "--server", "http://127.0.0.1:9", "--out", str(tmp_path / "o"))
    assert run.returncode == 2 and "ConnectionError" in run.stderr and "Traceback" not in run.stderr
