"""The broker doorbell: Celery config shared by web, worker and sweeper; send by name."""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING, Any

from humanseg.core.errors import HumansegError

if TYPE_CHECKING:
    from celery import Celery

    from humanseg.core.settings import Settings

log = logging.getLogger(__name__)

SEGMENT_TASK = "humanseg.segment"


class BrokerError(HumansegError):
    """The broker could not be reached."""


# Our own commands to the broker's Redis (outside Celery: rate-limit counters, heartbeats, sweep
# marks, queue depth, PING) are each one short round trip. Past this many seconds the broker is
# down for every caller: each logs it and goes on, and a request or a scrape must not hang on it.
BROKER_TIMEOUT = 2.0


def broker_client(url: str, timeout: float = BROKER_TIMEOUT):
    """A Redis client of the broker (its own connection pool); close it, or use it in `with`."""
    import redis

    return redis.Redis.from_url(url, socket_timeout=timeout, socket_connect_timeout=timeout)


_SHARED: dict[tuple[str, float], Any] = {}
_SHARED_LOCK = threading.Lock()


def shared_client(url: str, timeout: float = BROKER_TIMEOUT):
    """The process's one client of the broker at `url`, made on first use and kept: its pool is
    thread- and greenlet-safe and starts afresh in a forked child, so callers never connect per
    call. Never close it."""
    with _SHARED_LOCK:
        client = _SHARED.get((url, timeout))
        if client is None:
            client = _SHARED[(url, timeout)] = broker_client(url, timeout)
        return client


def celery_config(settings: Settings) -> dict:
    """Celery settings used by every process that talks to the broker."""
    return {
        "broker_url": settings.broker_url,
        "broker_connection_retry_on_startup": True,
        "broker_transport_options": {
            "socket_connect_timeout": 5,
            "socket_timeout": 30,
            # Redis re-delivers an unacked task after this long; keep it above the lease.
            "visibility_timeout": max(3600, settings.lease_seconds * 2),
        },
        "task_serializer": "json",
        "accept_content": ["json"],
        "task_ignore_result": True,
        "result_backend": None,
        "task_acks_late": True,
        "task_reject_on_worker_lost": True,
        "worker_prefetch_multiplier": 1,
        "task_default_queue": settings.queue,
        "task_routes": {SEGMENT_TASK: {"queue": settings.queue}},
        "worker_hijack_root_logger": False,
        "enable_utc": True,
    }


def make_sender(settings: Settings) -> Celery:
    """A Celery client that only sends tasks by name (no task code imported)."""
    from celery import Celery

    app = Celery("humanseg-client", set_as_current=False)
    app.conf.update(celery_config(settings))
    return app


def send_segment(celery: Celery, job_id: str, queue: str) -> None:
    """Ring the doorbell for one job; raise BrokerError if the broker is down."""
    try:
        celery.send_task(SEGMENT_TASK, args=[job_id], queue=queue, retry=True,
                         retry_policy={"max_retries": 2, "interval_start": 0,
                                       "interval_step": 0.5, "interval_max": 1})
    except Exception as exc:  # kombu raises many connection error types
        raise BrokerError(f"cannot send {SEGMENT_TASK} for job_id={job_id}: {exc}") from exc


def ping_broker(url: str, timeout: float = BROKER_TIMEOUT) -> None:
    """Raise BrokerError unless the Redis-protocol broker answers PING."""
    if not url:
        raise BrokerError("no broker URL configured")
    try:
        shared_client(url, timeout).ping()
    except Exception as exc:
        raise BrokerError(f"broker not reachable: {exc}") from exc
