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


def _remote(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "humanseg.cli", "remote", "segment", *args],
                          cwd=ROOT, capture_output=True, text=True, timeout=300, check=False, env=env)


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
    assert run.stderr.count("skipping 1 file(s) that are not JPEG, PNG or WebP images: notes.txt") == 1
    # Named as `humanseg segment` names them: <stem>.mask.png, <stem>.cutout.png.
    names = sorted(p.name for p in out.glob("*.cutout.png"))
    assert names == [f"{s}.cutout.png" for s in ("p0_jpg", "p0_png", "p1", "p2", "p3", "p4")]
    with Image.open(out / "p3.cutout.png") as img:
        assert img.mode == "RGBA" and img.size == (67, 48)
    assert not (out / "p0_png.png").exists()  # a mask never takes the name of a photo
    with Image.open(out / "p0_png.mask.png") as img:
        assert img.mode == "L" and img.size == (40, 30)

    state = json.loads((out / ".humanseg-remote.json").read_text())
    batch_id = state["batch_id"]
    assert len(state["jobs"]) == 6 and set(state["rejected"]) == {"broken.jpg"}
    # An interrupted run: one result never made it to disk.
    (out / "p2.cutout.png").unlink()
    state["downloaded"]["p2.jpg"].remove("cutout")
    (out / ".humanseg-remote.json").write_text(json.dumps(state))
    (src / "broken.jpg").unlink()

    again = _remote(str(src), "--server", stack.base_url, "--out", str(out),
                    "--outputs", "cutout,mask", "--chunk", "2", "--every", "0.2")
    assert again.returncode == 0, again.stderr
    assert "uploaded" not in again.stderr  # nothing sent twice
    assert (out / "p2.cutout.png").exists()
    assert client.batch(batch_id).job_count == 6

    fresh = _remote(str(src), "--server", stack.base_url, "--out", str(tmp_path / "out2"))
    assert fresh.returncode == 0, fresh.stderr
    assert "6 succeeded, 0 failed" in fresh.stderr
    assert len(list((tmp_path / "out2").glob("*.cutout.png"))) == 6


class CountingServer:
    """A server that only counts the requests it gets: options must be refused before any is sent."""

    def __enter__(self):
        import http.server
        import threading

        counter = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                counter.requests += 1
                self.send_error(500)

            do_POST = do_GET

            def log_message(self, *args):
                pass

        self.requests = 0
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()


@pytest.mark.parametrize("options,said", [
    (["--format", "jpeg"], "--format jpeg has no transparency: give --bg"),
    (["--size", "300x200"], "--size: must be full or a longest side from 16 to 10000 px"),
    (["--size", "8"], "--size: must be full or a longest side from 16 to 10000 px"),
    (["--bg", "pink"], "--bg: must be transparent"),
    (["--format", "gif"], "--format: must be one of png, webp, jpeg"),
    (["--format", "png", "--quality", "80"], "--quality: applies to jpeg and webp only"),
    (["--margin", "5%"], "--margin: applies only with crop=true"),
    (["--crop", "maybe"], "--crop: must be true or false"),
    (["--outputs", "mask", "--bg", "white"], "--bg apply to the cut-out: add cutout to --outputs"),
])
def test_remote_segment_refuses_a_bad_option_before_sending_anything(tmp_path, options, said):
    (tmp_path / "a.jpg").write_bytes(si.jpeg())
    with CountingServer() as server:
        run = _remote(str(tmp_path), "--server", server.url, "--out", str(tmp_path / "o"), *options)
    assert run.returncode == 2 and said in run.stderr, run.stderr
    assert server.requests == 0 and not (tmp_path / "o").exists()


def test_remote_segment_help_says_what_the_server_accepts():
    run = _remote("--help")
    assert run.returncode == 0
    text = " ".join(run.stdout.split())
    assert "WxH" not in text
    for said in ("16 to 10000, or full", "jpeg (jpg) with a --bg", "1-100, for jpeg", "image:<id>",
                 "with --crop true: px (0-2000, e.g. 20) or % of the person"):
        assert said in text, said


def test_remote_segment_exits_2_when_the_server_is_unreachable(tmp_path):
    (tmp_path / "a.jpg").write_bytes(si.jpeg())
    run = _remote(str(tmp_path), "--server", "http://127.0.0.1:9", "--out", str(tmp_path / "o"))
    assert run.returncode == 2 and "cannot reach http://127.0.0.1:9" in run.stderr and "Traceback" not in run.stderr
    assert len(run.stderr.strip().splitlines()) == 1


def test_remote_segment_says_when_a_server_is_not_humanseg(tmp_path):
    import http.server
    import threading

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), http.server.SimpleHTTPRequestHandler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        (tmp_path / "a.jpg").write_bytes(si.jpeg())
        run = _remote(str(tmp_path), "--server", f"http://127.0.0.1:{server.server_port}", "--out",
                      str(tmp_path / "o"))
    finally:
        server.shutdown()
        server.server_close()
    assert run.returncode == 2 and "Traceback" not in run.stderr, run.stderr
    assert "the server refused" in run.stderr or "did not answer like a humanseg server" in run.stderr


def test_remote_segment_keeps_subfolders_takes_cutout_options_and_the_key_from_the_environment(
        stack, tmp_path):
    import os

    src, out = tmp_path / "photos", tmp_path / "out"
    (src / "day1").mkdir(parents=True)
    (src / "day2").mkdir()
    (src / "day1" / "a.jpg").write_bytes(si.jpeg((64, 48)))
    (src / "day2" / "a.jpg").write_bytes(si.jpeg((48, 64)))  # the same name in another folder
    args = (str(src), "--server", stack.base_url, "--out", str(out), "--bg", "white", "--format", "jpeg",
            "--size", "32", "--every", "0.2")
    # The key comes from the environment: an unknown one is refused by the server...
    refused = _remote(*args, env={**os.environ, "HUMANSEG_API_KEY": "hsk_not_a_real_key"})
    assert refused.returncode == 2 and "invalid_api_key" in refused.stderr, refused.stderr
    made = subprocess.run([sys.executable, "-m", "humanseg.cli", "keys", "create", "remote-test"], env=stack.env,
                          cwd=ROOT, capture_output=True, text=True, timeout=120, check=True)
    # ... and a real one is used.
    run = _remote(*args, env={**os.environ, "HUMANSEG_API_KEY": made.stdout.strip()})
    assert run.returncode == 0, run.stderr
    # The access log counts the bytes of file responses (gunicorn's sendfile path logged 0).
    log_lines = (stack.settings.data_dir / "web.log").read_text().splitlines()
    cutouts = [line for line in log_lines if "/cutout?bg=white" in line and '" 200 ' in line]
    assert stack.kind.endswith("s3") or cutouts  # S3 answers 302 to a presigned URL instead
    assert all(int(line.split('" 200 ', 1)[1].split()[0]) > 0 for line in cutouts), cutouts[:2]
    for day, size in (("day1", (32, 24)), ("day2", (24, 32))):
        with Image.open(out / day / "a.cutout.jpg") as img:
            assert img.format == "JPEG" and img.size == size and min(img.getpixel((0, 0))) > 225  # on white (JPEG)


def test_remote_segment_downloads_results_while_the_batch_is_still_running(stack, client, tmp_path):
    from datetime import datetime, timedelta, timezone

    from factories import job_row

    from humanseg.core.db import session_scope
    from humanseg.core.models import JobStatus

    src, out = tmp_path / "photos", tmp_path / "out"
    src.mkdir()
    for i in range(2):
        (src / f"p{i}.jpg").write_bytes(si.jpeg((64, 48)))
    created = client.upload([src / "p0.jpg", src / "p1.jpg"])
    client.wait_batch(created.batch_id, timeout=120, every=0.2)
    # A third job of the batch that is still running (its lease holds for a minute): the batch is not done.
    with session_scope(stack.sessions) as session:
        job_row(session, created.batch_id, seq=99, filename="slow.jpg", width=64, height=48,
                original_key="originals/x.jpg", status=JobStatus.running,
                lease_expires_at=datetime.now(timezone.utc) + timedelta(seconds=60))
    out.mkdir()
    (out / ".humanseg-remote.json").write_text(json.dumps({
        "server": stack.base_url, "source": str(src.resolve()), "run": "r", "batch_id": created.batch_id,
        "chunks": 1, "jobs": {"p0.jpg": created.jobs[0].id, "p1.jpg": created.jobs[1].id}, "downloaded": {}}))
    run = _remote(str(src), "--server", stack.base_url, "--out", str(out), "--every", "0.2", "--timeout", "3")
    assert run.returncode == 2 and "not finished" in run.stderr and "resumes" in run.stderr, run.stderr
    assert (out / "p0.cutout.png").is_file() and (out / "p1.cutout.png").is_file()  # fetched before the end


def test_client_and_remote_choose_the_model(stack, client, tmp_path):
    listed = client.models()
    assert listed["default"] == "fast" and [m["name"] for m in listed["models"]][:2] == ["fast", "modnet"]
    (tmp_path / "a.jpg").write_bytes(si.jpeg((64, 48)))
    created = client.upload([tmp_path / "a.jpg"], model="modnet")
    batch = client.wait_batch(created.batch_id, timeout=120, every=0.2)
    assert [(j.model, j.status) for j in batch.jobs] == [("modnet", "succeeded")]
    with pytest.raises(ApiError) as refused:
        client.upload([tmp_path / "a.jpg"], model="best")
    assert refused.value.status == 400 and refused.value.code == "unknown_model"
    src, out = tmp_path / "photos", tmp_path / "out"
    src.mkdir()
    (src / "b.jpg").write_bytes(si.jpeg((48, 64)))
    run = _remote(str(src), "--server", stack.base_url, "--out", str(out), "--model", "modnet",
                  "--outputs", "mask", "--every", "0.2")
    assert run.returncode == 0, run.stderr
    state = json.loads((out / ".humanseg-remote.json").read_text())
    assert client.job(state["jobs"]["b.jpg"]).model == "modnet"
    bad = _remote(str(src), "--server", stack.base_url, "--out", str(tmp_path / "o2"), "--model", "best")
    assert bad.returncode == 2 and "choose from fast, modnet" in bad.stderr, bad.stderr
