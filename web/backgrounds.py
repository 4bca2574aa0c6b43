"""Uploaded background images for cut-outs: POST one, then ask for `bg=image:<id>`."""

from __future__ import annotations

import logging
from typing import Any

from flask import Blueprint, jsonify, redirect, request, url_for
from flask.wrappers import Response
from werkzeug.datastructures import FileStorage

from humanseg.core.errors import ImageError, ObjectNotFound, StorageError
from humanseg.core.images import FORMATS, ImageInfo, Limits, sniff, validate
from humanseg.core.layout import background_key
from humanseg.core.logfmt import logkv
from humanseg.core.models import is_public_id, new_id
from humanseg.web.errors import IMAGE_ERROR_STATUS, ErrorAnswer, storage_unavailable
from humanseg.web.offload import off_loop
from humanseg.web.services import Services, services

log = logging.getLogger(__name__)

bp = Blueprint("backgrounds", __name__)

def store_background(part: FileStorage | None, svc: Services) -> tuple[str, ImageInfo]:
    """Validate one uploaded image like a photo upload and store it; returns (id, info)."""
    if part is None or not part.filename:
        raise ErrorAnswer(400, "no_files", "send one image in the multipart field 'image'")
    settings = svc.settings
    data = part.stream.read(settings.max_file_bytes + 1)  # one byte past the limit tells 'too large'
    name = part.filename or "background"
    try:
        # Decoded in gevent's thread pool, as uploads are: the loop keeps serving meanwhile.
        info = off_loop(validate, data, Limits(max_file_bytes=settings.max_file_bytes,
                                               max_pixels=settings.max_pixels))
    except ImageError as exc:  # the same answers as for uploads: the client learns one set of codes
        raise ErrorAnswer(IMAGE_ERROR_STATUS.get(exc.code, 400), exc.code, f"{name}: {exc.message}",
                       file=name) from exc
    background_id = new_id()
    try:
        svc.storage.put(background_key(background_id), data, info.content_type)
    except StorageError as exc:
        raise storage_unavailable(exc) from exc
    log.info(logkv(event="background_stored", background_id=background_id, bytes=info.bytes))
    return background_id, info


def background_json(background_id: str, info: ImageInfo | None = None) -> dict:
    """The public representation of a background image."""
    body: dict[str, Any] = {"id": background_id, "bg": f"image:{background_id}",
            "url": url_for("backgrounds.get_background", background_id=background_id)}
    if info is not None:
        body.update(content_type=info.content_type, width=info.width, height=info.height,
                    bytes=info.bytes)
    return body


def _existing(background_id: str, svc: Services) -> str:
    key = background_key(background_id) if is_public_id(background_id) else None
    try:
        if key and svc.storage.exists(key):
            return key
    except StorageError as exc:
        raise storage_unavailable(exc) from exc
    raise ErrorAnswer(404, "background_not_found", f"no background image with id {background_id}")


@bp.post("/api/v1/backgrounds")
def create_background() -> tuple[Response, int, dict[str, str]]:
    """Store one background image (multipart field `image`); 201 with its id."""
    parts = request.files.getlist("image")
    if len(parts) > 1:
        raise ErrorAnswer(400, "too_many_files", "send exactly one image in the multipart field 'image'")
    background_id, info = store_background(parts[0] if parts else None, services())
    body = background_json(background_id, info)
    return jsonify(body), 201, {"Location": body["url"]}


@bp.get("/api/v1/backgrounds/<background_id>")
def get_background(background_id: str):
    """The stored background image (302 to a presigned URL on S3)."""
    svc = services()
    key = _existing(background_id, svc)
    url = svc.storage.url(key)
    if url:
        return redirect(url, code=302)
    try:
        data = svc.storage.get(key)
    except ObjectNotFound as exc:
        raise ErrorAnswer(404, "background_not_found", f"no background image with id {background_id}") from exc
    except StorageError as exc:
        raise storage_unavailable(exc) from exc
    content_type = FORMATS.get(sniff(data[:16]) or "", ("application/octet-stream",))[0]
    return Response(data, mimetype=content_type, headers={"Cache-Control": "private, max-age=3600"})


@bp.delete("/api/v1/backgrounds/<background_id>")
def delete_background(background_id: str) -> Response:
    """Forget a background image; variants already made with it stay until their job goes."""
    svc = services()
    key = _existing(background_id, svc)
    try:
        svc.storage.delete(key)
    except StorageError as exc:
        raise storage_unavailable(exc) from exc
    return jsonify({"deleted": {"background_id": background_id}})
