"""off_loop: CPU-heavy work (decoding an upload, rendering a variant) off gevent's event loop."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")


def off_loop(fn: Callable[..., T], *args: Any) -> T:
    """fn(*args) in gevent's thread pool when gevent runs this server (PIL releases the GIL, so the
    loop keeps serving other requests meanwhile); here, directly, otherwise."""
    monkey = sys.modules.get("gevent.monkey")
    if monkey is None or not monkey.is_module_patched("threading"):
        return fn(*args)
    import gevent

    # Exceptions come back as values: raised inside the pool, gevent's hub prints each one's whole
    # traceback to the console (every rejected upload did) before handing it over.
    ok, value = gevent.get_hub().threadpool.apply(_outcome, (fn, *args))
    if not ok:
        raise value
    return value


def _outcome(fn: Callable[..., Any], *args: Any) -> tuple[bool, Any]:
    try:
        return True, fn(*args)
    except Exception as exc:  # noqa: BLE001 - handed back to the caller, which raises it
        return False, exc
