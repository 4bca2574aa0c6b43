"""CPU per job poll: our web tier against the floor of the server it runs on.

Starts gunicorn with humanseg's own config (gevent worker, one process) three times, each
polled at --rate per second for --seconds by bench/pollload.py (its own process):
1. an empty WSGI app answering a fixed JSON body (what gunicorn's gevent worker costs alone);
2. a minimal Flask app with the same route, answering a small dict (what Flask adds);
3. humanseg's app, polled on a real job row (SQLite in a temp dir), no batch running:
   anonymous (as on loopback), with an API key (keys required), and with an API key whose
   rate limit is counted in Redis (--broker-url; skipped when nothing answers there).
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
from humanseg.core import keys, migrate
from humanseg.core.db import make_engine, make_sessionmaker, session_scope
from humanseg.core.models import Batch, Job
from humanseg.core.settings import Settings
settings = Settings.from_env()
migrate.upgrade(settings.database_url)
with session_scope(make_sessionmaker(make_engine(settings.database_url))) as s:
    plain = keys.create_key(s, "poll-cost", requests_per_minute=0)  # 0: no rate limit
    limited = keys.create_key(s, "poll-cost-limited", admin=True, requests_per_minute=10**9)
    batch = Batch(name="poll-cost", owner_key_id=plain[0].id)
    s.add(batch)
    s.flush()
    job = Job(batch_id=batch.id, filename="a.jpg", content_type="image/jpeg", width=640,
              height=480, bytes=1000, original_key=f"originals/{batch.id}.jpg")
    s.add(job)
    s.flush()
    print(job.id, plain[1], limited[1])
'''


def measure(app: str, path: str, env: dict[str, str], rate: float, seconds: float, tmp: Path,
            key: str | None = None) -> dict:
    port = free_port()
    log = open(tmp / "gunicorn.log", "ab")  # noqa: SIM115 - the child holds it
    proc = subprocess.Popen([sys.executable, "-m", "gunicorn", "--config", "python:humanseg.web.gunicorn_conf",
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
        auth = ["--header", f"Authorization: Bearer {key}"] if key else []
        subprocess.run([sys.executable, str(HERE / "pollload.py"), url, "--rate", "50", "--seconds", "1",
                        *auth], check=True, capture_output=True)  # warm: first requests import and connect
        pids = [proc.pid, *kids]
        t0, cpu0 = time.perf_counter(), cpu_seconds(pids)
        out = subprocess.run([sys.executable, str(HERE / "pollload.py"), url, "--rate", str(rate),
                              "--seconds", str(seconds), *auth], check=True, capture_output=True, text=True)
        cores = (cpu_seconds(pids) - cpu0) / (time.perf_counter() - t0)
    finally:
        stop(proc)
        log.close()
    result = json.loads(out.stdout.strip().splitlines()[-1])
    result["web_cores"] = cores
    return result


def redis_answers(url: str) -> bool:
    import redis

    try:
        return bool(redis.Redis.from_url(url, socket_connect_timeout=1).ping())
    except redis.RedisError:
        return False


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rate", type=float, default=500.0)
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--broker-url", default="redis://127.0.0.1:6379/15",
                        help="Redis for the rate-limited key's counts")
    args = parser.parse_args(argv)
    tmp = Path(tempfile.mkdtemp(prefix="poll-cost-"))
    (tmp / "floor_apps.py").write_text(FLOOR_APPS)
    env = {k: v for k, v in os.environ.items() if not k.startswith("HUMANSEG_")}
    env.update(HUMANSEG_DATA_DIR=str(tmp / "var"), HUMANSEG_SECRET_KEY="bench-secret-not-for-production",
               HUMANSEG_RATE_LIMIT_PER_MINUTE="0", HUMANSEG_BROKER_URL=args.broker_url,
               PYTHONPATH=str(tmp))
    job_id, key, limited_key = subprocess.run(
        [sys.executable, "-c", MAKE_JOB], env=env, cwd=ROOT, check=True, capture_output=True,
        text=True).stdout.strip().splitlines()[-1].split()
    keyed = {**env, "HUMANSEG_REQUIRE_API_KEYS": "1"}
    print(f"polls at {args.rate:g}/s for {args.seconds:g} s per server  load: {load()}", flush=True)
    humanseg = "humanseg.web:create_app()"
    servers = [("gunicorn gevent, empty WSGI app", "floor_apps:empty", env, None),
               ("gunicorn gevent, minimal Flask", "floor_apps:flask_app", env, None),
               ("humanseg web, anonymous", humanseg, env, None),
               ("humanseg web, API key", humanseg, keyed, key)]
    if redis_answers(args.broker_url):
        servers.append(("humanseg web, API key + rate limit", humanseg, keyed, limited_key))
    else:
        print(f"(no Redis at {args.broker_url}: the rate-limited key is skipped)")
    for name, app, app_env, auth in servers:
        r = measure(app, f"/api/v1/jobs/{job_id}", app_env, args.rate, args.seconds, tmp, auth)
        per = r["web_cores"] * 1000 / max(r["rate"], 1)
        print(f"{name:36s} {r['rate']:.0f}/s  web {r['web_cores']:.3f} cores = {per:.2f} ms CPU per "
              f"request  p50={r['p50_ms']:.2f} p99={r['p99_ms']:.2f} ms  statuses={r['statuses']}  "
              f"client {r['client_cores']:.3f} cores", flush=True)
    print(f"load: {load()}")
    subprocess.run(["rm", "-rf", str(tmp)], check=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
