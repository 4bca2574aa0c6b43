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


def data_folders(part: str) -> list[str]:
    """Sub-folders of a part that hold data (templates, static, weights, migration versions): each is
    listed as a package so setuptools ships its files without a "Package would be ignored" warning."""
    root = HERE / part
    return sorted(
        f"humanseg.{part}." + ".".join(d.relative_to(root).parts)
        for d in root.rglob("*")
        if d.is_dir() and "__pycache__" not in d.parts and not d.name.startswith(".")
    )


setup(
    packages=["humanseg", *(p for part in present for p in (f"humanseg.{part}", *data_folders(part)))],
    package_dir={f"humanseg.{part}": part for part in present},
    package_data={"": ["*"]},  # every file of every listed folder (the data folders above included)
    exclude_package_data={"": ["*.pyc"]},
)
