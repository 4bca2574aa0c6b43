"""How much the platform costs on top of the model: the bare loop against the API, same photos.

Runs, in one process and one sitting:
1. the bare loop in this process: decode -> model -> render every stored result, per photo;
2. its own `humanseg up` (temp data dir, free port, embedded Valkey, SQLite, local storage),
   one upload of all photos per polling interval, the client polling the batch every
   --polls seconds until done; finish = the last job's `finished_at`;
3. the per-stage breakdown from the worker's own `event=job_done` lines;
4. the bare loop again (the machine's state may drift), and the ratio bare / API last;
5. the network alone as the workers run it (two processes of one thread, inputs made beforehand),
   and the ratio API / network (issue 31's second target).

    python bench/e2e_ratio.py                      # 60 synthetic 640x480 photos
    python bench/e2e_ratio.py --images photos/ --n 60 --polls 1,0.1
    python bench/e2e_ratio.py --images photos/ --n 200 --polls 1,0.1 --status-rate 500
    python bench/e2e_ratio.py --model fast          # a registered model other than the default
"""

from __future__ import annotations

import argparse
import contextlib
import json
import multiprocessing as mp
import os
import re
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from statistics import mean

import numpy as np
import requests
from benchlib import all_jobs, free_port, load, stop, when
from pipeline_throughput import load_files

ROOT = Path(__file__).resolve().parent.parent
STAGE_FIELDS = ("queue_wait_ms", "db_ms", "read_ms", "decode_ms", "model_ms", "render_ms",
                "store_ms", "total_ms")


def load_named(model: str, threads: int):
    """A registered model (empty: the registry's default) loaded as the worker loads it."""
    from humanseg.core.registry import Registry
    from humanseg.ml.registry import load_model

    return load_model(Registry.load().get(model or None), threads=threads)


def network_input(predictor, image) -> np.ndarray:
    """The network's input for one photo, made as the predictor makes it (batch of one)."""
    from humanseg.ml.letterbox import Letterbox, to_input
    from humanseg.ml.modnet import ModnetPredictor, modnet_input

    if isinstance(predictor, ModnetPredictor):
        return modnet_input(image)[None]
    cfg = predictor.cfg
    box = Letterbox.fit(image.width, image.height, cfg.size, cfg.pad_multiple)
    return to_input(image, box, cfg.mean, cfg.std)[None]


def bare_loop(files: list[tuple[str, bytes]], model: str = "") -> dict[str, float]:
    """ms per photo of decode, model and render, in this process, as the worker does them."""
    from humanseg.core.images import load_oriented
    from humanseg.core.settings import usable_cores
    from humanseg.worker.outputs import render_job

    predictor = load_named(model, usable_cores())  # one process: every core
    for _, data in files[:2]:  # warm up: first runs allocate
        render_job(img := load_oriented(data), predictor.segment(img))
    ms = {"decode": 0.0, "model": 0.0, "render": 0.0}
    t0 = time.perf_counter()
    for _, data in files:
        t = time.perf_counter()
        image = load_oriented(data)
        t1 = time.perf_counter()
        seg = predictor.segment(image)
        t2 = time.perf_counter()
        render_job(image, seg)
        t3 = time.perf_counter()
        ms["decode"] += (t1 - t) * 1000
        ms["model"] += (t2 - t1) * 1000
        ms["render"] += (t3 - t2) * 1000
    out = {k: v / len(files) for k, v in ms.items()}
    out["per_photo"] = (time.perf_counter() - t0) * 1000 / len(files)
    return out


def _network_process(chunk: list[bytes], model: str, ready, out) -> None:
    """One single-thread process running only the network on its share of the photos (inputs made first)."""
    from humanseg.core.images import load_oriented, to_rgb

    predictor = load_named(model, 1)
    inputs = [network_input(predictor, to_rgb(load_oriented(data))) for data in chunk]
    for x in inputs[:2]:  # warm up: first runs allocate
        predictor.backend.run(x)
    ready.wait()
    t0 = time.perf_counter()
    for x in inputs:
        predictor.backend.run(x)
    out.put(time.perf_counter() - t0)


def network_alone(files: list[tuple[str, bytes]], model: str = "", processes: int = 2) -> float:
    """ms per photo of the network alone, run as the workers run it: `processes` processes of one thread
    at once, each on its share of the photos (the denominator of the issue's 'API time / network')."""
    ctx = mp.get_context("spawn")  # this process has ONNX Runtime's threads already: no fork
    ready, out = ctx.Barrier(processes + 1), ctx.Queue()
    procs = [ctx.Process(target=_network_process, args=([d for _, d in files[i::processes]], model, ready, out))
             for i in range(processes)]
    for proc in procs:
        proc.start()
    ready.wait()  # every process has its inputs and a warm session: they start together
    seconds = max(out.get(timeout=600) for _ in procs)
    for proc in procs:
        proc.join()
    return seconds * 1000 / len(files)


@dataclass
class ApiRun:
    poll: float
    upload_s: float = 0.0
    per_photo_ms: float = 0.0
    polls: int = 0
    poll_ms: list[float] = field(default_factory=list)
    stages: dict[str, float] = field(default_factory=dict)
    jobs: int = 0
    failed: int = 0
    status: dict = field(default_factory=dict)  # the other client's job polls (pollload's JSON)
    web_cores: float = 0.0  # CPU of the web tier meanwhile, in cores


class StatusLoad:
    """Another client polling one job at `rate` per second (bench/pollload.py, its own process).

    That client costs about 0.05 ms of CPU per poll, so what slows the batch is the server's
    answering, not the load generator. The web tier's own CPU over the same time is read from
    /proc for its gunicorn processes.
    """

    def __init__(self, url: str, rate: float, web_pids: list[int]):
        self.url, self.rate, self.web_pids = url, rate, web_pids
        self.result: dict = {}

    def __enter__(self) -> StatusLoad:
        self.t0, self.web0 = time.perf_counter(), cpu_seconds(self.web_pids)
        self.proc = subprocess.Popen(
            [sys.executable, str(Path(__file__).with_name("pollload.py")), self.url,
             "--rate", str(self.rate), "--seconds", "0"], stdout=subprocess.PIPE, text=True)
        return self

    def __exit__(self, *exc) -> None:
        self.proc.terminate()
        out, _ = self.proc.communicate(timeout=30)
        self.result = json.loads(out.strip().splitlines()[-1])
        self.web_cores = (cpu_seconds(self.web_pids) - self.web0) / (time.perf_counter() - self.t0)


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU seconds used so far by these processes (those still alive)."""
    total = 0.0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def web_processes(root: int) -> list[int]:
    """The gunicorn processes (master and workers) under `humanseg up` (pid root)."""
    rows = [line.split(None, 2) for line in subprocess.run(
        ["ps", "-e", "-o", "pid=,ppid=,args="], capture_output=True, text=True).stdout.splitlines()]
    tree = {root}
    for _ in range(4):
        tree |= {int(pid) for pid, ppid, _ in rows if int(ppid) in tree}
    return [int(pid) for pid, _, args in rows if int(pid) in tree and "gunicorn" in args]


def stage_means(log_path: Path, job_ids: set[str]) -> dict[str, float]:
    """Mean of each *_ms field over this batch's job_done lines."""
    sums: dict[str, list[float]] = {k: [] for k in STAGE_FIELDS}
    for line in log_path.read_text(errors="replace").splitlines():
        if "event=job_done" not in line:
            continue
        fields = dict(re.findall(r"(\w+)=(\S+)", line))
        if fields.get("job_id") in job_ids:
            for k in STAGE_FIELDS:
                if k in fields:
                    sums[k].append(float(fields[k]))
    return {k: mean(v) for k, v in sums.items() if v}


def api_run(base: str, files, poll: float, log_path: Path, timeout: float = 900,
            status_rate: float = 0.0, web_pids: list[int] | None = None, batch_limit: int = 0,
            model: str = "") -> ApiRun:
    """One upload of every photo; poll the batch every `poll` s until done.

    status_rate: meanwhile another client polls the batch's last job (queued until the end,
    then running, then done) this many times a second.
    batch_limit: jobs per batch poll (0: counts only, as humanseg.client's wait_batch asks).
    model: the registered model the upload asks for (empty: the default).
    """
    run = ApiRun(poll)
    t0 = time.time()
    resp = requests.post(base + "/api/v1/jobs", files=[("images", f) for f in files],
                         data={"batch_name": f"e2e-poll-{poll:g}", **_model_field(model)}, timeout=timeout)
    resp.raise_for_status()
    run.upload_s = time.time() - t0
    batch_url = resp.json()["batch_url"]
    other = StatusLoad(base + resp.json()["jobs"][-1]["url"], status_rate, web_pids or []) \
        if status_rate else contextlib.nullcontext()
    with other:
        while time.time() - t0 < timeout:
            t = time.perf_counter()
            batch = requests.get(base + batch_url, params={"limit": batch_limit}, timeout=30).json()
            run.poll_ms.append((time.perf_counter() - t) * 1000)
            run.polls += 1
            if batch["done"]:
                break
            time.sleep(poll)
    if status_rate:
        run.status, run.web_cores = other.result, other.web_cores
    jobs = all_jobs(base + batch_url)
    finished = [when(j["finished_at"]) for j in jobs if j["finished_at"]]
    run.jobs, run.failed = len(jobs), sum(j["status"] != "succeeded" for j in jobs)
    run.per_photo_ms = (max(finished) - t0) * 1000 / len(files)
    time.sleep(1.0)  # the last job_done line is written right after its row is
    run.stages = stage_means(log_path, {j["id"] for j in jobs})
    return run


def _model_field(model: str) -> dict[str, str]:
    return {"model": model} if model else {}


def api_run_batch(base: str, files, timeout: float = 300, model: str = "") -> str:
    """Upload files and wait until the batch is done; returns its URL."""
    resp = requests.post(base + "/api/v1/jobs", files=[("images", f) for f in files], data=_model_field(model),
                         timeout=timeout)
    resp.raise_for_status()
    batch_url = resp.json()["batch_url"]
    deadline = time.monotonic() + timeout
    while not requests.get(base + batch_url, timeout=30).json()["done"]:
        if time.monotonic() > deadline:
            sys.exit("the warm-up batch did not finish")
        time.sleep(0.2)
    return batch_url


def start_up(tmp: Path, log_path: Path, extra: dict[str, str]) -> tuple[subprocess.Popen, str]:
    """`humanseg up` on a free port in tmp; returns it and its base URL once healthy."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("HUMANSEG_")}
    env.update(HUMANSEG_DATA_DIR=str(tmp / "var"), HUMANSEG_PORT=str(port),
               HUMANSEG_SECRET_KEY="bench-secret-not-for-production", HUMANSEG_LOG_LEVEL="INFO",
               HUMANSEG_MAX_FILES="1000", HUMANSEG_RATE_LIMIT_PER_MINUTE="0",
               HUMANSEG_IMAGES_PER_DAY="0")
    env.update(extra)
    log = open(log_path, "wb")  # noqa: SIM115 - the child holds it; closed with the process
    proc = subprocess.Popen([sys.executable, "-m", "humanseg.cli", "up"], env=env, cwd=ROOT,
                            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            if requests.get(base + "/readyz", timeout=2).status_code == 200:
                return proc, base
        except requests.RequestException:
            pass
        time.sleep(0.5)
    stop(proc)
    sys.exit(f"humanseg up did not become ready; see {log_path}")


def print_run(run: ApiRun, bare_ms: float, network_ms: float) -> None:
    polls = sorted(run.poll_ms)
    p99 = polls[min(len(polls) - 1, int(len(polls) * 0.99))] if polls else 0.0
    stages = " ".join(f"{k[:-3]}={v:.1f}" for k, v in run.stages.items())
    print(f"api poll={run.poll:g}s: {run.per_photo_ms:.1f} ms/photo (upload {run.upload_s:.2f}s, "
          f"jobs={run.jobs} failed={run.failed}, polls={run.polls} poll_p50="
          f"{polls[len(polls) // 2] if polls else 0:.1f}ms poll_p99={p99:.1f}ms)")
    print(f"  worker stages, mean ms per job: {stages}")
    if run.status:
        st = run.status
        print(f"  meanwhile job polls: {st['rate']:.0f}/s achieved of {st['rate_asked']:g} asked, "
              f"p50={st['p50_ms']:.1f}ms p90={st['p90_ms']:.1f}ms p99={st['p99_ms']:.1f}ms "
              f"max={st['max_ms']:.1f}ms statuses={st['statuses']}; web tier {run.web_cores:.2f} cores "
              f"({run.web_cores * 1000 / max(st['rate'], 1):.2f} ms CPU per request), the polling "
              f"client {st['client_cores']:.2f} cores")
    print(f"  ratio bare/api = {bare_ms / run.per_photo_ms:.2f}; api / network alone = "
          f"{run.per_photo_ms / network_ms:.2f}   load: {load()}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=60)
    parser.add_argument("--images", type=Path, default=None)
    parser.add_argument("--polls", default="1,0.1", help="client polling intervals, seconds")
    parser.add_argument("--status-rate", type=float, default=0.0, metavar="PER_S",
                        help="also a run (batch polled every 1 s) while another client polls one of "
                             "its jobs this often, e.g. 500 (bench/pollload.py)")
    parser.add_argument("--batch-limit", type=int, default=0, metavar="N",
                        help="jobs per batch poll: 0 = counts only (what humanseg.client does while "
                             "it waits), 100 = the default page")
    parser.add_argument("--env", action="append", default=[], metavar="HUMANSEG_X=VALUE",
                        help="a setting for `humanseg up` (repeatable), e.g. HUMANSEG_WORKER_CONCURRENCY=2")
    parser.add_argument("--model", default="", metavar="NAME",
                        help="a registered model (GET /api/v1/models; default: the registry's default)")
    parser.add_argument("--keep", action="store_true", help="keep the temp dir (logs) afterwards")
    args = parser.parse_args(argv)
    from humanseg.core.registry import Registry, UnknownModel

    try:
        Registry.load().get(args.model or None)
    except UnknownModel as exc:
        parser.error(str(exc))
    files = load_files(args.images, args.n)
    polls = [float(p) for p in args.polls.split(",") if p]
    print(f"photos={len(files)} model={args.model or 'default'}  load: {load()}", flush=True)
    before = bare_loop(files, args.model)
    print("bare loop (before): " + " ".join(f"{k}={v:.1f}" for k, v in before.items())
          + f" ms   load: {load()}", flush=True)
    tmp = Path(tempfile.mkdtemp(prefix="e2e-ratio-"))
    log_path = tmp / "var" / "up.log"  # `humanseg up` writes its children's lines (job_done) there
    extra = dict(item.split("=", 1) for item in args.env)
    if extra:
        print("settings: " + " ".join(f"{k}={v}" for k, v in extra.items()))
    proc, base = start_up(tmp, tmp / "screen.log", extra)
    runs = []
    try:
        all_jobs(base + api_run_batch(base, files[:4], model=args.model))  # warm up: the worker's first jobs
        for poll in polls:
            runs.append(api_run(base, files, poll, log_path, batch_limit=args.batch_limit, model=args.model))
            print(f"  done poll={poll:g}s  load: {load()}", flush=True)
        if args.status_rate:
            runs.append(api_run(base, files, 1.0, log_path, status_rate=args.status_rate,
                                web_pids=web_processes(proc.pid), batch_limit=args.batch_limit,
                                model=args.model))
            print(f"  done poll=1s with job polls at {args.status_rate:g}/s  load: {load()}", flush=True)
    finally:
        stop(proc, timeout=40)
    after = bare_loop(files, args.model)
    print("bare loop (after):  " + " ".join(f"{k}={v:.1f}" for k, v in after.items())
          + f" ms   load: {load()}")
    network_ms = network_alone(files, args.model)
    print(f"network alone (2 processes x 1 thread, as the workers): {network_ms:.1f} ms/photo   load: {load()}")
    bare_ms = (before["per_photo"] + after["per_photo"]) / 2
    print(f"bare loop mean: {bare_ms:.1f} ms/photo")
    for run in runs:
        print_run(run, bare_ms, network_ms)
        if run is not runs[0]:
            print(f"  batch slower than the first run by {run.per_photo_ms / runs[0].per_photo_ms - 1:+.1%}")
    if args.keep:
        print(f"logs: {tmp}")
    else:
        subprocess.run(["rm", "-rf", str(tmp)], check=False)
    return 0 if all(r.failed == 0 for r in runs) else 1


if __name__ == "__main__":
    sys.exit(main())
