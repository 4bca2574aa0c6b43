"""`humanseg up` on nothing but the venv: embedded Valkey, SQLite, local storage, web, worker."""

import os
import signal
import subprocess
import sys
from pathlib import Path

import requests
import support_images as si
from support_live import free_port, wait_until

ROOT = Path(__file__).resolve().parents[2]




def start_up(env, *args):
    # Its own process group, like a terminal's foreground job: Ctrl-C reaches the whole group.
    proc = subprocess.Popen([sys.executable, "-m", "humanseg.cli", "up", *args], env=env, cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    lines = []

    def ready_url() -> str | None:  # reads one line of its output per call
        line = proc.stdout.readline()
        if not line and proc.poll() is not None:
            raise AssertionError("humanseg up exited before it was ready:\n" + "".join(lines[-50:]))
        lines.append(line)
        return line.split("ready at", 1)[1].split()[0] if "ready at" in line else None

    try:
        url = wait_until(ready_url, 120, lambda: "humanseg up ready:\n" + "".join(lines[-50:]), interval=0)
        proc.screen = lines  # what it printed up to and with "ready at"
        return proc, url
    except AssertionError:
        proc.kill()
        raise


def stop_up(proc):
    os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C in a terminal does
    try:
        out, _ = proc.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()
        raise
    return proc.returncode, out


def test_up_runs_everything_and_keeps_data(tmp_path, tiny_models):
    env = {k: v for k, v in os.environ.items() if not k.startswith("HUMANSEG_")}
    env.update(HUMANSEG_DATA_DIR=str(tmp_path / "var"), HUMANSEG_PORT=str(free_port()),
               HUMANSEG_MODELS_DIR=str(tiny_models), HUMANSEG_THREADS="1")
    proc, url = start_up(env)
    try:
        files = [("images", (f"p{i}.jpg", si.jpeg())) for i in range(3)]
        body = requests.post(url + "/api/v1/jobs", files=files, timeout=30).json()
        batch = wait_until(lambda: (b := requests.get(f"{url}/api/v1/batches/{body['batch_id']}",
                                                      timeout=10).json())["done"] and b,
                           60, "batch done", interval=0.2)
        assert batch["counts"]["succeeded"] == 3
        assert requests.get(url + "/readyz", timeout=10).status_code == 200
    finally:
        code, out = stop_up(proc)
    assert code == 0, out
    assert (tmp_path / "var" / "humanseg.db").exists()
    # a second run sees the same data
    proc, url = start_up(env)
    try:
        job = requests.get(f"{url}/api/v1/jobs/{body['jobs'][0]['id']}", timeout=10).json()
        assert job["status"] == "succeeded"
    finally:
        code, out = stop_up(proc)
    assert code == 0, out


def _clean_env(tmp_path, tiny_models):
    env = {k: v for k, v in os.environ.items() if not k.startswith("HUMANSEG_")}
    env.update(HUMANSEG_DATA_DIR=str(tmp_path / "var"), HUMANSEG_MODELS_DIR=str(tiny_models),
               HUMANSEG_THREADS="1")
    return env


def test_up_with_a_taken_port_fails_fast_in_one_line(tmp_path, tiny_models):
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = subprocess.run([sys.executable, "-m", "humanseg.cli", "up", "--port", str(port)],
                              env=_clean_env(tmp_path, tiny_models), cwd=ROOT, capture_output=True, text=True,
                              timeout=60)
    assert done.returncode == 2
    errors = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(errors) == 1 and f"port {port}" in errors[0] and "--port" in errors[0] and "HUMANSEG_PORT" in errors[0]
    assert "ready" not in done.stdout and not (tmp_path / "var" / "valkey").exists()  # nothing was started


def test_up_port_flag_and_a_quiet_ctrl_c(tmp_path, tiny_models):
    port = free_port()
    proc, url = start_up(_clean_env(tmp_path, tiny_models), "--port", str(port))
    assert url == f"http://127.0.0.1:{port}"
    assert requests.get(url + "/healthz", timeout=10).status_code == 200
    code, out = stop_up(proc)
    assert code == 0, out
    # The screen says what runs, where, how to stop and where the logs are, in a few short lines;
    # the first run's migrations, the supervisor's children, Celery's banner and the access lines
    # go to the log file.
    before = [line.rstrip() for line in proc.screen if line.strip()]
    assert len(before) <= 5 and all(line.startswith("humanseg: ") and len(line) <= 160 for line in before), before
    logfile = tmp_path / "var" / "up.log"
    assert any(f"logs go to {logfile}" in line for line in before) and "ready at" in before[-1], before
    assert [line for line in out.splitlines() if line.strip()] == ["humanseg: stopping...", "humanseg: stopped"]
    logged = logfile.read_text()
    assert "celery@" in logged and "event=heartbeat_started" in logged  # the worker's lines
    assert "Running upgrade" in logged and "event=child_started name=worker" in logged  # the supervisor's
