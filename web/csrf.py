"""CSRF protection: a per-session token for HTML forms, an Origin check for the JSON API."""

from __future__ import annotations

import hmac
import secrets
from urllib.parse import urlsplit

from flask import request, session

FIELD = "csrf_token"
_SESSION_KEY = "_csrf"


def csrf_token() -> str:
    """The session's token (made on first use); rendered into every form."""
    token = session.get(_SESSION_KEY)
    if not token:
        token = secrets.token_urlsafe(32)
        session[_SESSION_KEY] = token
    return token


def valid_form_token() -> bool:
    """True when the posted form's token matches the session's."""
    sent = request.form.get(FIELD, "")
    expected = session.get(_SESSION_KEY, "")
    return bool(sent and expected and hmac.compare_digest(sent, expected))


def same_origin() -> bool:
    """For state-changing JSON calls: a browser's Origin/Referer must be this host.

    Non-browser clients (curl, SDKs) send neither header and are allowed; a
    cross-site page cannot forge Origin, so its requests are refused.
    """
    origin = request.headers.get("Origin") or request.headers.get("Referer")
    if not origin:
        return True
    return origin != "null" and urlsplit(origin).netloc == request.host
