"""Object storage: one small protocol, a local-disk and an S3 implementation."""

from __future__ import annotations

import logging
import os
import re
import shutil
import tempfile
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, NamedTuple, Protocol, runtime_checkable

from humanseg.core.errors import InvalidKey, ObjectNotFound, StorageError

if TYPE_CHECKING:
    from humanseg.core.settings import Settings

log = logging.getLogger(__name__)

_KEY_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._\-]*(/[A-Za-z0-9][A-Za-z0-9._\-]*)*$")


def check_key(key: str) -> str:
    """Accept only relative, slash-separated keys without '..' or odd bytes."""
    if not isinstance(key, str) or len(key) > 512 or not _KEY_RE.match(key):
        raise InvalidKey(f"invalid storage key: {key!r}")
    if any(part in (".", "..") for part in key.split("/")):
        raise InvalidKey(f"invalid storage key: {key!r}")
    return key


def check_prefix(prefix: str) -> str:
    """A prefix is a key optionally ending in '/'."""
    check_key(prefix.rstrip("/"))
    return prefix


class StoredObject(NamedTuple):
    """One object found by Storage.list_objects."""

    key: str
    modified: datetime  # aware, UTC


@runtime_checkable
class Storage(Protocol):
    """What web and worker need from a blob store."""

    def put(self, key: str, data: bytes, content_type: str) -> None: ...
    def get(self, key: str) -> bytes: ...
    def exists(self, key: str) -> bool: ...
    def delete(self, key: str) -> None: ...
    def delete_prefix(self, prefix: str) -> int: ...
    def url(self, key: str, expires: int = 3600) -> str | None: ...
    def open_stream(self, key: str) -> BinaryIO: ...
    def list_objects(self, prefix: str, start_after: str = "",
                     limit: int = 1000) -> list[StoredObject]: ...


class LocalStorage:
    """Files under one root directory; writes are atomic (temp file + rename)."""

    def __init__(self, root: Path | str):
        self.root = Path(root).resolve()
        self.root.mkdir(parents=True, exist_ok=True)

    def _path(self, key: str) -> Path:
        path = (self.root / check_key(key)).resolve()
        if self.root not in path.parents:
            raise InvalidKey(f"key escapes storage root: {key!r}")
        return path

    def put(self, key: str, data: bytes, content_type: str) -> None:
        """Write atomically so readers never see half a file."""
        path = self._path(key)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
            try:
                with os.fdopen(fd, "wb") as fh:
                    fh.write(data)
                os.replace(tmp, path)
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise
        except OSError as exc:
            raise StorageError(f"cannot write {key}: {exc}") from exc

    def get(self, key: str) -> bytes:
        """Return the object's bytes."""
        path = self._path(key)
        try:
            return path.read_bytes()
        except FileNotFoundError as exc:
            raise ObjectNotFound(key) from exc
        except OSError as exc:
            raise StorageError(f"cannot read {key}: {exc}") from exc

    def open_stream(self, key: str) -> BinaryIO:
        """Open the object for streaming reads (caller closes)."""
        try:
            return open(self._path(key), "rb")
        except FileNotFoundError as exc:
            raise ObjectNotFound(key) from exc

    def exists(self, key: str) -> bool:
        """True if the object exists."""
        return self._path(key).is_file()

    def delete(self, key: str) -> None:
        """Remove the object; a missing one is fine."""
        self._path(key).unlink(missing_ok=True)

    def delete_prefix(self, prefix: str) -> int:
        """Remove every object under prefix; returns how many."""
        check_prefix(prefix)
        count = 0
        base = self.root / prefix.rstrip("/")
        if prefix.endswith("/") or base.is_dir():
            if base.is_dir():
                count = sum(1 for p in base.rglob("*") if p.is_file())
                shutil.rmtree(base)
            return count
        for path in base.parent.glob(base.name + "*"):
            if path.is_file():
                path.unlink()
                count += 1
            elif path.is_dir():
                count += sum(1 for p in path.rglob("*") if p.is_file())
                shutil.rmtree(path)
        return count

    def list_objects(self, prefix: str, start_after: str = "", limit: int = 1000) -> list[StoredObject]:
        """Up to `limit` objects under prefix with keys after start_after, in key order."""
        check_prefix(prefix)
        # "originals/" walks that folder only; a partial name ("originals/ab") its parent.
        top = self.root / prefix.rstrip("/") if prefix.endswith("/") else (self.root / prefix).parent
        keys = []
        for path in top.rglob("*") if top.is_dir() else ():
            key = path.relative_to(self.root).as_posix()
            # Skips the .tmp- files of writes in progress (not valid keys) and anything else odd.
            if key.startswith(prefix) and key > start_after and _KEY_RE.match(key) and path.is_file():
                keys.append(key)
        found = []
        for key in sorted(keys)[:limit]:
            try:
                mtime = (self.root / key).stat().st_mtime
            except FileNotFoundError:
                continue  # deleted since the walk
            found.append(StoredObject(key, datetime.fromtimestamp(mtime, timezone.utc)))
        return found

    def url(self, key: str, expires: int = 3600) -> str | None:
        """Local objects have no public URL; the web tier serves them."""
        check_key(key)
        return None

    def path(self, key: str) -> Path:
        """Filesystem path of a key (for send_file)."""
        return self._path(key)


class S3Storage:
    """Objects in an S3 bucket (AWS, MinIO, moto) via boto3."""

    def __init__(self, bucket: str, *, endpoint_url: str | None = None,
                 region: str = "us-east-1", prefix: str = "", client=None,
                 public_url: str = "", public_client=None):
        """public_url: "" signs links for endpoint_url; a URL signs them for that address (what
        browsers can reach); "none" gives no links, so the web tier streams objects itself (a
        bundled MinIO that only the stack's containers can resolve)."""
        import boto3
        from botocore.config import Config

        self.bucket = bucket
        self.prefix = prefix.strip("/") + "/" if prefix.strip("/") else ""
        self.region = region

        def make(endpoint: str | None):
            return boto3.client(
                "s3", endpoint_url=endpoint or None, region_name=region,
                config=Config(signature_version="s3v4", retries={"max_attempts": 3, "mode": "standard"},
                              s3={"addressing_style": "path"} if endpoint else None))

        self.client = client or make(endpoint_url)
        self.presign = public_url.strip().lower() != "none"
        if public_url and self.presign:
            self.sign_client = public_client or make(public_url)
        else:
            self.sign_client = self.client

    def _k(self, key: str) -> str:
        return self.prefix + check_key(key)

    def _wrap(self, exc: Exception, key: str) -> StorageError:
        code = getattr(exc, "response", {}).get("Error", {}).get("Code", "")
        if code in ("NoSuchKey", "404", "NotFound"):
            return ObjectNotFound(key)
        return StorageError(f"s3 error on {key}: {exc}")

    def ensure_bucket(self) -> None:
        """Create the bucket if it does not exist yet."""
        from botocore.exceptions import ClientError

        try:
            self.client.head_bucket(Bucket=self.bucket)
            return
        except ClientError:
            pass
        kwargs: dict[str, Any] = {"Bucket": self.bucket}
        if self.region and self.region != "us-east-1":
            kwargs["CreateBucketConfiguration"] = {"LocationConstraint": self.region}
        try:
            self.client.create_bucket(**kwargs)
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            if code not in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
                raise StorageError(f"cannot create bucket {self.bucket}: {exc}") from exc

    def put(self, key: str, data: bytes, content_type: str) -> None:
        """Upload one object."""
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            self.client.put_object(Bucket=self.bucket, Key=self._k(key), Body=data,
                                   ContentType=content_type)
        except (BotoCoreError, ClientError) as exc:
            raise self._wrap(exc, key) from exc

    def get(self, key: str) -> bytes:
        """Download one object."""
        with self.open_stream(key) as body:
            return body.read()

    def open_stream(self, key: str) -> BinaryIO:
        """The object's streaming body (caller closes)."""
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            return self.client.get_object(Bucket=self.bucket, Key=self._k(key))["Body"]
        except (BotoCoreError, ClientError) as exc:
            raise self._wrap(exc, key) from exc

    def exists(self, key: str) -> bool:
        """True if the object exists."""
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            self.client.head_object(Bucket=self.bucket, Key=self._k(key))
            return True
        except ClientError as exc:
            if isinstance(self._wrap(exc, key), ObjectNotFound):
                return False
            raise self._wrap(exc, key) from exc
        except BotoCoreError as exc:
            raise self._wrap(exc, key) from exc

    def delete(self, key: str) -> None:
        """Remove one object (missing is fine)."""
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            self.client.delete_object(Bucket=self.bucket, Key=self._k(key))
        except (BotoCoreError, ClientError) as exc:
            raise self._wrap(exc, key) from exc

    def delete_prefix(self, prefix: str) -> int:
        """Remove every object under prefix; returns how many."""
        check_prefix(prefix)
        count = 0
        paginator = self.client.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self.bucket, Prefix=self.prefix + prefix):
            objs = [{"Key": o["Key"]} for o in page.get("Contents", [])]
            if objs:
                self.client.delete_objects(Bucket=self.bucket, Delete={"Objects": objs, "Quiet": True})
                count += len(objs)
        return count

    def list_objects(self, prefix: str, start_after: str = "", limit: int = 1000) -> list[StoredObject]:
        """Up to `limit` objects under prefix with keys after start_after, in key order."""
        from botocore.exceptions import BotoCoreError, ClientError

        check_prefix(prefix)
        kwargs = {"Bucket": self.bucket, "Prefix": self.prefix + prefix, "MaxKeys": limit}
        if start_after:
            kwargs["StartAfter"] = self.prefix + start_after
        try:
            page = self.client.list_objects_v2(**kwargs)
        except (BotoCoreError, ClientError) as exc:
            raise self._wrap(exc, prefix) from exc
        return [StoredObject(o["Key"][len(self.prefix):], o["LastModified"].astimezone(timezone.utc))
                for o in page.get("Contents", [])]

    def url(self, key: str, expires: int = 3600) -> str | None:
        """A presigned GET URL valid for `expires` seconds (None when links are off: see public_url)."""
        check_key(key)
        if not self.presign:
            return None
        return self.sign_client.generate_presigned_url(
            "get_object", Params={"Bucket": self.bucket, "Key": self._k(key)}, ExpiresIn=expires)


def make_storage(settings: Settings) -> Storage:
    """Build the storage the settings ask for."""
    if settings.storage == "s3":
        return S3Storage(settings.s3_bucket, endpoint_url=settings.s3_endpoint_url or None,
                         region=settings.s3_region, prefix=settings.s3_prefix,
                         public_url=settings.s3_public_url)
    assert settings.storage_dir is not None  # Settings.__post_init__ sets it from data_dir
    return LocalStorage(settings.storage_dir)
