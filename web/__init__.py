"""Flask web tier: JSON API and gallery. Never imports torch or worker code."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from flask import Flask, current_app
from humanseg.core.db import make_engine, make_sessionmaker
from humanseg.core.secret_key import ensure_secret_key
from humanseg.core.settings import Settings
from humanseg.core.storage import Storage, make_storage
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker


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
    # Imported here: these modules need services(), defined above.
    from humanseg.core.queue import make_sender
    from humanseg.web import api, archive, gallery
    from humanseg.web.errors import register_error_handlers

    settings = settings or Settings.from_env()
    app = Flask(__name__)
    app.config.update(
        SECRET_KEY=ensure_secret_key(settings),
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
    app.register_blueprint(api.bp)  # JSON API, health checks, JSON deletes
    app.register_blueprint(archive.bp)  # batch zip
    app.register_blueprint(gallery.bp)  # HTML pages and their forms
    register_error_handlers(app)
    return app

