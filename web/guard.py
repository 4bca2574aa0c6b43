"""Checks every request passes before any view runs, and headers every answer carries.

- Host: only the allowed names (DNS rebinding: a hostile page whose name resolves to us
  sends its own name as Host).
- Origin: a browser's state-changing API call must come from our own origin.
- URL length: over MAX_URL_BYTES is a 414, answered like every other error (JSON on API paths).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from flask import Flask, current_app, request
from flask.sessions import SecureCookieSessionInterface
from flask.wrappers import Response
from werkzeug.exceptions import RequestEntityTooLarge, RequestURITooLarge

from humanseg.core.logfmt import logkv
from humanseg.core.settings import Settings
from humanseg.web.csrf import same_origin
from humanseg.web.errors import ErrorAnswer, error_page, is_api_path
from humanseg.web.exposure import is_wildcard

log = logging.getLogger(__name__)

MAX_URL_BYTES = 4096  # path plus query string, as sent
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
# Probes (load balancers, orchestrators) often address a backend by its IP; these two change
# nothing and tell nothing private, so they answer whatever the Host.
HOST_EXEMPT_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})  # scrapers address us by IP too


def host_name(host: str) -> str:
    """The name part of a Host header, lower-case: no port, no trailing dot; IPv6 in brackets."""
    host = host.strip().lower()
    if host.startswith("["):
        return host[: host.find("]") + 1]  # "[::1]:8000" -> "[::1]"; no "]" -> ""
    name, sep, port = host.rpartition(":")
    if sep and port.isdigit():
        host = name
    return host.rstrip(".")


def host_allowed(host: str, allowed: Iterable[str]) -> bool:
    """True when the Host header names one of `allowed` ("*": any; ".example.com": and subdomains)."""
    name = host_name(host)
    if not name:
        return False
    for entry in allowed:
        if entry == "*" or entry == name:
            return True
        if entry.startswith(".") and (name == entry[1:] or name.endswith(entry)):
            return True
    return False


def allowed_hosts(settings: Settings) -> tuple[str, ...]:
    """The allowed names plus the address the server is bound to (reaching it by IP is no rebinding)."""
    bind = settings.host.strip().lower()
    if is_wildcard(bind):
        return settings.allowed_hosts
    return (*settings.allowed_hosts, f"[{bind}]" if ":" in bind and "[" not in bind else bind)


def cross_site() -> bool:
    """True when a browser says this request comes from another site or origin.

    Clients that send neither Origin nor Sec-Fetch-Site (curl, SDKs) are not browsers and pass;
    a page cannot forge either header.
    """
    fetch_site = request.headers.get("Sec-Fetch-Site", "").strip().lower()
    if fetch_site and fetch_site not in ("same-origin", "none"):
        return True
    return not same_origin()


def _url_bytes() -> int:
    env = request.environ
    raw = env.get("RAW_URI") or env.get("REQUEST_URI")  # gunicorn / werkzeug: as sent
    if raw is None:
        return len(request.full_path.encode())
    return len(raw.encode("latin-1", "replace"))


class _SessionCookies(SecureCookieSessionInterface):
    """The session cookie is Secure on https requests, and always when secure_cookies is set."""

    def get_cookie_secure(self, app: Flask) -> bool:
        return bool(super().get_cookie_secure(app) or request.is_secure)

    def open_session(self, app: Flask, request):
        # Without a cookie there is nothing to verify: an empty session, and no signing
        # serializer built for every API call (job polls carry no cookie). Saving still signs.
        if app.secret_key and not request.cookies.get(self.get_cookie_name(app)):
            return self.session_class()
        return super().open_session(app, request)


def install(app: Flask, settings: Settings) -> None:
    """Register the request checks, the answer headers and the session cookie flags on `app`."""
    hosts = allowed_hosts(settings)
    app.config.update(SESSION_COOKIE_SAMESITE="Lax", SESSION_COOKIE_SECURE=settings.secure_cookies,
                      SESSION_COOKIE_HTTPONLY=True)
    app.session_interface = _SessionCookies()

    @app.before_request
    def _check_request():
        if request.path not in HOST_EXEMPT_PATHS and not host_allowed(request.host, hosts):
            log.warning(logkv(event="host_refused", host=request.host, path=request.path))
            if is_api_path():
                raise ErrorAnswer(400, "host_not_allowed", "this server does not answer to that host name")
            return error_page(400, "Unknown host", "This server does not answer to that host name.")
        if _url_bytes() > MAX_URL_BYTES:
            message = f"the URL is longer than {MAX_URL_BYTES} bytes"
            raise ErrorAnswer(414, "url_too_long", message) if is_api_path() else RequestURITooLarge(message)
        limit = current_app.config["MAX_CONTENT_LENGTH"]
        if limit is not None and (request.content_length or 0) > limit:
            raise RequestEntityTooLarge()  # from the header alone, before any route reads the body
        if is_api_path() and request.method in UNSAFE_METHODS and cross_site():
            log.warning(logkv(event="cross_origin_refused", method=request.method, path=request.path,
                              origin=request.headers.get("Origin"),
                              fetch_site=request.headers.get("Sec-Fetch-Site")))
            raise ErrorAnswer(403, "cross_origin", "cross-origin request refused")
        return None

    @app.after_request
    def _answer_headers(resp: Response) -> Response:
        # Originals are client bytes: a browser must never sniff them (or JSON) into HTML.
        resp.headers.setdefault("X-Content-Type-Options", "nosniff")
        return resp
