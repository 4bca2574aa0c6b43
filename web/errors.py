"""How errors are answered: JSON {"error": {...}} on API paths, the error page on HTML ones."""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask, jsonify, render_template, request
from flask.wrappers import Response
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

from humanseg.core.logfmt import logkv
from humanseg.core.redact import without_paths


class ErrorAnswer(Exception):
    """An error answered with an HTTP status and a code: a JSON body on API paths, the error page
    on HTML ones. (Clients of the API catch humanseg.client.ApiError.)"""

    def __init__(self, status: int, code: str, message: str, *, file: str | None = None,
                 files: list[dict[str, str]] | None = None, extra: dict[str, Any] | None = None):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.file = file
        self.files = files
        self.extra = extra or {}
        self.headers: dict[str, str] = {}  # e.g. WWW-Authenticate on a 401, Retry-After on a 429

    def response(self) -> Response:
        """The Flask response for this error."""
        # A server-side failure may quote an exception that names files on this machine.
        message = without_paths(self.message) if self.status >= 500 else self.message
        body: dict[str, Any] = {"code": self.code, "message": message}
        if self.file is not None:
            body["file"] = self.file
        if self.files is not None:
            body["files"] = self.files
        body.update(self.extra)
        resp = jsonify({"error": body})
        resp.status_code = self.status
        resp.headers.update(self.headers)
        return resp


class RecordNotFound(ErrorAnswer):
    """A job or batch that does not exist: a JSON 404 for the API, the error page for people."""

    def __init__(self, code: str, message: str, *, title: str, page_message: str):
        super().__init__(404, code, message)
        self.title = title
        self.page_message = page_message


def error_response(status: int, code: str, message: str) -> Response:
    """Shortcut for a bare JSON error."""
    return ErrorAnswer(status, code, message).response()


def error_page(status: int, title: str, message: str) -> tuple[str, int]:
    """A friendly HTML error page."""
    return render_template("pages/error.html", title=title, message=message, status=status), status


# What the error page says for the HTTP errors people meet; others use Werkzeug's own words.
PAGE_TEXT = {
    404: ("Page not found",
          "There is nothing at this address. It may have been deleted, or the link is mistyped."),
    405: ("Not allowed here", "This address does not take that kind of request."),
    413: ("Upload too large",
          "The upload is larger than this server accepts. Send fewer or smaller files at a time."),
    500: ("Something went wrong",
          "The server hit an error while answering. Try again in a moment, or tell its admin."),
}


def html_error(exc: HTTPException) -> tuple[str, int, list[tuple[str, str]]]:
    """The styled error page for an HTTP error on a page path (keeps headers such as Allow)."""
    status = exc.code or 500
    title, message = PAGE_TEXT.get(status, (exc.name, exc.description or exc.name))
    headers = [(k, v) for k, v in exc.get_headers() if k.lower() != "content-type"]
    html, _ = error_page(status, title, message)
    return html, status, headers


def is_api_path() -> bool:
    """True when the current request is for the JSON API (or the health checks)."""
    return request.path.startswith("/api/") or request.path in ("/healthz", "/readyz")


def register_error_handlers(app: Flask) -> None:
    """JSON errors for API paths; the styled error page (web/templates/pages/error.html) elsewhere."""

    @app.errorhandler(ErrorAnswer)
    def _api_error(exc: ErrorAnswer) -> Response:
        return exc.response()

    @app.errorhandler(RecordNotFound)
    def _not_found(exc: RecordNotFound):
        return exc.response() if is_api_path() else error_page(404, exc.title, exc.page_message)

    @app.errorhandler(RequestEntityTooLarge)
    def _too_large(exc: RequestEntityTooLarge):
        if not is_api_path():
            return html_error(exc)
        limit = app.config["MAX_CONTENT_LENGTH"]
        return error_response(413, "request_too_large", f"the request body exceeds {limit} bytes")

    @app.errorhandler(HTTPException)
    def _http(exc: HTTPException):
        # Unhandled exceptions reach here too, as InternalServerError (500).
        if not is_api_path():
            return html_error(exc)
        code = (exc.name or "error").lower().replace(" ", "_")
        return error_response(exc.code or 500, code, exc.description or exc.name)


_log = logging.getLogger(__name__)

# HTTP status for each core.images rejection code (uploads and backgrounds); any other code is 400.
IMAGE_ERROR_STATUS = {"file_too_large": 413, "too_many_pixels": 413, "side_too_long": 413,
                      "unsupported_format": 415}


def storage_unavailable(exc: Exception, **context: Any) -> ErrorAnswer:
    """The one 503 for a storage failure: the details (which may name hosts, keys or server paths) go to
    the log, the client gets a stable message."""
    where = {"path": request.path} if request else {}
    _log.warning(logkv(event="storage_unavailable", **where, **context, error=str(exc)))
    return ErrorAnswer(503, "storage_unavailable", "storage is unavailable; try again later")
