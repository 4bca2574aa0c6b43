"""`humanseg up` keeps the platform up when a child dies: a killed worker (an OOM kill, say) is
restarted with backoff and says so, the web tier answers throughout, and jobs still finish."""

import os
import re
import signal
import subprocess
import sys
import threading
from pathlib import Path

import requests
import support_images as si
from support_live import free_port, wait_until

ROOT = Path(__file__).resolve().parents[2]


STARTED = re.compile(r"event=child_started name=(\w+) pid=(\d+)")


class Up:
    """`humanseg up` as a subprocess whose output is collected by a thread (no pipe fills up)."""

    def __init__(self, env: dict[str, str]):
        # The supervisor's own log lines (child_started) go to the log file; the screen says a crash.
        self.logfile = Path(env["HUMANSEG_DATA_DIR"]) / "up.log"
        self.proc = subprocess.Popen([sys.executable, "-m", "humanseg.cli", "up"], env=env, cwd=ROOT,
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        self.lines: list[str] = []
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            self.lines.append(line)

    def output(self) -> str:
        return "".join(self.lines)

    def pids(self, name: str) -> list[int]:
        logged = self.logfile.read_text(errors="replace") if self.logfile.exists() else ""
        return [int(m.group(2)) for m in STARTED.finditer(logged) if m.group(1) == name]

    def url(self) -> str:
        found = re.search(r"ready at (\S+)", self.output())
        return found.group(1) if found else ""

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.reader.join(10)
        self.proc.stdout.close()
        return self.proc.returncode


def _running(pid: int) -> bool:
    """Whether a process with this pid exists (zombies included: they are not reaped yet)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _healthy(url: str) -> bool:
    try:
        return requests.get(url + "/healthz", timeout=5).status_code == 200
    except requests.RequestException:
        return False


def test_a_killed_worker_is_restarted_and_the_web_keeps_answering(tmp_path, tiny_models):
    env = {k: v for k, v in os.environ.items() if not k.startswith("HUMANSEG_")}
    env.update(HUMANSEG_DATA_DIR=str(tmp_path / "var"), HUMANSEG_PORT=str(free_port()),
               HUMANSEG_MODELS_DIR=str(tiny_models), HUMANSEG_THREADS="1",
               HUMANSEG_LEASE_SECONDS="10")
    up = Up(env)
    try:
        url = wait_until(up.url, 180, "humanseg up ready")
        first = wait_until(lambda: up.pids("worker"), 10, "worker pid logged")[0]

        os.kill(first, signal.SIGKILL)  # what the OOM killer does to Celery's main process

        wait_until(lambda: "worker exited (code -9)" in up.output(), 30, "the crash is reported")
        assert "restarting in" in up.output()
        second = wait_until(lambda: [p for p in up.pids("worker") if p != first], 60, "worker restarted")
        # the new worker runs; the killed one is gone (reaped, not a zombie the supervisor forgot)
        assert _running(second[-1]) and not _running(first), up.output()[-3000:]
        assert up.proc.poll() is None, up.output()[-3000:]
        assert _healthy(url)  # the web tier never went away

        files = [("images", ("after-crash.jpg", si.jpeg()))]
        job = requests.post(url + "/api/v1/jobs", files=files, timeout=30).json()["jobs"][0]

        def finished():
            body = requests.get(f"{url}/api/v1/jobs/{job['id']}", timeout=10).json()
            return body if body["done"] else None

        assert wait_until(finished, 120, "job after the restart", interval=0.5)["status"] == "succeeded"
    finally:
        code = up.stop()
    assert code == 0, up.output()[-3000:]


def test_a_child_that_keeps_crashing_is_restarted_with_growing_backoff(capfd):
    from humanseg.up import Supervisor

    sup = Supervisor(backoff=0.2, max_backoff=0.8, stable_after=60)
    sup.spawn("crasher", [sys.executable, "-c", "raise SystemExit(3)"], dict(os.environ))
    delays = []
    try:
        def restarted_again() -> bool:
            sup.check()
            child = sup.children["crasher"]
            if child.restart_at is not None and len(delays) < child.failures:
                delays.append(child.delay)
            return len(delays) >= 4
        wait_until(restarted_again, 60, "four exits seen")
    finally:
        sup.stop()
    assert delays == [0.2, 0.4, 0.8, 0.8]  # doubling, capped
    assert capfd.readouterr().err.count("crasher exited (code 3)") >= 4
