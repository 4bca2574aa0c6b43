"""core/logsetup.py: one handler per process, and Celery's per-task lines only when debugging."""
import logging

import pytest

from humanseg.core.logsetup import PER_TASK, configure_logging


@pytest.fixture
def root_level():
    root = logging.getLogger()
    saved = root.level, {name: logging.getLogger(name).level for name in PER_TASK}
    yield
    root.setLevel(saved[0])
    for name, level in saved[1].items():
        logging.getLogger(name).setLevel(level)


def test_celerys_per_task_lines_are_left_out_below_debug_but_failures_show(root_level):
    configure_logging("INFO")
    trace = logging.getLogger("celery.app.trace")
    assert not trace.isEnabledFor(logging.INFO)  # "Task ... succeeded in 0.1s": the job_done line says it
    assert trace.isEnabledFor(logging.ERROR)  # a task that raised still shows
    assert not logging.getLogger("celery.worker.strategy").isEnabledFor(logging.INFO)
    assert logging.getLogger("humanseg.worker.pipeline").isEnabledFor(logging.INFO)
    configure_logging("DEBUG")
    assert all(logging.getLogger(name).isEnabledFor(logging.DEBUG) for name in PER_TASK)
