"""One suite, two implementations: LocalStorage on disk, S3Storage against moto's server."""

import uuid

import pytest
import requests

from humanseg.core.errors import InvalidKey, ObjectNotFound
from humanseg.core.storage import LocalStorage, Storage


@pytest.fixture(params=["local", "s3"])
def storage(request, tmp_path) -> Storage:
    if request.param == "local":
        return LocalStorage(tmp_path / "store")
    make_s3_storage = request.getfixturevalue("make_s3_storage")
    s3 = make_s3_storage(f"bucket-{uuid.uuid4().hex[:8]}", "pre")
    s3.ensure_bucket()  # idempotent
    return s3


def test_put_get_exists_delete(storage):
    assert isinstance(storage, Storage)
    storage.put("results/a/mask.png", b"\x89PNG data", "image/png")
    assert storage.exists("results/a/mask.png")
    assert storage.get("results/a/mask.png") == b"\x89PNG data"
    storage.put("results/a/mask.png", b"new", "image/png")  # overwrite
    with storage.open_stream("results/a/mask.png") as fh:
        assert fh.read() == b"new"
    storage.delete("results/a/mask.png")
    storage.delete("results/a/mask.png")  # missing is fine
    assert not storage.exists("results/a/mask.png")
    with pytest.raises(ObjectNotFound):
        storage.get("results/a/mask.png")


def test_delete_prefix(storage):
    for name in ("a/1.png", "a/2.png", "ab/3.png", "b/4.png"):
        storage.put(f"results/{name}", b"x", "image/png")
    assert storage.delete_prefix("results/a/") == 2
    assert not storage.exists("results/a/1.png")
    assert storage.exists("results/ab/3.png") and storage.exists("results/b/4.png")


@pytest.mark.parametrize("key", ["../etc/passwd", "/abs", "a/../../b", "a//b", "", "a/./b",
                                 "a\\b", "a/b\x00", ".hidden"])
def test_rejects_bad_keys(storage, key):
    with pytest.raises(InvalidKey):
        storage.put(key, b"x", "text/plain")


def test_url(storage):
    storage.put("originals/x.jpg", b"jpeg-bytes", "image/jpeg")
    url = storage.url("originals/x.jpg", expires=60)
    if isinstance(storage, LocalStorage):
        assert url is None
        return
    resp = requests.get(url, timeout=10)
    assert resp.status_code == 200 and resp.content == b"jpeg-bytes"
    assert resp.headers["Content-Type"] == "image/jpeg"


def test_local_write_is_atomic_no_temp_left(tmp_path):
    store = LocalStorage(tmp_path)
    store.put("k/v.bin", b"1" * 10000, "application/octet-stream")
    assert sorted(p.name for p in (tmp_path / "k").iterdir()) == ["v.bin"]


def test_s3_links_can_name_a_public_address_or_be_off(moto_endpoint):
    import boto3

    from humanseg.core.storage import S3Storage

    creds = {"region_name": "us-east-1", "aws_access_key_id": "testing", "aws_secret_access_key": "testing"}
    inside = boto3.client("s3", endpoint_url=moto_endpoint, **creds)
    # Browsers know the server by another name than the stack does (here: localhost vs 127.0.0.1).
    public = moto_endpoint.replace("127.0.0.1", "localhost")
    bucket = f"bucket-{uuid.uuid4().hex[:8]}"
    linked = S3Storage(bucket, endpoint_url=moto_endpoint, client=inside, public_url=public,
                       public_client=boto3.client("s3", endpoint_url=public, **creds))
    linked.ensure_bucket()
    linked.put("results/j/mask.png", b"png", "image/png")
    url = linked.url("results/j/mask.png")
    assert url.startswith(public + "/")
    assert requests.get(url, timeout=10).content == b"png"  # signed for the host the browser uses
    off = S3Storage(bucket, endpoint_url=moto_endpoint, client=inside, public_url="none")
    assert off.url("results/j/mask.png") is None  # the web tier streams it instead
    assert off.get("results/j/mask.png") == b"png"
