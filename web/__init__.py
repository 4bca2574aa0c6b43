"""Flask web tier: JSON API and gallery. Never imports torch or worker code."""

from __future__ import annotations

import importlib
import logging
from dataclasses import dataclass
from typing import Any

from flask import Flask, current_app
from humanseg.core.db import make_engine, make_sessionmaker
from humanseg.core.settings import Settings
from humanseg.core.storage import Storage, make_storage
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

log = logging.getLogger(__name__)

# Blueprints owned by the gallery; registered when their modules exist.
OPTIONAL_BLUEPRINTS = ("humanseg.web.gallery", "humanseg.web.archive")


@dataclass
class Services:
    """Per-app singletons: settings, database, storage and the task sender."""

    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]
    storage: Storage
    celery: Any


def services() -> Services:
    """The Services of the current app."""
    return current_app.extensions["humanseg"]


def create_app(settings: Settings | None = None, *, storage: Storage | None = None) -> Flask:
    """Build the Flask app from settings (read from the environment when None)."""
    from humanseg.core.queue import make_sender
    from humanseg.web import api

    settings = settings or Settings.from_env()
    app = Flask(__name__)
    app.config.update(
        SECRET_KEY=settings.resolve_secret_key(),
        MAX_CONTENT_LENGTH=settings.max_request_bytes,
        # Werkzeug caps multipart parts at 1000 by default; allow max_files plus fields.
        MAX_FORM_PARTS=settings.max_files * 2 + 100,
        JSON_SORT_KEYS=False,
    )
    engine = make_engine(settings.database_url)
    app.extensions["humanseg"] = Services(
        settings=settings,
        engine=engine,
        sessions=make_sessionmaker(engine),
        storage=storage or make_storage(settings),
        celery=make_sender(settings),
    )
    app.register_blueprint(api.bp)
    api.register_error_handlers(app)
    for name in OPTIONAL_BLUEPRINTS:
        _register_optional(app, name)
    return app


def _register_optional(app: Flask, module_name: str) -> None:
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name != module_name:
            raise  # a real import error inside the module must not be hidden
        log.info("event=blueprint_missing module=%s", module_name)
        return
    app.register_blueprint(module.bp)
