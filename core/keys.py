"""API keys: made once and shown once; only their sha256 is stored."""

from __future__ import annotations

import hashlib
import secrets

from sqlalchemy import select
from sqlalchemy.orm import Session

from humanseg.core.models import ApiKey, is_public_id, utcnow

KEY_PREFIX = "hsk_"  # makes a leaked key easy to spot (secret scanners, logs)
SHOWN_CHARS = 12  # of the key, kept in clear to tell keys apart in listings


class KeyNotFound(LookupError):
    """No key has that id or name."""


def hash_key(key: str) -> str:
    """The stored form of a key; a fast hash suffices for 256 random bits."""
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()


def create_key(session: Session, name: str, *, admin: bool = False,
               requests_per_minute: int | None = None,
               images_per_day: int | None = None) -> tuple[ApiKey, str]:
    """Add a key; returns its row and the key itself (never stored, so shown only now)."""
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    row = ApiKey(name=name[:100], prefix=key[:SHOWN_CHARS], key_hash=hash_key(key), admin=admin,
                 requests_per_minute=requests_per_minute, images_per_day=images_per_day)
    session.add(row)
    session.flush()
    return row, key


def find_key(session: Session, key: str) -> ApiKey | None:
    """The active (not revoked) key row for a key as sent by a client; None when unknown."""
    if not key.startswith(KEY_PREFIX) or len(key) > 200:
        return None
    row = session.scalar(select(ApiKey).where(ApiKey.key_hash == hash_key(key)))
    return row if row is not None and row.revoked_at is None else None


def active_key(session: Session, key_id: str) -> ApiKey | None:
    """The key with this id unless revoked (a signed-in page session names its key by id)."""
    row = session.get(ApiKey, key_id) if is_public_id(key_id) else None
    return row if row is not None and row.revoked_at is None else None


def list_keys(session: Session) -> list[ApiKey]:
    """Every key, revoked ones included, oldest first."""
    return list(session.scalars(select(ApiKey).order_by(ApiKey.created_at, ApiKey.id)))


def revoke_key(session: Session, id_or_name: str) -> list[ApiKey]:
    """Revoke the key with this id, or every active key with this name; KeyNotFound when none."""
    rows = [row] if is_public_id(id_or_name) and (row := session.get(ApiKey, id_or_name)) else []
    if not rows:
        rows = list(session.scalars(select(ApiKey).where(ApiKey.name == id_or_name,
                                                         ApiKey.revoked_at.is_(None))))
    if not rows:
        raise KeyNotFound(id_or_name)
    for row in rows:
        row.revoked_at = row.revoked_at or utcnow()
    return rows
