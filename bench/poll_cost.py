"""CPU per job poll: our web tier against the floor of the server it runs on.

Starts gunicorn with humanseg's own config (gevent worker, one process) three times, each
polled at --rate per second for --seconds by bench/pollload.py (its own process):
1. an empty WSGI app answering a fixed JSON body (what gunicorn's gevent worker costs alone);
2. a minimal Flask app with the same route, answering a small dict (what Flask adds);
3. humanseg's app, polled on a real job row (SQLite in a temp dir), no batch running.
Prints, per server, the web process's CPU per request and the polls' latency, with `uptime`.
No worker runs: this is the price of one answer, the part a batch pays for when both share cores.

    python bench/poll_cost.py [--rate 500 --seconds 8]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchlib import free_port, load, stop
from e2e_ratio import cpu_seconds

ROOT = Path(__file__).resolve().parent.parent
HERE = Path(__file__).resolve().parent

FLOOR_APPS = '''
import json
BODY = json.dumps({"id": "0" * 32, "status": "running", "attempts": 1, "error": None}).encode()

def empty(environ, start_response):
    start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(BODY)))])
    return [BODY]

from flask import Flask, jsonify
flask_app = Flask(__name__)

@flask_app.get("/api/v1/jobs/<job_id>")
def job(job_id):
    return jsonify({"id": job_id, "status": "running", "attempts": 1, "error": None})
'''

MAKE_JOB = '''
from humanseg.core import migrate
from humanseg.core.db import make_engine, make_sessionmaker, session_scope
from humanseg.core.models import Batch, Job
from humanseg.core.settings import Settings
settings = Settings.from_env()
migrate.upgrade(settings.database_url)
with session_scope(make_sessionmaker(make_engine(settings.database_url))) as s:
    batch = Batch(name="poll-cost")
    s.add(batch)
    s.flush()
    job = Job(batch_id=batch.id, filename="a.jpg", content_type="image/jpeg", width=640,
              height=480, bytes=1000, original_key=f"originals/{batch.id}.jpg")
    s.add(job)
    s.flush()
    print(job.id)
'''


def measure(app: str, path: str, env: dict[str, str], rate: float, seconds: float, tmp: Path) -> dict:
    port = free_port()
    log = open(tmp / "gunicorn.log", "ab")  # noqa: SIM115 - the child holds it
    proc = subprocess.Popen([sys.executable, "-m", "gunicorn", "--config", "python:humanseg.gunicorn_conf",
                             "--workers", "1", "--bind", f"127.0.0.1:{port}", app],
                            env=env, cwd=tmp, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while True:
            kids = [int(p) for p in subprocess.run(["pgrep", "-P", str(proc.pid)], capture_output=True,
                                                     text=True).stdout.split()]
            if kids and "Booting worker" in (tmp / "gunicorn.log").read_text(errors="replace"):
                break
            if time.monotonic() > deadline or proc.poll() is not None:
                sys.exit(f"gunicorn did not start; see {tmp / 'gunicorn.log'}")
            time.sleep(0.2)
        time.sleep(2.0)  # the worker imports the app after it boots
        url = f"http://127.0.0.1:{port}{path}"
        subprocess.run([sys.executable, str(HERE / "pollload.py"), url, "--rate", "50", "--seconds", "1"],
                       check=True, capture_output=True)  # warm: first requests import and connect
        pids = [proc.pid, *kids]
        t0, cpu0 = time.perf_counter(), cpu_seconds(pids)
        out = subprocess.run([sys.executable, str(HERE / "pollload.py"), url, "--rate", str(rate),
                              "--seconds", str(seconds)], check=True, capture_output=True, text=True)
        cores = (cpu_seconds(pids) - cpu0) / (time.perf_counter() - t0)
    finally:
        stop(proc)
        log.close()
    result = json.loads(out.stdout.strip().splitlines()[-1])
    result["web_cores"] = cores
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rate", type=float, default=500.0)
    parser.add_argument("--seconds", type=float, default=8.0)
    args = parser.parse_args(argv)
    tmp = Path(tempfile.mkdtemp(prefix="poll-cost-"))
    (tmp / "floor_apps.py").write_text(FLOOR_APPS)
    env = {k: v for k, v in os.environ.items() if not k.startswith("HUMANSEG_")}
    env.update(HUMANSEG_DATA_DIR=str(tmp / "var"), HUMANSEG_SECRET_KEY="bench-secret-not-for-production",
               HUMANSEG_RATE_LIMIT_PER_MINUTE="0", PYTHONPATH=str(tmp))
    job_id = subprocess.run([sys.executable, "-c", MAKE_JOB], env=env, cwd=ROOT, check=True,
                            capture_output=True, text=True).stdout.strip().splitlines()[-1]
    print(f"polls at {args.rate:g}/s for {args.seconds:g} s per server  load: {load()}", flush=True)
    servers = [("gunicorn gevent, empty WSGI app", "floor_apps:empty"),
               ("gunicorn gevent, minimal Flask", "floor_apps:flask_app"),
               ("humanseg web (one job row)", "humanseg.web:create_app()")]
    for name, app in servers:
        r = measure(app, f"/api/v1/jobs/{job_id}", env, args.rate, args.seconds, tmp)
        per = r["web_cores"] * 1000 / max(r["rate"], 1)
        print(f"{name:34s} {r['rate']:.0f}/s  web {r['web_cores']:.3f} cores = {per:.2f} ms CPU per "
              f"request  p50={r['p50_ms']:.2f} p99={r['p99_ms']:.2f} ms  statuses={r['statuses']}  "
              f"client {r['client_cores']:.3f} cores", flush=True)
    print(f"load: {load()}")
    subprocess.run(["rm", "-rf", str(tmp)], check=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
