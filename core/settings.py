"""Settings: one frozen object built from HUMANSEG_* environment variables."""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

from humanseg.core.errors import ConfigError

PREFIX = "HUMANSEG_"
MiB = 1024 * 1024


def _number(env: Mapping[str, str], name: str, default, kind, what: str):
    raw = env.get(PREFIX + name, "").strip()
    if not raw:
        return default
    try:
        return kind(raw)
    except ValueError as exc:
        raise ConfigError(f"{PREFIX}{name} must be {what}, got {raw!r}") from exc


def _int(env: Mapping[str, str], name: str, default: int) -> int:
    return _number(env, name, default, int, "an integer")


def _float(env: Mapping[str, str], name: str, default: float) -> float:
    return _number(env, name, default, float, "a number")


def _str(env: Mapping[str, str], name: str, default: str = "") -> str:
    raw = env.get(PREFIX + name, "").strip()
    return raw or default


@dataclass(frozen=True)
class Settings:
    """All runtime configuration; build with Settings.from_env()."""

    data_dir: Path = Path("var")
    database_url: str = ""
    broker_url: str = ""
    storage: str = "local"
    storage_dir: Path = Path("var/storage")
    s3_bucket: str = "humanseg"
    s3_endpoint_url: str = ""
    s3_region: str = "us-east-1"
    s3_prefix: str = ""
    model_path: str = ""
    model_backend: str = "auto"
    threads: int = 0
    worker_concurrency: int = 1
    max_files: int = 500
    max_file_bytes: int = 25 * MiB
    max_pixels: int = 40_000_000
    max_request_bytes: int = 1024 * MiB
    segment_wait_seconds: float = 30.0
    lease_seconds: int = 300
    max_attempts: int = 3
    host: str = "127.0.0.1"
    port: int = 8000
    secret_key: str = field(default="", repr=False)
    log_level: str = "INFO"
    queue: str = "humanseg"
    stale_queued_seconds: int = 600

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Build settings from the environment (os.environ when None)."""
        env = os.environ if environ is None else environ
        data_dir = Path(_str(env, "DATA_DIR", "./var"))
        storage = _str(env, "STORAGE", "local").lower()
        if storage not in ("local", "s3"):
            raise ConfigError(f"{PREFIX}STORAGE must be 'local' or 's3', got {storage!r}")
        settings = cls(
            data_dir=data_dir,
            database_url=_str(env, "DATABASE_URL", f"sqlite:///{data_dir / 'humanseg.db'}"),
            broker_url=_str(env, "BROKER_URL"),
            storage=storage,
            storage_dir=Path(_str(env, "STORAGE_DIR", str(data_dir / "storage"))),
            s3_bucket=_str(env, "S3_BUCKET", "humanseg"),
            s3_endpoint_url=_str(env, "S3_ENDPOINT_URL"),
            s3_region=_str(env, "S3_REGION", "us-east-1"),
            s3_prefix=_str(env, "S3_PREFIX"),
            model_path=_str(env, "MODEL_PATH"),
            model_backend=_str(env, "MODEL_BACKEND", "auto"),
            threads=_int(env, "THREADS", 0),
            worker_concurrency=max(1, _int(env, "WORKER_CONCURRENCY", 1)),
            max_files=_int(env, "MAX_FILES", 500),
            max_file_bytes=_int(env, "MAX_FILE_BYTES", 25 * MiB),
            max_pixels=_int(env, "MAX_PIXELS", 40_000_000),
            max_request_bytes=_int(env, "MAX_REQUEST_BYTES", 1024 * MiB),
            segment_wait_seconds=_float(env, "SEGMENT_WAIT_SECONDS", 30.0),
            lease_seconds=_int(env, "LEASE_SECONDS", 300),
            max_attempts=max(1, _int(env, "MAX_ATTEMPTS", 3)),
            host=_str(env, "HOST", "127.0.0.1"),
            port=_int(env, "PORT", 8000),
            secret_key=_str(env, "SECRET_KEY"),
            log_level=_str(env, "LOG_LEVEL", "INFO").upper(),
            queue=_str(env, "QUEUE", "humanseg"),
            stale_queued_seconds=_int(env, "STALE_QUEUED_SECONDS", 600),
        )
        return settings

    def with_(self, **changes: object) -> Settings:
        """Return a copy with some fields changed (handy in tests)."""
        return replace(self, **changes)

    def effective_threads(self, cores: int | None = None) -> int:
        """Threads per model process so that processes x threads <= cores."""
        if self.threads > 0:
            return self.threads
        cores = cores or os.cpu_count() or 1
        return max(1, cores // max(1, self.worker_concurrency))

    def resolve_secret_key(self) -> str:
        """The configured secret, else one kept in <data_dir>/secret_key."""
        if self.secret_key:
            return self.secret_key
        path = self.data_dir / "secret_key"
        if path.exists():
            return path.read_text().strip()
        path.parent.mkdir(parents=True, exist_ok=True)
        key = secrets.token_hex(32)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(key)
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
        return path.read_text().strip()
