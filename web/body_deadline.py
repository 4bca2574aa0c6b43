"""A deadline on reading request bodies: a client trickling its upload is cut off, not waited for.

The body gets `timeout` seconds plus one second for every `min_rate` bytes received (as Apache's
mod_reqtimeout does): any real connection keeps well ahead; one byte a second falls behind at once.
Under gunicorn's gevent workers a slow client costs a greenlet, not a thread, and the deadline
bounds even a single read that the server's parser loops on.
"""

from __future__ import annotations

import logging
import socket
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import AbstractContextManager, nullcontext
from typing import Any

from werkzeug.exceptions import RequestTimeout

from humanseg.core.logfmt import logkv

log = logging.getLogger(__name__)


class BodyTimeout(RequestTimeout):
    """The request body did not arrive in time (answered 408, then the connection is closed)."""

    description = "the request body arrived too slowly; send it faster or in smaller requests"


def _gevent_timer() -> type[Any] | None:
    """gevent.Timeout when this process's sockets are gevent's (gunicorn's gevent worker)."""
    monkey = sys.modules.get("gevent.monkey")
    if monkey is None or not monkey.is_module_patched("socket"):
        return None
    import gevent

    return gevent.Timeout


class DeadlineInput:
    """wsgi.input whose reads must keep up with the deadline (see the module docstring)."""

    def __init__(self, stream: Any, timeout: float, min_rate: float) -> None:
        self._stream, self._timeout, self._min_rate = stream, timeout, max(1.0, float(min_rate))
        self._start = time.monotonic()
        self._timer = _gevent_timer()
        self.received = 0
        self.expired = False

    def remaining(self) -> float:
        """Seconds left before the body is late."""
        return self._start + self._timeout + self.received / self._min_rate - time.monotonic()

    def _guard(self, left: float) -> AbstractContextManager:
        # Without gevent only the gaps between reads are checked (a blocked thread cannot be woken).
        return self._timer(left) if self._timer else nullcontext()

    def _call(self, read: Callable[..., Any], *args: Any) -> Any:
        left = self.remaining()
        if left <= 0:
            raise self._expire()
        try:
            with self._guard(left):
                out = read(*args)
        except BaseException as exc:
            if self._timer is not None and isinstance(exc, self._timer):
                raise self._expire() from None
            raise
        self.received += out if isinstance(out, int) else len(out)
        return out

    def _expire(self) -> BodyTimeout:
        self.expired = True
        log.warning(logkv(event="body_timeout", received=self.received,
                          seconds=f"{time.monotonic() - self._start:.1f}"))
        return BodyTimeout()

    def read(self, size: int | None = -1) -> bytes:
        """Read as the wrapped stream does, within the deadline."""
        return self._call(self._stream.read, size)

    def readinto(self, buffer: bytearray) -> int:
        """readinto within the deadline (werkzeug's LimitedStream prefers it)."""
        if hasattr(self._stream, "readinto"):
            return self._call(self._stream.readinto, buffer)
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def readline(self, size: int | None = -1) -> bytes:
        """readline within the deadline."""
        return self._call(self._stream.readline, size)

    def __iter__(self) -> Iterator[bytes]:
        while line := self.readline():
            yield line


class BodyDeadline:
    """WSGI middleware: every request body is read through a DeadlineInput; a body that is late, or
    that its Content-Length puts over the app's MAX_CONTENT_LENGTH (answered 413 unread), is never
    drained: the connection closes after the answer."""

    def __init__(self, app: Callable, timeout: float, min_rate: float) -> None:
        self.app, self.timeout, self.min_rate = app, timeout, min_rate
        self.max_bytes = getattr(app, "config", {}).get("MAX_CONTENT_LENGTH")

    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        body = DeadlineInput(environ["wsgi.input"], self.timeout, self.min_rate)
        environ["wsgi.input"] = body
        result = self.app(environ, start_response)
        if body.expired or self._over_limit(environ):
            return _CloseAfter(result, environ.get("gunicorn.socket"))
        return result

    def _over_limit(self, environ: dict) -> bool:
        length = str(environ.get("CONTENT_LENGTH") or "")
        return self.max_bytes is not None and length.isdigit() and int(length) > self.max_bytes


class _CloseAfter:
    """The 408's or 413's body; once it is sent, stop reading from the client so the rest is not awaited."""

    def __init__(self, result: Iterable[bytes], sock: socket.socket | None) -> None:
        self.result, self.sock = result, sock

    def __iter__(self) -> Iterator[bytes]:
        return iter(self.result)

    def close(self) -> None:
        try:
            if hasattr(self.result, "close"):
                self.result.close()
        finally:
            if self.sock is not None:
                try:
                    # The server would otherwise drain the unread body before closing.
                    self.sock.shutdown(socket.SHUT_RD)
                except OSError:
                    pass  # already closed by the client
