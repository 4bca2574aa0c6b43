"""Scale-out: do two separate `humanseg worker` commands (as on two machines) finish a batch faster?

Starts, all on this machine and against shared services:
- a fresh PostgreSQL database `bench_<hex>` on --pg (dropped at the end), migrated;
- moto's S3 server on a free port (HUMANSEG_STORAGE=s3, bucket created here);
- a Redis DB (--redis, a queue of its own, its keys removed at the end);
- one `humanseg web`, and `humanseg worker` commands with HUMANSEG_WORKER_CONCURRENCY=1 and
  HUMANSEG_THREADS=1, each with its own log.

Run 1: one worker, one upload of N photos; run 2: a second worker started, a fresh batch of N.
Time = upload start -> the batch's last `finished_at`. Then proves no job was done twice: the
`event=job_done` lines per job id across both workers' logs (exactly one, recorded=True) and the
jobs' `attempts` column (all 1).

    python bench/scale_out.py                    # 60 synthetic 640x480 photos per run
    python bench/scale_out.py --n 30 --images photos/
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from pathlib import Path

import requests
from benchlib import free_port, last_finished, load, stop, wait_done
from pipeline_throughput import load_files, synthetic

ROOT = Path(__file__).resolve().parent.parent
HUMANSEG = [sys.executable, "-m", "humanseg.cli"]


def stop_group(proc: subprocess.Popen) -> None:
    """Stop a child started in its own session, then anything of its group still left (forked
    workers that outlive their parent)."""
    stop(proc, timeout=40)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)


def libpq(url: str) -> str:
    """The SQLAlchemy URL as libpq takes it (no +driver)."""
    return re.sub(r"^postgresql\+\w+://", "postgresql://", url)


def wait_for(what: str, ok, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(Exception):  # not up yet
            if ok():
                return
        time.sleep(0.3)
    raise RuntimeError(f"{what} did not come up in {timeout:.0f}s")


class Bench:
    def __init__(self, args):
        self.args = args
        self.tmp = Path(tempfile.mkdtemp(prefix="scale-out-"))
        self.tag = uuid.uuid4().hex[:8]
        self.db = f"bench_{self.tag}"
        self.queue = f"bench-scale-{self.tag}"
        self.procs: list[subprocess.Popen] = []
        self.logs: list[Path] = []
        self.redis = None
        self.redis_keys0: set[bytes] = set()
        self.db_created = False

    # services ---------------------------------------------------------------------------------
    def admin(self):
        import psycopg

        return psycopg.connect(libpq(self.args.pg), autocommit=True)

    def start(self) -> None:
        import boto3
        import redis

        with self.admin() as conn:
            conn.execute(f'CREATE DATABASE "{self.db}"')
        self.db_created = True
        self.redis = redis.Redis.from_url(self.args.redis)
        self.redis_keys0 = set(self.redis.keys("*"))
        s3_port, self.port = free_port(), free_port()
        s3_url = f"http://127.0.0.1:{s3_port}"
        self.spawn("moto", [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(s3_port)],
                   dict(os.environ))
        wait_for("moto", lambda: requests.get(s3_url, timeout=2).status_code < 500)
        pg_base = self.args.pg.rsplit("/", 1)[0]
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("HUMANSEG_")}
        self.env.update(
            HUMANSEG_DATA_DIR=str(self.tmp / "var"), HUMANSEG_DATABASE_URL=f"{pg_base}/{self.db}",
            HUMANSEG_BROKER_URL=self.args.redis, HUMANSEG_QUEUE=self.queue,
            HUMANSEG_STORAGE="s3", HUMANSEG_S3_BUCKET=f"bench-{self.tag}", HUMANSEG_S3_ENDPOINT_URL=s3_url,
            HUMANSEG_PORT=str(self.port), HUMANSEG_SECRET_KEY="bench-secret-not-for-production",
            HUMANSEG_LOG_LEVEL="INFO", HUMANSEG_MAX_FILES="1000", HUMANSEG_RATE_LIMIT_PER_MINUTE="0",
            HUMANSEG_IMAGES_PER_DAY="0", HUMANSEG_WEBHOOKS="0",
            AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing", AWS_DEFAULT_REGION="us-east-1")
        boto3.client("s3", endpoint_url=s3_url, region_name="us-east-1", aws_access_key_id="testing",
                     aws_secret_access_key="testing").create_bucket(Bucket=f"bench-{self.tag}")
        subprocess.run([*HUMANSEG, "db", "upgrade"], env=self.env, cwd=ROOT, check=True,
                       capture_output=True)
        self.base = f"http://127.0.0.1:{self.port}"
        self.spawn("web", [*HUMANSEG, "web"], self.env)
        wait_for("humanseg web", lambda: requests.get(self.base + "/healthz", timeout=2).ok)

    def spawn(self, name: str, argv: list[str], env: dict[str, str]) -> Path:
        path = self.tmp / f"{name}.log"
        with open(path, "wb") as log:
            self.procs.append(subprocess.Popen(argv, env=env, cwd=ROOT, stdout=log,
                                               stderr=subprocess.STDOUT, start_new_session=True))
        return path

    def start_worker(self, n: int) -> None:
        env = dict(self.env, HUMANSEG_WORKER_CONCURRENCY="1", HUMANSEG_THREADS="1")
        # Distinct hostnames, as on two machines (Celery's node name; heartbeats use host+pid).
        self.logs.append(self.spawn(f"worker{n}", [*HUMANSEG, "worker", "-n", f"w{n}-{self.tag}@%h"], env))
        key = f"humanseg:workers:{self.queue}"
        wait_for(f"worker {n}", lambda: self.redis.zcard(key) >= n)

    def cleanup(self) -> None:
        for proc in reversed(self.procs):
            stop_group(proc)
        if self.redis is not None:
            new = set(self.redis.keys("*")) - self.redis_keys0
            mine = [k for k in new if self.queue.encode() in k or k.startswith((b"unacked", b"_kombu"))]
            if mine:
                self.redis.delete(*mine)
            self.redis.close()
        if self.db_created:
            with self.admin() as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{self.db}" WITH (FORCE)')
        if not self.args.keep:
            shutil.rmtree(self.tmp, ignore_errors=True)

    # runs -------------------------------------------------------------------------------------
    def batch(self, files, name: str, timeout: float = 600) -> tuple[float, float, list[dict]]:
        """Upload, wait until done; (upload s, upload start -> last finished_at s, jobs)."""
        t0 = time.time()
        resp = requests.post(self.base + "/api/v1/jobs", files=[("images", f) for f in files],
                             data={"batch_name": name}, timeout=timeout)
        resp.raise_for_status()
        upload_s = time.time() - t0
        jobs = wait_done(self.base + resp.json()["batch_url"], t0, timeout, every=0.2)
        return upload_s, last_finished(jobs) - t0, jobs

    def job_done_lines(self) -> dict[str, list[tuple[int, str]]]:
        """job id -> [(worker number, recorded)] from every worker's event=job_done lines."""
        done: dict[str, list[tuple[int, str]]] = {}
        for n, path in enumerate(self.logs, 1):
            for line in path.read_text(errors="replace").splitlines():
                if "event=job_done" in line:
                    fields = dict(re.findall(r"(\w+)=(\S+)", line))
                    done.setdefault(fields["job_id"].strip('"'), []).append((n, fields.get("recorded", "?")))
        return done

    def attempts(self, job_ids: list[str]) -> Counter:
        import psycopg

        pg = self.args.pg.rsplit("/", 1)[0] + f"/{self.db}"
        with psycopg.connect(libpq(pg)) as conn:
            rows = conn.execute("SELECT attempts FROM jobs WHERE id = ANY(%s)", (job_ids,)).fetchall()
        return Counter(r[0] for r in rows)

    def check(self, label: str, jobs: list[dict]) -> bool:
        time.sleep(1.0)  # the job_done line is written right after the row
        ids = [j["id"] for j in jobs]
        done = self.job_done_lines()
        per_job = Counter(len(done.get(i, [])) for i in ids)
        recorded = Counter(r for i in ids for _, r in done.get(i, []))
        by_worker = Counter(w for i in ids for w, _ in done.get(i, []))
        attempts = self.attempts(ids)
        failed = sum(j["status"] != "succeeded" for j in jobs)
        print(f"  {label}: job_done lines per job {dict(sorted(per_job.items()))} (count: jobs), "
              f"recorded {dict(recorded)}, jobs per worker "
              f"{ {f'worker{w}': c for w, c in sorted(by_worker.items())} }, attempts column "
              f"{dict(sorted(attempts.items()))} (value: jobs), not succeeded={failed}")
        ok = (per_job == Counter({1: len(ids)}) and recorded == Counter({"True": len(ids)})
              and attempts == Counter({1: len(ids)}) and failed == 0)
        print(f"  {label}: each job done exactly once: {'yes' if ok else 'NO'}")
        return ok


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=60, help="photos per run")
    parser.add_argument("--images", type=Path, default=None)
    parser.add_argument("--pg", default="postgresql+psycopg://postgres@127.0.0.1:5432/test",
                        help="a PostgreSQL URL whose user may create databases")
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/11")
    parser.add_argument("--keep", action="store_true", help="keep the temp dir (logs) afterwards")
    args = parser.parse_args(argv)
    if args.images:
        one, two = load_files(args.images, args.n), load_files(args.images, args.n)
    else:  # a fresh batch: different photos for the second run
        one = [(f"a-{i}.jpg", synthetic(i)) for i in range(args.n)]
        two = [(f"b-{i}.jpg", synthetic(i + 7)) for i in range(args.n)]
    print(f"photos per run={args.n}  load: {load()}", flush=True)
    bench = Bench(args)
    ok = True
    try:
        bench.start()
        bench.start_worker(1)
        bench.batch([(f"warm-{i}.jpg", synthetic(100 + i)) for i in range(2)], "warm-1")
        up1, t1, jobs1 = bench.batch(one, "scale-1-worker")
        print(f"1 worker : {t1:.2f}s for {len(jobs1)} photos = {t1 * 1000 / len(jobs1):.1f} ms/photo "
              f"(upload {up1:.2f}s)   load: {load()}", flush=True)
        bench.start_worker(2)
        bench.batch([(f"warm-{i}.jpg", synthetic(200 + i)) for i in range(4)], "warm-2")
        up2, t2, jobs2 = bench.batch(two, "scale-2-workers")
        print(f"2 workers: {t2:.2f}s for {len(jobs2)} photos = {t2 * 1000 / len(jobs2):.1f} ms/photo "
              f"(upload {up2:.2f}s)   load: {load()}", flush=True)
        print(f"speed-up 2 workers / 1 worker: {t1 / t2:.2f}x  (on {os.cpu_count()} cores; each "
              f"worker: concurrency 1, 1 thread)")
        ok = bench.check("1-worker run", jobs1) & bench.check("2-worker run", jobs2)
        print(f"load: {load()}")
    finally:
        bench.cleanup()
    if args.keep:
        print(f"logs: {bench.tmp}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
