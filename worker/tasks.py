"""Thin Celery tasks: `humanseg.segment(job_id)` calls pipeline.run_job."""

from __future__ import annotations

import time

from celery import Celery

from humanseg.core.queue import SEGMENT_TASK
from humanseg.worker.runtime import Runtime


def register(app: Celery, runtime: Runtime) -> None:
    """Register the tasks on app; they run with runtime's per-process resources."""

    # shared=False: a shared task would be copied into every other Celery app of the
    # process, which then would run with this app's runtime and settings.
    @app.task(name=SEGMENT_TASK, bind=True, acks_late=True, reject_on_worker_lost=True,
              ignore_result=True, max_retries=None, shared=False)
    def segment(self, job_id: str) -> str:
        from humanseg.worker import metrics
        from humanseg.worker.pipeline import TaskOutcome, run_job

        res = runtime.resources()
        started = time.monotonic()
        outcome = run_job(str(job_id), runtime.settings, res.storage, res.sessions,
                          metrics.TimedModels(res.models))
        metrics.record(outcome.status.value, outcome.attempt, time.monotonic() - started)
        if outcome.status is TaskOutcome.retry:
            raise self.retry(countdown=outcome.retry_in)
        return outcome.status.value
