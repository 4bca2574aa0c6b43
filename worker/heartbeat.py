"""A worker's heartbeat thread: beats into the broker's Redis so /readyz knows a worker is alive."""

from __future__ import annotations

import logging
import os
import socket
import threading

from humanseg.core.heartbeat import beat, forget
from humanseg.core.logfmt import logkv
from humanseg.core.settings import Settings

log = logging.getLogger(__name__)


def node_name() -> str:
    """This worker's name in the heartbeat set: host and pid (several workers share a host)."""
    return f"{socket.gethostname()}:{os.getpid()}"


class HeartbeatThread(threading.Thread):
    """Beats every third of worker_stale_seconds until stopped; then removes its beat."""

    def __init__(self, settings: Settings, node: str | None = None):
        super().__init__(name="humanseg-heartbeat", daemon=True)
        self.settings, self.node = settings, node or node_name()
        self.every = max(1.0, settings.worker_stale_seconds / 3)
        self.stop_event = threading.Event()

    def run(self) -> None:
        import redis

        client = redis.Redis.from_url(self.settings.broker_url, socket_timeout=5,
                                      socket_connect_timeout=5)
        try:
            while True:
                try:
                    beat(client, self.settings, self.node)
                except Exception as exc:  # noqa: BLE001 - broker down: beat again next time
                    log.warning(logkv(event="heartbeat_failed", node=self.node, error=exc))
                if self.stop_event.wait(self.every):
                    break
            try:
                forget(client, self.settings, self.node)
            except Exception as exc:  # noqa: BLE001 - its beat then simply grows stale
                log.warning(logkv(event="heartbeat_forget_failed", node=self.node, error=exc))
        finally:
            client.close()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop beating and wait for the thread to end."""
        self.stop_event.set()
        self.join(timeout)
