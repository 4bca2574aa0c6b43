"""The Celery app factory of the worker (`humanseg worker` builds it and runs it)."""

from __future__ import annotations

from celery import Celery
from humanseg.core.queue import celery_config
from humanseg.core.settings import Settings


def make_celery(settings: Settings) -> Celery:
    """A Celery app bound to settings: the humanseg tasks, its Runtime and the lifecycle hooks."""
    from humanseg.worker import tasks
    from humanseg.worker.runtime import attach_runtime, connect_signals

    app = Celery("humanseg", set_as_current=False)
    app.conf.update(celery_config(settings))
    app.conf.update(worker_max_tasks_per_child=None, worker_send_task_events=False)
    tasks.register(app, attach_runtime(app, settings))
    connect_signals()
    return app
