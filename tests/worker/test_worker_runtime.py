"""The worker's Runtime: owned by its Celery app, built per process, hooks connected once."""

import os
import re
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from celery import Celery, signals
from factories import make_settings, settings_env
from support_live import wait_until

from humanseg.core import migrate
from humanseg.core.queue import SEGMENT_TASK, make_sender
from humanseg.worker.celery_app import make_celery
from humanseg.worker.runtime import Runtime, runtime_of

ROOT = Path(__file__).resolve().parents[2]
HOOKS = (signals.worker_process_init, signals.worker_ready, signals.worker_shutdown)


@pytest.fixture
def settings(tmp_path, redis_url, private_queue):
    url = f"sqlite:///{tmp_path / 'w.db'}"
    migrate.upgrade(url)
    return make_settings(tmp_path, database_url=url, broker_url=redis_url, queue=private_queue)


def _sweeper_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "humanseg-sweeper"]


def test_hooks_are_connected_once_however_many_apps(settings):
    make_celery(settings)
    before = [len(s.receivers) for s in HOOKS]
    apps = [make_celery(settings.with_(queue=f"q{i}")) for i in range(3)]
    assert [len(s.receivers) for s in HOOKS] == before
    for app in apps:
        app.close()


def test_each_app_owns_its_runtime_and_task(settings):
    a, b = make_celery(settings.with_(queue="a")), make_celery(settings.with_(queue="b"))
    try:
        assert runtime_of(a) is not runtime_of(b)
        assert (runtime_of(a).settings.queue, runtime_of(b).settings.queue) == ("a", "b")
        # not shared between apps: b's worker must never run a's task (and a's settings)
        assert a.tasks[SEGMENT_TASK] is not b.tasks[SEGMENT_TASK]
        assert a.tasks[SEGMENT_TASK].app is a and b.tasks[SEGMENT_TASK].app is b
        assert runtime_of(Celery(set_as_current=False)) is None
    finally:
        a.close()
        b.close()


def test_resources_are_built_once_per_process(settings):
    runtime = Runtime(settings)
    first = runtime.resources(with_predictor=False)
    assert runtime.resources(with_predictor=False) is first and first.models is None
    assert first.pid == os.getpid()
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: a prefork pool process inheriting the app
        try:
            child = runtime.resources(with_predictor=False)
            ok = child is not first and child.pid == os.getpid()
            os.write(write, b"1" if ok else b"0")
        finally:
            os._exit(0)
    os.close(write)
    _, status = os.waitpid(pid, 0)
    answer = os.read(read, 1)
    os.close(read)
    assert os.waitstatus_to_exitcode(status) == 0 and answer == b"1"
    assert runtime.resources(with_predictor=False) is first


def test_sweeper_setting_off_starts_no_thread(settings):
    sender = make_sender(settings)
    runtime = Runtime(settings.with_(sweeper=False))
    try:
        assert runtime.start_sweeper(sender) is None and runtime.sweeper is None
        assert not _sweeper_threads()
    finally:
        runtime.stop_sweeper()
        sender.close()


def test_sweeper_setting_on_starts_one_thread_until_stopped(settings):
    sender = make_sender(settings)
    runtime = Runtime(settings)
    try:
        thread = runtime.start_sweeper(sender)
        assert thread is not None and thread.is_alive() and runtime.start_sweeper(sender) is thread
        assert _sweeper_threads() == [thread]
    finally:
        runtime.stop_sweeper()
        sender.close()
    assert not thread.is_alive() and runtime.sweeper is None


def _worker(settings, tmp_path, **extra):
    env = {k: v for k, v in os.environ.items() if not k.startswith("HUMANSEG_")}
    env.update(settings_env(data_dir=settings.data_dir, database_url=settings.database_url,
                            broker_url=settings.broker_url, queue=settings.queue, model_backend="onnx", threads=1))
    env.update(extra)
    log = open(tmp_path / "worker.log", "wb")  # noqa: SIM115 - closed below
    proc = subprocess.Popen([sys.executable, "-m", "humanseg.cli", "worker", "--pool=prefork"], env=env,
                            stdout=log, stderr=subprocess.STDOUT, cwd=ROOT, start_new_session=True)
    return proc, log


@pytest.mark.parametrize("switch,started", [("1", True), ("0", False)])
def test_real_worker_warms_its_pool_and_sweeps_only_when_switched_on(settings, tmp_path, switch, started):
    proc, log = _worker(settings, tmp_path, HUMANSEG_SWEEPER=switch)

    def text() -> str:
        return (tmp_path / "worker.log").read_text(errors="replace")

    try:
        wait_until(lambda: " ready." in text() or proc.poll() is not None, 120, "worker ready", interval=0.2)
        assert proc.poll() is None, text()
        # the sweeper's line and the pool child's are written around the ready line: wait for them
        wait_until(lambda: ("event=sweeper_started" in text() or "event=sweeper_off" in text())
                   and "event=gc_frozen" in text(), 30, lambda: "the sweeper's and the pool's lines:\n" + text(),
                   interval=0.1)
    finally:
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(60)
        log.close()
    out = text()
    assert code == 0, out
    assert ("event=sweeper_started" in out) is started and ("event=sweeper_off" in out) is not started
    assert ("event=sweeper_stopped" in out) is started
    # the pool child found its app's Runtime and loaded the default model before any task (the
    # others load when a job asks for them)
    assert "event=predictor_loading" in out and "event=model_loaded model=v4" in out, out
    assert "event=model_loaded model=modnet" not in out, out
    # ...and froze what loading made, out of the garbage collector's scans
    frozen = re.search(r"event=gc_frozen pid=\d+ objects=(\d+)", out)
    assert frozen and int(frozen.group(1)) > 10_000, out
    assert "Traceback" not in out, out


def _nice(pid: int) -> int:
    """The nice value of a process, from /proc (field 19 of stat)."""
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[16])


def _children(pid: int) -> list[int]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            if int(stat.read_text().rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(stat.parent.name))
        except (OSError, ValueError):
            continue
    return found


@pytest.mark.parametrize("nice", [7, 0])
def test_real_worker_and_its_pool_run_at_the_configured_cpu_priority(settings, tmp_path, nice):
    own = os.getpriority(os.PRIO_PROCESS, 0)
    proc, log = _worker(settings, tmp_path, HUMANSEG_WORKER_NICE=str(nice), HUMANSEG_SWEEPER="0")
    try:
        wait_until(lambda: " ready." in (tmp_path / "worker.log").read_text(errors="replace")
                   or proc.poll() is not None, 120, "worker ready", interval=0.2)
        assert proc.poll() is None, (tmp_path / "worker.log").read_text(errors="replace")
        pool = _children(proc.pid)
        assert pool, "the prefork pool has no process"
        expected = max(own, nice)  # never raised above where it started
        assert _nice(proc.pid) == expected
        assert [_nice(pid) for pid in pool] == [expected] * len(pool)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(60)
        log.close()


def test_lower_priority_only_ever_lowers_and_clamps():
    code = ("import os; from humanseg.cli import lower_priority as lp; "
            "print(lp(3), lp(1), lp(40), os.getpriority(os.PRIO_PROCESS, 0))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    own = os.getpriority(os.PRIO_PROCESS, 0)
    assert out.stdout.split() == [str(max(own, 3)), str(max(own, 3)), "19", "19"]
