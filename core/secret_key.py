"""The web tier's secret key: the configured one, else one kept in <data_dir>/secret_key."""

from __future__ import annotations

import os
import secrets

from humanseg.core.settings import Settings


def ensure_secret_key(settings: Settings) -> str:
    """The configured secret, else the one in <data_dir>/secret_key (created on first use)."""
    if settings.secret_key:
        return settings.secret_key
    path = settings.data_dir / "secret_key"
    if path.exists():
        return path.read_text().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(secrets.token_hex(32))
    os.chmod(tmp, 0o600)
    # Atomic rename: a process reading concurrently sees no file or a whole key.
    os.replace(tmp, path)
    return path.read_text().strip()
