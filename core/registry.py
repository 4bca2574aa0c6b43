"""The model registry: a folder of model folders, each described by its own config.json.

A model is one folder (config.json, its weights, MODEL_CARD.md); adding a model is adding a folder.
This module only reads the descriptions (torch- and ONNX-free): the web tier lists and validates
names with it, and ml/registry.py loads the weights it names (checking their sha256 first).
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

CONFIG_FILE = "config.json"
NAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789-_")
# Where the web image keeps the descriptions alone (Dockerfile.web: no weights, no ml package).
SHARE_DIR = Path(sys.prefix) / "share" / "humanseg" / "models"


class RegistryError(ValueError):
    """No usable registry, or a model folder that does not describe itself."""


class UnknownModel(LookupError):
    """A request named a model this server does not have."""

    def __init__(self, name: str, choices: list[str]) -> None:
        super().__init__(f"unknown model {name!r}; choose from {', '.join(choices)}")
        self.name, self.choices = name, choices


@dataclass(frozen=True)
class ModelInfo:
    """One model folder's description: what the API lists and what loading checks."""

    name: str
    title: str
    use: str  # one word for people choosing: "fast", "quality"
    kind: str  # which predictor serves it (ml/registry.py): "unet", "modnet"
    folder: Path
    licence: str
    source: str
    sha256: dict[str, str]  # weight file name -> sha256 (checked at load)
    size: int  # the network's input size (see `input` for how a photo is fitted to it)
    input: str  # pre-processing and normalisation, in words
    card: dict[str, Any] = field(default_factory=dict)  # the card's figures (val58, speed)
    fetch: dict[str, str] | None = None  # where the install gets weights the repo does not carry
    default: bool = False  # the registry's own default (HUMANSEG_DEFAULT_MODEL overrides it)

    @classmethod
    def read(cls, folder: Path) -> ModelInfo:
        """The description in folder/config.json (RegistryError when it is not one)."""
        try:
            d = json.loads((folder / CONFIG_FILE).read_text())
            info = cls(name=d.get("name", folder.name), title=d["title"], use=d["use"], kind=d["kind"],
                       folder=folder, licence=d["licence"], source=d["source"], sha256=dict(d["sha256"]),
                       size=int(d["size"]), input=d.get("input", ""), card=dict(d.get("card") or {}),
                       fetch=d.get("fetch"), default=bool(d.get("default", False)))
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise RegistryError(f"{folder}: not a model folder ({type(exc).__name__}: {exc})") from exc
        if info.name != folder.name or not set(info.name) <= NAME_CHARS:
            raise RegistryError(f"{folder}: config name {info.name!r} must be the folder's name "
                                "(lower-case letters, digits, - and _)")
        return info

    def public(self, default: str) -> dict[str, Any]:
        """What GET /api/v1/models says about it."""
        return {"name": self.name, "title": self.title, "use": self.use, "default": self.name == default,
                "input_size": self.size, "input": self.input, "licence": self.licence,
                "source": self.source, "card": self.card}


class Registry:
    """The models of one folder, by name, and which one a request without `model=` gets."""

    def __init__(self, models: list[ModelInfo], default: str = "") -> None:
        if not models:
            raise RegistryError("no models registered")
        self.models = {m.name: m for m in sorted(models, key=lambda m: m.name)}
        marked = sorted(m.name for m in models if m.default)
        if len(marked) > 1:  # moving the default to a new model moves the marker, never copies it
            raise RegistryError(f"models {', '.join(marked)} are each marked default; mark one")
        self.default = default or (marked[0] if marked else next(iter(self.models)))
        if self.default not in self.models:
            raise RegistryError(f"default model {self.default!r} is not registered; "
                                f"choose from {', '.join(self.models)} (HUMANSEG_DEFAULT_MODEL)")

    @classmethod
    def load(cls, folder: str | Path = "", default: str = "") -> Registry:
        """Every model folder under `folder` (empty: the shipped registry)."""
        root = Path(folder) if folder else shipped_dir()
        if not root.is_dir():
            raise RegistryError(f"{root}: no such model registry folder (HUMANSEG_MODELS_DIR)")
        found = [ModelInfo.read(d) for d in sorted(root.iterdir()) if (d / CONFIG_FILE).is_file()]
        return cls(found, default)

    @property
    def names(self) -> list[str]:
        """Registered names, sorted."""
        return list(self.models)

    def get(self, name: str | None) -> ModelInfo:
        """The named model (the default for None or ''); UnknownModel lists the choices."""
        found = self.models.get(name or self.default)
        if found is None:
            raise UnknownModel(str(name), self.names)
        return found


def shipped_dir() -> Path:
    """The registry installed with the package (ml/models), else the web image's descriptions."""
    beside = Path(__file__).resolve().parent.parent / "ml" / "models"
    return beside if beside.is_dir() else SHARE_DIR
