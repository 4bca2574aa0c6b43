"""How errors are answered: JSON {"error": {...}} on API paths, the error page on HTML ones."""

from __future__ import annotations

from typing import Any

from flask import Flask, jsonify, render_template, request
from flask.wrappers import Response
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge


class ApiError(Exception):
    """An error the API answers with a JSON body and an HTTP status."""

    def __init__(self, status: int, code: str, message: str, *, file: str | None = None,
                 files: list[dict[str, str]] | None = None, extra: dict[str, Any] | None = None):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.file = file
        self.files = files
        self.extra = extra or {}

    def response(self) -> Response:
        """The Flask response for this error."""
        body: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.file is not None:
            body["file"] = self.file
        if self.files is not None:
            body["files"] = self.files
        body.update(self.extra)
        resp = jsonify({"error": body})
        resp.status_code = self.status
        return resp


class RecordNotFound(ApiError):
    """A job or batch that does not exist: a JSON 404 for the API, the error page for people."""

    def __init__(self, code: str, message: str, *, title: str, page_message: str):
        super().__init__(404, code, message)
        self.title = title
        self.page_message = page_message


def error_response(status: int, code: str, message: str) -> Response:
    """Shortcut for a bare JSON error."""
    return ApiError(status, code, message).response()


def error_page(status: int, title: str, message: str) -> tuple[str, int]:
    """A friendly HTML error page."""
    return render_template("gallery/error.html", title=title, message=message), status


def is_api_path() -> bool:
    """True when the current request is for the JSON API (or the health checks)."""
    return request.path.startswith("/api/") or request.path in ("/healthz", "/readyz")


def register_error_handlers(app: Flask) -> None:
    """JSON errors for API paths; HTML pages keep Flask's defaults except for unknown ids."""

    @app.errorhandler(ApiError)
    def _api_error(exc: ApiError) -> Response:
        return exc.response()

    @app.errorhandler(RecordNotFound)
    def _not_found(exc: RecordNotFound):
        return exc.response() if is_api_path() else error_page(404, exc.title, exc.page_message)

    @app.errorhandler(RequestEntityTooLarge)
    def _too_large(exc: RequestEntityTooLarge):
        if not is_api_path():
            return exc
        limit = app.config["MAX_CONTENT_LENGTH"]
        return error_response(413, "request_too_large", f"the request body exceeds {limit} bytes")

    @app.errorhandler(HTTPException)
    def _http(exc: HTTPException):
        if not is_api_path():
            return exc
        code = (exc.name or "error").lower().replace(" ", "_")
        return error_response(exc.code or 500, code, exc.description or exc.name)
