"""Where a multi-process server keeps its Prometheus samples (prometheus-client's multiprocess mode).

PROMETHEUS_MULTIPROC_DIR must be set before prometheus_client is first imported in the process
tree: each process (gunicorn worker, Celery pool child) then writes its own files there, and a
scrape adds them up.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from humanseg.core.settings import Settings

ENV = "PROMETHEUS_MULTIPROC_DIR"


def prepare_multiproc_dir(settings: Settings, role: str) -> Path:
    """An emptied <data_dir>/metrics/<role>, named in the environment (kept if already set)."""
    given = os.environ.get(ENV)
    if given:
        return Path(given)
    path = (settings.data_dir / "metrics" / role).resolve()
    # Samples of a previous run would add to this one's (counters must start at zero).
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True, exist_ok=True)
    os.environ[ENV] = str(path)
    return path
