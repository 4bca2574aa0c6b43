"""The one background loop of a worker process: sweeper, webhook deliveries and heartbeat run in it."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from humanseg.core.logfmt import logkv

log = logging.getLogger(__name__)


class Loop(threading.Thread):
    """Runs `step` now and then every `every` seconds, in a daemon thread, until stop().

    `step` returns True when it left work undone: the next pass starts at once. An exception in a
    step is logged (event=<name>_loop_error) and the loop goes on; the database or the broker may
    be back next pass. `finish` runs once in the thread after the last pass (the heartbeat removes
    its beat there). stop() is the same for every loop: no pass starts after it, and it waits up
    to `timeout` seconds for the pass in progress and `finish`.
    """

    def __init__(self, name: str, every: float, step: Callable[[], bool | None],
                 finish: Callable[[], None] | None = None):
        super().__init__(name=f"humanseg-{name}", daemon=True)
        self.loop_name, self.every, self.step, self.finish = name, every, step, finish
        self.stop_event = threading.Event()

    def run(self) -> None:
        try:
            while not self.stop_event.is_set():
                try:
                    again = bool(self.step())
                except Exception:
                    log.exception(logkv(event=f"{self.loop_name}_loop_error"))
                    again = False
                if not again and self.stop_event.wait(self.every):
                    break
        finally:
            if self.finish is not None:
                self.finish()

    def stop(self, timeout: float | None = 5.0) -> None:
        """End the loop after the pass in progress and wait up to `timeout` seconds for it."""
        self.stop_event.set()
        if self.is_alive() and threading.current_thread() is not self:
            self.join(timeout)
