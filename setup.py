"""Packages of the one `humanseg` namespace, mapped from the repository's top-level folders.

`humanseg.core`, `humanseg.web`, ... come from core/, web/, ...: installed, nothing claims a
generic top-level name. Folders that a build context leaves out (the web image copies no ml/ or
worker/) are simply not packaged, which is why this list is computed rather than written in
pyproject.toml. Everything else about the project lives in pyproject.toml.
"""
from pathlib import Path

from setuptools import setup

HERE = Path(__file__).resolve().parent
PARTS = ("core", "web", "worker", "ml", "migrations")
present = [part for part in PARTS if (HERE / part / "__init__.py").is_file()]

setup(
    packages=["humanseg", *(f"humanseg.{part}" for part in present)],
    package_dir={f"humanseg.{part}": part for part in present},
)
