"""scripts/typecheck.py (make typecheck): the link tree that lets mypy see humanseg.core as core/.

mypy itself runs in `make typecheck`, which `make test` runs before pytest; these checks are the
tree and the report's paths, without mypy.
"""

from __future__ import annotations

import importlib.util

import pytest
import tomllib

from .conftest import REPO

_spec = importlib.util.spec_from_file_location("humanseg_typecheck", REPO / "scripts" / "typecheck.py")
assert _spec is not None and _spec.loader is not None
typecheck = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(typecheck)


@pytest.fixture
def repo_copy(tmp_path):
    root = tmp_path / "repo"
    (root / "humanseg").mkdir(parents=True)
    (root / "humanseg" / "__init__.py").write_text("")
    (root / "humanseg" / "cli.py").write_text("")
    for part in ("core", "web"):
        (root / part).mkdir()
        (root / part / "__init__.py").write_text("")
    (root / "ml").mkdir()  # no __init__.py: setup.py does not package it, nor does the tree
    (root / "setup.py").write_text('PARTS = ("core", "web", "ml")\n')
    return root


def test_the_tree_links_each_part_and_each_top_level_file(repo_copy):
    tree = repo_copy / "build" / "typecheck"
    package = typecheck.build_tree(repo_copy, tree)
    assert sorted(p.name for p in package.iterdir()) == ["__init__.py", "cli.py", "core", "web"]
    assert all(p.is_symlink() for p in package.iterdir())
    assert (package / "core" / "__init__.py").resolve() == repo_copy / "core" / "__init__.py"
    (repo_copy / "humanseg" / "cli.py").unlink()  # a rename or removal: the next run follows it
    (repo_copy / "humanseg" / "up.py").write_text("")
    typecheck.build_tree(repo_copy, tree)
    assert sorted(p.name for p in package.iterdir()) == ["__init__.py", "core", "up.py", "web"]


def test_the_report_names_repository_files(repo_copy):
    tree = repo_copy / "build" / "typecheck"
    out = ("build/typecheck/humanseg/core/db.py:3: error: x\n"
           "build/typecheck/humanseg/cli.py:1: note: y\n"
           f"{tree}/humanseg/web/api.py:9: error: z\n")
    assert typecheck.repo_paths(out, repo_copy, tree) == ("core/db.py:3: error: x\nhumanseg/cli.py:1: note: y\n"
                                                          "web/api.py:9: error: z\n")


def test_the_config_checks_our_modules_and_resolves_every_import_of_them():
    mypy = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["mypy"]
    assert mypy["packages"] == ["humanseg"]
    assert mypy["mypy_path"] == "$MYPY_CONFIG_FILE_DIR/build/typecheck"
    assert mypy.get("ignore_missing_imports") is not True
    for override in mypy.get("overrides", []):
        modules = override["module"] if isinstance(override["module"], list) else [override["module"]]
        assert not [m for m in modules if m.split(".")[0] == "humanseg"], override
