"""Slow clients against `humanseg web`: do /healthz answers stay fast, and are tricklers cut off?

Starts its own `humanseg web` (SQLite and local storage in a temp dir, a Redis/Valkey broker at
--broker), opens --clients connections that POST an upload at one byte a second, and polls
/healthz every 0.25 s meanwhile. Prints health latency percentiles, health failures, and when
the server closed each trickling connection.

    python bench/slow_clients.py                       # the shipped server settings
    python bench/slow_clients.py -- --worker-class gthread --threads 8   # the old server, for comparison
"""

from __future__ import annotations

import argparse
import os
import select
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import requests
from benchlib import free_port, load, stop

ROOT = Path(__file__).resolve().parent.parent


def trickle(port: int, seconds: float, closed_after: list[float]) -> None:
    """POST a multipart upload one byte a second; record when the server closes (or -1)."""
    start = time.monotonic()
    body_len = 200_000
    head = (f"POST /api/v1/jobs HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
            "Content-Type: multipart/form-data; boundary=xyz\r\n"
            f"Content-Length: {body_len}\r\n\r\n").encode()
    payload = b"--xyz\r\nContent-Disposition: form-data; name=\"images\"; filename=\"a.jpg\"\r\n\r\n"
    try:
        sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    except OSError:
        closed_after.append(0.0)
        return
    with sock:
        sock.sendall(head)
        i = 0
        while time.monotonic() - start < seconds:
            try:
                sock.sendall(payload[i % len(payload):i % len(payload) + 1])
            except OSError:
                closed_after.append(time.monotonic() - start)
                return
            i += 1
            readable, _, _ = select.select([sock], [], [], 1.0)
            if readable:  # the server answered (a 408) or closed: either way it let go
                closed_after.append(time.monotonic() - start)
                return
    closed_after.append(-1.0)


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))] if values else float("nan")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, default=30)
    parser.add_argument("--seconds", type=float, default=60.0, help="how long tricklers trickle at most")
    parser.add_argument("--broker", default="redis://127.0.0.1:6379/14")
    parser.add_argument("gunicorn_args", nargs="*", help="extra arguments for gunicorn (after --)")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="slow-clients-"))
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("HUMANSEG_")}
    env.update(HUMANSEG_DATA_DIR=str(tmp), HUMANSEG_BROKER_URL=args.broker, HUMANSEG_PORT=str(port),
               HUMANSEG_SECRET_KEY="bench-secret-not-for-production", HUMANSEG_LOG_LEVEL="WARNING")
    subprocess.run([sys.executable, "-m", "humanseg.cli", "db", "upgrade"], env=env, check=True,
                   capture_output=True)
    log = open(tmp / "web.log", "wb")  # noqa: SIM115 - closed below
    web = subprocess.Popen([sys.executable, "-m", "humanseg.cli", "web", *args.gunicorn_args],
                           env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}/healthz"
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                requests.get(url, timeout=2)
                break
            except requests.RequestException:
                time.sleep(0.2)
        closed: list[float] = []
        threads = [threading.Thread(target=trickle, args=(port, args.seconds, closed), daemon=True)
                   for _ in range(args.clients)]
        for t in threads:
            t.start()
        latencies, failures = [], 0
        t0 = time.monotonic()
        while any(t.is_alive() for t in threads) and time.monotonic() - t0 < args.seconds + 5:
            start = time.monotonic()
            try:
                requests.get(url, timeout=5).raise_for_status()
                latencies.append(time.monotonic() - start)
            except requests.RequestException:
                failures += 1
            time.sleep(0.25)
        for t in threads:
            t.join(5)
        cut = [c for c in closed if c >= 0]
        print(f"server: humanseg web {' '.join(args.gunicorn_args) or '(shipped settings)'}")
        print(f"clients={args.clients} at 1 B/s for up to {args.seconds:.0f}s")
        print(f"healthz: n={len(latencies)} p50={pct(latencies, .5) * 1000:.0f}ms "
              f"p95={pct(latencies, .95) * 1000:.0f}ms max={max(latencies, default=float('nan')) * 1000:.0f}ms "
              f"failed_or_over_5s={failures}")
        print(f"tricklers closed by the server: {len(cut)}/{args.clients}; "
              f"after p50={pct(cut, .5):.1f}s max={max(cut, default=float('nan')):.1f}s")
        print("load:", load())
    finally:
        stop(web)
        log.close()
        subprocess.run(["rm", "-rf", str(tmp)], check=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
