"""The worker's heartbeat thread against real Redis/Valkey: beats while running, gone once stopped."""

import uuid

import redis
from factories import make_settings
from support_live import wait_until

from humanseg.core.heartbeat import live_workers, require_worker
from humanseg.worker.heartbeat import HeartbeatThread


def test_heartbeat_thread_beats_and_forgets(redis_url):
    settings = make_settings(broker_url=redis_url, queue=f"hb-{uuid.uuid4().hex[:8]}", worker_stale_seconds=3)
    client = redis.Redis.from_url(redis_url)
    thread = HeartbeatThread(settings, node="node-a")
    try:
        assert live_workers(client, settings) == []
        thread.start()
        wait_until(lambda: "node-a" in live_workers(client, settings), 10, "a beat from node-a")
        require_worker(settings)  # no exception: a worker is alive
        thread.stop()
        assert not thread.is_alive()
        assert live_workers(client, settings) == []
    finally:
        thread.stop()
        client.close()
