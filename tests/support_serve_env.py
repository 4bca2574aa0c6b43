"""Run Python as in the environment `make up` builds (the web, worker and client extras only).

The test venv has every extra; here the distributions that `make up` would not install are hidden:
a meta-path finder refuses their top-level modules. humanseg's own extras are read from
pyproject.toml (the tree under test, not the installed copy), their requirements' requirements from
this venv's metadata (so scipy under scikit-learn counts too).
"""

from __future__ import annotations

import importlib.metadata as md
import re
from pathlib import Path

import tomllib
from packaging.requirements import Requirement

SERVE_EXTRAS = ("web", "worker", "client")  # the Makefile's install-serve
PYPROJECT = Path(__file__).resolve().parents[1] / "pyproject.toml"


def _name(dist: str) -> str:
    return re.sub(r"[-_.]+", "-", dist).lower()


def serve_closure() -> set[str]:
    """Normalised names of every distribution `pip install -e .[web,worker,client]` installs."""
    seen: set[str] = set()
    todo: list[tuple[str, tuple[str, ...]]] = [("humanseg", SERVE_EXTRAS)]
    while todo:
        dist, extras = todo.pop()
        key = _name(dist)
        try:
            requires = _humanseg_requires() if key == "humanseg" else md.requires(dist) or []
        except md.PackageNotFoundError:
            continue  # an optional dependency of a platform we are not on
        seen.add(key)
        for line in requires:
            req = Requirement(line)
            env_ok = [req.marker is None or req.marker.evaluate({"extra": e}) for e in (*extras, "")]
            if not any(env_ok):
                continue
            if _name(req.name) == "humanseg":  # humanseg[web] from the worker extra
                todo.append(("humanseg", tuple(req.extras)))
            elif _name(req.name) not in seen:
                todo.append((req.name, tuple(req.extras)))
    return seen


def _humanseg_requires() -> list[str]:
    """humanseg's requirements as metadata spells them (`name; extra == "web"`), from pyproject.toml."""
    extras = tomllib.loads(PYPROJECT.read_text())["project"]["optional-dependencies"]
    return [f'{req}; extra == "{extra}"' for extra, reqs in extras.items() for req in reqs]


def hidden_modules() -> list[str]:
    """Top-level modules of the installed distributions outside the serve closure (torch, tqdm, ...)."""
    keep = serve_closure()
    hidden = set()
    for module, dists in md.packages_distributions().items():
        if all(_name(d) not in keep for d in dists) and module.isidentifier():
            hidden.add(module)
    return sorted(hidden - {"humanseg", "_pytest", "pytest", "py"})


def prelude() -> str:
    """Python source that hides those modules for the rest of the process (run it first)."""
    return (
        "import importlib.abc, sys\n"
        f"HIDDEN = set({hidden_modules()!r})\n"
        "class _Hide(importlib.abc.MetaPathFinder):\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] in HIDDEN:\n"
        "            raise ModuleNotFoundError(f'No module named {name!r} (not in make up)', name=name)\n"
        "        return None\n"
        "sys.meta_path.insert(0, _Hide())\n"
    )
