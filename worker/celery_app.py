"""The Celery app factory. `celery -A worker.celery_app worker` builds it lazily from env."""

from __future__ import annotations

import logging
from typing import Any

from celery import Celery
from humanseg.core.queue import celery_config
from humanseg.core.settings import Settings

log = logging.getLogger(__name__)


def make_celery(settings: Settings) -> Celery:
    """A Celery app bound to settings, with the humanseg tasks registered."""
    from humanseg.worker import tasks

    app = Celery("humanseg", set_as_current=False)
    app.conf.update(celery_config(settings))
    app.conf.update(worker_max_tasks_per_child=None, worker_send_task_events=False)
    tasks.register(app, settings)
    return app


_app: Celery | None = None


def __getattr__(name: str) -> Any:
    # PEP 562: `celery -A worker.celery_app` asks for `.app`; build it on first use, not at import.
    global _app
    if name in ("app", "celery"):
        if _app is None:
            _app = make_celery(Settings.from_env())
        return _app
    raise AttributeError(name)
