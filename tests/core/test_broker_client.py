"""core/queue.broker_client: the one way product code opens a Redis connection of its own."""

import pathlib
import re
import socket

import pytest
from factories import make_settings

from humanseg.core.queue import BROKER_TIMEOUT, BrokerError, broker_client, ping_broker

ROOT = pathlib.Path(__file__).resolve().parents[2]


def test_no_other_redis_client_in_product_code():
    made = []
    for part in ("core", "web", "worker", "ml", "humanseg"):
        for path in (ROOT / part).rglob("*.py"):
            for n, line in enumerate(path.read_text().splitlines(), 1):
                if re.search(r"\bredis\.(Redis|StrictRedis|from_url)\b", line):
                    made.append(f"{path.relative_to(ROOT)}:{n}")
    assert made == ["core/queue.py:" + str(_factory_line())], made


def _factory_line() -> int:
    lines = (ROOT / "core" / "queue.py").read_text().splitlines()
    return next(n for n, line in enumerate(lines, 1) if "redis.Redis.from_url" in line)


def test_a_silent_broker_is_an_error_not_a_hang():
    # A server that accepts the connection and never answers: the client's timeout ends the wait.
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        url = f"redis://127.0.0.1:{server.getsockname()[1]}/0"
        with pytest.raises(BrokerError, match="broker not reachable"):
            ping_broker(url, timeout=0.2)


def test_the_client_carries_the_one_timeout(redis_url):
    with broker_client(redis_url) as client:
        kwargs = client.connection_pool.connection_kwargs
        assert kwargs["socket_timeout"] == BROKER_TIMEOUT == kwargs["socket_connect_timeout"]
        assert client.ping()


def test_our_own_commands_share_one_client_per_process(redis_url):
    from humanseg.core.heartbeat import NoWorker, require_worker
    from humanseg.core.queue import shared_client
    from humanseg.worker.metrics import QueueDepth
    from humanseg.worker.sweeper import _not_sent_lately

    settings = make_settings(broker_url=redis_url, queue=f"q-{id(object())}")
    client = shared_client(redis_url)
    assert shared_client(redis_url) is client and shared_client(redis_url, 0.5) is not client
    before = client.connection_pool._created_connections
    for _ in range(3):  # readiness, queue depth and sweep marks: none opens a connection per call
        ping_broker(redis_url)
        with pytest.raises(NoWorker):
            require_worker(settings)
        list(QueueDepth(settings).collect())
        _not_sent_lately(settings, ["a" * 32], 1)
    assert client.connection_pool._created_connections - before <= 1
