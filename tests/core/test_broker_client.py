"""core/queue.broker_client: the one way product code opens a Redis connection of its own."""

import pathlib
import re
import socket

import pytest

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
