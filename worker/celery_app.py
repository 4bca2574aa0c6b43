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
    # Task events feed Flower's task list (HUMANSEG_TASK_EVENTS=1, compose's monitoring profile).
    # The root logger keeps `humanseg worker`'s one set-up (core/logsetup.py): Celery's own
    # would replace its handler with a second format.
    app.conf.update(worker_max_tasks_per_child=None, worker_send_task_events=settings.task_events,
                    task_send_sent_event=settings.task_events, worker_hijack_root_logger=False)
    tasks.register(app, attach_runtime(app, settings))
    connect_signals()
    return app
