"""Idempotency-Key on job creation: the same key and body answers the first answer again.

Keys are per API key (web/auth.py). The key is reserved (a row without an answer) before the view
runs, so two concurrent requests with one key never both create jobs: the second gets 409 until the
first is done.
Only successful (2xx) answers are kept; after an error the key is free to be sent again.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from flask import make_response, request
from flask.wrappers import Response
from sqlalchemy import delete
from sqlalchemy.exc import IntegrityError

from humanseg.core.db import session_scope
from humanseg.core.logfmt import logkv
from humanseg.core.models import IdempotencyKey, utcnow
from humanseg.web.errors import ErrorAnswer
from humanseg.web.principal import owner_id
from humanseg.web.services import services

log = logging.getLogger(__name__)

HEADER = "Idempotency-Key"
REPLAYED = "Idempotent-Replayed"
KEPT = timedelta(hours=24)  # how long a key is remembered (as Stripe's and the IETF draft's)
MAX_KEY_CHARS = 200  # stored with the owner's key id in front (a 255-character column)
KEPT_HEADERS = ("Location", "Preference-Applied")
_CHUNK = 1 << 16


def fingerprint() -> str:
    """sha256 of what the request asks for: path, form fields and every file's name and bytes."""
    digest = hashlib.sha256(request.path.encode())
    # Keyed on text: a WSGI caller (werkzeug's test client) can hand a field's name or value over as None.
    for name, value in sorted(request.form.items(multi=True), key=lambda item: (str(item[0]), str(item[1]))):
        digest.update(json.dumps(["field", name, value]).encode())
    for name, part in sorted(request.files.items(multi=True), key=lambda item: item[0]):
        digest.update(json.dumps(["file", name, part.filename or ""]).encode())
        part.stream.seek(0)
        while chunk := part.stream.read(_CHUNK):
            digest.update(chunk)
        part.stream.seek(0)  # the upload path reads it again
    return digest.hexdigest()


def _key() -> str | None:
    key = request.headers.get(HEADER)
    if key is None:
        return None
    key = key.strip()
    if not key or len(key) > MAX_KEY_CHARS or not key.isascii() or not key.isprintable():
        raise ErrorAnswer(400, "bad_idempotency_key",
                       f"{HEADER} must be 1 to {MAX_KEY_CHARS} printable ASCII characters")
    # Keys are per client: one API key's key never answers with another's jobs.
    return f"{owner_id() or '-'}:{key}"


def _reserve(key: str, request_hash: str) -> IdempotencyKey | None:
    """Reserve the key; None when reserved now, else the row a request before this one left."""
    sessions = services().sessions
    with session_scope(sessions) as session:
        # Forgotten keys go first, so an old key is free again (the index makes this cheap).
        session.execute(delete(IdempotencyKey).where(IdempotencyKey.created_at < utcnow() - KEPT))
    try:
        with session_scope(sessions) as session:
            session.add(IdempotencyKey(key=key, request_hash=request_hash))
        return None
    except IntegrityError:
        with session_scope(sessions) as session:
            found = session.get(IdempotencyKey, key)
        if found is None:  # released meanwhile by a request that failed: try once more
            return _reserve(key, request_hash)
        return found


def _release(key: str) -> None:
    with session_scope(services().sessions) as session:
        session.execute(delete(IdempotencyKey).where(IdempotencyKey.key == key,
                                                     IdempotencyKey.status_code.is_(None)))


def _keep(key: str, resp: Response) -> None:
    headers = {h: resp.headers[h] for h in KEPT_HEADERS if h in resp.headers}
    stored = json.dumps({"body": resp.get_data(as_text=True), "headers": headers})
    with session_scope(services().sessions) as session:
        row = session.get(IdempotencyKey, key)
        assert row is not None  # reserved by this request (_reserve), released only if it fails
        row.status_code, row.response = resp.status_code, stored


def _replay(row: IdempotencyKey) -> Response:
    stored = json.loads(row.response or "{}")
    resp = Response(stored.get("body", ""), status=row.status_code, mimetype="application/json")
    resp.headers.update(stored.get("headers", {}))
    resp.headers[REPLAYED] = "true"
    return resp


def idempotent(view: Callable[..., Any]) -> Callable[..., Any]:
    """Decorate a creating view: honour Idempotency-Key (replay, 409 in progress, 422 reused)."""

    @functools.wraps(view)
    def wrapper(*args: Any, **kwargs: Any):
        key = _key()
        if key is None:
            return view(*args, **kwargs)
        request_hash = fingerprint()
        found = _reserve(key, request_hash)
        if found is not None:
            if found.request_hash != request_hash:
                raise ErrorAnswer(422, "idempotency_key_reused",
                               f"this {HEADER} was sent before with a different request")
            if found.status_code is None:
                raise ErrorAnswer(409, "idempotency_key_in_progress",
                               f"a request with this {HEADER} is still in progress; retry shortly")
            log.info(logkv(event="idempotent_replay", status=found.status_code))
            return _replay(found)
        try:
            resp = make_response(view(*args, **kwargs))
        except BaseException:
            _release(key)
            raise
        if 200 <= resp.status_code < 300:
            _keep(key, resp)
        else:
            _release(key)
        return resp

    return wrapper
