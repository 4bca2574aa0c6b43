"""API keys: required or not, ownership of batches, revocation, the page sign-in (real Redis, SQL)."""

import io
import os
import re
import subprocess
import sys

import pytest
import support_images as si
from factories import make_settings
from sqlalchemy import select

from humanseg.core.db import session_scope
from humanseg.core.keys import create_key, hash_key, revoke_key
from humanseg.core.models import ApiKey
from humanseg.web import create_app
from humanseg.web.exposure import keys_required

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def make(tmp_path, db_url, redis_url, queue, **fields):
    return create_app(make_settings(tmp_path, database_url=db_url, broker_url=redis_url, queue=queue, **fields))


@pytest.fixture
def app(tmp_path, db_url, redis_url, private_queue):
    app = make(tmp_path, db_url, redis_url, private_queue, require_api_keys=True)
    yield app
    app.extensions["humanseg"].engine.dispose()


def new_key(app, name, **kwargs) -> str:
    with session_scope(app.extensions["humanseg"].sessions) as session:
        return create_key(session, name, **kwargs)[1]


def bearer(key):
    return {"Authorization": f"Bearer {key}"}


def upload(client, headers, n=1):
    data = {"images": [(io.BytesIO(si.jpeg()), f"{i}.jpg") for i in range(n)]}
    return client.post("/api/v1/jobs", data=data, headers=headers, content_type="multipart/form-data")


def test_keys_required_by_setting_or_by_a_reachable_bind():
    assert not keys_required(make_settings(host="127.0.0.1"))
    assert not keys_required(make_settings(host="localhost"))
    assert keys_required(make_settings(host="0.0.0.0"))
    assert keys_required(make_settings(host="192.168.1.5"))
    assert keys_required(make_settings(host="127.0.0.1", require_api_keys=True))
    # The addresses really bound decide when given (gunicorn's --bind may differ from the host).
    assert keys_required(make_settings(host="127.0.0.1"), ["127.0.0.1", "0.0.0.0"])
    assert not keys_required(make_settings(host="0.0.0.0"), ["127.0.0.1", "::1"])
    assert keys_required(make_settings(require_api_keys=True), ["127.0.0.1"])


def test_one_exposure_answer_for_guard_auth_and_launcher():
    from humanseg.web.exposure import exposed, is_loopback, is_wildcard
    from humanseg.web.guard import allowed_hosts

    assert exposed(["127.0.0.1", "[::1]", "LOCALHOST", "0.0.0.0", "::", "", "host.example"]) == [
        "0.0.0.0", "::", "", "host.example"]
    assert is_loopback(" [::1] ") and not is_loopback("[::]")
    assert all(is_wildcard(h) for h in ("", "0.0.0.0", "::", "[::]", " 0.0.0.0 "))
    assert not is_wildcard("127.0.0.1")
    # A wildcard bind adds no name to the allowed hosts; a named bind adds itself.
    assert allowed_hosts(make_settings(host="0.0.0.0", allowed_hosts=("a.example",))) == ("a.example",)
    assert allowed_hosts(make_settings(host="::1", allowed_hosts=())) == ("[::1]",)


def test_the_app_takes_its_keys_answer_from_the_exposure(tmp_path, db_url, redis_url, private_queue):
    app = make(tmp_path, db_url, redis_url, private_queue, host="0.0.0.0")
    try:
        assert app.extensions["humanseg"].keys_required is True
        assert app.test_client().get("/api/v1/batches").status_code == 401
    finally:
        app.extensions["humanseg"].engine.dispose()


@pytest.mark.parametrize("host,bound,required", [
    ("127.0.0.1", (), False), ("127.0.0.1", ("127.0.0.1",), False),
    ("127.0.0.1", ("0.0.0.0",), True),  # --bind beyond loopback while HUMANSEG_HOST stays local
    ("0.0.0.0", ("127.0.0.1",), True),  # never laxer than the configured host
])
def test_the_app_decides_once_from_its_host_and_the_addresses_bound(tmp_path, db_url, redis_url,
                                                                     private_queue, host, bound, required):
    app = create_app(make_settings(tmp_path, database_url=db_url, broker_url=redis_url,
                                   queue=private_queue, host=host), bound=bound)
    try:
        assert app.extensions["humanseg"].keys_required is required
        status = app.test_client().get("/api/v1/batches").status_code
        assert status == (401 if required else 200)
    finally:
        app.extensions["humanseg"].engine.dispose()


def test_without_a_key_every_call_is_401(app):
    client = app.test_client()
    for method, path in [("get", "/api/v1/jobs/" + "a" * 32), ("post", "/api/v1/jobs"),
                         ("delete", "/api/v1/batches/" + "b" * 32)]:
        resp = getattr(client, method)(path)
        assert resp.status_code == 401, (method, path)
        assert resp.json["error"]["code"] == "api_key_required"
        assert resp.headers["WWW-Authenticate"].startswith("Bearer")
    assert client.get("/healthz").status_code == 200  # probes stay open


def test_pages_redirect_to_sign_in_and_the_session_keeps_the_key(app):
    client = app.test_client()
    resp = client.get("/batches")
    assert resp.status_code == 303 and resp.headers["Location"].startswith("/signin?next=/batches")
    form = client.get("/signin?next=/batches")
    assert form.status_code == 200 and b'name="api_key"' in form.data
    token = re.search(rb'name="csrf_token" value="([^"]+)"', form.data).group(1).decode()
    wrong = client.post("/signin", data={"csrf_token": token, "api_key": "hsk_nope", "next": "/batches"})
    assert wrong.status_code == 401
    no_token = client.post("/signin", data={"api_key": new_key(app, "x"), "next": "/batches"})
    assert no_token.status_code == 400  # CSRF rules stay
    key = new_key(app, "alice")
    ok = client.post("/signin", data={"csrf_token": token, "api_key": key, "next": "//evil.example/"})
    assert ok.status_code == 303 and ok.headers["Location"] == "/"  # no open redirect
    assert client.get("/batches").status_code == 200
    assert client.get("/api/v1/jobs/" + "a" * 32).status_code == 404  # the cookie works for the API
    with session_scope(app.extensions["humanseg"].sessions) as session:
        revoke_key(session, "alice")
    assert client.get("/batches").status_code == 303  # a revoked key's session ends


def test_pages_say_who_is_signed_in_and_sign_out_works(app):
    client = app.test_client()
    form = client.get("/signin")
    assert b'class="keyfield"' in form.data and b"Sign out" not in form.data
    token = re.search(rb'name="csrf_token" value="([^"]+)"', form.data).group(1).decode()
    client.post("/signin", data={"csrf_token": token, "api_key": new_key(app, "carol"), "next": "/batches"})
    page = client.get("/batches").get_data(as_text=True)
    assert "Signed in as carol" in page and 'id="sign-out"' in page
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    out = client.post("/signout", data={"csrf_token": token})
    assert out.status_code == 303 and client.get("/batches").status_code == 303  # signed out: back to sign-in
    # A key sent per request (the API) is not a signed-in page visitor.
    api_page = client.get("/batches", headers=bearer(new_key(app, "dave"))).get_data(as_text=True)
    assert "Signed in as" not in api_page


def test_batches_belong_to_their_key(app):
    client = app.test_client()
    alice, bob, admin = new_key(app, "alice"), new_key(app, "bob"), new_key(app, "ops", admin=True)
    made = upload(client, bearer(alice), n=2)
    assert made.status_code == 202, made.json
    batch_id, job_id = made.json["batch_id"], made.json["jobs"][0]["id"]
    for headers in (bearer(bob), {"X-Api-Key": bob}):
        assert client.get(f"/api/v1/batches/{batch_id}", headers=headers).status_code == 404
        assert client.get(f"/api/v1/jobs/{job_id}", headers=headers).status_code == 404
        assert client.get(f"/api/v1/jobs/{job_id}/original", headers=headers).status_code == 404
        assert client.delete(f"/api/v1/jobs/{job_id}", headers=headers).status_code == 404
    # Appending to another key's batch is refused like a missing batch.
    data = {"images": [(io.BytesIO(si.jpeg()), "x.jpg")], "batch_id": batch_id}
    appended = client.post("/api/v1/jobs", data=data, headers=bearer(bob),
                           content_type="multipart/form-data")
    assert appended.status_code == 404
    assert client.get(f"/api/v1/batches/{batch_id}", headers={"X-Api-Key": alice}).json["counts"]
    assert client.get(f"/api/v1/batches/{batch_id}", headers=bearer(admin)).status_code == 200
    page = client.get("/batches", headers=bearer(bob))
    assert page.status_code == 200 and batch_id.encode() not in page.data
    assert batch_id.encode() in client.get("/batches", headers=bearer(alice)).data
    assert client.delete(f"/api/v1/jobs/{job_id}", headers=bearer(alice)).status_code == 200
    assert client.delete(f"/api/v1/batches/{batch_id}", headers=bearer(admin)).status_code == 200


def test_revoked_or_unknown_key_is_401(app):
    client = app.test_client()
    key = new_key(app, "temp")
    assert client.get("/api/v1/jobs/" + "a" * 32, headers=bearer(key)).status_code == 404
    with session_scope(app.extensions["humanseg"].sessions) as session:
        revoke_key(session, "temp")
    resp = client.get("/api/v1/jobs/" + "a" * 32, headers=bearer(key))
    assert resp.status_code == 401 and resp.json["error"]["code"] == "invalid_api_key"
    assert client.get("/api/v1/jobs/" + "a" * 32, headers=bearer("hsk_" + "x" * 43)).status_code == 401


def test_open_server_needs_no_key_but_refuses_a_wrong_one(tmp_path, db_url, redis_url, private_queue):
    app = make(tmp_path, db_url, redis_url, private_queue)
    try:
        client = app.test_client()
        assert upload(client, {}).status_code == 202
        assert client.get("/batches").status_code == 200
        assert client.get("/batches", headers=bearer("hsk_wrong")).status_code == 401
    finally:
        app.extensions["humanseg"].engine.dispose()


def test_cli_prints_the_key_once_and_stores_only_its_hash(tmp_path):
    from humanseg.core import migrate
    from humanseg.core.db import make_engine, make_sessionmaker

    url = f"sqlite:///{tmp_path / 'k.db'}"
    migrate.upgrade(url)
    env = {k: v for k, v in os.environ.items() if not k.startswith("HUMANSEG_")}
    env.update(HUMANSEG_DATA_DIR=str(tmp_path), HUMANSEG_DATABASE_URL=url)

    def cli(*args):
        return subprocess.run([sys.executable, "-m", "humanseg.cli", "keys", *args], env=env, cwd=ROOT,
                              capture_output=True, text=True, timeout=120, check=False)

    made = cli("create", "ci-bot", "--images-per-day", "7")
    assert made.returncode == 0, made.stderr
    key = made.stdout.strip()
    assert key.startswith("hsk_") and len(key) > 40
    engine = make_engine(url)
    try:
        with make_sessionmaker(engine)() as session:
            row = session.scalar(select(ApiKey))
            assert row.key_hash == hash_key(key) and key not in (row.prefix, row.key_hash)
            assert row.images_per_day == 7 and not row.admin
        listed = cli("list")
        assert "ci-bot" in listed.stdout and key not in listed.stdout
        assert cli("revoke", "ci-bot").returncode == 0
        assert cli("revoke", "ci-bot").returncode == 1  # nothing active left by that name
        with make_sessionmaker(engine)() as session:
            assert session.scalar(select(ApiKey)).revoked_at is not None
    finally:
        engine.dispose()


def test_up_says_whether_it_is_open():
    from humanseg.up import access_note

    assert access_note(make_settings(host="127.0.0.1")).startswith("open: no API key needed")
    assert "humanseg keys create" in access_note(make_settings(host="0.0.0.0"))


def test_cli_keys_without_a_database_says_so_in_one_line_and_creates_nothing(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("HUMANSEG_")}
    done = subprocess.run([sys.executable, "-m", "humanseg.cli", "keys", "list"], env=env, cwd=tmp_path,
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "no humanseg database at sqlite:///var/humanseg.db" in lines[0]
    assert "humanseg db upgrade" in lines[0] and not (tmp_path / "var").exists()
    # A database without our tables (someone else's, or an empty file) gets the same kind of answer.
    (tmp_path / "var").mkdir()
    (tmp_path / "var" / "humanseg.db").write_bytes(b"")
    done = subprocess.run([sys.executable, "-m", "humanseg.cli", "keys", "create", "x"], env=env, cwd=tmp_path,
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 2 and "has no humanseg tables" in done.stderr and "Traceback" not in done.stderr


def test_cli_help_lists_every_command():
    done = subprocess.run([sys.executable, "-m", "humanseg.cli", "--help"], cwd=ROOT, capture_output=True,
                          text=True, timeout=60, check=True)
    for command in ("up", "keys", "segment", "remote", "evaluate", "train", "teach"):
        assert f"\n    {command} " in done.stdout, command
