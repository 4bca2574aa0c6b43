"""Settings: one frozen object built from HUMANSEG_* environment variables.

Each field is declared once, with its default and the parser of its env var;
the env var's name is always HUMANSEG_ plus the field name in capitals.
Building settings reads the environment and nothing else (no files, no network).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from humanseg.core.errors import ConfigError

PREFIX = "HUMANSEG_"
MiB = 1024 * 1024

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


# Parsers raise ValueError; its message (or this table, for builtins) says what was expected.
_EXPECTED = {int: "an integer", float: "a number"}


def _bool(raw: str) -> bool:
    value = raw.lower()
    if value not in _TRUE | _FALSE:
        raise ValueError("one of 1/0, true/false, yes/no, on/off")
    return value in _TRUE


def _at_least_one(raw: str) -> int:
    try:
        # A job with 0 attempts (or 0 webhook attempts) would never run.
        return max(1, int(raw))
    except ValueError:
        raise ValueError("an integer") from None


def _processes(raw: str) -> int:
    try:
        return max(0, int(raw))  # 0 (or less): one process per core, see effective_concurrency
    except ValueError:
        raise ValueError("an integer") from None


def usable_cores() -> int:
    """CPUs this process may run on (its affinity mask where the OS has one, e.g. a cpuset)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0)) or 1
    return os.cpu_count() or 1


# Automatic worker processes stop here: each holds a model and, for a 40 MP photo, a few
# hundred MB of maps; set HUMANSEG_WORKER_CONCURRENCY for more.
AUTO_CONCURRENCY_MAX = 4


def _storage(raw: str) -> str:
    value = raw.lower()
    if value not in ("local", "s3"):
        raise ValueError("'local' or 's3'")
    return value


def _upper(raw: str) -> str:
    return raw.upper()


def _names(raw: str) -> tuple[str, ...]:
    # Comma- or space-separated, compared case-insensitively (host names).
    return tuple(name.lower() for name in raw.replace(",", " ").split())


def setting(default: Any, parse: Callable[[str], Any] = str, **kwargs: Any) -> Any:
    """A Settings field: its default and how its env var's text is parsed."""
    return field(default=default, metadata={"parse": parse}, **kwargs)


def env_name(field_name: str) -> str:
    """The environment variable that sets a field."""
    return PREFIX + field_name.upper()


@dataclass(frozen=True)
class Settings:
    """All runtime configuration; build with Settings.from_env()."""

    # setting() returns a dataclasses.field; ruff only knows that for fields of immutable types.
    data_dir: Path = setting(Path("var"), Path)  # noqa: RUF009
    database_url: str = setting("")  # empty: SQLite at <data_dir>/humanseg.db
    broker_url: str = setting("")  # empty: `humanseg up` starts an embedded Valkey
    storage: str = setting("local", _storage)
    storage_dir: Path | None = setting(None, Path)  # noqa: RUF009 - None: <data_dir>/storage
    s3_bucket: str = setting("humanseg")
    s3_endpoint_url: str = setting("")
    s3_region: str = setting("us-east-1")
    s3_prefix: str = setting("")
    s3_public_url: str = setting("")  # links: "" = the endpoint's, a URL = that address, none = web streams
    model_path: str = setting("")  # empty: the shipped ml/weights
    model_backend: str = setting("auto")
    threads: int = setting(0, int)  # 0: cores // worker processes
    # Worker processes; 0: one per core (at most AUTO_CONCURRENCY_MAX), each with one model
    # thread: a process's decode, render, storage and database work is single-threaded, so
    # one process with several model threads leaves cores idle between model calls.
    worker_concurrency: int = setting(0, _processes)
    # CPU priority of worker processes (nice, 0-19; 0 leaves it): where the web tier shares the
    # cores, its short answers (job polls, health checks) win the CPU from the long model
    # calls. It costs the batch nothing on a machine of its own (nice only orders who waits).
    worker_nice: int = setting(5, int)
    max_files: int = setting(500, int)
    max_file_bytes: int = setting(25 * MiB, int)
    max_pixels: int = setting(40_000_000, int)
    max_request_bytes: int = setting(1024 * MiB, int)
    # The work one request may buy: its images' pixels added up (each is decoded and rendered).
    max_request_pixels: int = setting(1_000_000_000, int)
    # A request body must arrive within body_timeout_seconds, plus one second for every
    # body_min_rate bytes received: a client trickling slower than that is cut off.
    body_timeout_seconds: float = setting(30.0, float)
    body_min_rate: int = setting(8192, int)
    segment_wait_seconds: float = setting(30.0, float)
    lease_seconds: int = setting(300, int)
    max_attempts: int = setting(3, _at_least_one)
    host: str = setting("127.0.0.1")
    port: int = setting(8000, int)
    secret_key: str = setting("", repr=False)  # empty: see core.secret_key
    log_level: str = setting("INFO", _upper)
    queue: str = setting("humanseg")
    stale_queued_seconds: int = setting(600, int)
    # An original in storage with no job this long after it was written is removed by the sweeper
    # (a web process killed mid-upload leaves such files; uploads in flight are younger).
    orphan_grace_seconds: int = setting(3600, int)
    sweeper: bool = setting(True, _bool)  # each worker runs the sweep loop in a thread
    # Host header names the web tier answers (a port is ignored; ".example.com" adds subdomains;
    # "*" any): refusing other names stops DNS rebinding.
    allowed_hosts: tuple[str, ...] = setting(("localhost", "127.0.0.1", "[::1]"), _names)
    segment_wait_slots: int = setting(4, int)  # per web process: requests waiting for results
    secure_cookies: bool = setting(False, _bool)  # session cookie Secure even on plain http
    # Every API call and page needs an API key (`humanseg keys create`). Always on when the
    # web tier listens beyond loopback (host, or a gunicorn --bind): see web/auth.py.
    require_api_keys: bool = setting(False, _bool)
    # Per API key, counted in the broker's Redis (shared by all web processes); 0: no limit.
    # A key's own limits (`humanseg keys create --requests-per-minute/--images-per-day`) win.
    rate_limit_per_minute: int = setting(300, int)
    images_per_day: int = setting(5000, int)
    # Jobs (records, originals, results) older than this are deleted by the sweeper; 0: kept.
    retention_days: float = setting(0.0, float)
    # /readyz wants a worker heartbeat (worker/heartbeat.py) younger than this.
    worker_stale_seconds: int = setting(60, int)
    # Each worker serves Prometheus metrics on this port (0: none); the web tier's are at /metrics.
    worker_metrics_port: int = setting(0, int)
    # Workers send Celery task events (Flower's task list needs them); off costs nothing.
    task_events: bool = setting(False, _bool)
    # Webhooks (core/webhooks.py): each worker runs the delivery loop in a thread when on.
    webhooks: bool = setting(True, _bool)
    # Hosts (names, IPs or CIDRs) a callback may reach although they are private, loopback or
    # link-local; empty: none (SSRF guard: a webhook cannot probe the server's own network).
    webhook_allow_hosts: tuple[str, ...] = setting((), _names)
    webhook_retry_seconds: float = setting(10.0, float)  # first backoff; x4 per failed attempt
    webhook_max_attempts: int = setting(8, _at_least_one)

    def __post_init__(self) -> None:
        # Defaults that follow data_dir; frozen, hence object.__setattr__.
        if not self.database_url:
            object.__setattr__(self, "database_url", f"sqlite:///{self.data_dir / 'humanseg.db'}")
        if self.storage_dir is None:
            object.__setattr__(self, "storage_dir", self.data_dir / "storage")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Build settings from the environment (os.environ when None); unset or empty means default."""
        env = os.environ if environ is None else environ
        values = {}
        for f in fields(cls):
            name = env_name(f.name)
            raw = (env.get(name) or "").strip()
            if not raw:
                continue
            parse = f.metadata["parse"]
            try:
                values[f.name] = parse(raw)
            except ValueError as exc:
                expected = _EXPECTED.get(parse) or str(exc)
                raise ConfigError(f"{name} must be {expected}, got {raw!r}") from exc
        return cls(**values)

    def with_(self, **changes: object) -> Settings:
        """Return a copy with some fields changed (handy in tests)."""
        return replace(self, **changes)

    def effective_concurrency(self, cores: int | None = None) -> int:
        """Worker processes: the setting, or one per core (at most AUTO_CONCURRENCY_MAX) when 0."""
        if self.worker_concurrency > 0:
            return self.worker_concurrency
        return max(1, min(cores or usable_cores(), AUTO_CONCURRENCY_MAX))

    def effective_threads(self, cores: int | None = None) -> int:
        """Threads per model process so that processes x threads <= cores."""
        if self.threads > 0:
            return self.threads
        cores = cores or usable_cores()
        return max(1, cores // self.effective_concurrency(cores))
