"""/healthz (the process answers) and /readyz (database, broker, storage work; a worker beat lately)."""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable

from flask import Blueprint, jsonify
from flask.wrappers import Response

from humanseg.core.db import ping
from humanseg.core.heartbeat import require_worker
from humanseg.core.layout import probe_key
from humanseg.core.logfmt import logkv
from humanseg.core.queue import ping_broker
from humanseg.core.storage import Storage
from humanseg.web.services import services

log = logging.getLogger(__name__)

bp = Blueprint("health", __name__)

PROBE_BYTES = b"humanseg readiness probe\n"


@bp.get("/healthz")
def healthz() -> Response:
    """The process is alive."""
    return jsonify({"status": "ok"})


def probe_storage(storage: Storage) -> None:
    """Write, read back and delete one small object; raise when any step fails.

    Each probe has its own key: probes running at once never see each other's object.
    """
    key = probe_key(secrets.token_hex(8))
    storage.put(key, PROBE_BYTES, "text/plain")
    try:
        if storage.get(key) != PROBE_BYTES:
            raise OSError("storage returned other bytes than were written")
    finally:
        storage.delete(key)


def _check(name: str, run: Callable[[], None]) -> str:
    """'ok', or a generic 'error: unavailable'; the detail goes to the log, never to the client."""
    try:
        run()
    except Exception as exc:  # noqa: BLE001 - any failure of a dependency means "not ready"
        log.warning(logkv(event="not_ready", check=name, error=type(exc).__name__, detail=str(exc)))
        return "error: unavailable"
    return "ok"


@bp.get("/readyz")
def readyz():
    """Ready when the database answers, the broker answers PING, storage takes a write and a
    worker beat within worker_stale_seconds (a stack without workers takes jobs it never runs)."""
    svc = services()
    checks = {
        "database": _check("database", lambda: ping(svc.engine)),
        "broker": _check("broker", lambda: ping_broker(svc.settings.broker_url)),
        "storage": _check("storage", lambda: probe_storage(svc.storage)),
        "worker": _check("worker", lambda: require_worker(svc.settings)),
    }
    ok = all(v == "ok" for v in checks.values())
    return jsonify({"status": "ok" if ok else "unavailable", "checks": checks}), 200 if ok else 503
