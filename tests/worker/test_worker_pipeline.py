"""pipeline.run_job and the sweeper on a real database, real storage and the tiny predictor."""

import logging
import re
import time
from datetime import timedelta

import numpy as np
import pytest
import support_images as si
from factories import insert_job, make_settings
from PIL import Image
from sqlalchemy import update
from support_live import queued_job_ids

from humanseg.core.db import make_engine, make_sessionmaker, session_scope
from humanseg.core.models import Job, JobStatus, utcnow
from humanseg.core.queue import make_sender
from humanseg.core.results import (
    on_request_kinds,
    result_key,
    result_keys,
    stored_kinds,
)
from humanseg.core.storage import LocalStorage
from humanseg.worker.pipeline import retry_delay, run_job
from humanseg.worker.stages import STAGES
from humanseg.worker.sweeper import sweep


@pytest.fixture(scope="module")
def predictor(tiny_models):
    """The tiny registry's models, as a worker process holds them (loaded on first use)."""
    from humanseg.core.registry import Registry
    from humanseg.ml.registry import LoadedModels

    return LoadedModels(Registry.load(tiny_models), limit=2, backend="onnx", threads=1)


@pytest.fixture
def env(tmp_path, db_url, redis_url, private_queue):
    settings = make_settings(tmp_path, database_url=db_url, broker_url=redis_url, queue=private_queue,
                             max_attempts=2, stale_queued_seconds=60)
    engine = make_engine(db_url)
    yield settings, make_sessionmaker(engine), LocalStorage(tmp_path / "storage")
    engine.dispose()


def add_job(sessions, storage, data: bytes, created_ago: float = 0, outputs: str | None = None,
            model: str | None = None) -> str:
    return insert_job(storage, sessions, data, created_at=utcnow() - timedelta(seconds=created_ago),
                      outputs=outputs, model=model)


def load(sessions, job_id) -> Job:
    with session_scope(sessions) as s:
        return s.get(Job, job_id)


def test_run_job_writes_mask_alpha_thumb_and_is_idempotent(env, predictor):
    settings, sessions, storage = env
    job_id = add_job(sessions, storage, si.exif_rotated_jpeg((80, 40)))
    assert run_job(job_id, settings, storage, sessions, predictor).status == "succeeded"
    job = load(sessions, job_id)
    assert job.status is JobStatus.succeeded and job.attempts == 1 and job.lease_expires_at is None
    assert all(storage.exists(kind.key(job_id)) for kind in stored_kinds())
    # cut-outs and overlays are made when first asked for, not by every job
    assert not any(storage.exists(kind.key(job_id)) for kind in on_request_kinds())
    with Image.open(storage.path(result_key(job_id, "mask"))) as mask, \
            Image.open(storage.path(result_key(job_id, "alpha"))) as alpha:
        assert mask.size == alpha.size == (40, 80) and mask.mode == alpha.mode == "L"
        binary, soft = np.asarray(mask), np.asarray(alpha)
    # one probability map: the mask is where the soft alpha passes half
    assert set(np.unique(binary)) <= {0, 255}
    assert np.array_equal(binary == 255, soft >= 128)
    # a second delivery is a no-op
    assert run_job(job_id, settings, storage, sessions, predictor).status == "skipped"
    assert load(sessions, job_id).attempts == 1


def test_outputs_chosen_at_upload_are_made_by_the_worker(env, predictor):
    settings, sessions, storage = env
    job_id = add_job(sessions, storage, si.jpeg((90, 60)), outputs="cutout,overlay")
    assert run_job(job_id, settings, storage, sessions, predictor).status == "succeeded"
    assert all(storage.exists(k) for k in result_keys(job_id).values())
    with Image.open(storage.path(result_key(job_id, "cutout"))) as cut, \
            Image.open(storage.path(result_key(job_id, "alpha"))) as alpha:
        assert cut.mode == "RGBA" and cut.size == (90, 60)
        assert np.array_equal(np.asarray(cut.getchannel("A")), np.asarray(alpha))


def test_expired_lease_can_be_reclaimed_and_old_owner_cannot_finish(env, predictor):
    settings, sessions, storage = env
    job_id = add_job(sessions, storage, si.jpeg())
    with session_scope(sessions) as s:
        s.execute(update(Job).where(Job.id == job_id).values(
            status=JobStatus.running, attempts=1, lease_expires_at=utcnow() - timedelta(seconds=1)))
    assert run_job(job_id, settings, storage, sessions, predictor).status == "succeeded"
    assert load(sessions, job_id).attempts == 2


def test_undecodable_original_fails_without_retry(env, predictor):
    settings, sessions, storage = env
    job_id = add_job(sessions, storage, si.truncated_jpeg())
    out = run_job(job_id, settings, storage, sessions, predictor)
    job = load(sessions, job_id)
    assert out.status == "failed" and job.status is JobStatus.failed
    assert "decode" in job.error and job.finished_at is not None


def test_missing_original_fails(env, predictor):
    settings, sessions, storage = env
    job_id = add_job(sessions, storage, si.jpeg())
    storage.delete(load(sessions, job_id).original_key)
    assert run_job(job_id, settings, storage, sessions, predictor).status == "failed"


def _block_results(storage, job_id):
    """A plain file where the job's results folder must go: every result write fails with an OSError."""
    blocker = storage.root / "results" / job_id
    blocker.parent.mkdir(parents=True, exist_ok=True)
    blocker.write_bytes(b"in the way")
    return blocker


def test_storage_write_error_requeues_with_backoff_then_succeeds(env, predictor):
    settings, sessions, storage = env
    job_id = add_job(sessions, storage, si.jpeg())
    blocker = _block_results(storage, job_id)
    out = run_job(job_id, settings, storage, sessions, predictor)
    job = load(sessions, job_id)
    assert out.status == "retry" and out.retry_in == retry_delay(1, settings) and "writing results" in out.reason
    assert job.status is JobStatus.queued and job.error.startswith("retrying: writing results")
    assert job.lease_expires_at is None and job.finished_at is None
    # The storage recovers; the next delivery finishes the job and clears the error.
    blocker.unlink()
    assert run_job(job_id, settings, storage, sessions, predictor).status == "succeeded"
    job = load(sessions, job_id)
    assert job.status is JobStatus.succeeded and job.attempts == 2 and job.error is None
    assert all(storage.exists(kind.key(job_id)) for kind in stored_kinds())


def test_storage_write_error_fails_the_job_once_attempts_run_out(env, predictor):
    settings, sessions, storage = env  # HUMANSEG_MAX_ATTEMPTS=2
    job_id = add_job(sessions, storage, si.jpeg())
    _block_results(storage, job_id)
    assert run_job(job_id, settings, storage, sessions, predictor).status == "retry"
    out = run_job(job_id, settings, storage, sessions, predictor)
    job = load(sessions, job_id)
    assert out.status == "failed" and job.status is JobStatus.failed and job.attempts == 2
    assert job.error.startswith("gave up after 2 attempts: writing results") and job.finished_at is not None


class Midway:
    """The real predictor, with something else happening to the job while it predicts."""

    def __init__(self, models, meanwhile):
        self.models, self.meanwhile = models, meanwhile
        self.model: str | None = None

    def get(self, name):
        self.model = name
        return self

    def segment(self, image):
        self.meanwhile()
        return self.models.get(self.model).segment(image)


def test_job_done_logs_where_the_time_went(env, predictor, caplog):
    settings, sessions, storage = env
    job_id = add_job(sessions, storage, si.jpeg((90, 60)), created_ago=5)
    caplog.set_level(logging.INFO, logger="humanseg.worker.pipeline")
    slow_model = Midway(predictor, lambda: time.sleep(0.05))
    assert run_job(job_id, settings, storage, sessions, slow_model).status == "succeeded"
    [line] = [r.getMessage() for r in caplog.records if r.getMessage().startswith("event=job_done")]
    fields = dict(pair.split("=", 1) for pair in line.split())
    assert fields["job_id"] == job_id and fields["recorded"] == "True"
    ms = {k: float(v) for k, v in fields.items() if k.endswith("_ms")}
    assert set(ms) == {f"{s}_ms" for s in STAGES} | {"queue_wait_ms", "total_ms"}
    assert ms["queue_wait_ms"] >= 5000  # uploaded 5 s before the claim
    assert ms["model_ms"] >= 50  # the sleep sits inside the timed model call
    # as logged: not negative, one decimal (a local read can round to 0.0; the sum below allows for it)
    assert all(re.fullmatch(r"\d+\.\d", fields[k]) for k in ms), fields
    assert sum(ms[f"{s}_ms"] for s in STAGES) <= ms["total_ms"] + 0.5  # each rounded to 0.1


def test_job_deleted_while_running_leaves_no_result_files(env, predictor):
    settings, sessions, storage = env
    job_id = add_job(sessions, storage, si.jpeg())

    def user_deletes_the_job():  # as the API does: the row first, then the files
        with session_scope(sessions) as s:
            s.delete(s.get(Job, job_id))

    assert run_job(job_id, settings, storage, sessions, Midway(predictor, user_deletes_the_job)).status == "skipped"
    assert not any(storage.exists(k) for k in result_keys(job_id).values())


def test_lost_lease_keeps_the_new_owners_results(env, predictor):
    settings, sessions, storage = env
    job_id = add_job(sessions, storage, si.jpeg())

    def another_worker_reclaims():  # attempt 2 now owns the lease and writes the same result keys
        with session_scope(sessions) as s:
            s.execute(update(Job).where(Job.id == job_id).values(attempts=Job.attempts + 1))
        for kind in stored_kinds():
            storage.put(kind.key(job_id), b"attempt 2", kind.content_type)

    assert run_job(job_id, settings, storage, sessions, Midway(predictor, another_worker_reclaims)).status == "skipped"
    # The stale run neither overwrites nor removes the new owner's results.
    assert all(storage.get(kind.key(job_id)) == b"attempt 2" for kind in stored_kinds())


def test_job_cancelled_while_writing_results_leaves_none(env, predictor):
    settings, sessions, storage = env
    job_id = add_job(sessions, storage, si.jpeg())

    class CancelOnFirstResult(LocalStorage):
        """Real local storage; a client cancels the job as the first result is written."""

        def put(self, key, data, content_type):
            super().put(key, data, content_type)
            if key.startswith("results/"):
                with session_scope(sessions) as s:
                    s.execute(update(Job).where(Job.id == job_id)
                              .values(status=JobStatus.cancelled))

    writer = CancelOnFirstResult(storage.root)
    assert run_job(job_id, settings, writer, sessions, predictor).status == "skipped"
    assert load(sessions, job_id).status is JobStatus.cancelled
    assert not any(storage.exists(kind.key(job_id)) for kind in stored_kinds())


def test_sweeper_requeues_expired_and_fails_exhausted(env):
    settings, sessions, storage = env
    expired = add_job(sessions, storage, si.jpeg())
    exhausted = add_job(sessions, storage, si.jpeg())
    stale = add_job(sessions, storage, si.jpeg(), created_ago=3600)
    fresh = add_job(sessions, storage, si.jpeg())
    past = utcnow() - timedelta(seconds=5)
    with session_scope(sessions) as s:
        s.execute(update(Job).where(Job.id == expired).values(
            status=JobStatus.running, attempts=1, lease_expires_at=past))
        s.execute(update(Job).where(Job.id == exhausted).values(
            status=JobStatus.running, attempts=2, lease_expires_at=past))
    import redis

    client = redis.Redis.from_url(settings.broker_url)
    client.delete(settings.queue)
    celery = make_sender(settings)
    try:
        result = sweep(settings, sessions, celery)
    finally:
        celery.close()
    # Only `stale` is old enough to be re-sent; `fresh` may still have its doorbell in flight.
    assert (result.requeued, result.resent, result.failed) == (1, 1, 1)
    assert load(sessions, expired).status is JobStatus.queued
    assert load(sessions, exhausted).status is JobStatus.failed
    assert load(sessions, fresh).status is JobStatus.queued
    assert load(sessions, stale).status is JobStatus.queued
    assert sorted(queued_job_ids(settings.broker_url, settings.queue)) == sorted([expired, stale])
    client.delete(settings.queue)
    client.close()


def test_a_job_costs_six_database_round_trips_and_records_its_webhook_events(env, predictor):
    from sqlalchemy import event, func, select

    from humanseg.core.models import Batch, WebhookDelivery

    settings, sessions, storage = env
    plain = add_job(sessions, storage, si.jpeg((90, 60)))
    hooked = add_job(sessions, storage, si.jpeg((90, 60)))
    with session_scope(sessions) as s:
        batch_id = s.get(Job, hooked).batch_id
        s.execute(update(Batch).where(Batch.id == batch_id).values(
            webhook_url="http://127.0.0.1:9/hook", webhook_events="job.finished,batch.finished",
            webhook_secret="whsec_" + "A" * 32))
    trips: list[str] = []
    engine = sessions.kw["bind"]
    listen = {"before_cursor_execute": lambda *a, **k: trips.append(a[2].split()[0]),
              "commit": lambda *a: trips.append("COMMIT"), "rollback": lambda *a: trips.append("ROLLBACK")}
    for name, fn in listen.items():
        event.listen(engine, name, fn)
    try:
        assert run_job(plain, settings, storage, sessions, predictor).status == "succeeded"
        plain_trips, trips[:] = list(trips), []
        assert run_job(hooked, settings, storage, sessions, predictor).status == "succeeded"
    finally:
        for name, fn in listen.items():
            event.remove(engine, name, fn)
    # claim (UPDATE ... RETURNING, commit), ownership check (SELECT, commit), outcome (UPDATE, commit)
    assert plain_trips == ["UPDATE", "COMMIT", "SELECT", "COMMIT", "UPDATE", "COMMIT"]
    assert len(trips) > len(plain_trips)  # a batch with a webhook: its events are looked up and written
    with session_scope(sessions) as s:
        events = dict(s.execute(select(WebhookDelivery.event, func.count())
                                .group_by(WebhookDelivery.event)).all())
        assert s.scalar(select(func.count()).select_from(WebhookDelivery)
                        .where(WebhookDelivery.job_id == plain)) == 0
    assert events == {"job.finished": 1, "batch.finished": 1}
    assert load(sessions, plain).status == load(sessions, hooked).status == JobStatus.succeeded


def test_each_model_writes_its_own_results_under_its_own_keys(env, predictor):
    settings, sessions, storage = env
    photo = si.exif_rotated_jpeg((80, 40))
    by_model = {name: add_job(sessions, storage, photo, model=name) for name in ("fast", "modnet")}
    masks = {}
    for name, job_id in by_model.items():
        assert run_job(job_id, settings, storage, sessions, predictor).status == "succeeded"
        assert all(storage.exists(kind.key(job_id, name)) for kind in stored_kinds())
        assert not storage.exists(result_key(job_id, "mask"))  # never the layout of model-less jobs
        with Image.open(storage.path(result_key(job_id, "mask", name))) as mask:
            masks[name] = np.asarray(mask)
    assert masks["fast"].shape == masks["modnet"].shape == (80, 40)  # the EXIF-upright size
    assert not np.array_equal(masks["fast"], masks["modnet"])


def test_a_model_whose_weights_are_missing_fails_the_job_with_the_fix(env, tiny_models, tmp_path):
    import shutil

    from humanseg.core.registry import Registry
    from humanseg.ml.registry import LoadedModels

    settings, sessions, storage = env
    shutil.copytree(tiny_models, tmp_path / "models")
    (tmp_path / "models" / "modnet" / "model.onnx").unlink()
    models = LoadedModels(Registry.load(tmp_path / "models"), limit=2, backend="onnx", threads=1)
    job_id = add_job(sessions, storage, si.jpeg(), model="modnet")
    out = run_job(job_id, settings, storage, sessions, models)
    assert out.status == "failed"
    job = load(sessions, job_id)
    assert job.status == JobStatus.failed and "WeightsError: model modnet:" in job.error
    assert "is missing; restore model.onnx" in job.error and "/tmp" not in job.error  # no server paths
    assert run_job(add_job(sessions, storage, si.jpeg(), model="fast"), settings, storage, sessions,
                   models).status == "succeeded"  # the other model still serves
