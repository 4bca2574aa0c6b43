"""Originals with no job (a web process killed between storing and committing) are removed by the
sweeper after a grace period, on local storage and S3, one bounded page per pass."""

import os
import uuid

import pytest
import support_images as si
from factories import insert_job, make_settings

from humanseg.cli import main
from humanseg.core.db import make_engine, make_sessionmaker
from humanseg.core.storage import LocalStorage
from humanseg.worker import sweeper
from humanseg.worker.sweeper import sweep_orphans


@pytest.fixture(params=["local", "s3"])
def env(request, tmp_path, db_url):
    if request.param == "local":
        storage = LocalStorage(tmp_path / "storage")
    else:
        storage = request.getfixturevalue("make_s3_storage")(f"orphans-{uuid.uuid4().hex[:8]}", "pre")
    settings = make_settings(tmp_path, database_url=db_url, orphan_grace_seconds=0)
    engine = make_engine(db_url)
    yield settings, make_sessionmaker(engine), storage
    engine.dispose()


def _orphans(storage, n: int) -> list[str]:
    keys = [f"originals/{uuid.uuid4().hex}.jpg" for _ in range(n)]
    for key in keys:
        storage.put(key, si.jpeg(), "image/jpeg")
    return keys


def test_originals_without_a_job_are_removed_after_the_grace(env):
    settings, sessions, storage = env
    owned = insert_job(storage, sessions, si.jpeg())
    orphans = _orphans(storage, 3)
    storage.put("results/x/mask.png", b"png", "image/png")  # only originals/ is looked at

    # Within the grace an orphan may be an upload whose rows are about to commit: kept.
    assert sweep_orphans(settings.with_(orphan_grace_seconds=3600), sessions, storage) == (0, "")
    assert all(storage.exists(k) for k in orphans)

    assert sweep_orphans(settings, sessions, storage) == (3, "")
    assert not any(storage.exists(k) for k in orphans)
    assert storage.exists(f"originals/{owned}.jpg") and storage.exists("results/x/mask.png")


def test_each_pass_looks_at_one_page_and_the_next_goes_on(env, monkeypatch):
    settings, sessions, storage = env
    monkeypatch.setattr(sweeper, "ORPHAN_PAGE", 2)
    orphans = sorted(_orphans(storage, 5))
    removed, cursor = sweep_orphans(settings, sessions, storage)
    assert (removed, cursor) == (2, orphans[1])
    assert [storage.exists(k) for k in orphans] == [False, False, True, True, True]
    removed, cursor = sweep_orphans(settings, sessions, storage, cursor)
    assert (removed, cursor) == (2, orphans[3])
    assert sweep_orphans(settings, sessions, storage, cursor) == (1, "")  # wrapped around
    assert not any(storage.exists(k) for k in orphans)


def test_local_writes_in_progress_are_not_objects(tmp_path):
    storage = LocalStorage(tmp_path / "s")
    storage.put("originals/a.jpg", b"x", "image/jpeg")
    (tmp_path / "s" / "originals" / ".tmp-abc").write_bytes(b"partial")
    assert [o.key for o in storage.list_objects("originals/")] == ["originals/a.jpg"]


def test_sweep_command_removes_orphans(tmp_path, db_url, redis_url, private_queue, monkeypatch):
    for key in [k for k in os.environ if k.startswith("HUMANSEG_")]:
        monkeypatch.delenv(key)
    values = {"HUMANSEG_DATA_DIR": str(tmp_path), "HUMANSEG_DATABASE_URL": db_url,
              "HUMANSEG_BROKER_URL": redis_url, "HUMANSEG_QUEUE": private_queue,
              "HUMANSEG_ORPHAN_GRACE_SECONDS": "0"}
    for key, value in values.items():
        monkeypatch.setenv(key, value)
    storage = LocalStorage(tmp_path / "storage")
    orphans = _orphans(storage, 2)
    assert main(["sweep"]) == 0
    assert not any(storage.exists(k) for k in orphans)
