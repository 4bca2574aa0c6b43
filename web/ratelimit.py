"""Per-key rate limit (requests per minute) and quota (images per UTC day), counted in Redis.

The counters live in the broker's Redis, so every web process shares them. Fixed windows:
one counter per key per minute and per key per day, each expiring after its window. When
Redis cannot be reached the request passes (logged): the broker being down already stops
uploads from being queued, and a limiter must not take reads down with it.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone

from flask import current_app, g, has_request_context
from flask.wrappers import Response

from humanseg.core.logfmt import logkv
from humanseg.core.queue import shared_client
from humanseg.web.errors import ErrorAnswer
from humanseg.web.principal import Principal, principal
from humanseg.web.services import services

log = logging.getLogger(__name__)

PREFIX = "humanseg:limits:"
_COUNT = "humanseg_limits_count"
# INCRBY and, for a new counter, its expiry: one command and one round trip per counted request
# (a MULTI/INCR/EXPIRE/EXEC pipeline cost about 0.4 ms of the web tier's CPU per request).
_COUNT_SCRIPT = """
local n = redis.call('INCRBY', KEYS[1], ARGV[1])
if redis.call('TTL', KEYS[1]) < 0 then redis.call('EXPIRE', KEYS[1], ARGV[2]) end
return n
"""


def _redis():
    """The process's Redis client of this app's broker (core/queue.shared_client)."""
    return shared_client(services().settings.broker_url)


def limited(status_code: str, message: str, limit: int, reset: int) -> ErrorAnswer:
    """The 429 with Retry-After and the RateLimit-* headers."""
    err = ErrorAnswer(429, status_code, message, extra={"limit": limit, "retry_after": reset})
    err.headers = {"Retry-After": str(reset), "RateLimit-Limit": str(limit),
                   "RateLimit-Remaining": "0", "RateLimit-Reset": str(reset)}
    return err


def count_request(who: Principal) -> None:
    """Count one request of `who`; ErrorAnswer 429 once the minute's limit is passed."""
    limit = who.requests_per_minute
    if limit is None:
        limit = services().settings.rate_limit_per_minute
    if limit <= 0:
        return
    now = time.time()
    window = int(now // 60)
    key = f"{PREFIX}rpm:{who.key_id}:{window}"
    try:
        count = _count(key, 1, 120)
    except Exception as exc:  # noqa: BLE001 - any Redis failure: let the request through
        log.warning(logkv(event="rate_limit_unavailable", error=str(exc)))
        return
    reset = max(1, math.ceil((window + 1) * 60 - now))
    g.rate_limit = (limit, max(0, limit - count), reset)
    if count > limit:
        log.info(logkv(event="rate_limited", key_id=who.key_id, limit=limit))
        raise limited("rate_limited", f"more than {limit} requests per minute; retry in {reset} s",
                      limit, reset)


def _count(key: str, n: int, ttl: int) -> int:
    """Add n to a counter that expires `ttl` seconds after its first count; its new value."""
    script = current_app.extensions.get(_COUNT)
    if script is None:
        script = current_app.extensions[_COUNT] = _redis().register_script(_COUNT_SCRIPT)
    return int(script(keys=[key], args=[n, ttl]))


def add_headers(resp: Response) -> Response:
    """RateLimit-* on every answer to a counted request (a 429 has them already)."""
    state = g.get("rate_limit")
    if state is not None:
        limit, remaining, reset = state
        resp.headers.setdefault("RateLimit-Limit", str(limit))
        resp.headers.setdefault("RateLimit-Remaining", str(remaining))
        resp.headers.setdefault("RateLimit-Reset", str(reset))
    return resp


def _seconds_to_midnight(now: datetime) -> int:
    tomorrow = datetime(now.year, now.month, now.day, tzinfo=timezone.utc).timestamp() + 86400
    return max(1, math.ceil(tomorrow - now.timestamp()))


@contextmanager
def images(n: int) -> Iterator[None]:
    """Charge n images to the key's daily quota (429 when over it); refunded if the body raises."""
    who = principal() if has_request_context() else None
    limit = None if who is None else who.images_per_day
    if who is not None and limit is None:
        limit = services().settings.images_per_day
    if who is None or not limit or limit <= 0 or n <= 0:
        yield
        return
    now = datetime.now(timezone.utc)
    key = f"{PREFIX}images:{who.key_id}:{now:%Y%m%d}"
    client = _redis()
    try:
        used = _count(key, n, 2 * 86400)
    except Exception as exc:  # noqa: BLE001 - any Redis failure: let the upload through
        log.warning(logkv(event="quota_unavailable", error=str(exc)))
        yield
        return
    if used > limit:
        _refund(client, key, n)
        reset = _seconds_to_midnight(now)
        log.info(logkv(event="quota_exceeded", key_id=who.key_id, limit=limit, images=n))
        raise limited("quota_exceeded", f"this upload would pass the quota of {limit} images per "
                      f"day ({max(0, used - n)} used); it resets at 00:00 UTC", limit, reset)
    try:
        yield
    except BaseException:
        _refund(client, key, n)  # nothing was created: the images do not count
        raise


def _refund(client, key: str, n: int) -> None:
    try:
        client.decrby(key, n)
    except Exception as exc:  # noqa: BLE001 - a lost refund only makes the quota stricter
        log.warning(logkv(event="quota_refund_failed", error=str(exc)))
