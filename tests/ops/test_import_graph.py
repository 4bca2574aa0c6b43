"""The import graph, read from the source: the direction README.md "Architecture" documents, and
every import of our own modules naming a module that exists.

Import paths map to files through setup.py's PARTS (`humanseg.<part>.x` is <part>/x.py; the rest of
`humanseg.*` is humanseg/), read by scripts/typecheck.py, the one reader of that mapping. Every
import counts: top-level, lazy inside a function, under TYPE_CHECKING, relative, and
importlib.import_module("humanseg...") with a literal name.
"""

from __future__ import annotations

import ast
import importlib.util
import textwrap
from dataclasses import dataclass
from pathlib import Path

from .conftest import REPO

_spec = importlib.util.spec_from_file_location("humanseg_typecheck", REPO / "scripts" / "typecheck.py")
assert _spec is not None and _spec.loader is not None
typecheck = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(typecheck)

# README.md "Architecture": web -> core, worker -> core + ml, ml -> core (only core.images, the one
# image decoder, core.matte, the one cut-out matting, core.registry, the model registry's descriptions,
# and the torch-free core.logfmt/core.logsetup); core imports none of them (migrations/, the schema,
# belongs with it); humanseg/ (cli, up, client, remote) sits above them all. Each part may import its
# own modules and these prefixes, nothing else of ours.
MAY_IMPORT = {
    "core": ("humanseg.core",),
    "migrations": ("humanseg.core",),
    "web": ("humanseg.core",),
    "worker": ("humanseg.core", "humanseg.ml"),
    "ml": ("humanseg.core.images", "humanseg.core.matte", "humanseg.core.logfmt", "humanseg.core.logsetup",
           "humanseg.core.registry"),
    "humanseg": ("humanseg",),
}
# Third-party packages a part never imports: core is torch-free and the web tier never imports
# torch (README); ml imports nothing of Flask, Celery or SQLAlchemy (ml/__init__.py).
NEVER = {
    "core": ("torch", "torchvision"),
    "web": ("torch", "torchvision"),
    "ml": ("flask", "celery", "sqlalchemy"),
}


@dataclass(frozen=True)
class Import:
    path: Path  # the importing file
    line: int
    module: str  # absolute module name as written (relative imports resolved)
    names: tuple[str, ...] = ()  # `from module import names`; empty for `import module`


def modules(root: Path) -> dict[str, Path]:
    """Every module of the installed namespace and its file: humanseg.<part>.x -> <part>/x.py."""
    found: dict[str, Path] = {}
    for part in typecheck.present_parts(root):
        for path in sorted((root / part).rglob("*.py")):
            found[_name(f"humanseg.{part}", path.relative_to(root / part))] = path
    for path in sorted((root / "humanseg").rglob("*.py")):
        found[_name("humanseg", path.relative_to(root / "humanseg"))] = path
    return found


def _name(package: str, rel: Path) -> str:
    parts = [package, *rel.with_suffix("").parts]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(module: str, path: Path) -> list[Import]:
    """Every import in one file, wherever it stands."""
    is_package = path.name == "__init__.py"
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [Import(path, node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = module.split(".") if is_package else module.split(".")[:-1]
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, *([base] if base else [])])
            found.append(Import(path, node.lineno, base, tuple(a.name for a in node.names)))
        elif (isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant)
              and isinstance(node.args[0].value, str)
              and (getattr(node.func, "attr", None) == "import_module"
                   or getattr(node.func, "id", None) == "import_module")):
            found.append(Import(path, node.lineno, node.args[0].value))
    return found


def _bound_names(path: Path) -> set[str] | None:
    """Names a module binds at its top level (None: it has a module __getattr__ or a star import)."""
    names: set[str] = set()

    def visit(body: list[ast.stmt]) -> bool:
        for node in body:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                if node.name == "__getattr__":
                    return False
                names.add(node.name)
            elif isinstance(node, (ast.Import, ast.ImportFrom)):
                for alias in node.names:
                    if alias.name == "*":
                        return False
                    names.add(alias.asname or alias.name.split(".")[0])
            elif isinstance(node, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                names.update(n.id for t in targets for n in ast.walk(t) if isinstance(n, ast.Name))
            elif isinstance(node, (ast.If, ast.Try, ast.With)):
                blocks = [node.body, getattr(node, "orelse", []), getattr(node, "finalbody", []),
                          *(h.body for h in getattr(node, "handlers", []))]
                if not all(visit(block) for block in blocks):
                    return False
        return True

    return names if visit(ast.parse(path.read_text(), str(path)).body) else None


def own(name: str) -> bool:
    return name == "humanseg" or name.startswith("humanseg.")


def targets(imp: Import, known: dict[str, Path]) -> list[str]:
    """The modules of ours an import reaches: `from pkg import sub` reaches pkg.sub when it is a module."""
    if not imp.names:
        return [imp.module]
    return [f"{imp.module}.{n}" if f"{imp.module}.{n}" in known else imp.module for n in imp.names]


def stale(root: Path) -> list[str]:
    """`file:line: what` for each import of ours that names no module, or a name its module lacks."""
    known = modules(root)
    problems = []
    for module, path in known.items():
        for imp in imports(module, path):
            if not own(imp.module):
                continue
            where = f"{path.relative_to(root)}:{imp.line}"
            if imp.module not in known:
                problems.append(f"{where}: no module {imp.module} (no file under {_folder(imp.module)})")
                continue
            bound = _bound_names(known[imp.module])
            for name in imp.names:
                if f"{imp.module}.{name}" not in known and bound is not None and name not in bound:
                    problems.append(f"{where}: {imp.module} has no {name}")
    return problems


def _folder(module: str) -> str:
    parts = module.split(".")
    return f"{parts[1]}/" if len(parts) > 1 and parts[1] in typecheck.parts() else "humanseg/"


def part_of(module: str, root: Path) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[1] in typecheck.present_parts(root) else "humanseg"


def _within(name: str, prefixes: tuple[str, ...]) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)


def wrong_way(root: Path) -> list[str]:
    """`file:line: a -> b` for each import against MAY_IMPORT or NEVER."""
    known = modules(root)
    problems = []
    for module, path in known.items():
        part = part_of(module, root)
        allowed = (f"humanseg.{part}" if part != "humanseg" else "humanseg", *MAY_IMPORT[part])
        for imp in imports(module, path):
            where = f"{path.relative_to(root)}:{imp.line}: {module}"
            if not own(imp.module):
                if _within(imp.module, NEVER.get(part, ())):
                    problems.append(f"{where} -> {imp.module} ({part} never imports it)")
                continue
            for target in targets(imp, known):
                if not _within(target, allowed):
                    problems.append(f"{where} -> {target}")
    return problems


def test_the_mapping_is_setup_pys_and_the_scan_sees_every_part():
    found = modules(REPO)
    assert typecheck.present_parts(REPO) == ["core", "web", "worker", "ml", "migrations"]
    assert set(MAY_IMPORT) == {*typecheck.parts(), "humanseg"}, "a rule for each part of setup.py"
    for part in ("core", "web", "worker", "ml"):
        assert sum(m.startswith(f"humanseg.{part}.") for m in found) >= 10, part
    assert found["humanseg.web.api"] == REPO / "web" / "api.py"
    assert found["humanseg.cli"] == REPO / "humanseg" / "cli.py"
    assert found["humanseg.core"] == REPO / "core" / "__init__.py"


def test_every_import_of_our_modules_names_an_existing_file():
    assert stale(REPO) == []


def test_imports_point_the_documented_way():
    assert wrong_way(REPO) == []


def test_lazy_imports_are_seen():
    # cli.py dispatches lazily: its imports of web, worker and ml live inside functions.
    found = {t for imp in imports("humanseg.cli", REPO / "humanseg" / "cli.py") for t in targets(imp, modules(REPO))}
    assert {"humanseg.ml.cli"} <= found, found
    assert any(t.startswith("humanseg.worker.") for t in found), found


def _tree(root: Path, files: dict[str, str]) -> Path:
    (root / "setup.py").write_text('PARTS = ("core", "web", "worker", "ml", "migrations")\n')
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
    return root


def test_the_checks_catch_wrong_way_and_stale_imports(tmp_path):
    root = _tree(tmp_path, {
        "humanseg/__init__.py": "",
        "humanseg/cli.py": "def main():\n    from humanseg.web import app\n",
        "core/__init__.py": "",
        "core/images.py": "def decode(): ...\n",
        "core/db.py": """\
            def engine():
                from humanseg.web.api import bp  # lazy, still counted
                import torch
            """,
        "web/__init__.py": "app = None\n",
        "web/api.py": "from . import gone\nfrom ..core.images import decode, renamed\nbp = 1\n",
        "worker/__init__.py": "",
        "worker/tasks.py": "import importlib\nm = importlib.import_module('humanseg.web.api')\n",
        "ml/__init__.py": "",
        "ml/train.py": "from humanseg.core import images, db\nimport sqlalchemy\n",
        "migrations/__init__.py": "",
    })
    assert sorted(wrong_way(root)) == sorted([
        "core/db.py:2: humanseg.core.db -> humanseg.web.api",
        "core/db.py:3: humanseg.core.db -> torch (core never imports it)",
        "ml/train.py:1: humanseg.ml.train -> humanseg.core.db",
        "ml/train.py:2: humanseg.ml.train -> sqlalchemy (ml never imports it)",
        "worker/tasks.py:2: humanseg.worker.tasks -> humanseg.web.api",
    ])
    assert sorted(stale(root)) == [
        "web/api.py:1: humanseg.web has no gone",
        "web/api.py:2: humanseg.core.images has no renamed",
    ]
