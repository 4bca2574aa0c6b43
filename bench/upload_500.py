"""One request of 500 photos to a `humanseg up`: upload time, memory of web and worker processes,
and the time until all 500 are finished.

Starts its own `humanseg up` (temp data dir, free port, embedded Valkey, SQLite, local storage,
the default limits: HUMANSEG_MAX_FILES=500, HUMANSEG_MAX_REQUEST_BYTES 1 GiB,
HUMANSEG_MAX_REQUEST_PIXELS 1e9 all admit 500 photos of 640x480; the per-key rate and daily
image limits are switched off), warms the workers up with a small batch, then sends one
multipart request of --n photos (synthetic 640x480 JPEGs with noise, ~90 KB, 50 distinct
ones cycled; or --images DIR cycled) and polls the batch until done. Prints, per process,
resident memory (VmRSS) and its peak (VmHWM, from /proc/<pid>/status) before the request, after
the upload answered and after the last job, for the gunicorn web workers and the Celery worker
(main process and pool processes).

    python bench/upload_500.py
    python bench/upload_500.py --images photos/ --n 500
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests
from benchlib import free_port, last_finished, load, stop, wait_done
from pipeline_throughput import load_files, synthetic

ROOT = Path(__file__).resolve().parent.parent


def photo_like(i: int) -> bytes:
    """bench's synthetic figure with sensor-like noise, so the JPEG is a photo's size (~100 KB)."""
    import io
    import random

    from PIL import Image

    img = Image.open(io.BytesIO(synthetic(i)))
    noise = Image.frombytes("RGB", img.size, random.Random(i).randbytes(img.width * img.height * 3))
    buf = io.BytesIO()
    Image.blend(img, noise, 0.12).save(buf, "JPEG", quality=90)
    return buf.getvalue()


def children(pid: int) -> list[int]:
    out = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(OSError):
            out += [int(c) for c in (task / "children").read_text().split()]
    return out


def cmdline(pid: int) -> str:
    return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")


def status_kib(pid: int) -> dict[str, int]:
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            out[key] = int(value.split()[0])
    return out


def processes(up_pid: int) -> dict[str, int]:
    """label -> pid: the gunicorn workers (web-N) and the Celery worker's processes."""
    found = {}
    for child in children(up_pid):
        line = cmdline(child)
        if "gunicorn" in line:
            for i, pid in enumerate(sorted(children(child)), 1):
                found[f"web worker {i} (pid {pid})"] = pid
        elif "humanseg.cli worker" in line:
            found[f"worker main (pid {child})"] = child
            for i, pid in enumerate(sorted(children(child)), 1):
                found[f"worker pool {i} (pid {pid})"] = pid
    return found


def snapshot(procs: dict[str, int]) -> dict[str, dict[str, int]]:
    out = {}
    for label, pid in procs.items():
        with contextlib.suppress(OSError):
            out[label] = status_kib(pid)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=500)
    parser.add_argument("--images", type=Path, default=None)
    parser.add_argument("--timeout", type=float, default=600, help="seconds for the whole batch")
    parser.add_argument("--keep", action="store_true", help="keep the temp dir (logs) afterwards")
    args = parser.parse_args(argv)
    if args.images:
        files = load_files(args.images, args.n)
    else:
        distinct = [photo_like(i) for i in range(min(args.n, 50))]  # cycled
        files = [(f"photo-{i}.jpg", distinct[i % len(distinct)]) for i in range(args.n)]
    size = sum(len(d) for _, d in files)
    tmp = Path(tempfile.mkdtemp(prefix="upload-500-"))
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("HUMANSEG_")}
    env.update(HUMANSEG_DATA_DIR=str(tmp / "var"), HUMANSEG_PORT=str(port), HUMANSEG_LOG_LEVEL="INFO",
               HUMANSEG_SECRET_KEY="bench-secret-not-for-production",
               HUMANSEG_RATE_LIMIT_PER_MINUTE="0", HUMANSEG_IMAGES_PER_DAY="0")
    if args.n > 500:
        env["HUMANSEG_MAX_FILES"] = str(args.n)  # the default admits 500 files per request
    print(f"photos={len(files)} request body ~{size / 1e6:.1f} MB  load: {load()}", flush=True)
    base = f"http://127.0.0.1:{port}"
    with open(tmp / "up.log", "wb") as log:
        up = subprocess.Popen([sys.executable, "-m", "humanseg.cli", "up"], env=env, cwd=ROOT,
                              stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    ok = False
    try:
        deadline = time.monotonic() + 120
        while True:
            with contextlib.suppress(requests.RequestException):
                if requests.get(base + "/readyz", timeout=2).status_code == 200:
                    break
            if time.monotonic() > deadline or up.poll() is not None:
                raise RuntimeError(f"humanseg up did not become ready; see {tmp / 'up.log'}")
            time.sleep(0.5)
        # Warm up: the pool processes load the model on their first job.
        t = time.time()
        warm = requests.post(base + "/api/v1/jobs", files=[("images", f) for f in files[:6]], timeout=120)
        warm.raise_for_status()
        wait_done(base + warm.json()["batch_url"], t, 120)
        procs = processes(up.pid)
        before = snapshot(procs)

        t0 = time.time()
        resp = requests.post(base + "/api/v1/jobs", files=[("images", f) for f in files],
                             data={"batch_name": f"upload-{len(files)}"}, timeout=args.timeout)
        upload_s = time.time() - t0
        print(f"upload: answer {resp.status_code} in {upload_s:.2f}s "
              f"({size / 1e6 / upload_s:.1f} MB/s, {len(files) / upload_s:.0f} photos/s)", flush=True)
        resp.raise_for_status()
        after_upload = snapshot(procs)
        jobs = wait_done(base + resp.json()["batch_url"], t0, args.timeout)
        last = last_finished(jobs)
        after = snapshot(procs)
        failed = sum(j["status"] != "succeeded" for j in jobs)
        print(f"all {len(jobs)} finished {last - t0:.1f}s after the upload began "
              f"({(last - t0) * 1000 / len(jobs):.1f} ms/photo; not succeeded={failed})   load: {load()}")
        print("memory, MiB (VmRSS / VmHWM peak): before | after upload | after all finished; HWM growth")
        for label in procs:
            b, u, a = (s.get(label, {}) for s in (before, after_upload, after))
            if not (b and a):
                print(f"  {label}: gone during the run")
                continue
            print(f"  {label:28s} {b['VmRSS'] / 1024:6.0f} / {b['VmHWM'] / 1024:6.0f} | "
                  f"{u['VmRSS'] / 1024:6.0f} / {u['VmHWM'] / 1024:6.0f} | "
                  f"{a['VmRSS'] / 1024:6.0f} / {a['VmHWM'] / 1024:6.0f}; "
                  f"peak growth {(a['VmHWM'] - b['VmHWM']) / 1024:+.0f}")
        print(f"load: {load()}")
        ok = failed == 0 and len(jobs) == len(files)
    finally:
        stop(up, timeout=40)
        with contextlib.suppress(ProcessLookupError):  # anything of its group left behind
            os.killpg(up.pid, signal.SIGKILL)
        if args.keep:
            print(f"logs: {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
