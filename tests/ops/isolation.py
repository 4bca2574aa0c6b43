"""Run code in a subprocess that can import only what one pyproject extra installs.

This is how the images are checked without Docker: Dockerfile.web installs
`.[web]`, Dockerfile.worker `.[worker]`; a subprocess whose import system
refuses every third-party module outside that extra's dependency closure (and
our packages the image does not copy) behaves like the image would.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from importlib import metadata
from pathlib import Path

import tomllib
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

REPO = Path(__file__).resolve().parents[2]
PROJECT = "humanseg"


def _pyproject() -> dict:
    with (REPO / "pyproject.toml").open("rb") as fh:
        return tomllib.load(fh)["project"]


def dependency_closure(extras: set[str]) -> set[str]:
    """Canonical names of every distribution `pip install .[extras]` pulls in."""
    project = _pyproject()
    todo: list[tuple[str, frozenset[str]]] = [(PROJECT, frozenset(extras))]
    seen: set[tuple[str, frozenset[str]]] = set()
    dists: set[str] = set()
    missing: set[str] = set()
    while todo:
        name, want = todo.pop()
        if (name, want) in seen:
            continue
        seen.add((name, want))
        if name == PROJECT:
            reqs = list(project.get("dependencies", []))
            for extra in want:
                reqs += project["optional-dependencies"][extra]
        else:
            dists.add(name)
            try:
                reqs = metadata.requires(name) or []
            except metadata.PackageNotFoundError:
                missing.add(name)
                continue
        for raw in reqs:
            req = Requirement(raw)
            envs = [{"extra": e} for e in (want or {""})] if name != PROJECT else [{"extra": ""}]
            if req.marker and not any(req.marker.evaluate(env) for env in envs):
                continue
            todo.append((canonicalize_name(req.name), frozenset(req.extras)))
    if missing:
        raise AssertionError(f"not installed, cannot walk their dependencies: {sorted(missing)}")
    return dists


def allowed_modules(extras: set[str]) -> set[str]:
    """Top-level import names provided by the closure of `extras`."""
    closure = dependency_closure(extras)
    return {
        module
        for module, dists in metadata.packages_distributions().items()
        if any(canonicalize_name(d) in closure for d in dists)
    }


_BOOT = textwrap.dedent(
    """
    import importlib.abc, json, sys
    _cfg = json.loads(sys.argv[1])
    _ALLOWED = set(_cfg["allowed"]) | set(sys.stdlib_module_names)
    _OWN = set(_cfg["own"])
    _SEEN_BLOCKED = []

    class _ImageOnly(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            top = name.partition(".")[0]
            if top == "humanseg":  # our namespace: only the subpackages the image copies
                sub = name.split(".")[1] if "." in name else ""
                if sub in _OWN or sub in ("", "cli", "up", "__main__"):
                    return None
                top = name
            elif top in _ALLOWED or top.startswith("_"):
                return None
            _SEEN_BLOCKED.append(top)
            raise ModuleNotFoundError(f"No module named {top!r} (not in the image)", name=top)

    sys.meta_path.insert(0, _ImageOnly())
    for _mod in _cfg["must_block"]:
        try:
            __import__(_mod)
        except ImportError:
            pass
        else:
            raise SystemExit(f"isolation broken: {_mod} imported")
    """
)


def run_isolated(extras: set[str], own: set[str], code: str, env: dict[str, str],
                 must_block: tuple[str, ...] = ("torch", "onnxruntime", "humanseg.ml"),
                 timeout: int = 120) -> subprocess.CompletedProcess:
    """Run `code` with only `extras`' closure (+ `own` packages, stdlib) importable."""
    allowed = allowed_modules(extras) - set(must_block)
    cfg = json.dumps({"allowed": sorted(allowed), "own": sorted(own), "must_block": list(must_block)})
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("HUMANSEG_")}
    full_env.update(env)
    full_env["PYTHONPATH"] = str(REPO)
    return subprocess.run(
        [sys.executable, "-c", _BOOT + textwrap.dedent(code), cfg],
        capture_output=True, text=True, cwd=str(REPO), env=full_env, timeout=timeout, check=False)
