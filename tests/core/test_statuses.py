"""The status enums: one definition each, and what reads them gets their values, not their names."""

import pytest

from humanseg.core.counts import StatusCounts
from humanseg.core.logfmt import logkv
from humanseg.core.models import ACTIVE_STATUSES, DeliveryStatus, JobStatus


@pytest.mark.parametrize("status", list(JobStatus))
def test_every_reader_of_the_split_agrees_whether_a_job_can_still_change(status):
    """The split decides what a wait waits for, what cancel may stop, what keeps a batch open, what
    retention may delete and what the job JSON calls done: each reader must get the same answer."""
    from humanseg.web.jobs_control import CANCELLABLE, RETRYABLE

    active = status in {JobStatus.queued, JobStatus.running}  # only these can move without a client
    assert status.is_terminal() is not active
    assert (status in ACTIVE_STATUSES) is active
    assert (status in CANCELLABLE) is active
    assert status not in RETRYABLE or not active  # only a finished job can be run again
    counts = StatusCounts({s.value: int(s is status) for s in JobStatus})
    assert counts.done is not active and counts.progress == (0.0 if active else 1.0)


def test_only_a_pending_delivery_has_attempts_left():
    assert [s for s in DeliveryStatus if not s.is_terminal()] == [DeliveryStatus.pending]
    assert DeliveryStatus("succeeded").is_terminal() and DeliveryStatus("failed").is_terminal()


def test_log_lines_carry_enum_values():
    # str() of a str-valued enum member is "JobStatus.queued" on Python 3.11: logs must say "queued".
    assert logkv(status=JobStatus.queued, delivery=DeliveryStatus.failed) == "status=queued delivery=failed"


def test_task_outcomes_are_the_worker_metrics_labels():
    from humanseg.worker import metrics
    from humanseg.worker.pipeline import TaskOutcome

    for outcome in TaskOutcome:
        assert outcome.value in metrics.JOBS._documentation  # the help text lists every outcome
    metrics.record(TaskOutcome.skipped.value, 1, 0.01)
    labels = {s.labels.get("outcome") for fam in metrics.JOBS.collect() for s in fam.samples}
    assert "skipped" in labels and not any(lbl and "." in lbl for lbl in labels)
