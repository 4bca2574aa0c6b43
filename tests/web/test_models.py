"""`model=` on every upload path, GET /api/v1/models, and where a model's results live (web tier)."""

import io

import pytest
import support_images as si
from factories import make_settings
from gallery_support import csrf_from, make_app, sample_result
from sqlalchemy import func, select

from humanseg.core.db import session_scope
from humanseg.core.models import Job, JobStatus
from humanseg.core.results import stored_kinds


def upload(client, *fields, path="/api/v1/jobs", field="images"):
    return client.post(path, data={field: [(io.BytesIO(si.jpeg()), "a.jpg")], **dict(fields)},
                       content_type="multipart/form-data")


def rows(app) -> list[Job]:
    with session_scope(app.extensions["humanseg"].sessions) as s:
        return list(s.scalars(select(Job)))


def test_models_lists_the_registry_and_its_default(client):
    body = client.get("/api/v1/models").get_json()
    assert body["default"] == "v4"
    by_name = {m["name"]: m for m in body["models"]}
    assert by_name["v4"]["default"] and by_name["v4"]["use"] == "balanced" and by_name["v4"]["input_size"] == 448
    assert not by_name["fast"]["default"] and by_name["fast"]["use"] == "fast" and by_name["fast"]["input_size"] == 320
    assert by_name["modnet"]["use"] == "quality" and "Apache-2.0" in by_name["modnet"]["licence"]
    assert by_name["modnet"]["card"]["val58_mean_iou"] > 0 and not by_name["modnet"]["default"]


def test_each_upload_path_records_the_model_asked_for_or_the_default(client, app):
    made = upload(client, ("model", "modnet")).get_json()
    assert made["jobs"][0]["model"] == "modnet"
    job = client.get(made["jobs"][0]["url"]).get_json()
    assert job["model"] == "modnet"
    plain = upload(client).get_json()
    assert client.get(plain["jobs"][0]["url"]).get_json()["model"] == "v4"
    batch = client.get(f"/api/v1/batches/{made['batch_id']}").get_json()
    assert [j["model"] for j in batch["jobs"]] == ["modnet"]
    seg = upload(client, ("model", "modnet"), path="/api/v1/segment", field="image")
    assert seg.status_code == 202 and seg.get_json()["model"] == "modnet"
    assert sorted(j.model for j in rows(app)) == ["modnet", "modnet", "v4"]
    assert len(app.sent) == 3


def test_an_unknown_model_is_a_400_listing_the_choices_and_stores_nothing(client, app):
    storage = app.extensions["humanseg"].storage
    for path, field in (("/api/v1/jobs", "images"), ("/api/v1/segment", "image")):
        resp = upload(client, ("model", "best"), path=path, field=field)
        assert resp.status_code == 400, resp.data
        err = resp.get_json()["error"]
        assert err["code"] == "unknown_model" and err["parameter"] == "model"
        assert err["choices"] == ["fast", "modnet", "v4"] and "choose from fast, modnet, v4" in err["message"]
    twice = upload(client, ("model", ["fast", "modnet"]))
    assert twice.status_code == 400 and twice.get_json()["error"]["parameter"] == "model"
    assert rows(app) == [] and app.sent == [] and not list(storage.list_objects("originals/"))


def test_the_default_follows_the_setting(tmp_path, monkeypatch):
    app = make_app(tmp_path, monkeypatch, default_model="modnet")
    client = app.test_client()
    assert client.get("/api/v1/models").get_json()["default"] == "modnet"
    assert upload(client).get_json()["jobs"][0]["model"] == "modnet"


def test_an_unregistered_default_stops_the_app_from_starting(tmp_path):
    from humanseg.core.registry import RegistryError
    from humanseg.web import create_app

    with pytest.raises(RegistryError, match="default model 'best' is not registered; choose from fast, modnet"):
        create_app(make_settings(tmp_path, default_model="best"))


def test_a_models_results_are_served_from_its_own_keys_and_kept_by_retry(client, app):
    svc = app.extensions["humanseg"]
    made = upload(client, ("model", "modnet")).get_json()
    job_id = made["jobs"][0]["id"]
    for kind in stored_kinds():
        key = kind.key(job_id, "modnet")
        assert key.startswith(f"results/{job_id}/model-modnet/")
        svc.storage.put(key, sample_result(kind), kind.content_type)
    with session_scope(svc.sessions) as s:
        s.get(Job, job_id).status = JobStatus.succeeded
    for url in (f"/api/v1/jobs/{job_id}/mask", f"/api/v1/jobs/{job_id}/cutout?bg=white&format=jpeg"):
        with client.get(url) as served:
            assert served.status_code == 200 and served.get_data()
    made = [o.key for o in svc.storage.list_objects(f"results/{job_id}/") if "/variants/" in o.key]
    assert made and all(k.startswith(f"results/{job_id}/model-modnet/variants/") for k in made)
    with session_scope(svc.sessions) as s:
        s.get(Job, job_id).status = JobStatus.failed
    assert client.post(f"/api/v1/jobs/{job_id}/retry").status_code == 202
    assert client.get(f"/api/v1/jobs/{job_id}").get_json()["model"] == "modnet"
    with session_scope(svc.sessions) as s:
        assert s.scalar(select(func.count()).select_from(Job).where(Job.model == "modnet")) == 1


def test_pages_offer_the_models_and_show_each_jobs(client, app):
    page = client.get("/").get_data(as_text=True)
    assert '<option value="modnet">modnet (quality)</option>' in page and 'value="v4" selected' in page
    token = csrf_from(page)
    bad = client.post("/upload", data={"csrf_token": token, "model": "best",
                                       "images": [(io.BytesIO(si.jpeg()), "a.jpg")]},
                      content_type="multipart/form-data")
    assert bad.status_code == 400 and "choose from fast, modnet" in bad.get_data(as_text=True) and rows(app) == []
    done = client.post("/upload", data={"csrf_token": token, "model": "modnet",
                                        "images": [(io.BytesIO(si.jpeg()), "a.jpg")]},
                       content_type="multipart/form-data")
    assert done.status_code == 303
    job_page = client.get(done.headers["Location"]).get_data(as_text=True)
    assert '<dt>Model</dt><dd class="model">modnet</dd>' in job_page
    (job,) = rows(app)
    batch_page = client.get(f"/batches/{job.batch_id}").get_data(as_text=True)
    assert '<span class="model muted small" title="model">modnet</span>' in batch_page
