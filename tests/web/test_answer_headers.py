"""What every answer carries: nosniff, session cookie flags; long URLs answered like other errors."""

from __future__ import annotations

import pytest
from gallery_support import add_batch, make_app


def test_originals_and_api_answers_are_nosniff(app, client):
    batch_id, (job_id,) = add_batch(app, ["a.jpg"])
    answers = {
        "original": client.get(f"/api/v1/jobs/{job_id}/original"),
        "mask": client.get(f"/api/v1/jobs/{job_id}/mask"),
        "job": client.get(f"/api/v1/jobs/{job_id}"),
        "batch": client.get(f"/api/v1/batches/{batch_id}"),
        "archive": client.get(f"/api/v1/batches/{batch_id}/archive"),
        "error": client.get("/api/v1/jobs/nope"),
        "health": client.get("/healthz"),
        "page": client.get("/"),
    }
    for name, resp in answers.items():
        assert resp.headers.get("X-Content-Type-Options") == "nosniff", name
        resp.close()


def _session_cookie(resp) -> str:
    cookies = [c for c in resp.headers.getlist("Set-Cookie") if c.startswith("session=")]
    assert len(cookies) == 1, resp.headers.getlist("Set-Cookie")
    return cookies[0]


def test_session_cookie_is_samesite_lax_and_httponly(client):
    cookie = _session_cookie(client.get("/"))  # the upload form puts a CSRF token in the session
    assert "SameSite=Lax" in cookie and "HttpOnly" in cookie
    assert "Secure" not in cookie  # plain http: a Secure cookie would never come back


def test_session_cookie_is_secure_over_https(client):
    cookie = _session_cookie(client.get("/", base_url="https://localhost"))
    assert "Secure" in cookie and "SameSite=Lax" in cookie


def test_secure_cookies_setting_marks_it_secure_behind_a_tls_proxy(tmp_path, monkeypatch):
    client = make_app(tmp_path, monkeypatch, secure_cookies=True).test_client()
    assert "Secure" in _session_cookie(client.get("/"))


@pytest.mark.parametrize("path", ["/api/v1/jobs/", "/api/v1/batches/x?cursor="])
def test_long_api_urls_are_a_json_414(client, path):
    resp = client.get(path + "a" * 5000)
    assert resp.status_code == 414 and resp.is_json
    assert resp.json["error"]["code"] == "url_too_long"


def test_long_page_urls_are_an_html_414(client):
    resp = client.get("/jobs/" + "a" * 5000)
    assert resp.status_code == 414 and resp.mimetype == "text/html"


def test_urls_up_to_the_limit_are_served(client):
    assert client.get("/api/v1/batches/" + "a" * 4000).status_code == 404
