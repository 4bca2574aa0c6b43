"""Who a request acts as (the Principal, set by web/auth.py) and what it may see (query scopes).

A key sees and deletes only the batches it made; an admin key, or an anonymous request on a
server that needs no keys, sees all.
"""

from __future__ import annotations

from dataclasses import dataclass

from flask import g, has_request_context
from sqlalchemy import Row, select
from sqlalchemy.sql import ColumnElement

from humanseg.core.models import ApiKey, Batch, Job


@dataclass(frozen=True)
class Principal:
    """The API key a request acts as."""

    key_id: str
    name: str
    admin: bool
    requests_per_minute: int | None
    images_per_day: int | None

    @classmethod
    def of(cls, row: ApiKey | Row) -> Principal:
        """The principal of a key: its ORM row or its columns from a Core SELECT."""
        return cls(row.id, row.name, row.admin, row.requests_per_minute, row.images_per_day)


def principal() -> Principal | None:
    """The key the current request acts as; None when anonymous (or outside a request)."""
    return g.get("principal") if has_request_context() else None


def owner_id() -> str | None:
    """The key id a batch made now belongs to (None: anonymous)."""
    who = principal()
    return who.key_id if who else None


def sees_everything() -> bool:
    """True when the current request may see every batch (no keys in use, or an admin key)."""
    who = principal()
    return who is None or who.admin


def may_see(owner_key_id: str | None) -> bool:
    """True when the current request may see a batch with this owner."""
    who = principal()
    return who is None or who.admin or owner_key_id == who.key_id


def batch_scope() -> list[ColumnElement[bool]]:
    """WHERE conditions on Batch limiting a query to what the current request may see."""
    who = principal()
    return [] if who is None or who.admin else [Batch.owner_key_id == who.key_id]


def job_scope() -> list[ColumnElement[bool]]:
    """WHERE conditions on Job limiting a query to the jobs of batches the request may see."""
    who = principal()
    if who is None or who.admin:  # sees_everything()
        return []
    mine = select(Batch.id).where(Batch.owner_key_id == who.key_id)
    return [Job.batch_id.in_(mine)]
