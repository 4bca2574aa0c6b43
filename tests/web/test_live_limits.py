"""The web tier as it runs (`humanseg web`, gunicorn): waits bounded per process, long URLs
answered by the app, and a rebound Host refused over real HTTP.

The server is one process with two wait slots; no worker consumes its queue, so every job stays
queued until the test finishes it in the database.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import uuid
from pathlib import Path

import pytest
import redis
import requests
import support_images as si
from sqlalchemy import func, select, update
from support_live import stop_process, wait_until

from humanseg.core import migrate
from humanseg.core.db import make_engine, make_sessionmaker, session_scope
from humanseg.core.models import Job, JobStatus, utcnow
from humanseg.core.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
SLOTS = 2


class Server:
    """One `humanseg web` subprocess and the database it writes to."""

    def __init__(self, base: str, sessions) -> None:
        self.base, self.sessions = base, sessions

    def url(self, path: str) -> str:
        return self.base + path

    def jobs(self) -> list[Job]:
        with session_scope(self.sessions) as s:
            return list(s.scalars(select(Job).order_by(Job.created_at)))

    def job_count(self) -> int:
        with session_scope(self.sessions) as s:
            return s.scalar(select(func.count()).select_from(Job))

    def fail_jobs(self, ids: list[str]) -> None:
        with session_scope(self.sessions) as s:
            s.execute(update(Job).where(Job.id.in_(ids)).values(
                status=JobStatus.failed, error="stopped by the test", finished_at=utcnow()))


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _answers(url: str) -> bool:
    try:
        return requests.get(url, timeout=2).status_code == 200
    except requests.RequestException:
        return False


@pytest.fixture(scope="module")
def server(tmp_path_factory, redis_url):
    tmp = tmp_path_factory.mktemp("live-web")
    db_url = f"sqlite:///{tmp / 'web.db'}"
    migrate.upgrade(db_url)
    port, queue = _free_port(), f"humanseg-test-{uuid.uuid4().hex[:8]}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("HUMANSEG_")}
    values = {"DATA_DIR": tmp, "DATABASE_URL": db_url, "BROKER_URL": redis_url, "QUEUE": queue,
              "HOST": "127.0.0.1", "PORT": port, "SECRET_KEY": "t", "LOG_LEVEL": "INFO",
              "SEGMENT_WAIT_SECONDS": 300, "SEGMENT_WAIT_SLOTS": SLOTS}
    env.update({f"HUMANSEG_{k}": str(v) for k, v in values.items()})
    Settings.from_env(env)  # the values parse
    log_path = tmp / "web.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "humanseg.cli", "web", "--workers", "1"],
            env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    engine = make_engine(db_url)
    try:
        wait_until(lambda: proc.poll() is not None or _answers(base + "/healthz"), 120, "web answers")
        assert proc.poll() is None, log_path.read_text(errors="replace")[-3000:]
        yield Server(base, make_sessionmaker(engine))
    finally:
        engine.dispose()
        stop_process(proc)
        client = redis.Redis.from_url(redis_url)
        client.delete(queue)
        client.close()


def _segment(server: Server, timeout: float) -> requests.Response:
    return requests.post(server.url("/api/v1/segment"), files={"image": ("a.jpg", si.jpeg())},
                         timeout=timeout)


def test_waits_beyond_the_slots_answer_at_once_and_health_stays_up(server):
    before = server.job_count()
    answers: dict[int, requests.Response | Exception] = {}

    def wait_in_slot(n: int) -> None:
        try:
            answers[n] = _segment(server, timeout=240)
        except requests.RequestException as exc:  # reported by the assertion below
            answers[n] = exc

    waiting = [threading.Thread(target=wait_in_slot, args=(n,), daemon=True) for n in range(SLOTS)]
    for t in waiting:
        t.start()
    # A request takes its slot before its job exists: both jobs in the table = both slots taken.
    wait_until(lambda: server.job_count() == before + SLOTS, 60, "both waiting requests hold a slot")
    held = [j.id for j in server.jobs()[before:]]

    # Slots full: answered now, with the job to poll (a 202, as if it had not asked to wait).
    third = _segment(server, timeout=60)
    assert third.status_code == 202, third.text
    assert third.json()["status"] == "queued"
    assert third.headers["Location"] == f"/api/v1/jobs/{third.json()['id']}"
    prefer = requests.post(server.url("/api/v1/jobs"), headers={"Prefer": "wait=100"},
                           files={"images": ("b.jpg", si.jpeg())}, timeout=60)
    assert prefer.status_code == 202 and "Preference-Applied" not in prefer.headers
    # Everything else is still served.
    assert requests.get(server.url("/healthz"), timeout=30).status_code == 200
    assert requests.get(server.url(f"/api/v1/jobs/{held[0]}"), timeout=30).json()["status"] == "queued"
    assert all(t.is_alive() for t in waiting)  # ...while the first two are still waiting

    server.fail_jobs(held)  # their jobs end: the waits return
    for t in waiting:
        t.join(120)
    assert sorted(getattr(r, "status_code", r) for r in answers.values()) == [422, 422], answers
    # The slots are free again: a wait is granted (wait=0 comes back at once).
    again = requests.post(server.url("/api/v1/jobs"), headers={"Prefer": "wait=0"},
                          files={"images": ("c.jpg", si.jpeg())}, timeout=60)
    assert again.headers.get("Preference-Applied") == "wait=0"


def test_long_urls_get_the_apps_own_414(server):
    api = requests.get(server.url("/api/v1/jobs/" + "a" * 5000), timeout=30)
    assert api.status_code == 414 and api.json()["error"]["code"] == "url_too_long"
    page = requests.get(server.url("/jobs/" + "a" * 5000), timeout=30)
    assert page.status_code == 414 and page.headers["Content-Type"].startswith("text/html")


def test_a_rebound_host_is_refused_over_http(server):
    job = requests.post(server.url("/api/v1/jobs"), files={"images": ("d.jpg", si.jpeg())},
                        timeout=60).json()["jobs"][0]
    evil = {"Host": "attacker.example", "Origin": "http://attacker.example"}
    resp = requests.delete(server.url(f"/api/v1/jobs/{job['id']}"), headers=evil, timeout=30)
    assert resp.status_code == 400 and resp.json()["error"]["code"] == "host_not_allowed"
    assert requests.get(server.url(job["url"]), timeout=30).status_code == 200
