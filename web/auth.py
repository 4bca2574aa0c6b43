"""API keys on requests: who is calling (Bearer, X-Api-Key or a signed-in page session).

Keys are required when web/exposure.py says so (the `require_api_keys` setting, or a bind beyond
loopback); otherwise a request without a key is anonymous and sees everything (a local, open
server), while a request with a key is scoped to that key all the same (web/principal.py).
"""

from __future__ import annotations

import logging
from urllib.parse import urlsplit

from flask import (
    Blueprint,
    Flask,
    g,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask.wrappers import Response
from sqlalchemy import Row

from humanseg.core.db import session_scope
from humanseg.core.keys import active_key_row, find_key
from humanseg.core.logfmt import logkv
from humanseg.web import ratelimit
from humanseg.web.csrf import valid_form_token
from humanseg.web.errors import ErrorAnswer, is_api_path
from humanseg.web.principal import Principal
from humanseg.web.services import services

log = logging.getLogger(__name__)

bp = Blueprint("auth", __name__, template_folder="templates")

SESSION_KEY = "api_key_id"
# Probes and scrapers, the sign-in itself and the page assets answer without a key.
OPEN_PATHS = frozenset({"/healthz", "/readyz", "/metrics", "/signin", "/signout", "/favicon.ico",
                        "/openapi.json", "/docs"})
OPEN_PREFIXES = ("/assets/",)


def _sent_key() -> str | None:
    auth = request.headers.get("Authorization", "")
    scheme, _, token = auth.strip().partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    return request.headers.get("X-Api-Key", "").strip() or None


def _lookup(sent: str | None) -> Row | None:
    key_id = session.get(SESSION_KEY) if sent is None else None
    if sent is None and not isinstance(key_id, str):
        return None  # nothing to look up: no database round trip for an anonymous request
    with services().engine.connect() as conn:
        return active_key_row(conn, key=sent, key_id=key_id)


def unauthorized(code: str, message: str) -> ErrorAnswer:
    """The 401 for a missing, unknown or revoked key."""
    err = ErrorAnswer(401, code, message)
    err.headers = {"WWW-Authenticate": 'Bearer realm="humanseg"'}
    return err


def _authenticate():
    path = request.path
    if path in OPEN_PATHS or path.startswith(OPEN_PREFIXES):
        return None
    sent = _sent_key()
    row = _lookup(sent)
    if row is not None:
        g.principal = Principal.of(row)
        ratelimit.count_request(g.principal)
        return None
    if sent is not None:  # a wrong key is an error even where none is needed
        log.info(logkv(event="api_key_refused", path=path))
        raise unauthorized("invalid_api_key", "the API key is unknown or revoked")
    if session.pop(SESSION_KEY, None) is not None:
        log.info(logkv(event="session_key_revoked", path=path))
    if not services().keys_required:
        return None
    if is_api_path():
        raise unauthorized("api_key_required", "send an API key: Authorization: Bearer <key>")
    if request.method == "GET":
        return redirect(url_for("auth.signin", next=request.full_path.rstrip("?")), code=303)
    return redirect(url_for("auth.signin"), code=303)


def _safe_next(target: str | None) -> str:
    # Only a path on this site: an open redirect would make the sign-in a phishing tool.
    target = target or "/"
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return "/"
    return target


@bp.route("/signin", methods=["GET", "POST"])
def signin():
    """A small form that keeps the key's id in the signed session cookie."""
    nxt = _safe_next(request.values.get("next"))
    if request.method == "GET":
        return render_template("auth/signin.html", next=nxt, error=None)
    if not valid_form_token():
        return render_template("auth/signin.html", next=nxt,
                               error="The form expired; try again."), 400
    with session_scope(services().sessions) as db:
        row = find_key(db, request.form.get("api_key", "").strip())
        key_id = row.id if row else None
    if key_id is None:
        log.info(logkv(event="signin_refused"))
        return render_template("auth/signin.html", next=nxt, error="That key is unknown or revoked."), 401
    session.clear()  # a fresh session (and CSRF token) for the signed-in user
    session[SESSION_KEY] = key_id
    log.info(logkv(event="signed_in", key_id=key_id))
    return redirect(nxt, code=303)


@bp.post("/signout")
def signout():
    """Forget the key in the session."""
    if valid_form_token():
        session.clear()
    return redirect(url_for("auth.signin"), code=303)


def install(app: Flask) -> None:
    """Check keys before every view (after web/guard.py's checks) and add the sign-in pages."""
    app.before_request(_authenticate)
    app.after_request(ratelimit.add_headers)
    app.register_blueprint(bp)

    @app.context_processor
    def _signed_in() -> dict:
        # Pages say who is signed in (through the session cookie, not a key sent per request).
        who = getattr(g, "principal", None)
        return {"signed_in": who if who is not None and session.get(SESSION_KEY) == who.key_id else None}

    @app.after_request
    def _signin_headers(resp: Response) -> Response:
        if request.blueprint == "auth" and resp.mimetype == "text/html":
            resp.headers.setdefault("Content-Security-Policy", (
                "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
                "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"))
            resp.headers.setdefault("Cache-Control", "no-store")
        return resp
