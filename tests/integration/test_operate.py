"""Operating a live stack (gunicorn web + Celery worker): readiness sees the worker, web logs appear."""


import pytest
import requests
import support_images as si
from support_live import free_port, stop_process, wait_until


@pytest.mark.parametrize("stack", ["sqlite-local"], indirect=True)
def test_ready_with_a_worker_and_web_logs_under_gunicorn(stack):
    # the worker beats once it is ready; the web may be up before it
    resp = wait_until(lambda: (r := requests.get(stack.url("/readyz"), timeout=10)).status_code == 200 and r,
                      60, "/readyz answers 200", interval=0.2)
    assert resp.json()["checks"]["worker"] == "ok"
    body = requests.post(stack.url("/api/v1/jobs"), files=[("images", ("a.jpg", si.jpeg()))],
                         timeout=30).json()
    log = stack.settings.data_dir / "web.log"
    wanted = f"event=jobs_created batch_id={body['batch_id']}"
    # the app's own lines, not only access lines
    wait_until(lambda: wanted in log.read_text(errors="replace"), 20,
               lambda: f"{wanted} in web.log:\n" + log.read_text(errors="replace")[-3000:], interval=0.1)
    assert stack.wait_job(body["jobs"][0]["id"])["status"] == "succeeded"


def test_gunicorn_on_a_reachable_address_requires_keys(tmp_path):
    import os
    import subprocess
    import sys
    from pathlib import Path

    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("HUMANSEG_")}
    # As the web image runs it; HUMANSEG_HOST stays loopback: the address gunicorn binds is what counts.
    env.update(HUMANSEG_DATA_DIR=str(tmp_path), HUMANSEG_SECRET_KEY="test-secret",
               HUMANSEG_BROKER_URL="redis://127.0.0.1:9/0")
    proc = subprocess.Popen([sys.executable, "-m", "gunicorn", "--config", "python:humanseg.web.gunicorn_conf",
                             "--bind", f"0.0.0.0:{port}"],
                            env=env, cwd=Path(__file__).resolve().parents[2],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            start_new_session=True)

    def answer() -> tuple | None:  # in a tuple: a 401 response is falsy
        assert proc.poll() is None, "gunicorn exited"
        try:
            return (requests.get(f"http://127.0.0.1:{port}/api/v1/batches/{'a' * 32}", timeout=5),)
        except (requests.ConnectionError, requests.Timeout):  # not listening yet, or its workers still booting
            return None

    try:
        (resp,) = wait_until(answer, 60, "gunicorn answers", interval=0.2)
        assert resp.status_code == 401 and resp.json()["error"]["code"] == "api_key_required"
    finally:
        stop_process(proc)
        output = proc.stdout.read().decode(errors="replace")
        proc.stdout.close()
    assert "event=api_keys_required listening=0.0.0.0" in output, output[-3000:]


def _samples(text: str) -> dict[tuple[str, tuple], float]:
    from prometheus_client.parser import text_string_to_metric_families

    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


@pytest.mark.parametrize("stack", ["sqlite-local"], indirect=True)
def test_metrics_parse_and_move_after_a_real_job(stack):
    worker_url = f"http://127.0.0.1:{stack.env['HUMANSEG_WORKER_METRICS_PORT']}/metrics"
    def worker_samples() -> tuple | None:  # in a tuple: no samples yet is an empty dict
        try:
            return (_samples(requests.get(worker_url, timeout=5).text),)
        except requests.ConnectionError:
            return None

    (before_worker,) = wait_until(worker_samples, 60, "the worker serves /metrics (once it is ready)",
                                  interval=0.2)
    before_web = _samples(requests.get(stack.url("/metrics"), timeout=10).text)
    created = ("humanseg_http_requests_total",
               (("method", "POST"), ("route", "/api/v1/jobs"), ("status", "202")))
    done = ("humanseg_jobs_total", (("outcome", "succeeded"),))
    body = requests.post(stack.url("/api/v1/jobs"), files=[("images", ("a.jpg", si.jpeg()))],
                         timeout=30).json()
    assert stack.wait_job(body["jobs"][0]["id"])["status"] == "succeeded"
    web = _samples(requests.get(stack.url("/metrics"), timeout=10).text)
    assert web[created] == before_web.get(created, 0) + 1
    latency = ("humanseg_http_request_duration_seconds_count",
               (("method", "POST"), ("route", "/api/v1/jobs")))
    assert web[latency] >= 1
    # the task records its outcome just after the job row says succeeded
    worker = wait_until(lambda: (w := _samples(requests.get(worker_url, timeout=5).text)).get(done, 0)
                        >= before_worker.get(done, 0) + 1 and w, 20, "the worker counted the job",
                        interval=0.1)
    assert worker[("humanseg_model_duration_seconds_count", ())] >= 1
    assert worker[("humanseg_job_attempts_count", ())] >= 1
    assert ("humanseg_queue_depth", (("queue", stack.settings.queue),)) in worker


@pytest.mark.parametrize("stack", ["sqlite-local"], indirect=True)
def test_workers_send_task_events_for_flower(stack):
    import threading

    from humanseg.core.queue import make_sender

    app = make_sender(stack.settings)
    seen: dict[str, set[str]] = {}  # task id -> event types (and the task name, when sent)
    receivers = []
    wanted = {"task-received", "task-started", "task-succeeded", "humanseg.segment"}

    def on_event(event):
        if event.get("uuid"):
            seen.setdefault(event["uuid"], set()).update({event["type"], event.get("name") or ""})

    def complete() -> bool:
        return any(wanted <= types for types in list(seen.values()))

    def listen():
        with app.connection_for_read() as conn:
            receiver = app.events.Receiver(conn, handlers={"*": on_event})
            receivers.append(receiver)
            receiver.capture(limit=None, timeout=None, wakeup=False)  # until should_stop

    thread = threading.Thread(target=listen, daemon=True)
    thread.start()
    def upload_one() -> bool:
        body = requests.post(stack.url("/api/v1/jobs"), files=[("images", ("a.jpg", si.jpeg()))],
                             timeout=30).json()
        stack.wait_job(body["jobs"][0]["id"])
        try:  # its last event may trail the job row by a moment
            return wait_until(complete, 2, "its last events")
        except AssertionError:
            return False  # some went out before the receiver subscribed: the next upload will do

    try:
        # Events go out on pub/sub: only those after the receiver subscribed arrive, so upload
        # until one task's whole life (what Flower lists) has been seen.
        wait_until(lambda: complete() or upload_one(), 60, lambda: f"one task's whole life seen ({seen})",
                   interval=0)
    finally:
        for receiver in receivers:
            receiver.should_stop = True
        thread.join(10)
        app.close()
