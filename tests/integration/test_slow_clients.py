"""`humanseg web` under clients that send their upload one byte a second (issue 10, finding 1):
health checks and job polls keep answering while they trickle, and the server cuts each one off
(408, then closed) once its body is late. Functional checks only: generous timeouts, no timings."""

from __future__ import annotations

import os
import re
import select
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import requests
from factories import settings_env
from support_live import free_port, stop_process, wait_until

from humanseg.core import migrate

ROOT = Path(__file__).resolve().parents[2]


CLIENTS = 30
BODY_TIMEOUT = 12  # seconds: long enough to look at the server while all 30 trickle


class Trickler(threading.Thread):
    """One connection POSTing a multipart upload at one byte a second until the server lets go."""

    def __init__(self, port: int, give_up: float):
        super().__init__(daemon=True)
        self.port, self.give_up = port, give_up
        self.connected = threading.Event()
        self.sending = threading.Event()  # its first body byte is out: the server is in its request
        self.answer: bytes | None = None  # what the server sent before closing (b"" if nothing)

    def run(self) -> None:
        head = (f"POST /api/v1/jobs HTTP/1.1\r\nHost: 127.0.0.1:{self.port}\r\n"
                "Content-Type: multipart/form-data; boundary=xyz\r\nContent-Length: 100000\r\n\r\n")
        body = b'--xyz\r\nContent-Disposition: form-data; name="images"; filename="a.jpg"\r\n\r\n'
        start = time.monotonic()
        with socket.create_connection(("127.0.0.1", self.port), timeout=30) as sock:
            sock.sendall(head.encode())
            self.connected.set()
            for i in range(len(body)):
                if time.monotonic() - start > self.give_up:
                    return
                try:
                    sock.sendall(body[i:i + 1])
                except OSError:
                    self.answer = b""
                    return
                self.sending.set()
                if select.select([sock], [], [], 1.0)[0]:
                    try:
                        self.answer = sock.recv(4096)
                    except OSError:
                        self.answer = b""
                    return


@pytest.fixture
def web(tmp_path, redis_url, private_queue):
    port = free_port()
    db_url = f"sqlite:///{tmp_path / 'web.db'}"
    migrate.upgrade(db_url)
    env = {k: v for k, v in os.environ.items() if not k.startswith("HUMANSEG_")}
    env.update(settings_env(data_dir=tmp_path, database_url=db_url, broker_url=redis_url, queue=private_queue,
                            port=port, secret_key="t", log_level="INFO", body_timeout_seconds=BODY_TIMEOUT,
                            body_min_rate=1000))
    with open(tmp_path / "web.log", "wb") as log:
        proc = subprocess.Popen([sys.executable, "-m", "humanseg.cli", "web", "--workers", "1"],
                                env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: proc.poll() is not None or _get(base + "/healthz", 2) == 200, 120, "web up")
        assert proc.poll() is None, (tmp_path / "web.log").read_text()[-3000:]
        yield port, base
    finally:
        stop_process(proc)


def _get(url: str, timeout: float) -> int:
    try:
        return requests.get(url, timeout=timeout).status_code
    except requests.RequestException:
        return 0


def test_web_worker_freezes_what_loading_the_app_made(web, tmp_path):
    # A full collection over the loaded app took ~40 ms: a stall of every request in the process.
    frozen = re.search(r"event=gc_frozen pid=\d+ objects=(\d+)", (tmp_path / "web.log").read_text())
    assert frozen and int(frozen.group(1)) > 10_000


def test_tricklers_neither_stall_health_nor_stay_connected(web):
    port, base = web
    tricklers = [Trickler(port, give_up=120) for _ in range(CLIENTS)]
    for t in tricklers:
        t.start()
    for t in tricklers:
        assert t.connected.wait(30)
    # every trickler inside a request, sending its body
    wait_until(lambda: all(t.sending.is_set() for t in tricklers), 30, "every trickler sending its body")
    # A thread-per-request server had every thread reading a body by now: these waited forever.
    for _ in range(3):
        assert _get(base + "/healthz", 10) == 200
        assert _get(base + "/api/v1/jobs/" + "0" * 32, 10) == 404
    assert sum(t.is_alive() for t in tricklers) == CLIENTS  # ...while all of them still trickle

    wait_until(lambda: not any(t.is_alive() for t in tricklers), 90, "server cut every trickler off")
    answers = [t.answer for t in tricklers]
    assert all(a is not None for a in answers), "a trickler gave up before the server did"
    assert sum(a.startswith(b"HTTP/1.1 408") for a in answers) == CLIENTS, answers[:3]


def _answer(sock: socket.socket, limit: float) -> tuple[bytes, bool]:
    """(what the server sent, whether it closed the connection) within `limit` seconds."""
    got, end = b"", time.monotonic() + limit
    while time.monotonic() < end:
        if not select.select([sock], [], [], 0.2)[0]:
            continue
        try:
            chunk = sock.recv(65536)
        except OSError:
            return got, True
        if not chunk:
            return got, True
        got += chunk
    return got, False


@pytest.mark.parametrize("sent", [0, 70_000])
@pytest.mark.parametrize("path", ["/api/v1/jobs", "/api/v1/jobs/" + "0" * 32 + "/cancel"])
def test_a_body_over_the_limit_is_answered_413_at_once_without_being_read(web, sent, path):
    port, _ = web
    claimed = 10**12  # a terabyte: never sent, so an answer can only come from the header
    head = (f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
            f"Content-Type: multipart/form-data; boundary=xyz\r\nContent-Length: {claimed}\r\n\r\n")
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(head.encode() + b"x" * sent)  # the client goes on sending, as curl and requests do
        answer, closed = _answer(sock, 10)
    assert answer.startswith(b"HTTP/1.1 413"), answer[:300]
    assert b'"request_too_large"' in answer and b"exceeds 1073741824 bytes" in answer, answer
    assert closed, "the server kept the connection to read the rest of the body"
