"""/openapi.json stays true: it is a valid OpenAPI 3.1 document, every API rule of the URL map is
in it (and nothing else), and real answers of the app match its schemas, statuses and headers."""

from __future__ import annotations

import io
import re

import jsonschema
import pytest
import support_images as si
from gallery_support import add_batch, make_app
from openapi_spec_validator import validate
from referencing import Registry, Resource

from humanseg.core.models import JobStatus, new_id

# Page routes that are documented too (the composite PNG is linked from outside the pages).
DOCUMENTED_PAGES = {"/healthz", "/readyz", "/openapi.json", "/docs", "/jobs/<job_id>/composite.png"}
# Answer headers of ours: when one is sent, the document must declare it for that answer.
OUR_HEADERS = ("Location", "Preference-Applied", "Idempotent-Replayed", "X-Job-Id",
               "Content-Location", "Retry-After", "WWW-Authenticate")


@pytest.fixture
def app(tmp_path, monkeypatch):
    # No broker: jobs stay queued, /segment answers 202 at once, /readyz answers 503.
    return make_app(tmp_path, monkeypatch, segment_wait_seconds=0,
                    webhook_allow_hosts=("127.0.0.1",))


@pytest.fixture
def doc(app):
    return app.test_client().get("/openapi.json").json


def _template(rule: str) -> str:
    return re.sub(r"<(?:[a-z]+:)?([a-z_]+)>", r"{\1}", rule)


def test_the_document_is_valid_openapi_3_1(doc):
    validate(doc)
    assert doc["openapi"] == "3.1.0"


def test_the_document_and_the_url_map_name_the_same_operations(app, doc):
    served = set()
    for rule in app.url_map.iter_rules():
        if rule.rule.startswith("/api/") or rule.rule in DOCUMENTED_PAGES:
            served |= {(m.lower(), _template(rule.rule)) for m in rule.methods - {"HEAD", "OPTIONS"}}
    documented = {(m, path) for path, ops in doc["paths"].items() for m in ops}
    assert served == documented


def _strict(node, in_allof: bool = False):
    """A copy of a schema in which objects may carry only the properties they declare.

    Parts of an allOf are left open: the allOf that holds them closes the whole.
    """
    if isinstance(node, list):
        return [_strict(n, in_allof) for n in node]
    if not isinstance(node, dict):
        return node
    out = {k: v if k == "enum" else _strict(v, in_allof or k == "allOf") for k, v in node.items()}
    if "allOf" in node or ("properties" in node and not in_allof):
        out["unevaluatedProperties"] = False
    return out


class Checker:
    """Checks answers against the document and records which operations were seen."""

    def __init__(self, doc):
        self.doc = doc
        composed = {m["$ref"] for s in _walk(doc) if "allOf" in s for m in s["allOf"] if "$ref" in m}
        strict = _strict(doc)
        for ref in composed:  # composed parts are checked by the allOf that holds them
            name = ref.rsplit("/", 1)[1]
            strict["components"]["schemas"][name].pop("unevaluatedProperties", None)
        self.strict = strict
        self.registry = Registry().with_resource("urn:doc", Resource.from_contents(
            {**strict, "$schema": "https://json-schema.org/draft/2020-12/schema"}))
        self.seen: set[tuple[str, str]] = set()

    def __call__(self, resp, method: str, path: str, status: int | None = None):
        op = self.strict["paths"][path][method]
        resp.get_data()  # read it all, then close: a streamed file is closed with the answer
        resp.close()
        code = str(resp.status_code)
        assert status is None or resp.status_code == status, resp.get_data(as_text=True)[:300]
        assert code in op["responses"], f"{method} {path}: {code} is not documented"
        answer = op["responses"][code]
        for name in OUR_HEADERS:
            if name in resp.headers:
                assert name in answer.get("headers", {}), f"{method} {path} {code}: header {name}"
        media = resp.mimetype
        if answer.get("content"):
            assert media in answer["content"], f"{method} {path} {code}: {media}"
            schema = answer["content"][media].get("schema", {})
            if media == "application/json":
                validator = jsonschema.Draft202012Validator(
                    {"$ref": "urn:doc#" + _pointer(path, method, code, media)},
                    registry=self.registry)
                validator.validate(resp.json)
            elif schema.get("format") == "binary":
                assert resp.get_data()
        self.seen.add((method, path))
        return resp


def _pointer(path, method, code, media) -> str:
    esc = path.replace("~", "~0").replace("/", "~1")
    media = media.replace("/", "~1")
    return f"/paths/{esc}/{method}/responses/{code}/content/{media}/schema"


def _walk(node):
    if isinstance(node, dict):
        yield node
        for v in node.values():
            yield from _walk(v)
    elif isinstance(node, list):
        for v in node:
            yield from _walk(v)


def _upload(client, *images, headers=None, **fields):
    data = {"images": [(io.BytesIO(b), f"p{i}.jpg") for i, b in enumerate(images)], **fields}
    return client.post("/api/v1/jobs", data=data, headers=headers or {},
                       content_type="multipart/form-data")


def test_answers_of_the_app_match_the_document(app, doc):
    check, client = Checker(doc), app.test_client()
    jobs = "/api/v1/jobs"
    made = check(_upload(client, si.jpeg(), si.png(), batch_name="doc"), "post", jobs, 202)
    check(_upload(client, si.jpeg(), headers={"Idempotency-Key": "k"}), "post", jobs, 202)
    check(_upload(client, si.jpeg(), headers={"Idempotency-Key": "k"}), "post", jobs, 202)
    check(_upload(client, si.png(), headers={"Idempotency-Key": "k"}), "post", jobs, 422)
    check(_upload(client, b"text, not an image"), "post", jobs, 415)
    check(client.post(jobs, data={}), "post", jobs, 400)
    check(_upload(client, si.jpeg(), batch_id=new_id()), "post", jobs, 404)
    check(client.post(jobs, data={}, headers={"Origin": "https://evil.example"}), "post", jobs, 403)
    check(client.get(f"/api/v1/jobs/{new_id()}", headers={"Host": "evil.example"}),
          "get", "/api/v1/jobs/{job_id}", 400)
    check(client.get("/api/v1/jobs/" + "a" * 5000), "get", "/api/v1/jobs/{job_id}", 414)

    queued = made.json["jobs"][0]["id"]
    one = "/api/v1/jobs/{job_id}"
    check(client.get(f"/api/v1/jobs/{queued}"), "get", one, 200)
    check(client.get(f"/api/v1/jobs/{new_id()}"), "get", one, 404)
    result = one + "/{kind}"
    check(client.get(f"/api/v1/jobs/{queued}/mask"), "get", result, 409)
    check(client.get(f"/api/v1/jobs/{queued}/original"), "get", result, 200)
    check(client.get(f"/api/v1/jobs/{queued}/nothing"), "get", result, 404)
    check(client.post(f"/api/v1/jobs/{queued}/retry"), "post", one + "/retry", 409)
    check(client.post(f"/api/v1/jobs/{queued}/cancel"), "post", one + "/cancel", 200)
    check(client.get(f"/api/v1/jobs/{queued}/mask"), "get", result, 409)
    check(client.post(f"/api/v1/jobs/{queued}/retry"), "post", one + "/retry", 202)

    batch_id, (done, _) = add_batch(app, ["a.jpg", "b.jpg"], name="finished")
    check(client.get(f"/api/v1/jobs/{done}"), "get", one, 200)
    check(client.get(f"/api/v1/jobs/{done}/mask"), "get", result, 200)
    check(client.get(f"/api/v1/jobs/{done}/cutout?bg=%23ffffff&format=jpeg"), "get", result, 200)
    check(client.get(f"/api/v1/jobs/{done}/cutout?format=gif"), "get", result, 400)
    check(client.post(f"/api/v1/jobs/{done}/cancel"), "post", one + "/cancel", 409)
    check(client.get(f"/jobs/{done}/composite.png?bg=%2300ff00"), "get", "/jobs/{job_id}/composite.png", 200)
    check(client.get(f"/jobs/{queued}/composite.png"), "get", "/jobs/{job_id}/composite.png", 404)

    check(client.get("/api/v1/batches?limit=1"), "get", "/api/v1/batches", 200)
    check(client.get("/api/v1/batches?cursor=x"), "get", "/api/v1/batches", 400)
    check(client.get("/api/v1/jobs?status=succeeded&limit=1"), "get", jobs, 200)
    check(client.get("/api/v1/jobs?status=nope"), "get", jobs, 400)
    check(client.get(f"/api/v1/jobs?batch_id={new_id()}"), "get", jobs, 404)
    batch = "/api/v1/batches/{batch_id}"
    check(client.get(f"/api/v1/batches/{batch_id}?limit=1"), "get", batch, 200)
    check(client.get(f"/api/v1/batches/{batch_id}?limit=0"), "get", batch, 200)
    check(client.get(f"/api/v1/batches/{batch_id}?limit=-1"), "get", batch, 400)
    check(client.get(f"/api/v1/batches/{new_id()}"), "get", batch, 404)
    check(client.get(f"/api/v1/batches/{batch_id}/archive"), "get", batch + "/archive", 200)
    check(client.get(f"/api/v1/batches/{made.json['batch_id']}/archive"), "get", batch + "/archive", 409)
    check(client.post(f"/api/v1/batches/{made.json['batch_id']}/cancel"), "post", batch + "/cancel", 200)
    check(client.post(f"/api/v1/batches/{new_id()}/cancel"), "post", batch + "/cancel", 404)
    check(client.post(f"/api/v1/batches/{made.json['batch_id']}/retry?status=cancelled"),
          "post", batch + "/retry", 202)
    check(client.post(f"/api/v1/batches/{batch_id}/retry?status=x"), "post", batch + "/retry", 400)
    check(client.get(f"/api/v1/batches/{batch_id}/webhooks"), "get", batch + "/webhooks", 200)
    check(client.get(f"/api/v1/batches/{batch_id}/webhooks?limit=x"), "get", batch + "/webhooks", 400)
    check(client.get(f"/api/v1/batches/{new_id()}/webhooks"), "get", batch + "/webhooks", 404)
    check(_upload(client, si.jpeg(), webhook_url="http://10.0.0.1/"), "post", jobs, 400)
    refused = check(_upload(client, si.jpeg(), model="best"), "post", jobs, 400)
    assert refused.json["error"]["code"] == "unknown_model" and "fast" in refused.json["error"]["choices"]
    models = check(client.get("/api/v1/models"), "get", "/api/v1/models", 200).json
    assert models["default"] == "v4" and [m["name"] for m in models["models"]] == ["fast", "modnet", "v4"]
    check(client.post("/api/v1/segment", data={"model": "best"}), "post", "/api/v1/segment", 400)
    hooked = check(_upload(client, si.jpeg(), webhook_url="http://127.0.0.1:9/h"), "post", jobs, 202)
    hooked_batch = hooked.json["batch_id"]
    check(client.post(f"/api/v1/batches/{hooked_batch}/cancel"), "post", batch + "/cancel", 200)
    records = check(client.get(f"/api/v1/batches/{hooked_batch}/webhooks"), "get",
                    batch + "/webhooks", 200).json
    assert sorted(d["event"] for d in records["deliveries"]) == ["batch.finished", "job.finished"]
    check(client.get(f"/api/v1/batches/{hooked_batch}"), "get", batch, 200)

    seg = client.post("/api/v1/segment", data={"image": (io.BytesIO(si.jpeg()), "s.jpg")},
                      content_type="multipart/form-data")
    check(seg, "post", "/api/v1/segment", 202)
    check(client.post("/api/v1/segment", data={"output": "nope"}), "post", "/api/v1/segment", 400)

    bg = check(client.post("/api/v1/backgrounds", data={"image": (io.BytesIO(si.jpeg()), "b.jpg")},
                           content_type="multipart/form-data"), "post", "/api/v1/backgrounds", 201)
    one_bg = "/api/v1/backgrounds/{background_id}"
    check(client.get(bg.json["url"]), "get", one_bg, 200)
    check(client.delete(bg.json["url"]), "delete", one_bg, 200)
    check(client.get(bg.json["url"]), "get", one_bg, 404)

    check(client.delete(f"/api/v1/jobs/{done}"), "delete", one, 200)
    check(client.delete(f"/api/v1/jobs/{done}"), "delete", one, 404)
    check(client.delete(f"/api/v1/batches/{batch_id}"), "delete", batch, 200)
    check(client.delete(f"/api/v1/batches/{batch_id}"), "delete", batch, 404)

    check(client.get("/healthz"), "get", "/healthz", 200)
    check(client.get("/readyz"), "get", "/readyz", 503)  # no broker here
    check(client.get("/openapi.json"), "get", "/openapi.json", 200)
    page = check(client.get("/docs"), "get", "/docs", 200).get_data(as_text=True)
    assert all(f'id="{o["operationId"]}"' in page for p in doc["paths"].values() for o in p.values())
    assert all(f"<code>{event}</code>" in page for event in doc["webhooks"])
    # Every operation of the document was answered at least once above.
    assert check.seen == {(m, p) for p, ops in doc["paths"].items() for m in ops}


def test_statuses_in_the_document_match_the_code(doc):
    assert doc["components"]["schemas"]["JobStatus"]["enum"] == [s.value for s in JobStatus]


# Each table of the code is in the document: a new result kind, status, option, event or error
# code added to the code and not to the document fails here.

def _error_codes(doc) -> set[tuple[str, str, int, str]]:
    """(method, path, status, code) for every error code an operation documents."""
    found = set()
    for path, ops in doc["paths"].items():
        for method, op in ops.items():
            for status, answer in op["responses"].items():
                schema = answer.get("content", {}).get("application/json", {}).get("schema", {})
                for part in schema.get("allOf", []):
                    codes = part.get("properties", {}).get("error", {}).get("properties", {}).get("code", {})
                    found |= {(method, path, int(status), c) for c in codes.get("enum", [])}
    return found


def _body(doc, path):
    return doc["paths"][path]["post"]["requestBody"]["content"]["multipart/form-data"]["schema"]["properties"]


def test_every_result_kind_is_in_the_document(doc):
    from humanseg.core.results import RESULTS
    from humanseg.core.variants import ORIGINAL

    names = [k.name for k in RESULTS]
    assert doc["components"]["parameters"]["Kind"]["schema"]["enum"] == [*names, ORIGINAL]
    # the served JSON has its keys sorted: properties compare as sets
    assert set(doc["components"]["schemas"]["Job"]["properties"]["urls"]["properties"]) == \
        {"self", *names, ORIGINAL}
    assert _body(doc, "/api/v1/segment")["output"]["enum"] == [k.name for k in RESULTS if k.full_size]
    assert _body(doc, "/api/v1/jobs")["outputs"]["items"]["enum"] == [k.name for k in RESULTS if k.on_request]


def test_every_status_is_in_the_document(doc):
    from humanseg.web.jobs_control import RETRYABLE

    statuses = [s.value for s in JobStatus]
    schemas = doc["components"]["schemas"]
    assert schemas["JobStatus"]["enum"] == statuses
    assert set(schemas["Counts"]["properties"]) == set(statuses)
    listed = {p["name"]: p for p in doc["paths"]["/api/v1/jobs"]["get"]["parameters"] if "name" in p}
    assert listed["status"]["schema"]["enum"] == statuses
    retry = {p["name"]: p for p in doc["paths"]["/api/v1/batches/{batch_id}/retry"]["post"]["parameters"]
             if "name" in p}["status"]["schema"]
    assert {s.value for s in RETRYABLE} | {",".join(s.value for s in RETRYABLE)} == set(retry["enum"])
    assert retry["default"] in retry["enum"]


def test_every_delivery_status_is_in_the_document(doc):
    from humanseg.core.models import DeliveryStatus

    delivery = doc["components"]["schemas"]["Delivery"]["properties"]["status"]
    assert delivery["enum"] == [s.value for s in DeliveryStatus]


def test_every_result_option_is_in_the_document(doc):
    from humanseg.core.results import ORIGINAL_KIND, RESULTS
    from humanseg.core.variants import OPTION_NAMES

    params = doc["components"]["parameters"]
    documented = {p["name"] for key, p in params.items() if key.startswith("Option_")}
    assert documented == set(OPTION_NAMES)
    assert all(params[f"Option_{n}"]["description"] for n in OPTION_NAMES)
    assert {o for k in RESULTS for o in k.options} | set(ORIGINAL_KIND.options) <= documented
    for path in ("/api/v1/jobs/{job_id}/{kind}", "/api/v1/batches/{batch_id}/archive"):
        refs = {p.get("$ref", "").rsplit("_", 1)[-1] for p in doc["paths"][path]["get"]["parameters"]}
        assert set(OPTION_NAMES) <= refs, path
    assert set(OPTION_NAMES) <= set(_body(doc, "/api/v1/segment"))


def test_every_webhook_event_is_in_the_document(doc):
    from humanseg.core.webhooks import EVENTS

    assert set(doc["webhooks"]) == set(EVENTS)
    assert doc["components"]["schemas"]["Event"]["properties"]["type"]["enum"] == list(EVENTS)
    assert _body(doc, "/api/v1/jobs")["webhook_events"]["items"]["enum"] == list(EVENTS)


def _raised_codes(paths):
    """(status or None, code) of every error raised with literal arguments in these files."""
    import ast

    # call name -> (where its status is: an argument's index, or a fixed status; the code's index)
    calls = {"ErrorAnswer": (("arg", 0), 1), "error_response": (("arg", 0), 1),
             "RecordNotFound": (("fixed", 404), 0), "ImageError": (("fixed", None), 0)}
    for path in paths:
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.Call):
                continue
            name = getattr(node.func, "id", getattr(node.func, "attr", ""))
            if name not in calls or len(node.args) <= calls[name][1]:
                continue
            (how, where), at = calls[name]
            status = where
            if how == "arg":  # a literal status, or None when it is computed (any status will do)
                arg = node.args[where]
                status = arg.value if isinstance(arg, ast.Constant) else None
            code = node.args[at]
            for leaf in (code.body, code.orelse) if isinstance(code, ast.IfExp) else (code,):
                if isinstance(leaf, ast.Constant) and isinstance(leaf.value, str):
                    yield status, leaf.value, f"{path.name}:{node.lineno}"


def test_every_error_code_the_code_raises_is_in_the_document(doc):
    from pathlib import Path

    import humanseg.web

    web_dir = Path(humanseg.web.__file__).parent
    raised = list(_raised_codes(sorted(web_dir.rglob("*.py"))))
    assert len(raised) > 20  # the scan finds the errors (it would pass vacuously otherwise)
    documented = {(status, code) for _, _, status, code in _error_codes(doc)}
    missing = [(s, c, where) for s, c, where in raised
               if ((s, c) not in documented if s else all(c != code for _, code in documented))]
    assert not missing, f"raised but not in /openapi.json: {missing}"


def test_every_image_rejection_is_documented_with_its_status(doc):
    from pathlib import Path

    import humanseg.core.images
    from humanseg.web.errors import IMAGE_ERROR_STATUS

    codes = {c for _, c, _ in _raised_codes([Path(humanseg.core.images.__file__)])}
    assert {"empty_file", "unsupported_format"} <= codes  # the scan finds core.images' codes
    assert set(IMAGE_ERROR_STATUS) <= codes  # the table names real codes
    documented = _error_codes(doc)
    for method, path in [("post", "/api/v1/jobs"), ("post", "/api/v1/segment"), ("post", "/api/v1/backgrounds")]:
        for code in codes | {"invalid_files"}:
            assert (method, path, IMAGE_ERROR_STATUS.get(code, 400), code) in documented, (path, code)


def test_every_parameter_is_explained_and_the_quick_start_names_its_files_right(app, doc):
    import re

    def resolved(p):
        return doc["components"]["parameters"][p["$ref"].rsplit("/", 1)[1]] if "$ref" in p else p

    unexplained = [f"{method.upper()} {path} ?{p['name']}" for path, item in doc["paths"].items()
                   for method, operation in item.items() for p in map(resolved, operation.get("parameters", []))
                   if not p.get("description")]
    assert unexplained == []  # /docs shows each one's meaning next to it
    page = app.test_client().get("/docs").get_data(as_text=True)
    for name, fmt in re.findall(r"curl -o \S+?\.(\w+) '[^']*format=(\w+)", page):
        assert {"jpg": "jpeg"}.get(name, name) == fmt, (name, fmt)  # a JPEG is not saved as .png
    assert re.search(r"curl -o \S+ '[^']*format=jpeg", page)
