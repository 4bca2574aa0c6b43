"""Per-key limits counted in real Redis/Valkey: requests per minute and images per day."""

import io
import uuid

import pytest
import redis
import support_images as si

from humanseg.core.db import session_scope
from humanseg.core.keys import create_key
from humanseg.web.ratelimit import PREFIX


@pytest.fixture
def app(make_live_app, db_url):
    return make_live_app(database_url=db_url, require_api_keys=True, rate_limit_per_minute=1000,
                         images_per_day=3)


def new_key(app, **kwargs) -> tuple[str, str]:
    with session_scope(app.extensions["humanseg"].sessions) as session:
        row, key = create_key(session, f"k-{uuid.uuid4().hex[:6]}", **kwargs)
        return row.id, key


def upload(client, key, n):
    data = {"images": [(io.BytesIO(si.jpeg()), f"{i}.jpg") for i in range(n)]}
    return client.post("/api/v1/jobs", data=data, headers={"Authorization": f"Bearer {key}"},
                       content_type="multipart/form-data")


def test_requests_per_minute_answer_429_with_headers(app, redis_url):
    client = app.test_client()
    key_id, key = new_key(app, requests_per_minute=3)
    _, other = new_key(app, requests_per_minute=3)
    url = "/api/v1/jobs/" + "a" * 32
    answers = [client.get(url, headers={"X-Api-Key": key}) for _ in range(3)]
    assert [r.status_code for r in answers] == [404, 404, 404]
    assert [r.headers["RateLimit-Remaining"] for r in answers] == ["2", "1", "0"]
    assert all(r.headers["RateLimit-Limit"] == "3" for r in answers)
    over = client.get(url, headers={"X-Api-Key": key})
    if over.status_code != 429:  # the minute turned between requests: the counter started over
        over = next(r for r in (client.get(url, headers={"X-Api-Key": key}) for _ in range(4))
                    if r.status_code == 429)
    assert over.json["error"]["code"] == "rate_limited"
    assert 1 <= int(over.headers["Retry-After"]) <= 60
    assert over.headers["RateLimit-Remaining"] == "0" and over.headers["RateLimit-Limit"] == "3"
    assert over.headers["RateLimit-Reset"] == over.headers["Retry-After"]
    assert client.get(url, headers={"X-Api-Key": other}).status_code == 404  # counted per key
    client_redis = redis.Redis.from_url(redis_url)
    try:  # the count lives in Redis, where every web process sees it, and expires
        counters = list(client_redis.scan_iter(f"{PREFIX}rpm:{key_id}:*"))
        assert counters and all(0 < client_redis.ttl(c) <= 120 for c in counters)
    finally:
        client_redis.close()


def test_images_per_day_quota(app, redis_url):
    client = app.test_client()
    key_id, key = new_key(app)
    assert upload(client, key, 2).status_code == 202
    over = upload(client, key, 2)
    assert over.status_code == 429 and over.json["error"]["code"] == "quota_exceeded"
    assert over.headers["RateLimit-Limit"] == "3" and int(over.headers["Retry-After"]) <= 86400
    assert upload(client, key, 1).status_code == 202  # the refused upload did not count
    assert upload(client, key, 1).status_code == 429
    _, own_limit = new_key(app, images_per_day=10)
    assert upload(client, own_limit, 4).status_code == 202  # a key's own quota wins
    client_redis = redis.Redis.from_url(redis_url)
    try:  # the day's counter holds what was charged (refunds taken back) and expires
        (counter,) = client_redis.scan_iter(f"{PREFIX}images:{key_id}:*")
        assert int(client_redis.get(counter)) == 3 and 0 < client_redis.ttl(counter) <= 2 * 86400
    finally:
        client_redis.close()


def test_rejected_upload_is_refunded(app):
    client = app.test_client()
    _, key = new_key(app)
    # Charged once the images are valid; the missing batch fails after that: nothing is created.
    data = {"images": [(io.BytesIO(si.jpeg()), f"{i}.jpg") for i in range(3)], "batch_id": "c" * 32}
    bad = client.post("/api/v1/jobs", data=data, headers={"X-Api-Key": key},
                      content_type="multipart/form-data")
    assert bad.status_code == 404
    assert upload(client, key, 3).status_code == 202
