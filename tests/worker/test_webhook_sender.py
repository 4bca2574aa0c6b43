"""worker/webhook_sender.py's delivery pass on a real database and a real local HTTP receiver."""

import pytest
from factories import batch_row, make_settings
from sqlalchemy import update
from support_webhooks import SECRET, Receiver, verify

from humanseg.core.db import make_engine, make_sessionmaker, session_scope
from humanseg.core.models import WebhookDelivery, utcnow
from humanseg.worker.webhook_sender import deliver_due, retry_delay


@pytest.fixture
def env(tmp_path, db_url):
    engine = make_engine(db_url)
    receiver = Receiver()
    settings = make_settings(tmp_path, database_url=db_url, webhook_max_attempts=2)
    yield settings, make_sessionmaker(engine), receiver
    receiver.close()
    engine.dispose()


def _delivery(sessions, url: str) -> str:
    with session_scope(sessions) as s:
        batch = batch_row(s, name="d", webhook_url=url, webhook_events="batch.finished", webhook_secret=SECRET)
        row = WebhookDelivery(batch_id=batch.id, event="batch.finished", dedupe=f"x:{batch.id}",
                              url=url, payload='{"type":"batch.finished"}', status="pending",
                              attempts=0, next_attempt_at=utcnow())
        s.add(row)
        s.flush()
        return row.id


def _row(sessions, delivery_id) -> WebhookDelivery:
    with session_scope(sessions) as s:
        return s.get(WebhookDelivery, delivery_id)


def _due_now(sessions, delivery_id) -> None:
    with session_scope(sessions) as s:
        s.execute(update(WebhookDelivery).where(WebhookDelivery.id == delivery_id)
                  .values(next_attempt_at=utcnow()))


def test_the_guard_is_applied_again_at_delivery(env):
    settings, sessions, receiver = env
    delivery_id = _delivery(sessions, receiver.url + "/h")
    assert deliver_due(settings, sessions) == 1  # no allow-list: the loopback target is refused
    row = _row(sessions, delivery_id)
    assert receiver.received == [] and row.status == "pending" and row.attempts == 1
    assert row.last_error.startswith("refused:") and row.next_attempt_at > utcnow()
    assert deliver_due(settings, sessions) == 0  # not due again before its backoff

    _due_now(sessions, delivery_id)
    allowed = settings.with_(webhook_allow_hosts=("127.0.0.1",))
    assert deliver_due(allowed, sessions) == 1
    row = _row(sessions, delivery_id)
    assert row.status == "succeeded" and row.attempts == 2 and row.last_status_code == 204
    (request,) = receiver.received
    verify(SECRET, request)
    assert request["headers"]["webhook-id"] == delivery_id


def test_a_delivery_fails_for_good_after_max_attempts(env):
    settings, sessions, receiver = env
    settings = settings.with_(webhook_allow_hosts=("127.0.0.1",))
    receiver.answers.extend([503, 500])
    delivery_id = _delivery(sessions, receiver.url + "/h")
    deliver_due(settings, sessions)
    _due_now(sessions, delivery_id)
    deliver_due(settings, sessions)
    row = _row(sessions, delivery_id)
    assert row.status == "failed" and row.attempts == 2 and row.next_attempt_at is None
    assert row.last_status_code == 500 and "500" in row.last_error
    assert [r["answered"] for r in receiver.received] == [503, 500]


def test_backoff_grows_and_is_capped():
    settings = make_settings(webhook_retry_seconds=10.0)
    assert [retry_delay(n, settings) for n in (1, 2, 3)] == [10, 40, 160]
    assert retry_delay(20, settings) == 3600
