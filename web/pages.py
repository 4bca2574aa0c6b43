"""Helpers shared by the HTML pages and the archive: gallery cursors, colours, safe names."""

from __future__ import annotations

import base64
import binascii
import re
import unicodedata
from datetime import datetime

from humanseg.core.models import is_public_id

HEX_COLOUR = re.compile(r"^#[0-9a-fA-F]{6}$")


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


def parse_colour(value: str | None, default: str = "#ffffff") -> str:
    """A #rrggbb colour, lower-case; the default when missing or malformed."""
    value = (value or "").strip()
    return value.lower() if HEX_COLOUR.match(value) else default


def safe_stem(filename: str, fallback: str = "image") -> str:
    """A filesystem- and zip-safe base name (no extension) from a client filename."""
    name = unicodedata.normalize("NFC", filename or "")
    name = name.replace("\\", "/").rsplit("/", 1)[-1]        # drop any client path
    name = re.sub(r"\.(jpe?g|png|webp)$", "", name, flags=re.IGNORECASE)
    name = "".join(ch for ch in name if unicodedata.category(ch)[0] != "C")
    name = re.sub(r"[^\w\-. ]+", "_", name)                    # keep letters, digits, - _ . space
    name = re.sub(r"\s+", " ", name).strip(" ._")
    name = name[:100].strip(" ._")
    return name or fallback


def unique_name(stem: str, taken: set[str]) -> str:
    """stem, or stem-2, stem-3 … whichever is free (case-insensitively); records it."""
    candidate, n = stem, 1
    while candidate.lower() in taken:
        n += 1
        candidate = f"{stem}-{n}"
    taken.add(candidate.lower())
    return candidate


def attachment(filename: str) -> str:
    """Content-Disposition value for a download, ASCII fallback plus RFC 5987 UTF-8 name."""
    from urllib.parse import quote

    ascii_name = filename.encode("ascii", "replace").decode().replace("?", "_").replace('"', "_")
    return f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(filename)}"
