"""Per-process worker resources, owned by the Celery app, and the worker lifecycle hooks."""

from __future__ import annotations

import gc
import logging
import os
import threading
from dataclasses import dataclass
from typing import Any

from celery import Celery, current_app, signals
from sqlalchemy.orm import Session, sessionmaker

from humanseg.core.db import make_engine, make_sessionmaker
from humanseg.core.logfmt import logkv
from humanseg.core.settings import Settings
from humanseg.core.storage import Storage, make_storage
from humanseg.worker.heartbeat import HeartbeatThread
from humanseg.worker.sweeper import SweeperThread

log = logging.getLogger(__name__)

_ATTR = "humanseg_runtime"


@dataclass
class Resources:
    """What one process uses to run jobs; built in that process (connections must not cross fork)."""

    pid: int
    sessions: sessionmaker[Session]
    storage: Storage
    models: Any = None  # ml/registry.py's LoadedModels: loads each model on first use, a bounded number


class Runtime:
    """One Celery app's resources, built lazily in each process, and its sweeper thread."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.sweeper: SweeperThread | None = None
        self.heartbeat: HeartbeatThread | None = None
        self.webhooks: Any = None  # worker/webhook_sender.py's WebhookThread while it runs
        self._resources: Resources | None = None
        self._lock = threading.Lock()

    def resources(self, *, with_predictor: bool = True) -> Resources:
        """This process's resources; the models load in each process on first need (see load_models)."""
        with self._lock:
            res = self._resources
            # The app is built before the pool forks: a child inherits the parent's object
            # (if any) and must build its own engine and storage client.
            if res is None or res.pid != os.getpid():
                # Every worker write can be redone (claims and outcomes: the sweeper re-runs the
                # job; webhook marks: a delivery is sent again), so on SQLite its commits skip the
                # fsync: a third of the worker's database time (bench/e2e_ratio.py).
                engine = make_engine(self.settings.database_url, sync_commits=False)
                res = Resources(os.getpid(), make_sessionmaker(engine), make_storage(self.settings))
                self._resources = res
            if with_predictor and res.models is None:
                res.models = load_models(self.settings)
            return res

    def start_sweeper(self, celery: Celery) -> SweeperThread | None:
        """Start the sweep loop in a thread unless the `sweeper` setting is off."""
        if not self.settings.sweeper:
            log.info(logkv(event="sweeper_off", pid=os.getpid()))
            return None
        if self.sweeper is None:
            sessions = self.resources(with_predictor=False).sessions
            self.sweeper = SweeperThread(self.settings, sessions, celery)
            self.sweeper.start()
            log.info(logkv(event="sweeper_started", pid=os.getpid(), every=f"{self.sweeper.every:.0f}"))
        return self.sweeper

    def start_heartbeat(self) -> HeartbeatThread:
        """Start beating (web/health.py's /readyz wants a recent beat)."""
        if self.heartbeat is None:
            self.heartbeat = HeartbeatThread(self.settings)
            self.heartbeat.start()
            log.info(logkv(event="heartbeat_started", node=self.heartbeat.node,
                           every=f"{self.heartbeat.every:.0f}"))
        return self.heartbeat

    def stop_heartbeat(self) -> None:
        """Stop beating and remove this worker's beat."""
        thread, self.heartbeat = self.heartbeat, None
        if thread is not None:
            thread.stop()

    def start_webhooks(self) -> None:
        """Start the webhook delivery loop in a thread unless the `webhooks` setting is off."""
        from humanseg.worker.webhook_sender import WebhookThread

        if self.settings.webhooks and self.webhooks is None:
            self.webhooks = WebhookThread(self.settings, self.resources(with_predictor=False).sessions)
            self.webhooks.start()
            log.info(logkv(event="webhooks_started", pid=os.getpid()))

    def stop_webhooks(self, timeout: float = 5.0) -> None:
        """Stop the webhook delivery loop, if one runs."""
        thread, self.webhooks = self.webhooks, None
        if thread is not None:
            thread.stop(timeout)

    def stop_sweeper(self, timeout: float = 5.0) -> None:
        """Stop the sweeper thread, if one runs."""
        thread, self.sweeper = self.sweeper, None
        if thread is not None:
            thread.stop(timeout)
            log.info(logkv(event="sweeper_stopped", pid=os.getpid()))


def load_models(settings: Settings):
    """The registry's models for this process (threads capped so processes x threads <= cores), with
    the default one loaded now: the others load when a job first asks for them."""
    from humanseg.core.registry import Registry
    from humanseg.ml.registry import LoadedModels

    threads = settings.effective_threads()
    registry = Registry.load(settings.models_dir, settings.default_model)
    log.info(logkv(event="predictor_loading", pid=os.getpid(), threads=threads, backend=settings.model_backend,
                   models=",".join(registry.names), default=registry.default, keep=settings.models_loaded))
    models = LoadedModels(registry, settings.models_loaded, settings.model_backend, threads)
    models.get(None)
    return models


def attach_runtime(app: Celery, settings: Settings) -> Runtime:
    """Give app its Runtime (one per app; the handlers below find it there)."""
    runtime = Runtime(settings)
    setattr(app, _ATTR, runtime)
    return runtime


def runtime_of(app: Any) -> Runtime | None:
    """The Runtime of a humanseg Celery app; None for any other app."""
    return getattr(app, _ATTR, None)


def connect_signals() -> None:
    """Connect the worker lifecycle handlers; dispatch_uid makes a second call a no-op."""
    signals.worker_process_init.connect(_on_process_init, weak=False,
                                        dispatch_uid="humanseg.worker_process_init")
    signals.worker_ready.connect(_on_worker_ready, weak=False, dispatch_uid="humanseg.worker_ready")
    signals.worker_shutdown.connect(_on_worker_shutdown, weak=False,
                                    dispatch_uid="humanseg.worker_shutdown")


def _on_process_init(**_: Any) -> None:
    # The pool sends only a hostname; a worker process has made its one app current.
    runtime = runtime_of(current_app._get_current_object())
    if runtime is not None:
        runtime.resources()  # load the default model now so the first task does not pay for it
        # The model, Celery and the libraries live as long as the process: frozen, the garbage
        # collector never scans them again, so a full collection no longer stalls a job.
        gc.collect()
        gc.freeze()
        log.info(logkv(event="gc_frozen", pid=os.getpid(), objects=gc.get_freeze_count()))


def _on_worker_ready(sender: Any = None, **_: Any) -> None:
    app = getattr(sender, "app", None)  # sender: the worker's Consumer
    runtime = runtime_of(app)
    if runtime is not None:
        runtime.start_heartbeat()
        runtime.start_sweeper(app)
        runtime.start_webhooks()
        from humanseg.worker.metrics import serve

        serve(runtime.settings)  # the main process serves the pool's summed samples


def _on_worker_shutdown(sender: Any = None, **_: Any) -> None:
    runtime = runtime_of(getattr(sender, "app", None))  # sender: the WorkController
    if runtime is not None:
        runtime.stop_heartbeat()
        runtime.stop_sweeper()
        runtime.stop_webhooks()
