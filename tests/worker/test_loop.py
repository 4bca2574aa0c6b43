"""worker/loop.py: the one background loop behind the sweeper, webhook deliveries and heartbeat."""

import logging
import threading

from factories import make_settings

from humanseg.worker.heartbeat import HeartbeatThread
from humanseg.worker.loop import Loop
from humanseg.worker.sweeper import SweeperThread
from humanseg.worker.webhook_sender import WebhookThread


def test_a_failing_step_is_logged_and_the_loop_goes_on(caplog):
    calls, third = [], threading.Event()

    def step():
        calls.append(1)
        if len(calls) == 3:
            third.set()
        raise RuntimeError("database away")

    loop = Loop("probe", 0.01, step)
    with caplog.at_level(logging.ERROR, logger="humanseg.worker.loop"):
        loop.start()
        assert third.wait(10)
        loop.stop()
    assert not loop.is_alive()
    assert any("event=probe_loop_error" in r.getMessage() for r in caplog.records)


def test_work_left_undone_runs_again_without_waiting():
    # every=1 hour: only "work left" (True) can bring the second and third passes.
    passes, done = [], threading.Event()

    def step():
        passes.append(1)
        if len(passes) == 3:
            done.set()
            return False
        return True

    loop = Loop("busy", 3600, step)
    loop.start()
    assert done.wait(10)
    loop.stop()
    assert len(passes) == 3 and not loop.is_alive()


def test_stop_waits_for_the_pass_in_progress_then_finish_runs_once():
    inside, release, order = threading.Event(), threading.Event(), []

    def step():
        inside.set()
        release.wait(10)
        order.append("step")

    loop = Loop("slow", 3600, step, finish=lambda: order.append("finish"))
    loop.start()
    assert inside.wait(10)
    stopper = threading.Thread(target=loop.stop, kwargs={"timeout": 10})
    stopper.start()
    release.set()
    stopper.join(10)
    assert order == ["step", "finish"] and not loop.is_alive()


def test_stop_before_start_and_twice_is_harmless():
    loop = Loop("idle", 1, lambda: None)
    loop.stop()
    loop.stop()
    assert not loop.is_alive()


def test_the_three_worker_loops_are_this_loop():
    settings = make_settings()
    for thread in (HeartbeatThread(settings, node="n"), WebhookThread(settings, sessions=None),
                   SweeperThread(settings, sessions=None, celery=None, storage=object())):
        assert isinstance(thread, Loop) and thread.daemon and thread.name.startswith("humanseg-")
