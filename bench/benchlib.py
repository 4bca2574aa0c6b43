"""Small helpers the bench scripts share (run them as `python bench/<name>.py`)."""
from __future__ import annotations

import socket
import subprocess
import time
from datetime import datetime

import requests


def stop(proc: subprocess.Popen, timeout: float = 20) -> None:
    """Stop a child a bench script or a test started: SIGTERM, then SIGKILL if it has not ended
    after `timeout` s. (The product never needs it: `humanseg up` stops its children in order.)"""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def load() -> str:
    """This machine's `uptime` line: figures are only comparable at a similar load."""
    return subprocess.run(["uptime"], check=False, capture_output=True, text=True).stdout.strip()


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def when(text: str) -> float:
    """An API timestamp (ISO 8601, maybe with Z) as epoch seconds."""
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def all_jobs(batch_url: str) -> list[dict]:
    """Every job of a batch (its absolute URL), page by page."""
    jobs, cursor = [], ""
    while True:
        page = requests.get(f"{batch_url}?limit=500&cursor={cursor}", timeout=30).json()
        jobs += page["jobs"]
        cursor = page["next_cursor"]
        if not cursor:
            return jobs


def wait_done(batch_url: str, t0: float, timeout: float, every: float = 0.5) -> list[dict]:
    """Poll a batch (absolute URL) until done, at most `timeout` s after t0; then all its jobs."""
    while not requests.get(batch_url, timeout=30).json()["done"]:
        if time.time() - t0 > timeout:
            raise RuntimeError(f"batch not done in {timeout:.0f}s: {batch_url}")
        time.sleep(every)
    return all_jobs(batch_url)


def last_finished(jobs: list[dict]) -> float:
    """Epoch seconds of the latest finished_at among the jobs."""
    return max(when(j["finished_at"]) for j in jobs if j["finished_at"])
