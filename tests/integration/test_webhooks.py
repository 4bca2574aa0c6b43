"""Webhooks end to end: a real worker delivers signed events to a real local HTTP receiver."""

from __future__ import annotations

import io

import pytest
import support_images as si
from factories import batch_row, job_row
from support_live import running_test_worker, wait_until, worker_env
from support_webhooks import SECRET, Receiver, verify

from humanseg.core.db import make_sessionmaker, session_scope
from humanseg.core.storage import make_storage
from humanseg.web import create_app


@pytest.fixture(scope="module")
def live(tmp_path_factory, redis_url, tiny_models):
    tmp = tmp_path_factory.mktemp("webhooks")
    env = worker_env(redis_url, tmp, tiny_models, storage="local", lease_seconds=30,
                     secret_key="test-secret", webhooks=1, webhook_allow_hosts="127.0.0.1",
                     webhook_retry_seconds=0.5)
    with running_test_worker(env, tmp) as (settings, engine):
        app = create_app(settings)
        app.config["TESTING"] = True
        receiver = Receiver()
        try:
            yield app, make_sessionmaker(engine), make_storage(settings), receiver
        finally:
            receiver.close()


def test_signed_events_are_delivered_and_a_failed_delivery_is_retried(live):
    app, _, _, receiver = live
    receiver.answers.append(500)  # the first delivery fails; its retry must get through
    client = app.test_client()
    resp = client.post("/api/v1/jobs", content_type="multipart/form-data", data={
        "images": [(io.BytesIO(si.jpeg()), "a.jpg"), (io.BytesIO(si.png()), "b.png")],
        "webhook_url": receiver.url + "/hook", "webhook_secret": SECRET})
    assert resp.status_code == 202
    assert resp.json["webhook"] == {"url": receiver.url + "/hook",
                                    "events": ["job.finished", "batch.finished"], "secret": SECRET}
    batch_id = resp.json["batch_id"]
    job_ids = {j["id"] for j in resp.json["jobs"]}

    got = wait_until(lambda: len(d := receiver.delivered("/hook")) == 3 and d, 90,
                     "two job events and one batch event delivered")
    for request in receiver.received:
        verify(SECRET, request)
    jobs = [r["event"] for r in got if r["event"]["type"] == "job.finished"]
    assert {e["data"]["job"]["id"] for e in jobs} == job_ids
    assert all(e["data"]["job"]["status"] == "succeeded" for e in jobs)
    (batch_event,) = [r["event"] for r in got if r["event"]["type"] == "batch.finished"]
    assert batch_event["data"]["batch"]["counts"]["succeeded"] == 2

    failed_first = receiver.received[0]
    assert failed_first["answered"] == 500
    retried = [r for r in receiver.received if r["headers"]["webhook-id"]
               == failed_first["headers"]["webhook-id"]]
    assert [r["answered"] for r in retried] == [500, 204] and retried[0]["body"] == retried[1]["body"]

    # The receiver answers before the worker records the answer: poll the record too.
    records = wait_until(lambda: (r := client.get(f"/api/v1/batches/{batch_id}/webhooks").json)
                         and all(d["status"] == "succeeded" for d in r["deliveries"]) and r,
                         30, "deliveries recorded as succeeded")
    assert records["webhook"] == {"url": receiver.url + "/hook",
                                  "events": ["job.finished", "batch.finished"]}
    by_id = {d["id"]: d for d in records["deliveries"]}
    assert len(by_id) == 3 and all(d["status"] == "succeeded" for d in by_id.values())
    first = by_id[failed_first["headers"]["webhook-id"]]
    assert first["attempts"] == 2 and "500" in first["last_error"]
    assert first["last_status_code"] == 204 and first["delivered_at"]
    assert client.get(f"/api/v1/batches/{batch_id}").json["webhook"]["url"] == receiver.url + "/hook"


def test_cancelling_sends_job_and_batch_events(live):
    app, sessions, storage, receiver = live
    with session_scope(sessions) as s:  # two queued jobs whose doorbells are never rung
        batch = batch_row(s, name="c", job_count=2, webhook_url=receiver.url + "/cancel",
                          webhook_events="job.finished,batch.finished", webhook_secret=SECRET)
        for seq in range(2):
            job_row(s, batch.id, storage=storage, seq=seq, filename=f"{seq}.jpg")
        batch_id = batch.id
    resp = app.test_client().post(f"/api/v1/batches/{batch_id}/cancel")
    assert resp.status_code == 200 and resp.json["cancelled"] == 2
    got = wait_until(lambda: len(d := receiver.delivered("/cancel")) == 3 and d, 60,
                     "cancel events delivered")
    for request in got:
        verify(SECRET, request)
    kinds = sorted((r["event"]["type"], r["event"]["data"].get("job", {}).get("status")) for r in got)
    assert kinds == [("batch.finished", None), ("job.finished", "cancelled"),
                     ("job.finished", "cancelled")]
