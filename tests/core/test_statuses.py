"""The status enums: one definition each, and what reads them gets their values, not their names."""

from humanseg.core.logfmt import logkv
from humanseg.core.models import ACTIVE_STATUSES, DeliveryStatus, JobStatus


def test_active_and_terminal_job_statuses_split_the_enum():
    assert set(ACTIVE_STATUSES) == {s for s in JobStatus if not s.is_terminal()}
    assert set(ACTIVE_STATUSES) | {s for s in JobStatus if s.is_terminal()} == set(JobStatus)
    assert JobStatus.cancelled.is_terminal() and not JobStatus.running.is_terminal()


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
