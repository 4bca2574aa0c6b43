"""Storage answering 503: uploads get a clean 503, jobs go back to the queue or fail with a reason.

The S3 endpoint is a small real HTTP proxy in front of the moto server: it forwards every request,
except those whose path names a "failing" marker, which it answers 503 the way S3 does.
"""

from __future__ import annotations

import http.client
import io
import threading
import uuid
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import support_images as si
from factories import insert_job, make_settings
from sqlalchemy import func, select
from support_live import load_job, queued_job_ids, running_test_worker, wait_until, worker_env

from humanseg.core import migrate
from humanseg.core.db import make_engine, make_sessionmaker
from humanseg.core.models import Job, JobStatus
from humanseg.core.queue import make_sender, send_segment
from humanseg.core.results import stored_kinds
from humanseg.web import create_app

ROOT = Path(__file__).resolve().parents[2]
S3_ENV = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
          "AWS_DEFAULT_REGION": "us-east-1"}
UNAVAILABLE = (b'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>ServiceUnavailable</Code>'
               b"<Message>Service is unable to handle request.</Message>"
               b"<RequestId>0</RequestId></Error>")
HOP = {"connection", "keep-alive", "transfer-encoding", "expect", "content-length", "server", "date"}


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def _handle(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else None
        proxy: FaultyS3 = self.server.owner
        marker = next((m for m in list(proxy.failing) if m in self.path), None)
        if marker is not None:
            proxy.refused[marker] += 1
            self._reply(503, [("Content-Type", "application/xml")], UNAVAILABLE)
            return
        conn = http.client.HTTPConnection(proxy.upstream.hostname, proxy.upstream.port, timeout=30)
        try:
            conn.request(self.command, self.path, body=body,
                         headers={k: v for k, v in self.headers.items() if k.lower() not in HOP})
            resp = conn.getresponse()
            data = resp.read()
            self._reply(resp.status, [(k, v) for k, v in resp.getheaders() if k.lower() not in HOP],
                        data)
        finally:
            conn.close()

    def _reply(self, status: int, headers: list[tuple[str, str]], data: bytes) -> None:
        self.send_response(status)
        for k, v in headers:
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _handle

    def log_message(self, *args) -> None:  # keep test output quiet
        pass


class FaultyS3:
    """A real HTTP endpoint in front of moto that answers 503 for paths naming a failing marker."""

    def __init__(self, upstream: str):
        self.upstream = urlsplit(upstream)
        self.failing: set[str] = set()
        self.refused: Counter[str] = Counter()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self.server.daemon_threads = True
        self.server.owner = self
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def faulty_s3(moto_endpoint):
    proxy = FaultyS3(moto_endpoint)
    yield proxy
    proxy.close()


def server_details(proxy: FaultyS3, tmp: Path) -> list[str]:
    """Things about the servers that must never reach a client's message."""
    return [proxy.url, "127.0.0.1", proxy.url.rsplit(":", 1)[1], "http://", str(tmp), str(ROOT)]


class Live:
    """A real Celery worker process on S3 (through the proxy), SQLite and Redis."""

    def __init__(self, settings, sessions, direct_storage, tmp):
        self.settings, self.sessions, self.direct, self.tmp = settings, sessions, direct_storage, tmp

    def ring(self, job_id: str) -> None:
        sender = make_sender(self.settings)
        try:
            send_segment(sender, job_id, self.settings.queue)
        finally:
            sender.close()


@pytest.fixture(scope="module")
def live(tmp_path_factory, redis_url, faulty_s3, make_s3_storage, tiny_models):
    tmp = tmp_path_factory.mktemp("s3-503")
    bucket = f"b-{uuid.uuid4().hex[:8]}"
    direct = make_s3_storage(bucket)  # straight to moto: set up originals and check results
    env = worker_env(redis_url, tmp, tiny_models, storage="s3", s3_endpoint_url=faulty_s3.url,
                     s3_bucket=bucket, max_attempts=2)
    env.update(S3_ENV)
    with running_test_worker(env, tmp) as (settings, engine):
        yield Live(settings, make_sessionmaker(engine), direct, tmp)


def test_storage_503_gives_the_job_back_to_the_queue_then_it_succeeds(live, faulty_s3):
    job_id = insert_job(live.direct, live.sessions, si.jpeg(), name="flaky")
    faulty_s3.failing.add(job_id)
    live.ring(job_id)
    given_back = wait_until(lambda: (j := load_job(live.sessions, job_id)).attempts == 1
                            and j.status is JobStatus.queued and j, 60, "job given back to the queue")
    faulty_s3.failing.discard(job_id)  # the storage recovers before the retry (3 s) arrives
    assert faulty_s3.refused[job_id] >= 1
    assert given_back.error.startswith(f"retrying: reading original: s3 error on originals/{job_id}")
    assert "ServiceUnavailable" in given_back.error
    assert not [d for d in server_details(faulty_s3, live.tmp) if d in given_back.error]

    done = wait_until(lambda: (j := load_job(live.sessions, job_id)).status.is_terminal() and j, 60,
                      "job finished")
    assert done.status is JobStatus.succeeded and done.attempts == 2 and done.error is None
    assert all(live.direct.exists(kind.key(job_id)) for kind in stored_kinds())


def test_storage_503_that_persists_fails_the_job_with_a_clean_reason(live, faulty_s3):
    job_id = insert_job(live.direct, live.sessions, si.jpeg(), name="down")
    faulty_s3.failing.add(job_id)
    try:
        live.ring(job_id)
        done = wait_until(lambda: (j := load_job(live.sessions, job_id)).status.is_terminal() and j, 60,
                          "job finished")
    finally:
        faulty_s3.failing.discard(job_id)
    assert done.status is JobStatus.failed and done.attempts == 2  # HUMANSEG_MAX_ATTEMPTS=2
    assert done.error.startswith("gave up after 2 attempts: reading original: s3 error on "
                                 f"originals/{job_id}.jpg: ")
    assert "ServiceUnavailable" in done.error
    assert not [d for d in server_details(faulty_s3, live.tmp) if d in done.error]
    assert done.finished_at is not None and done.lease_expires_at is None


def test_upload_while_storage_answers_503_is_a_clean_503_and_queues_nothing(
        tmp_path, monkeypatch, redis_url, private_queue, faulty_s3, make_s3_storage):
    for k, v in S3_ENV.items():
        monkeypatch.setenv(k, v)
    bucket = f"b-{uuid.uuid4().hex[:8]}"
    make_s3_storage(bucket)
    db_url = f"sqlite:///{tmp_path / 'web.db'}"
    migrate.upgrade(db_url)
    settings = make_settings(tmp_path, database_url=db_url, broker_url=redis_url, queue=private_queue,
                             storage="s3", s3_endpoint_url=faulty_s3.url, s3_bucket=bucket)
    app = create_app(settings)
    svc = app.extensions["humanseg"]
    marker = f"/{bucket}/originals/"
    faulty_s3.failing.add(marker)
    try:
        files = [(io.BytesIO(si.jpeg()), "a.jpg"), (io.BytesIO(si.png()), "b.png")]
        resp = app.test_client().post("/api/v1/jobs", data={"images": files, "batch_name": "x"},
                                      content_type="multipart/form-data")
        with svc.sessions() as s:
            jobs = s.scalar(select(func.count()).select_from(Job))
    finally:
        faulty_s3.failing.discard(marker)
        svc.engine.dispose()
    assert resp.status_code == 503, resp.json
    error = resp.json["error"]
    # One policy for every storage failure: a stable message to the client, the details to the log.
    assert error == {"code": "storage_unavailable", "message": "storage is unavailable; try again later"}
    assert not [d for d in server_details(faulty_s3, tmp_path) if d in error["message"]]
    assert faulty_s3.refused[marker] >= 1
    assert jobs == 0 and queued_job_ids(redis_url, private_queue) == []


# LocalStorage's errors carry the OSError text, which quotes the absolute server path: it must not
# reach the API's message nor the job's recorded error.


def test_local_storage_failure_on_upload_names_no_server_path(tmp_path, redis_url, private_queue):
    db_url = f"sqlite:///{tmp_path / 'web.db'}"
    migrate.upgrade(db_url)
    settings = make_settings(tmp_path, database_url=db_url, broker_url=redis_url, queue=private_queue)
    app = create_app(settings)
    (settings.storage_dir / "originals").write_bytes(b"a file where the folder must go")
    try:
        resp = app.test_client().post("/api/v1/jobs", data={"images": [(io.BytesIO(si.jpeg()), "a.jpg")]},
                                      content_type="multipart/form-data")
    finally:
        app.extensions["humanseg"].engine.dispose()
    assert resp.status_code == 503 and resp.json["error"]["code"] == "storage_unavailable"
    assert str(tmp_path) not in resp.json["error"]["message"]


def test_local_storage_failure_in_the_worker_records_no_server_path(tmp_path):
    from humanseg.core.storage import LocalStorage
    from humanseg.worker.pipeline import run_job

    db_url = f"sqlite:///{tmp_path / 'w.db'}"
    migrate.upgrade(db_url)
    settings = make_settings(tmp_path, database_url=db_url)
    engine = make_engine(db_url)
    sessions, storage = make_sessionmaker(engine), LocalStorage(tmp_path / "storage")
    try:
        job_id = insert_job(storage, sessions, si.jpeg())
        original = storage.root / load_job(sessions, job_id).original_key
        original.unlink()
        original.mkdir()  # reading it fails with an OSError (not "missing"): a transient error
        assert run_job(job_id, settings, storage, sessions, None).status == "retry"
        error = load_job(sessions, job_id).error
    finally:
        engine.dispose()
    assert error.startswith("retrying: reading original")
    assert str(tmp_path) not in error
