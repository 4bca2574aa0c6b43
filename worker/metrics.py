"""Worker metrics (Prometheus): jobs by outcome, job and model durations, attempts, queue depth.

Tasks run in Celery's pool children; each writes its samples to PROMETHEUS_MULTIPROC_DIR (set
by `humanseg worker` before the pool forks), and the main process serves their sum on
`worker_metrics_port`, with the queue's depth read from the broker at each scrape.
"""

from __future__ import annotations

import logging
from typing import Any

from prometheus_client import Counter, Histogram
from prometheus_client.core import GaugeMetricFamily

from humanseg.core.logfmt import logkv
from humanseg.core.queue import shared_client
from humanseg.core.settings import Settings

log = logging.getLogger(__name__)

JOBS = Counter("humanseg_jobs_total", "Job deliveries by outcome (succeeded, failed, retry, skipped)",
               ["outcome"])
JOB_SECONDS = Histogram("humanseg_job_duration_seconds", "One delivery of a job, end to end",
                        ["outcome"], buckets=(0.1, 0.25, 0.5, 1, 2, 4, 8, 15, 30, 60, 120, 300))
MODEL_SECONDS = Histogram("humanseg_model_duration_seconds", "The model's time on one image",
                          buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 4, 8, 15, 30, 60))
ATTEMPTS = Histogram("humanseg_job_attempts", "The attempt number of each finished delivery",
                     buckets=(1, 2, 3, 4, 5, 10))


class TimedPredictor:
    """A predictor whose segment() calls are timed into MODEL_SECONDS."""

    def __init__(self, predictor: Any):
        self.predictor = predictor

    def segment(self, image):
        """The wrapped predictor's segment, timed."""
        with MODEL_SECONDS.time():
            return self.predictor.segment(image)


class TimedModels:
    """The process's models, each handed out timed (TimedPredictor)."""

    def __init__(self, models: Any):
        self.models = models

    def get(self, name: str | None) -> TimedPredictor:
        """The named model's predictor, its segment() calls timed."""
        return TimedPredictor(self.models.get(name))


def record(outcome: str, attempt: int, seconds: float) -> None:
    """Count one delivery's outcome and duration."""
    JOBS.labels(outcome).inc()
    JOB_SECONDS.labels(outcome).observe(seconds)
    if attempt:
        ATTEMPTS.observe(attempt)


class QueueDepth:
    """A collector reading the queue's length (messages waiting) from the broker at scrape time."""

    def __init__(self, settings: Settings):
        self.settings = settings

    def collect(self):
        family = GaugeMetricFamily("humanseg_queue_depth", "Messages waiting in the job queue",
                                   labels=["queue"])
        try:
            depth = shared_client(self.settings.broker_url).llen(self.settings.queue)
            family.add_metric([self.settings.queue], depth)
        except Exception as exc:  # noqa: BLE001 - a scrape must answer even with the broker down
            log.warning(logkv(event="queue_depth_unavailable", error=exc))
        yield family


def serve(settings: Settings):
    """Serve this worker's metrics on worker_metrics_port; returns the server (None when off)."""
    import os

    from prometheus_client import (
        REGISTRY,
        CollectorRegistry,
        multiprocess,
        start_http_server,
    )

    if settings.worker_metrics_port <= 0:
        return None
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
    else:
        registry = REGISTRY
    registry.register(QueueDepth(settings))
    server, _thread = start_http_server(settings.worker_metrics_port, registry=registry)
    log.info(logkv(event="metrics_serving", port=settings.worker_metrics_port))
    return server
