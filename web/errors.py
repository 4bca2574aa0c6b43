"""JSON errors for the API: {"error": {"code", "message", "file"?, "files"?}}."""

from __future__ import annotations

from typing import Any

from flask import jsonify
from flask.wrappers import Response


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


def error_response(status: int, code: str, message: str) -> Response:
    """Shortcut for a bare JSON error."""
    return ApiError(status, code, message).response()
