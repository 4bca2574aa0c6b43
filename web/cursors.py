"""Keyset paging, newest first: opaque cursors of (time, id) for the API's lists and the pages."""

from __future__ import annotations

import base64
import binascii
from datetime import datetime

from humanseg.core.models import is_public_id


def encode_cursor(finished_at: datetime, job_id: str) -> str:
    """Opaque keyset cursor for (finished_at, id)."""
    raw = f"{finished_at.isoformat()}|{job_id}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    """Inverse of encode_cursor; ValueError when malformed."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        stamp, job_id = raw.split("|", 1)
        when = datetime.fromisoformat(stamp)
    except (binascii.Error, UnicodeDecodeError, ValueError) as exc:
        raise ValueError("bad cursor") from exc
    if when.tzinfo is None or not is_public_id(job_id):
        raise ValueError("bad cursor")
    return when, job_id


def after_cursor(query, time_col, id_col, cursor: str):
    """Keyset paging, newest first: (query limited to rows after the cursor's (time, id), cursor_was_bad)."""
    from sqlalchemy import and_, or_

    if not cursor:
        return query, False
    try:
        when, last_id = decode_cursor(cursor)
    except ValueError:
        return query, True
    return query.where(or_(time_col < when, and_(time_col == when, id_col < last_id))), False
