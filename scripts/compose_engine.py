"""The container engine for scripts/compose_test.py: rootful Podman behind a Docker API socket.

Everything lives under one work folder (containers.conf, image storage, the
socket, cached root filesystems): nothing in /etc is edited and nothing lands
in the repository. Compose v2 (the `docker-compose` of the dev extra) talks to
Podman's Docker API; Podman's health checks need systemd timers, which this
kind of host lacks, so a HealthTicker thread runs `podman healthcheck run`
(the image's or compose.yaml's own check) for every container of the project.
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import subprocess
import threading
import time
import urllib.request
from pathlib import Path

APT_PACKAGES = ("podman", "runc", "catatonit", "iptables", "debootstrap")


class EngineUnavailable(RuntimeError):
    """This machine cannot run the engine (not root, no apt, no network to Debian)."""


def run(cmd: list[str], *, env: dict | None = None, check: bool = True, quiet: bool = False,
        input_bytes: bytes | None = None, timeout: float | None = None) -> subprocess.CompletedProcess:
    """Run a command; its output is captured and shown only when it fails (or not quiet)."""
    proc = subprocess.run(cmd, env=env, input=input_bytes, capture_output=True, timeout=timeout,
                          check=False)
    if check and proc.returncode != 0:
        tail = (proc.stdout + proc.stderr).decode(errors="replace")[-4000:]
        raise RuntimeError(f"command failed ({proc.returncode}): {' '.join(cmd)}\n{tail}")
    if not quiet and proc.stdout:
        print(proc.stdout.decode(errors="replace").rstrip())
    return proc


def preflight(mirror: str) -> None:
    """Raise EngineUnavailable when the engine cannot be found or installed, or Debian is unreachable.

    The stand-in images are made from Debian packages, so the mirror must answer either way.
    """
    missing = [p for p in APT_PACKAGES if not shutil.which(p) and p != "catatonit"]
    if missing and os.geteuid() != 0:
        raise EngineUnavailable(f"not root and {', '.join(missing)} missing")
    if missing and not shutil.which("apt-get"):
        raise EngineUnavailable(f"no apt-get to install {', '.join(missing)}")
    if os.geteuid() != 0:
        raise EngineUnavailable("rootful Podman needs root")
    url = f"{mirror.rstrip('/')}/dists/bookworm/Release"
    try:
        urllib.request.urlopen(urllib.request.Request(url, method="HEAD"), timeout=15).close()
    except OSError as exc:
        raise EngineUnavailable(f"Debian mirror unreachable ({url}: {exc})") from exc


def install_packages() -> bool:
    """apt-get install the engine when something is missing; True if it installed."""
    if all(shutil.which(p) for p in APT_PACKAGES if p != "catatonit") \
            and Path("/usr/libexec/podman/catatonit").exists():
        return False
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    if run(["apt-get", "update", "-qq"], env=env, check=False, quiet=True).returncode != 0:
        raise EngineUnavailable("apt-get update failed (no Debian mirror reachable)")
    run(["apt-get", "install", "-y", "-qq", *APT_PACKAGES], env=env, quiet=True)
    return True


class Engine:
    """Podman configured under `work`, and the environment Compose needs to reach it."""

    def __init__(self, work: Path) -> None:
        self.work = work
        self.socket = work / "podman.sock"
        self._service: subprocess.Popen | None = None

    def configure(self) -> None:
        """Write containers.conf / storage.conf under work (runc; ulimits this host allows)."""
        self.work.mkdir(parents=True, exist_ok=True)
        nofile = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
        nproc = resource.getrlimit(resource.RLIMIT_NPROC)[1]
        nofile = 1048576 if nofile == resource.RLIM_INFINITY else nofile
        nproc = 32768 if nproc == resource.RLIM_INFINITY else min(nproc, 32768)
        (self.work / "networks").mkdir(exist_ok=True)
        # crun fails on hybrid cgroup v1/v2 hosts; podman's default ulimits exceed this host's.
        (self.work / "containers.conf").write_text(
            "[containers]\n"
            f'default_ulimits = ["nofile={nofile}:{nofile}", "nproc={nproc}:{nproc}"]\n'
            "[engine]\n"
            'runtime = "runc"\n'
            "[network]\n"
            f'network_config_dir = "{self.work / "networks"}"\n')
        (self.work / "storage.conf").write_text(
            "[storage]\n"
            'driver = "overlay"\n'
            f'graphroot = "{self.work / "storage"}"\n'
            f'runroot = "{self.work / "run"}"\n')

    @property
    def env(self) -> dict[str, str]:
        """Environment for podman and Compose: our config files, the API socket, no BuildKit."""
        keep = {k: v for k, v in os.environ.items()
                if k in ("PATH", "HOME", "LANG", "LC_ALL", "TERM", "TMPDIR")}
        return {**keep,
                "CONTAINERS_CONF": str(self.work / "containers.conf"),
                "CONTAINERS_STORAGE_CONF": str(self.work / "storage.conf"),
                "DOCKER_HOST": f"unix://{self.socket}",
                "DOCKER_BUILDKIT": "0"}

    def podman(self, *args: str, check: bool = True, quiet: bool = True,
               input_bytes: bytes | None = None, timeout: float | None = None):
        """One podman command with our configuration."""
        return run(["podman", *args], env=self.env, check=check, quiet=quiet,
                   input_bytes=input_bytes, timeout=timeout)

    def start_service(self) -> None:
        """Serve the Docker API on work/podman.sock until stop_service()."""
        self.socket.unlink(missing_ok=True)
        log = (self.work / "podman-service.log").open("ab")
        self._service = subprocess.Popen(
            ["podman", "system", "service", "--time=0", f"unix://{self.socket}"],
            env=self.env, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 30
        while not self.socket.exists():
            if self._service.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"podman system service did not start; see {log.name}")
            time.sleep(0.2)

    def stop_service(self) -> None:
        """Stop the API service this object started."""
        if self._service and self._service.poll() is None:
            self._service.terminate()
            try:
                self._service.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self._service.kill()
        self._service = None

    def image_label(self, image: str, label: str) -> str | None:
        """A label of a local image, or None when the image is absent."""
        proc = self.podman("image", "inspect", image, check=False)
        if proc.returncode != 0:
            return None
        labels = json.loads(proc.stdout)[0].get("Labels") or {}
        return labels.get(label, "")

    def image_size(self, image: str) -> int:
        """Uncompressed size of a local image in bytes."""
        proc = self.podman("image", "inspect", "--format", "{{.Size}}", image)
        return int(proc.stdout.decode().strip())

    def leftover_projects(self, prefix: str, keep: str) -> list[str]:
        """Compose projects named prefix* other than `keep`: what killed runs left behind."""
        rows = json.loads(self.podman("ps", "-a", "--format", "json").stdout or b"[]")
        names = {(r.get("Labels") or {}).get("com.docker.compose.project", "") for r in rows}
        return sorted(n for n in names if n.startswith(prefix) and n != keep)

    def remove_project(self, project: str) -> None:
        """Remove every container, then the networks and volumes, of one Compose project."""
        for row in self.project_containers(project):
            self.podman("rm", "--force", "--volumes", row["Id"], check=False)
        for kind in ("network", "volume"):
            self.podman(kind, "prune", "--force", "--filter", f"label=com.docker.compose.project={project}",
                        check=False)

    def project_containers(self, project: str) -> list[dict]:
        """`podman ps -a` rows of one Compose project."""
        proc = self.podman("ps", "-a", "--format", "json",
                           "--filter", f"label=com.docker.compose.project={project}")
        return json.loads(proc.stdout or b"[]")


class HealthTicker(threading.Thread):
    """Runs the health checks of a project's running containers, as Podman's timers would.

    Stands in for the systemd timers through which Podman schedules them; the
    check itself, its timeout, retries and start period are the container's own.
    A container not yet healthy is checked every `every` seconds, a healthy one
    every `healthy_every` (its checks cost CPU: the worker's starts Celery).
    """

    def __init__(self, engine: Engine, project: str, every: float = 3.0,
                 healthy_every: float = 15.0) -> None:
        super().__init__(daemon=True)
        self.engine, self.project = engine, project
        self.every, self.healthy_every = every, healthy_every
        self._stop_event = threading.Event()
        self._last: dict[str, tuple[float, bool]] = {}  # id -> (when, passed)

    def _due(self, cid: str) -> bool:
        when, passed = self._last.get(cid, (0.0, False))
        return time.monotonic() - when >= (self.healthy_every if passed else self.every)

    def run(self) -> None:
        while not self._stop_event.is_set():
            try:
                rows = self.engine.project_containers(self.project)
            except Exception:  # noqa: BLE001 - the project may be mid-teardown; try next tick
                rows = []
            due = [r["Id"] for r in rows if r.get("State") == "running" and self._due(r["Id"])]
            procs = {cid: subprocess.Popen(["podman", "healthcheck", "run", cid],
                                           env=self.engine.env, stdout=subprocess.DEVNULL,
                                           stderr=subprocess.DEVNULL) for cid in due}
            for cid, proc in procs.items():
                try:
                    passed = proc.wait(timeout=60) == 0
                except subprocess.TimeoutExpired:
                    proc.kill()
                    passed = False
                self._last[cid] = (time.monotonic(), passed)
            self._stop_event.wait(self.every)

    def stop(self) -> None:
        self._stop_event.set()
        self.join(timeout=90)
