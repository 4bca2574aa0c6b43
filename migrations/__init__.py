"""Alembic migrations (package so that they ship in the wheel)."""
