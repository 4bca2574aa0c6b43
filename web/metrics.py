"""/metrics of the web tier: requests by route and status, and their latency (Prometheus).

Under gunicorn every worker process writes its samples to PROMETHEUS_MULTIPROC_DIR (set by
web/gunicorn_conf.py) and a scrape of any worker adds all of them up.
"""

from __future__ import annotations

import os
import time

from flask import Blueprint, Flask, Response, g, request
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
)

bp = Blueprint("metrics", __name__)

REQUESTS = Counter("humanseg_http_requests_total", "HTTP requests answered, by route and status",
                   ["method", "route", "status"])
LATENCY = Histogram("humanseg_http_request_duration_seconds", "Time to answer, by route",
                    ["method", "route"],
                    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60))


def registry() -> CollectorRegistry:
    """What a scrape reads: every process's samples in multi-process mode, else this process's."""
    if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        return REGISTRY
    reg = CollectorRegistry()
    multiprocess.MultiProcessCollector(reg)
    return reg


@bp.get("/metrics")
def metrics() -> Response:
    """Prometheus text format."""
    return Response(generate_latest(registry()), mimetype=CONTENT_TYPE_LATEST)


def _start() -> None:
    g.metrics_t0 = time.perf_counter()


def _observe(resp: Response) -> Response:
    # The route pattern, never the path: ids in paths would make a series per job.
    route = request.url_rule.rule if request.url_rule is not None else "unmatched"
    elapsed = time.perf_counter() - g.get("metrics_t0", time.perf_counter())
    REQUESTS.labels(request.method, route, str(resp.status_code)).inc()
    LATENCY.labels(request.method, route).observe(elapsed)
    return resp


def install(app: Flask) -> None:
    """Time every request (registered first, so the guard's refusals count too) and add /metrics."""
    app.before_request(_start)
    app.after_request(_observe)
    app.register_blueprint(bp)
