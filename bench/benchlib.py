"""Small helpers the bench scripts share (run them as `python bench/<name>.py`)."""
from __future__ import annotations

import subprocess


def load() -> str:
    """This machine's `uptime` line: figures are only comparable at a similar load."""
    return subprocess.run(["uptime"], check=False, capture_output=True, text=True).stdout.strip()


def stop(proc: subprocess.Popen, timeout: float = 20) -> None:
    """SIGTERM, then SIGKILL if the process does not end in time."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
