"""A worker's heartbeat thread: beats into the broker's Redis so /readyz knows a worker is alive
(and the sweeper, when the beat stops without a clean stop, that one was killed)."""

from __future__ import annotations

import logging
import os
import secrets
import socket

from humanseg.core.heartbeat import beat, forget
from humanseg.core.logfmt import logkv
from humanseg.core.queue import broker_client
from humanseg.core.settings import Settings
from humanseg.worker.loop import Loop

log = logging.getLogger(__name__)


def node_name() -> str:
    """This worker's name in the heartbeat set: host, pid (several workers share a host) and a
    token: a container restarted after a kill has the same host and pid, and its new beat must not
    hide that the killed worker went silent (the sweeper re-sends what that one held)."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"


class HeartbeatThread(Loop):
    """Beats every third of worker_stale_seconds until stopped; then removes its beat."""

    def __init__(self, settings: Settings, node: str | None = None):
        self.settings, self.node = settings, node or node_name()
        self.client = None
        super().__init__("heartbeat", max(1.0, settings.worker_stale_seconds / 3), self._beat,
                         finish=self._forget)

    def _beat(self) -> None:
        if self.client is None:
            self.client = broker_client(self.settings.broker_url)
        try:
            beat(self.client, self.settings, self.node)
        except Exception as exc:  # noqa: BLE001 - broker down: beat again next time
            log.warning(logkv(event="heartbeat_failed", node=self.node, error=exc))

    def _forget(self) -> None:
        if self.client is None:
            return
        try:
            forget(self.client, self.settings, self.node)
        except Exception as exc:  # noqa: BLE001 - its beat then simply grows stale
            log.warning(logkv(event="heartbeat_forget_failed", node=self.node, error=exc))
        finally:
            self.client.close()
