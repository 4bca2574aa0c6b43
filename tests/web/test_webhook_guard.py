"""The webhook fields of an upload: the SSRF guard (and its allow-list), events and secrets."""

import io

import pytest
import support_images as si
from gallery_support import make_app
from sqlalchemy import func, select

from humanseg.core import webhook_targets
from humanseg.core.db import session_scope
from humanseg.core.layout import ORIGINALS
from humanseg.core.models import Batch
from humanseg.core.webhooks import record_finished, secret_bytes, sign


def _upload(client, **fields):
    return client.post("/api/v1/jobs", content_type="multipart/form-data",
                       data={"images": [(io.BytesIO(si.jpeg()), "a.jpg")], **fields})


def _batches(app) -> int:
    with session_scope(app.extensions["humanseg"].sessions) as s:
        return s.scalar(select(func.count()).select_from(Batch))


REFUSED = ["http://127.0.0.1:9/hook", "http://localhost/hook", "http://[::1]/x",
           "http://169.254.169.254/latest/meta-data", "http://10.1.2.3/", "http://192.168.0.10/",
           "http://[fe80::1]/", "http://[::ffff:127.0.0.1]/", "http://0.0.0.0/",
           "ftp://example.com/", "http://user:pw@93.184.216.34/", "not a url", "http:///nohost"]


@pytest.mark.parametrize("url", REFUSED)
def test_private_loopback_link_local_and_odd_urls_are_refused(tmp_path, monkeypatch, url):
    app = make_app(tmp_path, monkeypatch)
    resp = _upload(app.test_client(), webhook_url=url)
    assert resp.status_code == 400, url
    assert resp.json["error"]["code"] == "webhook_url_refused"
    assert resp.json["error"]["parameter"] == "webhook_url"
    assert _batches(app) == 0  # refused before anything was stored


def test_the_allow_list_lets_a_local_receiver_in(tmp_path, monkeypatch):
    app = make_app(tmp_path, monkeypatch, webhook_allow_hosts=("127.0.0.0/8", "localhost"))
    client = app.test_client()
    resp = _upload(client, webhook_url="http://127.0.0.1:9/hook", webhook_events="batch.finished")
    assert resp.status_code == 202
    hook = resp.json["webhook"]
    assert hook["events"] == ["batch.finished"] and len(secret_bytes(hook["secret"])) == 24
    body = client.get(resp.json["batch_url"]).json
    assert body["webhook"] == {"url": "http://127.0.0.1:9/hook", "events": ["batch.finished"]}
    assert _upload(client, webhook_url="http://localhost:9/").status_code == 202
    still = _upload(client, webhook_url="http://10.0.0.1/")  # not in the list
    assert still.status_code == 400 and still.json["error"]["code"] == "webhook_url_refused"
    deliveries = client.get(f"/api/v1/batches/{resp.json['batch_id']}/webhooks")
    assert deliveries.status_code == 200 and deliveries.json["deliveries"] == []


@pytest.mark.parametrize("fields,parameter", [
    ({"webhook_events": "job.finished"}, "webhook_url"),
    ({"webhook_url": "http://127.0.0.1:9/", "webhook_events": "job.started"}, "webhook_events"),
    ({"webhook_url": "http://127.0.0.1:9/", "webhook_secret": "plain"}, "webhook_secret"),
    ({"webhook_url": "http://127.0.0.1:9/", "webhook_secret": "whsec_c2hvcnQ="}, "webhook_secret"),
])
def test_bad_webhook_fields_are_400(tmp_path, monkeypatch, fields, parameter):
    app = make_app(tmp_path, monkeypatch, webhook_allow_hosts=("127.0.0.1",))
    resp = _upload(app.test_client(), **fields)
    assert resp.status_code == 400 and resp.json["error"]["code"] == "bad_parameter"
    assert resp.json["error"]["parameter"] == parameter
    message = resp.json["error"]["message"]  # names the parameter once, then says why
    assert message.startswith(f"{parameter}: ") and not message.startswith(f"{parameter}: {parameter}")


def test_a_webhook_is_set_only_on_a_new_batch(tmp_path, monkeypatch):
    app = make_app(tmp_path, monkeypatch, webhook_allow_hosts=("127.0.0.1",))
    client = app.test_client()
    first = _upload(client).json
    storage = app.extensions["humanseg"].storage
    stored = storage.list_objects(ORIGINALS)
    resp = _upload(client, batch_id=first["batch_id"], webhook_url="http://127.0.0.1:9/")
    assert resp.status_code == 400 and resp.json["error"]["parameter"] == "webhook_url"
    # Parameters are checked first: a broken image does not hide the conflict, and nothing is stored.
    broken = client.post("/api/v1/jobs", content_type="multipart/form-data",
                         data={"images": [(io.BytesIO(b"not an image"), "a.jpg")],
                               "batch_id": first["batch_id"], "webhook_url": "http://127.0.0.1:9/"})
    assert broken.status_code == 400 and broken.json["error"]["parameter"] == "webhook_url"
    assert storage.list_objects(ORIGINALS) == stored


def test_signature_matches_the_standard_webhooks_example():
    # The example of the Standard Webhooks spec (and its reference libraries' tests).
    secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    body = b'{"test": 2432232314}'
    assert sign(secret, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body) == \
        "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


def test_a_checked_target_connects_to_the_checked_address():
    target = webhook_targets.resolve("http://localhost:8080/a?b=1", ["localhost"])
    assert target.address in ("127.0.0.1", "::1") and target.path == "/a?b=1"
    assert target.host == "localhost" and target.port == 8080


def test_events_are_recorded_once_per_finish(tmp_path, monkeypatch, db_url):
    app = make_app(tmp_path, monkeypatch, database_url=db_url, webhook_allow_hosts=("127.0.0.1",))
    client = app.test_client()
    made = client.post("/api/v1/jobs", content_type="multipart/form-data", data={
        "images": [(io.BytesIO(si.jpeg()), "a.jpg"), (io.BytesIO(si.png()), "b.png")],
        "webhook_url": "http://127.0.0.1:9/h"}).json
    a, b = (j["id"] for j in made["jobs"])
    hooks = f"/api/v1/batches/{made['batch_id']}/webhooks"

    def events():
        return sorted((d["event"], d["job_id"]) for d in client.get(hooks).json["deliveries"])

    assert client.post(f"/api/v1/jobs/{a}/cancel").status_code == 200
    assert events() == [("job.finished", a)]  # the batch has a queued job still
    assert client.post(f"/api/v1/batches/{made['batch_id']}/cancel").json["cancelled"] == 1
    assert events() == sorted([("job.finished", a), ("job.finished", b), ("batch.finished", None)])
    with session_scope(app.extensions["humanseg"].sessions) as s:  # recorded again: no duplicate
        assert record_finished(s, [a, b]) == 3
    assert len(events()) == 3
    assert client.post(f"/api/v1/jobs/{a}/retry").status_code == 202
    assert client.post(f"/api/v1/jobs/{a}/cancel").status_code == 200  # it finishes again
    assert len(events()) == 5
    engine = app.extensions["humanseg"].engine
    engine.dispose()
