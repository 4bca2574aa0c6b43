"""The worker's heartbeat thread against real Redis/Valkey: beats while running, gone once stopped."""

import time
import uuid

import redis

from humanseg.core.heartbeat import live_workers, require_worker
from humanseg.core.settings import Settings
from humanseg.worker.heartbeat import HeartbeatThread


def test_heartbeat_thread_beats_and_forgets(redis_url):
    settings = Settings(broker_url=redis_url, queue=f"hb-{uuid.uuid4().hex[:8]}", worker_stale_seconds=3)
    client = redis.Redis.from_url(redis_url)
    thread = HeartbeatThread(settings, node="node-a")
    try:
        assert live_workers(client, settings) == []
        thread.start()
        deadline = time.monotonic() + 10
        while "node-a" not in live_workers(client, settings):
            assert time.monotonic() < deadline, "no beat within 10 s"
            time.sleep(0.05)
        require_worker(settings)  # no exception: a worker is alive
        thread.stop()
        assert not thread.is_alive()
        assert live_workers(client, settings) == []
    finally:
        thread.stop()
        client.close()
