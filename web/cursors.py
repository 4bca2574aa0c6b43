"""Keyset paging, newest first: opaque cursors of (time, id) for the API's lists and the pages."""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Select
from sqlalchemy.orm import Session

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


@dataclass(frozen=True)
class Page:
    """One page of a newest-first list: its rows, the cursor of the next page (None: the last
    page), and whether the cursor asked for was malformed (then this is the first page)."""

    rows: list[Any]
    next_cursor: str | None
    bad_cursor: bool


def newest_first(session: Session, query: Select, time_col, id_col, cursor: str, size: int) -> Page:
    """Up to `size` rows of `query` after `cursor`, newest first by (time_col, id_col): one SELECT
    of size + 1 rows tells whether a next page exists."""
    query, bad = after_cursor(query.order_by(time_col.desc(), id_col.desc()).limit(size + 1),
                              time_col, id_col, cursor)
    found = list(session.scalars(query))
    rows = found[:size]
    last = rows[-1] if len(found) > size else None
    return Page(rows, encode_cursor(getattr(last, time_col.key), last.id) if last else None, bad)
