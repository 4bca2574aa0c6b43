"""Shared fixtures for the page and archive tests: an app on SQLite + local storage, no broker."""
import pytest
from gallery_support import make_app


@pytest.fixture
def app(tmp_path, monkeypatch):
    return make_app(tmp_path, monkeypatch)


@pytest.fixture
def client(app):
    return app.test_client()
