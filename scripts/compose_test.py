"""`make compose-test`: build both images and run the real compose.yaml, end to end.

Sets up rootful Podman when it is missing (root and apt only), builds the base
images compose.yaml and the Dockerfiles name from Debian packages (no registry
is reached), builds humanseg-web and humanseg-worker from the real Dockerfiles
in air-gapped mode (a wheelhouse made beforehand), starts the stack with no
.env (the fresh-checkout defaults), uploads photos through the published port
on 127.0.0.1, checks masks, cut-outs and the gallery, scales the workers to
two, restarts them mid-batch, kills them mid-batch, checks nothing is lost,
and tears everything down. Prints both images' real sizes and the time of
every phase; docs/docker.md ("Tested for real") has the figures.

    python scripts/compose_test.py [--skip-if-unavailable] [--strict-gallery]

The work folder (image storage, wheelhouses, cached root filesystem) is
$COMPOSE_TEST_DIR, default /tmp/humanseg-compose-test; a second run reuses
the base images and wheels, never the humanseg images. Its image storage is
Podman's own (overlay mounts): remove it with `podman system reset` under the
same CONTAINERS_* variables, or unmount before `rm -r`.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import compose_bases as bases
import compose_checks as checks
from compose_engine import (
    Engine,
    EngineUnavailable,
    HealthTicker,
    install_packages,
    preflight,
)
from compose_stack import (
    PROJECT,
    PROJECT_PREFIX,
    SHORT_LEASE,
    Stack,
    free_port,
    jobs_by_worker,
    kill_and_recover,
    restart_gracefully,
    short_lease,
)

REPO = Path(__file__).resolve().parents[1]
IMAGES = {"web": ("Dockerfile.web", "humanseg-web:latest"),
          "worker": ("Dockerfile.worker", "humanseg-worker:latest")}
PHASES: list[tuple[str, float, str]] = []


@contextmanager
def phase(name: str):
    """Time one phase; print it as it ends, and keep it for the closing table."""
    print(f"--- {name} ...", flush=True)
    start = time.monotonic()
    note: dict[str, str] = {}
    yield note
    took = time.monotonic() - start
    PHASES.append((name, took, note.get("note", "")))
    print(f"--- {name}: {took:.1f}s {note.get('note', '')}", flush=True)


def qualified(image: str) -> str:
    """The name Docker would pull (`redis:7` -> `docker.io/library/redis:7`)."""
    first = image.split("/")[0]
    if "/" not in image:
        return f"docker.io/library/{image}"
    if "." not in first and ":" not in first and first != "localhost":
        return f"docker.io/{image}"
    return image


def dockerfile_arg(path: Path, name: str) -> str:
    m = re.search(rf"^ARG {name}=(\S+)", path.read_text(), re.MULTILINE)
    assert m, f"{path.name} has no ARG {name}=..."
    return m.group(1)


def build_images(engine: Engine, tree: Path) -> dict[str, dict]:
    """Both images from the tree's Dockerfiles, never from cache; their sizes."""
    out = {}
    for name, (dockerfile, tag) in IMAGES.items():
        with phase(f"build {tag}") as note:
            # --no-cache: a broken COPY or install must show on every run.
            proc = engine.podman("build", "--no-cache", "--pull=never",
                                 "--build-arg=WHEELHOUSE_ONLY=1", "-f", str(tree / dockerfile),
                                 "-t", tag, str(tree), timeout=1200)
            (engine.work / f"build-{name}.log").write_bytes(proc.stdout + proc.stderr)
            note["note"] = f"{engine.image_size(tag) / 1e6:.0f} MB"
        out[name] = round(PHASES[-1][1], 1)
    return image_sizes(engine, tree, out)


def image_sizes(engine: Engine, tree: Path, build_s: dict[str, float | str]) -> dict:
    """Each image's size, and how much of it is ours (over the Python base)."""
    base = engine.image_size(qualified(dockerfile_arg(tree / "Dockerfile.web", "PYTHON_IMAGE")))
    out: dict = {"python_base_bytes": base}
    for name, (_, tag) in IMAGES.items():
        size = engine.image_size(tag)
        out[name] = {"tag": tag, "bytes": size, "over_base_bytes": size - base,
                     "build_s": build_s.get(name, "reused")}
    return out


def exercise(engine: Engine, tree: Path, dataset: Path | None, kill_rounds: int = 1) -> dict:
    """Up, photos, gallery, scale, restart, kill (kill_rounds times); always down -v at the end."""
    report: dict = {}
    stack = Stack(engine, tree, free_port())
    stack.down()  # whatever an interrupted run left
    ticker = HealthTicker(engine, PROJECT)
    ticker.start()
    try:
        with phase("compose up (fresh-checkout defaults, no .env)") as note:
            stack.up(1)
            stack.wait_healthy({"web": 1, "worker": 1}, timeout=300)
            note["note"] = f"web on 127.0.0.1:{stack.port}"
        with phase("API key (compose exec web humanseg keys create)"):
            key = stack.compose("exec", "-T", "web", "humanseg", "keys", "create",
                                "compose-test", "--admin").strip().splitlines()[-1]
        client = checks.Client(stack.port, key, stack.fetch_inside)
        first = checks.photos(dataset, 5)
        with phase("5 photos: upload, segment, check masks and cut-outs") as note:
            body = client.upload(first, "compose-test")
            final = client.wait_batch(body["batch_id"], timeout=300)
            report["batch"] = checks.check_results(client, final, first)
            note["note"] = json.dumps(report["batch"])
        with phase("one job per registered model (the same photo)") as note:
            report["models"] = checks.check_models(client, first[0])
            note["note"] = json.dumps(report["models"])
        with phase("gallery pages") as note:
            report["gallery"] = checks.check_gallery(client, final)
            note["note"] = json.dumps(report["gallery"])
        with phase("scale worker=2") as note:
            stack.up(2, keep=True)
            stack.wait_healthy({"worker": 2}, timeout=300)
            note["note"] = f"{len(stack.containers('worker'))} worker containers healthy"
        with phase("restart both workers mid-batch (12 photos)") as note:
            report["restart"] = restart_gracefully(stack, client, checks.photos(dataset, 12, 5))
            note["note"] = json.dumps(report["restart"])
        report["jobs_logged_by_worker"] = jobs_by_worker(stack)
        with phase(f".env with HUMANSEG_LEASE_SECONDS={SHORT_LEASE}; up -d recreates") as note:
            short_lease(stack)
        for round_ in range(kill_rounds):  # a worker's reserved jobs must come back every time, not by luck
            name = "kill" if round_ == 0 else f"kill_{round_ + 1}"
            with phase(f"kill -9 both workers mid-batch (20 photos), round {round_ + 1}/{kill_rounds}") as note:
                report[name] = kill_and_recover(stack, client, checks.photos(dataset, 20, 17 + round_))
                note["note"] = json.dumps(report[name])
    except BaseException:
        stack.dump_logs()
        raise
    finally:
        ticker.stop()
        with phase("compose down -v"):
            stack.down()
    return report


def prepare(engine: Engine, tree: Path) -> None:
    """Tree copy, base image, wheelhouses and the stand-in images (cached between runs)."""
    with phase("copy the working tree") as note:
        note["note"] = f"{bases.copy_tree(REPO, tree)} files"
        (tree / ".env").unlink(missing_ok=True)  # the fresh-checkout case
    with phase("base image: debootstrap bookworm") as note:
        note["note"] = bases.ensure_bookworm(engine)
    pythons = sorted({qualified(dockerfile_arg(tree / f, "PYTHON_IMAGE")) for f, _ in IMAGES.values()})
    with phase("python stand-in image") as note:
        note["note"] = bases.ensure_python(engine, pythons)
    with phase("wheelhouses (the image's pip, from the package index)") as note:
        app_wheels, s3_wheels = bases.build_wheelhouses(engine, pythons[0], tree)
        for wheel in app_wheels.glob("*.whl"):
            shutil.copy2(wheel, tree / "wheelhouse" / wheel.name)
        size = sum(w.stat().st_size for w in app_wheels.glob("*.whl"))
        note["note"] = f"{size / 1e6:.0f} MB of app wheels"
    services = Stack(engine, tree, 0).config()["services"]
    with phase("stand-in images (redis, postgres, s3)") as note:
        note["note"] = json.dumps(bases.ensure_services(
            engine, pythons[0], qualified(services["redis"]["image"]),
            qualified(services["postgres"]["image"]), s3_wheels))


def hold_work_lock(work: Path):
    """An exclusive lock on the work folder for this run (its tree copy and image store are shared)."""
    import fcntl

    work.mkdir(parents=True, exist_ok=True)
    handle = open(work / ".lock", "w")  # noqa: SIM115 - held until the process ends
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        raise SystemExit(f"another compose test is running in {work}; wait for it, or give this one its own "
                         "folder with COMPOSE_TEST_DIR=...") from None
    return handle


def run(args: argparse.Namespace) -> dict:
    """Every phase after the engine is installed; returns the report."""
    lock = hold_work_lock(args.work)
    engine = Engine(args.work)
    engine.configure()
    engine.start_service()
    try:
        # The lock is ours, so no other run is alive: whatever a killed run left running goes now.
        for stale in engine.leftover_projects(PROJECT_PREFIX, keep=PROJECT):
            print(f"removing {stale}, left running by an earlier run that was killed", flush=True)
            engine.remove_project(stale)
        tree = args.work / "tree"
        prepare(engine, tree)
        sizes = image_sizes(engine, tree, {}) if args.reuse_images else build_images(engine, tree)
        dataset = args.dataset if (args.dataset / "Training_Images").is_dir() else None
        report = exercise(engine, tree, dataset, args.kill_rounds)
        report["images"] = sizes
        return report
    finally:
        engine.podman("image", "prune", "--force", check=False)  # the last run's layers
        engine.remove_project(PROJECT)  # on every exit path, even when a phase's own `down` never ran
        engine.stop_service()
        lock.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--skip-if-unavailable", action="store_true",
                        help="exit 0 with a SKIPPED line when no engine can be had here")
    parser.add_argument("--strict-gallery", action="store_true",
                        help="fail when the gallery's images do not load from this host")
    parser.add_argument("--reuse-images", action="store_true",
                        help="debugging: keep humanseg-web/worker from the last run, build nothing")
    parser.add_argument("--kill-rounds", type=int, default=1,
                        help="repeat the kill -9 phase this many times (a dead worker's reserved jobs every time)")
    parser.add_argument("--work", type=Path, default=Path(
        os.environ.get("COMPOSE_TEST_DIR", "/tmp/humanseg-compose-test")))
    parser.add_argument("--dataset", type=Path, default=Path(os.environ.get(
        "COMPOSE_TEST_PHOTOS", REPO.parent / "shared" / "data" / "human-segmentation")))
    args = parser.parse_args()
    # CI's timeout sends SIGTERM: unwind through the finally blocks (down -v, stop the API).
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    start = time.monotonic()
    try:
        preflight(bases.debian_mirror())
        with phase("engine (podman, runc, debootstrap)") as note:
            note["note"] = "installed with apt" if install_packages() else "already installed"
    except EngineUnavailable as exc:
        if args.skip_if_unavailable:
            print(f"compose-test: SKIPPED: {exc}")
            return 0
        raise
    try:
        report = run(args)
        report["total_s"] = round(time.monotonic() - start, 1)
        print_summary(report, args.work)
        failed = report["gallery"]["thumbs_failed_count"] if args.strict_gallery else 0
    except BaseException:
        print(f"compose-test: {len(PHASES)} passed, 1 failed")
        raise
    print(f"compose-test: {len(PHASES) - bool(failed)} passed, {int(bool(failed))} failed")
    return 1 if failed else 0


def print_summary(report: dict, work: Path) -> None:
    print("\n=== compose-test: phases ===")
    for name, took, _ in PHASES:
        print(f"{took:8.1f}s  {name}")
    print(f"{report['total_s']:8.1f}s  total")
    print("=== images (uncompressed; the python base is the Debian stand-in) ===")
    sizes = report["images"]
    print(f"python base: {sizes['python_base_bytes'] / 1e6:.0f} MB")
    for name in IMAGES:
        s = sizes[name]
        built = f"built in {s['build_s']}s" if isinstance(s["build_s"], float) else "reused"
        print(f"{s['tag']}: {s['bytes'] / 1e6:.0f} MB ({s['over_base_bytes'] / 1e6:.0f} MB over "
              f"the base), {built}")
    print("=== workers restarted (compose restart -t 60) mid-batch ===")
    print(json.dumps(report["restart"]))
    print("=== workers killed (SIGKILL) mid-batch, recovered by the lease sweep and the dead-worker re-send ===")
    for name in sorted((k for k in report if k == "kill" or k.startswith("kill_")), key=lambda k: (len(k), k)):
        print(json.dumps(report[name]))
    print("jobs logged by each worker:", json.dumps(report["jobs_logged_by_worker"]))
    gallery = report["gallery"]
    if gallery["thumbs_failed_count"]:
        print(f"KNOWN GAP: {gallery['thumbs_failed_count']} gallery images point at the S3 "
              f"endpoint inside the stack ({gallery['thumbs_failed_from_host'][0]}), which a "
              "browser on this host cannot reach (--strict-gallery makes this fail)")
    (work / "summary.json").write_text(json.dumps(
        {**report, "phases": [[n, round(t, 1)] for n, t, _ in PHASES]}, indent=2))


if __name__ == "__main__":
    sys.exit(main())
