"""API behaviour that needs no worker: validation, errors, paging, status codes (real Redis, SQL)."""

import io

import pytest
import support_images as si
from sqlalchemy import func, select

from humanseg.core.models import Job
from humanseg.web import create_app


@pytest.fixture
def app(make_live_app, db_url):
    return make_live_app(database_url=db_url, max_files=5, max_file_bytes=200_000,
                         max_request_bytes=2_000_000, segment_wait_seconds=0.3)


@pytest.fixture
def client(app):
    return app.test_client()


def files(*items):
    return {"images": [(io.BytesIO(data), name) for name, data in items]}


def job_count(app) -> int:
    with app.extensions["humanseg"].sessions() as s:
        return s.scalar(select(func.count()).select_from(Job))


def test_health_and_ready(client, app):
    import redis

    from humanseg.core.heartbeat import beat

    assert client.get("/healthz").json == {"status": "ok"}
    settings = app.extensions["humanseg"].settings  # its queue is private: no worker beats for it
    assert client.get("/readyz").json["checks"]["worker"] == "error: unavailable"
    conn = redis.Redis.from_url(settings.broker_url)
    beat(conn, settings, "test-node")
    conn.close()
    resp = client.get("/readyz")
    assert resp.json["checks"] == {"database": "ok", "broker": "ok", "storage": "ok", "worker": "ok"}
    assert resp.status_code == 200


def test_ready_reports_broker_down(app, tmp_path):
    bad = create_app(app.extensions["humanseg"].settings.with_(broker_url="redis://127.0.0.1:1/0"))
    resp = bad.test_client().get("/readyz")
    bad.extensions["humanseg"].engine.dispose()
    assert resp.status_code == 503 and resp.json["checks"]["broker"].startswith("error")


def test_upload_queues_jobs_with_server_made_keys(client, app):
    resp = client.post("/api/v1/jobs", data={**files(("../../etc/passwd.jpg", si.jpeg()),
                                                    ("b.png", si.png())), "batch_name": "team"},
                       content_type="multipart/form-data")
    assert resp.status_code == 202, resp.json
    body = resp.json
    assert body["batch_name"] == "team" and len(body["jobs"]) == 2
    assert resp.headers["Location"] == f"/api/v1/batches/{body['batch_id']}"
    first = body["jobs"][0]
    assert first["filename"] == "../../etc/passwd.jpg" and first["status"] == "queued"
    job = client.get(first["url"]).json
    assert job["width"] == 96 and job["height"] == 64 and job["content_type"] == "image/jpeg"
    assert job["urls"]["mask"] is None and job["urls"]["original"].endswith("/original")
    storage = app.extensions["humanseg"].storage
    with app.extensions["humanseg"].sessions() as s:
        keys = [k for (k,) in s.execute(select(Job.original_key))]
    assert all(k.startswith("originals/") and ".." not in k for k in keys)
    assert all(storage.exists(k) for k in keys)
    with client.get(job["urls"]["original"]) as original:
        assert original.status_code == 200 and original.data == si.jpeg()
    for kind in ("mask", "cutout", "overlay", "thumb"):
        r = client.get(f"/api/v1/jobs/{first['id']}/{kind}")
        assert r.status_code == 409 and r.json["error"]["code"] == "not_ready"


@pytest.mark.parametrize("name,data,status,code", [
    ("zero.jpg", b"", 400, "empty_file"),
    ("notes.jpg", si.text(), 415, "unsupported_format"),
    ("cut.jpg", si.truncated_jpeg(), 400, "corrupt_image"),
    ("bomb.png", si.png_bomb(), 413, "too_many_pixels"),
    ("a.gif", si.gif(), 415, "unsupported_format"),
    ("a.tiff", si.tiff(), 415, "unsupported_format"),
    ("a.eps", si.eps(), 415, "unsupported_format"),
    ("big.png", si.png((400, 400), mode="RGB") + b"\0" * 200000, 413, "file_too_large"),
])
def test_bad_part_rejects_whole_request(client, app, name, data, status, code):
    resp = client.post("/api/v1/jobs", data=files(("good.jpg", si.jpeg()), (name, data)),
                       content_type="multipart/form-data")
    assert resp.status_code == status, resp.json
    err = resp.json["error"]
    assert err["code"] == code and err["file"] == name and name in err["message"]
    assert err["files"] == [{"file": name, "code": code, "message": err["files"][0]["message"]}]
    assert job_count(app) == 0


def test_several_bad_parts_listed(client, app):
    resp = client.post("/api/v1/jobs", data=files(("a.txt", si.text()), ("b.jpg", b"")),
                       content_type="multipart/form-data")
    assert resp.status_code == 400
    err = resp.json["error"]
    assert err["code"] == "invalid_files"
    assert [f["file"] for f in err["files"]] == ["a.txt", "b.jpg"]
    assert job_count(app) == 0


def test_too_many_files(client, app):
    resp = client.post("/api/v1/jobs", data=files(*[(f"{i}.jpg", si.jpeg()) for i in range(6)]),
                       content_type="multipart/form-data")
    assert resp.status_code == 413 and resp.json["error"]["code"] == "too_many_files"
    assert job_count(app) == 0


def test_no_files(client):
    resp = client.post("/api/v1/jobs", data={"batch_name": "x"}, content_type="multipart/form-data")
    assert resp.status_code == 400 and resp.json["error"]["code"] == "no_files"


def test_request_too_large_is_json_413(client):
    # raw bytes (not a spooled temp file): the declared length alone exceeds the limit
    resp = client.post("/api/v1/jobs", data=b"-" * 2_100_000,
                       content_type="multipart/form-data; boundary=xyz")
    assert resp.status_code == 413 and resp.json["error"]["code"] == "request_too_large"


def test_unknown_ids_are_404(client):
    assert client.get("/api/v1/jobs/nope").json["error"]["code"] == "job_not_found"
    assert client.get("/api/v1/jobs/nope/mask").status_code == 404
    assert client.get("/api/v1/batches/nope").status_code == 404
    r = client.get("/api/v1/nothing")
    assert r.status_code == 404 and r.json["error"]["code"] == "not_found"


def test_batch_paging_and_append(client):
    first = client.post("/api/v1/jobs", data=files(*[(f"{i}.jpg", si.jpeg()) for i in range(3)]),
                        content_type="multipart/form-data").json
    bid = first["batch_id"]
    more = client.post("/api/v1/jobs", data={**files(("x.png", si.png())), "batch_id": bid},
                       content_type="multipart/form-data")
    assert more.status_code == 202 and more.json["batch_id"] == bid
    page = client.get(f"/api/v1/batches/{bid}?limit=2").json
    assert page["job_count"] == 4 and page["counts"]["queued"] == 4 and page["progress"] == 0
    assert [j["filename"] for j in page["jobs"]] == ["0.jpg", "1.jpg"]
    rest = client.get(f"/api/v1/batches/{bid}?limit=2&cursor={page['next_cursor']}").json
    assert [j["filename"] for j in rest["jobs"]] == ["2.jpg", "x.png"] and rest["next_cursor"] is None
    counts_only = client.get(f"/api/v1/batches/{bid}?limit=0").json
    assert counts_only["jobs"] == [] and counts_only["next_cursor"] is None
    assert counts_only["job_count"] == 4 and counts_only["counts"]["queued"] == 4
    assert client.get(f"/api/v1/batches/{bid}?limit=-1").status_code == 400
    assert client.get(f"/api/v1/batches/{bid}?limit=501").status_code == 400
    unknown = client.post("/api/v1/jobs", data={**files(("x.png", si.png())), "batch_id": "zz"},
                          content_type="multipart/form-data")
    assert unknown.status_code == 404


def test_segment_times_out_to_202(client):
    # nobody consumes this test's queue, so the bounded wait ends with a 202 and the job URL
    resp = client.post("/api/v1/segment", data={"image": (io.BytesIO(si.jpeg()), "a.jpg"),
                                                "output": "cutout"},
                       content_type="multipart/form-data")
    assert resp.status_code == 202 and resp.headers["Location"] == f"/api/v1/jobs/{resp.json['id']}"
    bad = client.post("/api/v1/segment", data={"image": (io.BytesIO(si.jpeg()), "a.jpg"),
                                               "output": "svg"}, content_type="multipart/form-data")
    assert bad.status_code == 400


def test_prefer_wait_is_bounded(client):
    resp = client.post("/api/v1/jobs", data=files(("a.jpg", si.jpeg())),
                       content_type="multipart/form-data", headers={"Prefer": "wait=100"})
    assert resp.status_code == 202 and resp.headers["Preference-Applied"] == "wait=0.3"
