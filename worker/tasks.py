"""Thin Celery tasks: `humanseg.segment(job_id)` and `humanseg.sweep()`."""

from __future__ import annotations

import logging
import os
import threading
from dataclasses import dataclass
from typing import Any

from celery import Celery, signals
from humanseg.core.db import make_engine, make_sessionmaker
from humanseg.core.queue import SEGMENT_TASK, SWEEP_TASK
from humanseg.core.settings import Settings
from humanseg.core.storage import Storage, make_storage
from sqlalchemy.orm import Session, sessionmaker

log = logging.getLogger(__name__)


@dataclass
class Runtime:
    """Per-process resources, created after fork (engines and sessions must not cross fork)."""

    pid: int
    sessions: sessionmaker[Session]
    storage: Storage
    predictor: Any = None


_runtime: Runtime | None = None
_lock = threading.Lock()


def runtime(settings: Settings, *, with_predictor: bool = True) -> Runtime:
    """This process's Runtime; the predictor loads once per process, on first need."""
    global _runtime
    with _lock:
        if _runtime is None or _runtime.pid != os.getpid():
            engine = make_engine(settings.database_url)
            _runtime = Runtime(os.getpid(), make_sessionmaker(engine), make_storage(settings))
        if with_predictor and _runtime.predictor is None:
            _runtime.predictor = load_predictor(settings)
        return _runtime


def load_predictor(settings: Settings):
    """Load the model with threads capped so processes x threads <= cores."""
    from humanseg.ml.predictor import load_predictor as _load

    threads = settings.effective_threads()
    log.info("event=predictor_loading pid=%d threads=%d backend=%s", os.getpid(), threads,
             settings.model_backend)
    return _load(settings.model_path or None, backend=settings.model_backend, threads=threads)


def register(app: Celery, settings: Settings) -> None:
    """Register the tasks on app, closed over settings."""

    @app.task(name=SEGMENT_TASK, bind=True, acks_late=True, reject_on_worker_lost=True,
              ignore_result=True, max_retries=None)
    def segment(self, job_id: str) -> str:
        from humanseg.worker.pipeline import run_job

        rt = runtime(settings)
        outcome = run_job(str(job_id), settings, rt.storage, rt.sessions, rt.predictor)
        if outcome.status == "retry":
            raise self.retry(countdown=outcome.retry_in)
        return outcome.status

    @app.task(name=SWEEP_TASK, ignore_result=True)
    def sweep() -> dict:
        from humanseg.worker.sweeper import sweep as run_sweep

        rt = runtime(settings, with_predictor=False)
        return run_sweep(settings, rt.sessions, app).__dict__

    _connect_signals(app, settings)


def _connect_signals(app: Celery, settings: Settings) -> None:
    sweeper_holder: dict[str, Any] = {}

    @signals.worker_process_init.connect(weak=False)
    def _warm(**_: Any) -> None:
        # Prefork child: load the model now so the first task does not pay for it.
        runtime(settings)

    @signals.worker_ready.connect(weak=False)
    def _start_sweeper(sender=None, **_: Any) -> None:
        if os.environ.get("HUMANSEG_NO_SWEEPER"):
            return
        from humanseg.worker.sweeper import SweeperThread

        rt = runtime(settings, with_predictor=False)
        thread = SweeperThread(settings, rt.sessions, app)
        thread.start()
        sweeper_holder["thread"] = thread

    @signals.worker_shutdown.connect(weak=False)
    def _stop_sweeper(**_: Any) -> None:
        thread = sweeper_holder.pop("thread", None)
        if thread is not None:
            thread.stop()
