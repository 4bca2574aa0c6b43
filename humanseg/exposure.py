"""Refuse a known secret where strangers can reach the server; warn loudly where they cannot."""

from __future__ import annotations

import ipaddress
import re

from humanseg.core.settings import Settings

# .env.example ships HUMANSEG_SECRET_KEY=change-me-to-a-long-random-string; anyone who has read
# it can sign session cookies (and so CSRF tokens) for a server that kept it.
_PLACEHOLDER = re.compile(r"change[-_ ]?me", re.IGNORECASE)
HOW_TO = 'set one: python -c "import secrets; print(secrets.token_hex(32))"'


class ExposedSecret(RuntimeError):
    """The placeholder secret on a server that listens beyond loopback."""


def is_loopback(host: str) -> bool:
    """True for 127.0.0.0/8, ::1 and localhost; False for 0.0.0.0, :: and every other address."""
    host = host.strip("[]")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a host name: it may resolve to anything


def check_secret(settings: Settings, hosts: list[str]) -> str | None:
    """None if the secret is not the placeholder; a warning if every host is loopback.

    Raises ExposedSecret when the placeholder would guard a server bound to another address.
    """
    if not _PLACEHOLDER.search(settings.secret_key):
        return None
    exposed = [h for h in hosts if not is_loopback(h)]
    if exposed:
        raise ExposedSecret(
            f"HUMANSEG_SECRET_KEY is the placeholder from .env.example and the server would listen "
            f"on {', '.join(exposed)}: refusing to start; {HOW_TO}")
    return ("WARNING: HUMANSEG_SECRET_KEY is the placeholder from .env.example: anyone can forge "
            "this server's cookies. Tolerated only because it listens on loopback; " + HOW_TO)
