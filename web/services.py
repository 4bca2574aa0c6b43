"""The per-app singletons every part of the web tier reaches through `services()`.

Built once by `create_app` (web/__init__.py) and kept in `app.extensions`; modules import this
module, never the package, so imports point one way: down from the factory to the parts.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

from flask import current_app
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from humanseg.core.registry import Registry
from humanseg.core.settings import Settings
from humanseg.core.storage import Storage


@dataclass
class Services:
    """Per-app singletons: settings, database, storage and the task sender."""

    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]
    storage: Storage
    celery: Any
    # Requests of this process that may wait for results at once (/segment, Prefer: wait): a
    # waiting request holds a server thread, and the rest must stay free for everything else.
    wait_slots: threading.BoundedSemaphore
    # Whether every request needs an API key: decided once by create_app (web/exposure.py), from the
    # configured host and the addresses really bound, which --bind may make differ.
    keys_required: bool
    # The model registry's descriptions (core/registry.py): what `model=` may name.
    models: Registry
    # The pages' image origins besides us (web/pages.py works them out on first use).
    gallery_img_origins: list[str] | None = None


def services() -> Services:
    """The Services of the current app."""
    return current_app.extensions["humanseg"]
