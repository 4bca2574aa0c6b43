"""Shared fixtures of the web tests: apps on SQLite + local storage, with or without a real broker."""
import pytest
from factories import make_settings
from gallery_support import make_app

from humanseg.core import migrate
from humanseg.web import create_app


@pytest.fixture
def app(tmp_path, monkeypatch):
    return make_app(tmp_path, monkeypatch)


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def make_live_app(tmp_path, redis_url, private_queue):
    """make_live_app(database_url=None, **settings) -> an app on a migrated database (a SQLite file
    by default), local storage, and a real broker with a queue of its own (no worker consumes it)."""
    made = []

    def build(database_url: str | None = None, **overrides):
        if database_url is None:
            database_url = f"sqlite:///{tmp_path / 'web.db'}"
            migrate.upgrade(database_url)
        fields = {"database_url": database_url, "broker_url": redis_url, "queue": private_queue,
                  **overrides}  # a test may point the broker elsewhere
        app = create_app(make_settings(tmp_path, **fields))
        made.append(app)
        return app

    yield build
    for app in made:
        app.extensions["humanseg"].engine.dispose()
