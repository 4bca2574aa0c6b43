"""Worker heartbeats in the broker's Redis: workers beat, /readyz asks whether one beat lately.

One sorted set per queue: member = the worker's node name, score = the time of its last beat.
Our own beat rather than Celery's events: it needs no event consumer, and it says a worker of
*this* queue is alive (and beating only while its process is). A beat that stops without a clean
stop's `forget` is a killed worker: the sweeper re-sends the jobs it may have held
(worker/sweeper.py).
"""

from __future__ import annotations

import time

from humanseg.core.settings import Settings


def heartbeat_key(settings: Settings) -> str:
    """The sorted set holding the queue's worker beats."""
    return f"humanseg:workers:{settings.queue}"


def beat(client, settings: Settings, node: str, now: float | None = None) -> None:
    """Record that `node` is alive now (and forget nodes silent for ten staleness windows)."""
    now = time.time() if now is None else now
    key = heartbeat_key(settings)
    window = max(1, settings.worker_stale_seconds)
    pipe = client.pipeline(transaction=False)
    pipe.zadd(key, {node: now})
    pipe.zremrangebyscore(key, "-inf", now - 10 * window)
    pipe.expire(key, 10 * window)
    pipe.execute()


def forget(client, settings: Settings, node: str) -> None:
    """Remove a node's beat (a worker shutting down cleanly)."""
    client.zrem(heartbeat_key(settings), node)


def live_workers(client, settings: Settings, now: float | None = None) -> list[str]:
    """Nodes that beat within worker_stale_seconds."""
    now = time.time() if now is None else now
    since = now - max(1, settings.worker_stale_seconds)
    return [m.decode() if isinstance(m, bytes) else m
            for m in client.zrangebyscore(heartbeat_key(settings), since, "+inf")]


def silent_workers(client, settings: Settings, now: float | None = None) -> list[tuple[str, float]]:
    """Nodes that beat once but not within worker_stale_seconds (killed, not stopped: a clean stop
    forgets its beat), with their last beat, oldest first."""
    now = time.time() if now is None else now
    until = now - max(1, settings.worker_stale_seconds)
    return [(m.decode() if isinstance(m, bytes) else m, float(score))
            for m, score in client.zrangebyscore(heartbeat_key(settings), "-inf", f"({until}",
                                                 withscores=True)]


def claim_silent(client, settings: Settings, node: str) -> bool:
    """Take a silent node off the set; True for the one caller (of several sweepers) that did."""
    return bool(client.zrem(heartbeat_key(settings), node))


def unclaim_silent(client, settings: Settings, node: str, last_beat: float) -> None:
    """Put a claimed node back (its jobs could not be handled this time); a fresh beat wins."""
    client.zadd(heartbeat_key(settings), {node: last_beat}, nx=True)


class NoWorker(RuntimeError):
    """No worker of the queue has beaten lately."""


def require_worker(settings: Settings) -> None:
    """Raise NoWorker unless a worker beat within worker_stale_seconds."""
    from humanseg.core.queue import shared_client

    if not live_workers(shared_client(settings.broker_url), settings):
        raise NoWorker(f"no worker of queue {settings.queue} beat in the last "
                           f"{settings.worker_stale_seconds} s")
