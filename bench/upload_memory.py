"""Memory of the web process through one large upload: does it stay flat with the request's size?

Starts its own `humanseg web` (one gunicorn worker; SQLite and local storage in a temp dir; the
broker at --broker, on a queue nobody consumes), sends one multipart request of about --mb MB
(copies of one incompressible PNG just under the per-file limit), and prints the worker's
resident memory before and after, and its peak (VmHWM).

    python bench/upload_memory.py --mb 500
"""

from __future__ import annotations

import argparse
import os
import random
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import requests
from benchlib import free_port, load, stop
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
MiB = 1024 * 1024


def status_kib(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise KeyError(field)


def noise_png(side: int) -> bytes:
    """side x side random RGB pixels: PNG cannot compress them (about 3 bytes per pixel)."""
    import io

    img = Image.frombytes("RGB", (side, side), random.Random(0).randbytes(side * side * 3))
    buf = io.BytesIO()
    img.save(buf, "PNG", compress_level=1)
    return buf.getvalue()


def write_body(path: Path, part: bytes, count: int, boundary: str) -> int:
    with open(path, "wb") as fh:
        for i in range(count):
            fh.write(f'--{boundary}\r\nContent-Disposition: form-data; name="images"; '
                     f'filename="noise{i}.png"\r\nContent-Type: image/png\r\n\r\n'.encode())
            fh.write(part)
            fh.write(b"\r\n")
        fh.write(f"--{boundary}--\r\n".encode())
    return path.stat().st_size


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mb", type=int, default=500, help="request size in MB (about)")
    parser.add_argument("--broker", default="redis://127.0.0.1:6379/14")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="upload-memory-"))
    part = noise_png(2860)  # about 24.5 MB, under the 25 MiB default per file
    count = max(1, round(args.mb * 1_000_000 / len(part)))
    boundary = uuid.uuid4().hex
    size = write_body(tmp / "body", part, count, boundary)
    port, queue = free_port(), f"bench-{uuid.uuid4().hex[:8]}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("HUMANSEG_")}
    env.update(HUMANSEG_DATA_DIR=str(tmp / "var"), HUMANSEG_BROKER_URL=args.broker,
               HUMANSEG_QUEUE=queue, HUMANSEG_PORT=str(port), HUMANSEG_LOG_LEVEL="WARNING",
               HUMANSEG_SECRET_KEY="bench-secret-not-for-production", HUMANSEG_MAX_FILES="1000")
    subprocess.run([sys.executable, "-m", "humanseg.cli", "db", "upgrade"], env=env, check=True,
                   capture_output=True)
    log = open(tmp / "web.log", "wb")  # noqa: SIM115 - closed below
    web = subprocess.Popen([sys.executable, "-m", "humanseg.cli", "web", "--workers", "1"], env=env,
                           cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                requests.get(base + "/healthz", timeout=2)
                break
            except requests.RequestException:
                time.sleep(0.2)
        for _ in range(5):  # warm up: imports and first-request allocations happen here
            requests.get(base + "/healthz", timeout=5)
        children = Path(f"/proc/{web.pid}/task/{web.pid}/children").read_text().split()
        worker = int(children[0])
        rss0, hwm0 = status_kib(worker, "VmRSS"), status_kib(worker, "VmHWM")
        t0 = time.monotonic()
        with open(tmp / "body", "rb") as body:
            resp = requests.post(base + "/api/v1/jobs", data=body, timeout=600, headers={
                "Content-Type": f"multipart/form-data; boundary={boundary}"})
        seconds = time.monotonic() - t0
        rss1, hwm1 = status_kib(worker, "VmRSS"), status_kib(worker, "VmHWM")
        print(f"request: {size / 1e6:.0f} MB, {count} PNGs of {len(part) / 1e6:.1f} MB "
              f"({2860 * 2860 / 1e6:.1f} MP each); answer {resp.status_code} in {seconds:.1f}s")
        print(f"web worker RSS: before={rss0 / 1024:.0f} MiB after={rss1 / 1024:.0f} MiB "
              f"growth={(rss1 - rss0) / 1024:.0f} MiB; peak (VmHWM) {hwm0 / 1024:.0f} -> "
              f"{hwm1 / 1024:.0f} MiB, growth={(hwm1 - hwm0) / 1024:.0f} MiB")
        print("load:", load())
    finally:
        stop(web)
        log.close()
        import redis

        client = redis.Redis.from_url(args.broker)
        client.delete(queue)
        client.close()
        subprocess.run(["rm", "-rf", str(tmp)], check=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
