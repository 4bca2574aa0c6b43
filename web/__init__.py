"""Flask web tier: JSON API and gallery. Never imports torch or worker code."""

from __future__ import annotations

import threading

from flask import Flask

from humanseg.core.db import make_engine, make_sessionmaker
from humanseg.core.registry import Registry
from humanseg.core.secret_key import ensure_secret_key
from humanseg.core.settings import Settings
from humanseg.core.storage import Storage, make_storage
from humanseg.web.exposure import keys_required
from humanseg.web.services import Services


def create_app(settings: Settings | None = None, *, storage: Storage | None = None,
               bound: tuple[str, ...] = ()) -> Flask:
    """Build the Flask app from settings (read from the environment when None).

    bound: the addresses the server really listens on, when its launcher knows them (gunicorn's
    master binds before its workers load the app); with the configured host they decide, here
    and once, whether every request needs an API key.
    """
    # Imported here, not at the top: a module of the package alone (web/exposure.py, which the
    # launcher uses) must not load every blueprint.
    from humanseg.core.queue import make_sender
    from humanseg.web import (
        api,
        archive,
        auth,
        backgrounds,
        guard,
        health,
        jobs_control,
        models_api,
        openapi,
        pages,
        webhooks_api,
    )
    from humanseg.web.errors import register_error_handlers

    settings = settings or Settings.from_env()
    app = Flask(__name__)
    from humanseg.web.uploads import SpoolingRequest

    app.request_class = SpoolingRequest  # file parts spool to disk: memory stays flat per request
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
        wait_slots=threading.BoundedSemaphore(max(0, settings.segment_wait_slots)),
        # Stricter, never laxer, than the configured host alone: either one beyond loopback needs keys.
        keys_required=keys_required(settings, [settings.host, *bound]),
        models=Registry.load(settings.models_dir, settings.default_model),
    )
    from humanseg.web import metrics

    metrics.install(app)  # /metrics; times every request, refused ones included
    guard.install(app, settings)  # Host, Origin and URL checks; nosniff; cookie flags
    auth.install(app)  # API keys (after the guard's checks), rate limits, /signin
    app.register_blueprint(health.bp)  # /healthz, /readyz
    app.register_blueprint(api.bp)  # JSON API, JSON deletes
    app.register_blueprint(jobs_control.bp)  # cancel and retry
    app.register_blueprint(models_api.bp)  # the models this server runs
    app.register_blueprint(openapi.bp)  # /openapi.json and the /docs page
    app.register_blueprint(webhooks_api.bp)  # a batch's webhook deliveries
    app.register_blueprint(archive.bp)  # batch zip
    app.register_blueprint(backgrounds.bp)  # background images for cut-outs
    app.register_blueprint(pages.bp)  # HTML pages and their forms
    register_error_handlers(app)
    return app

