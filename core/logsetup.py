"""The one logging set-up of a process: key=value lines (core/logfmt.py) on stderr."""

from __future__ import annotations

import logging
import sys
from typing import IO

FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"
_MARK = "_humanseg_handler"
# Libraries that describe their own start-up at INFO: a line per plugin on every start is noise.
QUIET = ("alembic.runtime.plugins",)
# Celery's two lines per task ("received", "succeeded in ...") repeat the worker's own job_done line
# (which has the stages and the outcome); below DEBUG they are left out. Failures still show (ERROR).
PER_TASK = ("celery.worker.strategy", "celery.app.trace")


def configure_logging(level: str) -> None:
    """Send every logger's records at `level` and above to stderr; a second call only sets the level."""
    root = logging.getLogger()
    root.setLevel(getattr(logging, level.upper(), logging.INFO))
    for name in QUIET:
        logging.getLogger(name).setLevel(max(logging.WARNING, root.level))
    for name in PER_TASK:
        logging.getLogger(name).setLevel(logging.DEBUG if root.level <= logging.DEBUG else logging.WARNING)
    if any(getattr(h, _MARK, False) for h in root.handlers):
        return  # a forked child (gunicorn worker) inherits its parent's handler
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter(FORMAT))
    setattr(handler, _MARK, True)
    root.addHandler(handler)


def divert_logging(stream: IO[str]) -> IO[str] | None:
    """Send this process's log lines (configure_logging's handler) to `stream` instead; the stream
    they went to before (hand it back to undo), or None when logging was never configured here."""
    for handler in logging.getLogger().handlers:
        if getattr(handler, _MARK, False) and isinstance(handler, logging.StreamHandler):
            return handler.setStream(stream)
    return None
