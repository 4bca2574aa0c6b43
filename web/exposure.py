"""Is the server reachable beyond loopback? The one answer, and what follows from it.

Bound beyond loopback (a wildcard, another address or a host name), a server needs API keys on
every request and must not run with .env.example's placeholder secret. `humanseg up` and the
app ask about the configured host; gunicorn hands each worker's app the addresses it really bound
(web/gunicorn_conf.py), which may differ when --bind does, and the app decides once from both.
"""

from __future__ import annotations

import functools
import ipaddress
import re
from collections.abc import Iterable

from humanseg.core.settings import Settings

# Binds that listen on every address: never loopback, and no name of their own.
WILDCARD_BINDS = frozenset({"", "0.0.0.0", "::", "[::]"})
# .env.example ships HUMANSEG_SECRET_KEY=change-me-to-a-long-random-string; anyone who has read
# it can sign session cookies (and so CSRF tokens) for a server that kept it.
_PLACEHOLDER = re.compile(r"change[-_ ]?me", re.IGNORECASE)
HOW_TO = 'set one: python -c "import secrets; print(secrets.token_hex(32))"'


class ExposedSecret(RuntimeError):
    """The placeholder secret on a server that listens beyond loopback."""


def is_wildcard(host: str) -> bool:
    """True for a bind on every address ("", 0.0.0.0, ::)."""
    return host.strip().lower() in WILDCARD_BINDS


@functools.lru_cache(maxsize=64)  # asked of the same few addresses
def is_loopback(host: str) -> bool:
    """True for 127.0.0.0/8, ::1 and localhost; False for wildcards, other addresses and names
    (a host name may resolve to anything)."""
    host = host.strip().strip("[]").lower()
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def exposed(hosts: Iterable[str]) -> list[str]:
    """The hosts others can reach: every one that is not loopback."""
    return [h for h in hosts if not is_loopback(h)]


def keys_required(settings: Settings, hosts: Iterable[str] | None = None) -> bool:
    """True when every request needs a key: the setting, or a bind others can reach (`hosts`:
    the addresses really bound; the configured host when None)."""
    return settings.require_api_keys or bool(exposed([settings.host] if hosts is None else hosts))


def check_secret(settings: Settings, hosts: list[str]) -> str | None:
    """None if the secret is not the placeholder; a warning if every host is loopback.

    Raises ExposedSecret when the placeholder would guard a server bound to another address.
    """
    if not _PLACEHOLDER.search(settings.secret_key):
        return None
    reachable = exposed(hosts)
    if reachable:
        raise ExposedSecret(
            f"HUMANSEG_SECRET_KEY is the placeholder from .env.example and the server would listen "
            f"on {', '.join(reachable)}: refusing to start; {HOW_TO}")
    return ("WARNING: HUMANSEG_SECRET_KEY is the placeholder from .env.example: anyone can forge "
            "this server's cookies. Tolerated only because it listens on loopback; " + HOW_TO)
