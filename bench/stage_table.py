"""Where one job's time goes: the worker's real path (pipeline.run_job), stage by stage, per photo.

Each photo is stored, given a queued Job row, rung at the broker and fetched back (the queue
hand-off: the web tier's send plus the worker's fetch of the message), then run through
worker/pipeline.run_job with a real LocalStorage and database. The stages are timed inside that
call (the model's own steps and each result's encode through the functions it calls), so the
table is what the worker does, not a copy of it:

  queue     send_segment to the broker + the worker side's fetch of that message
  db        claim, ownership check and outcome (run_job's transactions); round trips counted
  read      the original from storage          decode   bytes -> upright RGB
  resize    letterbox input for the network     network  the backend's run() alone
  probs     logits -> probabilities             refine   the guided filter
  maps      mask and alpha from the map (and the rest of segment())
  mask/alpha/thumb  each stored result's render and encode
  store     storage writes                      other    run_job's own remainder

Prints a table per model: mean ms per photo and share of the whole, with `uptime` before and
after (figures from a loaded machine are inflated and noisy: compare columns of one run).

    python bench/stage_table.py                              # seed photos if beside the repo, else generated
    python bench/stage_table.py --images photos/ --n 60 --model ml/models/fast --model runs/v4/best
    python bench/stage_table.py --database-url postgresql+psycopg://.../db --broker redis://127.0.0.1:6379/9
"""
from __future__ import annotations

import argparse
import contextlib
import json
import logging
import re
import statistics
import sys
import tempfile
import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterator
from pathlib import Path

from benchlib import load
from render_cost import SIZES, photo

ROOT = Path(__file__).resolve().parent.parent
SEED = ROOT.parent / "shared" / "data" / "human-segmentation" / "Training_Images"
ORDER = ("queue", "db", "read", "decode", "resize", "network", "probs", "refine", "maps",
         "mask", "alpha", "thumb", "store", "other")


def photos(folder: Path | None, n: int) -> tuple[str, list[bytes]]:
    """n photos: from the folder, else the seed dataset beside the repo, else generated ones."""
    folder = folder or (SEED if SEED.is_dir() else None)
    if folder is None:
        return "generated", [photo(SIZES[i % len(SIZES)], i) for i in range(n)]
    paths = sorted(p for p in folder.iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png", ".webp"))
    if not paths:
        sys.exit(f"no photos in {folder}")
    return str(folder), [paths[i % len(paths)].read_bytes() for i in range(n)]


class Clock:
    """Milliseconds per stage for the photo in progress."""

    def __init__(self) -> None:
        self.ms: dict[str, float] = defaultdict(float)

    @contextlib.contextmanager
    def timed(self, stage: str) -> Iterator[None]:
        t0 = time.perf_counter()
        try:
            yield
        finally:
            self.ms[stage] += (time.perf_counter() - t0) * 1000

    def wrap(self, stage: str, fn: Callable) -> Callable:
        def timed_call(*args, **kwargs):
            with self.timed(stage):
                return fn(*args, **kwargs)
        return timed_call


@contextlib.contextmanager
def patched(obj, name: str, value) -> Iterator[None]:
    old = getattr(obj, name)
    setattr(obj, name, value)
    try:
        yield
    finally:
        setattr(obj, name, old)


class OneModel:
    """The worker's model lookup (worker/pipeline.Models) over the one model folder being timed."""

    def __init__(self, predictor) -> None:
        self.predictor = predictor

    def get(self, name: str | None):
        return self.predictor


def instrument(clock: Clock, predictor) -> contextlib.ExitStack:
    """Time the model's steps and each result's render where run_job's callees look them up."""
    from humanseg.ml import predictor as pmod
    from humanseg.ml import refine
    from humanseg.worker import outputs

    stack = contextlib.ExitStack()
    stack.enter_context(patched(pmod, "to_input", clock.wrap("resize", pmod.to_input)))
    stack.enter_context(patched(pmod, "to_probability", clock.wrap("probs", pmod.to_probability)))
    for name in ("guided_filter", "guided_alpha"):  # the latter from issue 31 on
        if hasattr(refine, name):
            stack.enter_context(patched(refine, name, clock.wrap("refine", getattr(refine, name))))
    stack.enter_context(patched(predictor.backend, "run", clock.wrap("network", predictor.backend.run)))
    render = outputs.render_result
    stack.enter_context(patched(outputs, "render_result",
                                lambda name, src: clock.wrap(name, render)(name, src)))
    return stack


class JobLog(logging.Handler):
    """Keeps the fields of run_job's last event=job_done line (its own stage times)."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.fields: dict[str, float] = {}

    def emit(self, record: logging.LogRecord) -> None:
        text = record.getMessage()
        if "event=job_done" in text:
            self.fields = {k[:-3]: float(v) for k, v in re.findall(r"(\w+_ms)=([\d.]+)", text)}


class RoundTrips:
    """Statements, commits and rollbacks sent on an engine (each is one trip to the database)."""

    def __init__(self, engine) -> None:
        from sqlalchemy import event

        self.count = 0
        event.listen(engine, "before_cursor_execute", self._one)
        event.listen(engine, "commit", self._one)
        event.listen(engine, "rollback", self._one)

    def _one(self, *_a, **_k) -> None:
        self.count += 1


class Broker:
    """The queue hand-off: our send_segment, then the message fetched as a worker would (BRPOP)."""

    def __init__(self, url: str | None, tmp: Path) -> None:
        self.server = None
        if url is None:
            from humanseg.up import start_valkey

            self.server = start_valkey(tmp)
            url = self.server.connection_url + "/0"
        from humanseg.core.queue import broker_client, make_sender
        from humanseg.core.settings import Settings

        self.queue = f"stage-table-{uuid.uuid4().hex[:8]}"  # ours alone on a shared broker
        self.sender = make_sender(Settings(broker_url=url, queue=self.queue))
        self.client = broker_client(url, timeout=10)
        self.url = url

    def hand_off(self, job_id: str) -> None:
        from humanseg.core.queue import send_segment

        send_segment(self.sender, job_id, self.queue)
        _, raw = self.client.brpop([self.queue], timeout=10)
        body = json.loads(raw)
        if body["headers"]["task"] != "humanseg.segment":
            raise RuntimeError(f"unexpected message {body['headers']}")

    def close(self) -> None:
        self.client.delete(self.queue)
        self.client.close()
        if self.server is not None:
            self.server.stop()


def queue_job(sessions, storage, data: bytes) -> str:
    """Store the original and commit a queued Job (what the upload does), without sending."""
    from humanseg.core.db import session_scope
    from humanseg.core.images import validate
    from humanseg.core.models import Batch, Job, new_id

    info = validate(data)
    job_id = new_id()
    key = f"originals/{job_id}{info.extension}"
    storage.put(key, data, info.content_type)
    with session_scope(sessions) as s:
        batch = Batch(job_count=1)
        s.add(batch)
        s.flush()
        s.add(Job(id=job_id, batch_id=batch.id, filename="p.jpg", content_type=info.content_type,
                  width=info.width, height=info.height, bytes=info.bytes, original_key=key))
    return job_id


def run_model(model: str | None, files: list[bytes], args, tmp: Path, broker: Broker) -> dict:
    """Mean ms per stage and round trips per job for one model over every photo."""
    from humanseg.core.db import make_engine, make_sessionmaker
    from humanseg.core.migrate import upgrade
    from humanseg.core.settings import Settings
    from humanseg.core.storage import LocalStorage
    from humanseg.ml.predictor import load_predictor
    from humanseg.worker.pipeline import TaskOutcome, run_job

    url = args.database_url or f"sqlite:///{tmp / (Path(model or 'shipped').name + '.db')}"
    upgrade(url)
    engine = make_engine(url, sync_commits=False)  # as worker/runtime.py makes the worker's
    sessions = make_sessionmaker(engine)
    storage = LocalStorage(tmp / f"store-{Path(model or 'shipped').name}")
    settings = Settings(database_url=url)
    predictor = load_predictor(model, backend=args.backend, threads=args.threads)
    trips = RoundTrips(engine)
    joblog = JobLog()
    logging.getLogger("humanseg.worker.pipeline").addHandler(joblog)
    logging.getLogger("humanseg.worker.pipeline").setLevel(logging.INFO)
    rows: list[dict[str, float]] = []
    trips_per_job: list[int] = []
    ids = [queue_job(sessions, storage, data) for data in files]
    for i, job_id in enumerate(ids):
        clock = Clock()
        with clock.timed("queue"):
            broker.hand_off(job_id)
        before = trips.count
        with instrument(clock, predictor):
            outcome = run_job(job_id, settings, storage, sessions, OneModel(predictor))
        if outcome.status is not TaskOutcome.succeeded:
            sys.exit(f"job {i} {outcome.status.value}: {outcome.reason}")
        if i < args.warmup:
            continue
        trips_per_job.append(trips.count - before)
        job = joblog.fields
        ms = dict(clock.ms)
        for stage in ("db", "read", "decode", "store"):
            ms[stage] = job[f"{stage}"]
        inside = sum(ms.get(k, 0.0) for k in ("resize", "network", "probs", "refine"))
        ms["maps"] = job["model"] - inside
        ms["other"] = job["total"] - sum(job[k] for k in ("db", "read", "decode", "model", "render", "store"))
        ms["other"] += job["render"] - sum(ms.get(k, 0.0) for k in ("mask", "alpha", "thumb"))
        rows.append(ms)
    logging.getLogger("humanseg.worker.pipeline").removeHandler(joblog)
    engine.dispose()
    means = {k: statistics.fmean(r.get(k, 0.0) for r in rows) for k in ORDER}
    return {"ms": means, "trips": statistics.fmean(trips_per_job), "backend": predictor.backend.name}


def print_table(name: str, result: dict) -> None:
    ms = result["ms"]
    whole = sum(ms.values())
    print(f"\nmodel={name} backend={result['backend']}: mean ms per photo")
    print(f"{'stage':<10}{'ms':>9}{'share':>8}")
    for stage in ORDER:
        print(f"{stage:<10}{ms[stage]:>9.2f}{ms[stage] / whole:>8.1%}")
    around = whole - ms["network"]
    print(f"{'whole':<10}{whole:>9.2f}   network {ms['network']:.2f} ms, everything around it "
          f"{around:.2f} ms ({around / ms['network']:.2f}x the network); whole / network "
          f"{whole / ms['network']:.2f}x")
    print(f"database round trips per job: {result['trips']:.1f}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--images", type=Path, default=None, help="a folder of photos (default: seed or generated)")
    ap.add_argument("--n", type=int, default=60, help="photos per model (after the warm-up)")
    ap.add_argument("--warmup", type=int, default=3, help="first jobs run but not counted")
    ap.add_argument("--model", action="append", default=[], help="model folder (repeatable; default shipped)")
    ap.add_argument("--backend", default="auto", help="auto, onnx or torch")
    ap.add_argument("--threads", type=int, default=1, help="model threads (1: as each of the workers)")
    ap.add_argument("--database-url", default=None,
                    help="a scratch database (its rows are left there); default: a temporary SQLite file")
    ap.add_argument("--broker", default=None, help="Redis URL (default: an embedded Valkey)")
    args = ap.parse_args(argv)
    source, files = photos(args.images, args.n + args.warmup)
    print(f"photos={args.n} (+{args.warmup} warm-up) from {source}; threads={args.threads}")
    print(f"load before: {load()}", flush=True)
    with tempfile.TemporaryDirectory(prefix="stage-table-") as tmp:
        broker = Broker(args.broker, Path(tmp))
        try:
            for model in args.model or [None]:
                print_table(model or "shipped", run_model(model, files, args, Path(tmp), broker))
        finally:
            broker.close()
    print(f"\nload after: {load()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
