"""Type-check the package as it is installed: `humanseg.core` is core/, `humanseg.web` is web/, ...

setup.py maps the repository's top-level folders (its PARTS) into the one `humanseg` namespace,
and the editable install does that with an import hook that mypy, like every static tool, cannot
follow: a checker finds `humanseg.web.api` by walking folders. So this script builds a link tree,

    build/typecheck/humanseg/<part>   -> <part>/   (each of setup.py's PARTS present)
    build/typecheck/humanseg/<entry>  -> humanseg/<entry>   (cli.py, up.py, ...; linked one by one)

and runs mypy on the package `humanseg` found there (pyproject.toml [tool.mypy]: mypy_path names
build/typecheck). The tree is remade on every run, so a new module needs no step of its own. Paths
in mypy's report are given back as repository paths (core/db.py:12, not
build/typecheck/humanseg/core/db.py:12).

    .venv/bin/python scripts/typecheck.py [mypy options]     # make typecheck
    .venv/bin/python scripts/typecheck.py --tree-only        # only the links (an editor, pyright, grimp)
"""

from __future__ import annotations

import ast
import os
import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TREE = REPO / "build" / "typecheck"


def parts(repo: Path = REPO) -> tuple[str, ...]:
    """setup.py's PARTS (read, not imported: importing setup.py would run setup())."""
    for node in ast.parse((repo / "setup.py").read_text()).body:
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "PARTS" for t in node.targets):
            return tuple(ast.literal_eval(node.value))
    raise SystemExit("setup.py defines no PARTS")


def present_parts(repo: Path = REPO) -> list[str]:
    """The PARTS that setup.py packages here (it skips a folder without __init__.py)."""
    return [part for part in parts(repo) if (repo / part / "__init__.py").is_file()]


def _link(target: Path, link: Path) -> None:
    link.symlink_to(os.path.relpath(target, link.parent), target_is_directory=target.is_dir())


def build_tree(repo: Path = REPO, tree: Path = TREE) -> Path:
    """(Re)make tree/humanseg as links into repo; return tree/humanseg."""
    package = tree / "humanseg"
    if package.exists():
        for entry in package.iterdir():
            if not entry.is_symlink():
                raise SystemExit(f"{entry} is not a link: the tree holds links only, remove it by hand")
            entry.unlink()
    package.mkdir(parents=True, exist_ok=True)
    mapped = present_parts(repo)
    for entry in sorted((repo / "humanseg").iterdir()):
        if entry.name == "__pycache__":
            continue
        if entry.name in mapped:
            raise SystemExit(f"humanseg/{entry.name} would shadow the mapped folder {entry.name}/")
        _link(entry, package / entry.name)
    for part in mapped:
        _link(repo / part, package / part)
    return package


def repo_paths(text: str, repo: Path = REPO, tree: Path = TREE) -> str:
    """Tree paths in mypy's output (relative or absolute) -> repository paths, relative."""
    mapped = "|".join(re.escape(p) for p in present_parts(repo))
    for prefix in (str(tree), str(tree.relative_to(repo))):  # the absolute form holds the relative one
        text = re.sub(re.escape(prefix + "/humanseg/") + f"(?:({mapped})/)?",
                      lambda m: f"{m.group(1)}/" if m.group(1) else "humanseg/", text)
    return text


def main(argv: list[str]) -> int:
    build_tree()
    if argv == ["--tree-only"]:
        print(TREE)
        return 0
    proc = subprocess.run([sys.executable, "-m", "mypy", "--config-file", str(REPO / "pyproject.toml"), *argv],
                          cwd=REPO, capture_output=True, text=True, check=False)
    sys.stdout.write(repo_paths(proc.stdout))
    sys.stderr.write(repo_paths(proc.stderr))
    return proc.returncode


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
