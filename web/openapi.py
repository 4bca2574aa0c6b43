"""The OpenAPI 3.1 document of the JSON API (/openapi.json) and its reference page (/docs).

One small builder per resource (_list_paths, _job_paths, _batch_paths, ...) makes its paths;
enums come from the code's own tables (see web/openapi_parts.py). tests/web/test_openapi.py
keeps it true: every API rule of the URL map is here and every operation here is a rule;
answers of the running API are checked against the schemas; each table is in the document.
"""

from __future__ import annotations

import copy
import functools
from typing import Any

from flask import Blueprint, jsonify, render_template
from flask.wrappers import Response

from humanseg.core.models import JobStatus
from humanseg.core.variants import OPTION_NAMES
from humanseg.core.webhooks import EVENTS
from humanseg.web.jobs_control import RETRYABLE
from humanseg.web.openapi_parts import (
    COMMON,
    FULL_SIZE,
    HEADERS,
    IMAGE_REJECTIONS,
    INT,
    OPTION_PARAMS,
    OUTPUTS,
    PARAMETERS,
    SCHEMAS,
    STATUSES,
    STR,
    UNSAFE,
    Obj,
    error,
    obj,
    ref,
)

bp = Blueprint("openapi", __name__)

VERSION = "1.0.0"
WEBHOOK_HEADERS = [
    ("webhook-id", "the delivery's id, the same on every retry"),
    ("webhook-timestamp", "unix seconds"),
    ("webhook-signature", ("v1,<base64 HMAC-SHA256 over id.timestamp.body, keyed with the "
                           "secret's bytes>")),
]
JSON = "application/json"
IMAGES = {t: {"schema": {"type": "string", "format": "binary"}}
          for t in ("image/png", "image/jpeg", "image/webp")}
REDIRECT = {"description": "with S3 storage: to a presigned URL",
            "headers": {"Location": ref("headers", "Location")}}
Err = tuple[int, list[str], str]  # (status, codes, why)
STORAGE: Err = (503, ["storage_unavailable"], "storage is unavailable; try again")
JOB_404: Err = (404, ["job_not_found"], "no such job")
BATCH_404: Err = (404, ["batch_not_found"], "no such batch")
BG_404: Err = (404, ["background_not_found"], "no such background")
PAGE_MAX = 500  # the most items one page of a list answers
MODEL_FIELD = {**STR, "description": "the model that makes the results: a name from GET /api/v1/models "
               "(default: its default); an unknown name is 400 unknown_model with the choices"}


def ok(description: str, schema: Obj | None = None, headers: Obj | None = None,
       content: Obj | None = None) -> Obj:
    """A success answer (JSON with `schema`, or the given content)."""
    out: Obj = {"description": description}
    if schema is not None:
        out["content"] = {JSON: {"schema": schema}}
    if content is not None:
        out["content"] = content
    if headers:
        out["headers"] = headers
    return out


def _error_answers(errors: list[Err], api: bool, unsafe: bool) -> Obj:
    """Error answers by status: the operation's own merged with those every API request may get."""
    merged: dict[int, tuple[list[str], list[str], Obj]] = {}
    own = [(status, codes, text, None) for status, codes, text in errors]
    for status, codes, text, headers in own + ((COMMON + (UNSAFE if unsafe else [])) if api else []):
        found = merged.setdefault(status, ([], [], {}))
        found[0].extend(c for c in codes if c not in found[0])
        found[1].append(text)
        found[2].update(headers or {})
    return {str(status): error(codes, "; ".join(texts), headers or None)
            for status, (codes, texts, headers) in sorted(merged.items())}


def op(op_id: str, summary: str, answers: dict[int, Obj], errors: list[Err],
       *, params: list[Obj] | None = None, body: Obj | None = None, unsafe: bool = False,
       api: bool = True) -> Obj:
    """One operation; its error answers merged with those every API request may get."""
    responses: Obj = {str(code): answer for code, answer in answers.items()}
    responses.update(_error_answers(errors, api, unsafe))
    out: Obj = {"operationId": op_id, "summary": summary, "responses": responses}
    if params:
        out["parameters"] = params
    if body:
        out["requestBody"] = body
    return out


def page_op(op_id: str, summary: str, answers: dict[int, Obj], *, params: list[Obj] | None = None) -> Obj:
    """An operation outside the API's error handling (health checks, this document, pages)."""
    out: Obj = {"operationId": op_id, "summary": summary}
    if params:
        out["parameters"] = params
    out["responses"] = {str(code): answer for code, answer in answers.items()}
    return out


def multipart(props: Obj, required: list[str], encoding: Obj | None = None) -> Obj:
    """A multipart/form-data request body."""
    media: Obj = {"schema": obj(props, required)}
    if encoding:
        media["encoding"] = encoding
    return {"required": True, "content": {"multipart/form-data": media}}


def query(name: str, schema: Obj, description: str = "") -> Obj:
    """A query parameter."""
    out: Obj = {"name": name, "in": "query", "schema": schema}
    if description:
        out["description"] = description
    return out


def limit(minimum: int, default: int | None = None, description: str = "") -> Obj:
    """The ?limit= of a page (at most PAGE_MAX)."""
    schema: Obj = {"type": "integer", "minimum": minimum, "maximum": PAGE_MAX}
    if default is not None:
        schema["default"] = default
    return query("limit", schema, description)


def enum(values: list[str], default: str | None = None) -> Obj:
    """A string schema with only these values."""
    return {"type": "string", "enum": values, **({} if default is None else {"default": default})}


def array_of(values: list[str], description: str) -> Obj:
    """A repeated (or comma-separated) field of these values."""
    return {"type": "array", "items": enum(values), "description": description}


BINARY = {"type": "string", "format": "binary"}
JOB, BATCH, BG = ref("parameters", "JobId"), ref("parameters", "BatchId"), ref("parameters", "BackgroundId")
LOCATION = {"Location": ref("headers", "Location")}
CURSOR = "next_cursor of the page before"


def _image_errors(*more: Err) -> list[Err]:
    found = [(s, c, "the upload is refused; nothing is stored") for s, c in IMAGE_REJECTIONS.items()]
    return [*found, (413, ["request_too_large"], "the body is over the server's limit"),
            (408, ["request_timeout"], "the body arrived too slowly"), *more]


def _deleted(props: Obj) -> Obj:
    return ok("what was deleted", obj({"deleted": obj(props)}))


def _list_paths() -> Obj:
    """The two lists (batches, jobs); POST on the jobs list is the upload."""
    cursor = query("cursor", STR, CURSOR)
    listing: list[Err] = [(400, ["bad_parameter"], "a bad limit, cursor or status")]
    return {
        "/api/v1/batches": {"get": op(
            "listBatches", "Batches, newest first, with counts by status",
            {200: ok("a page of batches", ref("schemas", "BatchList"))}, listing,
            params=[limit(1, 50, "batches per page, 1 to 500"), cursor])},
        "/api/v1/jobs": {"get": op(
            "listJobs", "Jobs, newest first, optionally of one status or batch",
            {200: ok("a page of jobs", ref("schemas", "JobList"))}, [*listing, BATCH_404],
            params=[limit(1, 100, "jobs per page, 1 to 500"), cursor,
                    query("status", enum(STATUSES), "only jobs in this status"),
                    query("batch_id", STR, "only the jobs of this batch (a batch's public id)")]),
            "post": _create_jobs()},
    }


def _upload_body() -> Obj:
    return multipart({
        "images": {"type": "array", "items": BINARY, "description": "1..max_files JPEG/PNG/WebP"},
        "batch_name": STR, "batch_id": {**STR, "description": "add to this batch"},
        "outputs": array_of(OUTPUTS, "results the worker makes too (also comma-separated)"),
        "model": MODEL_FIELD,
        "webhook_url": {**STR, "description": "a new batch's callback (public http(s) address)"},
        "webhook_events": array_of(list(EVENTS), "events wanted (default: all; also comma-separated)"),
        "webhook_secret": {**STR, "description": "whsec_ + base64 of 24..64 bytes; "
                           "default: the server makes one and answers it once"},
    }, ["images"])


def _create_jobs() -> Obj:
    created = ok("the batch and its jobs (200: all finished while waiting)", ref("schemas", "Created"),
                 {**LOCATION, "Preference-Applied": ref("headers", "PreferenceApplied"),
                  "Idempotent-Replayed": ref("headers", "IdempotentReplayed")})
    return op("createJobs", "Upload images; one job per image", {200: created, 202: created},
              _image_errors((400, ["bad_parameter", "bad_idempotency_key", "webhook_url_refused", "unknown_model"],
                             "a bad field or key, a callback to a non-public address, or a model this "
                             "server does not have (the answer lists the choices)"),
                            (404, ["batch_not_found"], "batch_id names no batch"),
                            (409, ["idempotency_key_in_progress"], "the key's first request runs"),
                            (413, ["request_too_many_pixels"], "the images add up to too many pixels"),
                            (422, ["idempotency_key_reused"], "the key was sent with another body"),
                            STORAGE),
              params=[ref("parameters", "Prefer"), ref("parameters", "IdempotencyKey")],
              body=_upload_body(), unsafe=True)


def _job_paths() -> Obj:
    """One job: read, delete, its results, cancel and retry."""
    job = ok("the job", ref("schemas", "Job"))
    return {
        "/api/v1/jobs/{job_id}": {
            "get": op("getJob", "A job's status, timings and result URLs", {200: job}, [JOB_404], params=[JOB]),
            "delete": op("deleteJob", "Delete a job with its original and results",
                         {200: _deleted({"job_id": STR, "batch_id": STR, "jobs": INT, "objects": INT})},
                         [JOB_404, STORAGE], params=[JOB], unsafe=True)},
        "/api/v1/jobs/{job_id}/{kind}": {"get": op(
            "getJobResult", "One result or the original, with result options",
            {200: ok("the image", content=IMAGES), 302: REDIRECT},
            [(400, ["bad_parameter"], "a refused option"),
             (404, ["job_not_found", "not_found", "result_missing"], "no such job, kind or object"),
             (409, ["not_ready", "job_failed", "job_cancelled"], "the job has not succeeded"),
             STORAGE], params=[JOB, ref("parameters", "Kind"), *OPTION_PARAMS])},
        "/api/v1/jobs/{job_id}/cancel": {"post": op(
            "cancelJob", "Cancel a queued or running job (late results are discarded)",
            {200: job}, [JOB_404, (409, ["job_finished"], "the job already finished")],
            params=[JOB], unsafe=True)},
        "/api/v1/jobs/{job_id}/retry": {"post": op(
            "retryJob", "Queue a failed or cancelled job again",
            {202: ok("the job, queued", ref("schemas", "Job"), LOCATION)},
            [JOB_404, (409, ["not_retryable"], "the job is not failed or cancelled")],
            params=[JOB], unsafe=True)},
    }


def _batch_paths() -> Obj:
    """One batch: read (paged), delete, its archive, cancel, retry and webhook deliveries."""
    return {
        "/api/v1/batches/{batch_id}": {"get": _get_batch(), "delete": op(
            "deleteBatch", "Delete a batch with all its jobs and objects",
            {200: _deleted({"batch_id": STR, "jobs": INT, "objects": INT})},
            [BATCH_404, STORAGE], params=[BATCH], unsafe=True)},
        "/api/v1/batches/{batch_id}/archive": {"get": _batch_archive()},
        "/api/v1/batches/{batch_id}/cancel": {"post": op(
            "cancelBatch", "Cancel every queued or running job of a batch",
            {200: ok("how many were cancelled", _change("cancelled"))}, [BATCH_404], params=[BATCH], unsafe=True)},
        "/api/v1/batches/{batch_id}/retry": {"post": _retry_batch()},
        "/api/v1/batches/{batch_id}/webhooks": {"get": op(
            "getBatchWebhooks", "The batch's callback and its deliveries, newest first",
            {200: ok("the deliveries", ref("schemas", "Deliveries"))},
            [(400, ["bad_parameter"], "a bad limit"), BATCH_404],
            params=[BATCH, limit(1, 100, "deliveries per page, 1 to 500")])},
    }


def _change(count: str) -> Obj:
    """What a batch-wide cancel or retry answers: the batch, the jobs changed and how many."""
    return {"allOf": [ref("schemas", "BatchChange"), obj({count: INT})]}


def _get_batch() -> Obj:
    return op("getBatch", "Counts by status, progress and a page of jobs",
              {200: ok("the batch", ref("schemas", "BatchPage"))},
              [(400, ["bad_parameter"], "a bad limit or cursor"), BATCH_404],
              params=[BATCH, limit(0, 100, "jobs per page; 0: counts and progress only (cheap polls)"),
                      query("cursor", {"type": "integer", "minimum": -1}, CURSOR)])


def _batch_archive() -> Obj:
    return op("getBatchArchive", "A zip of the batch's masks and cut-outs (not_included.txt lists the rest); "
              "the cut-outs take a result URL's options",
              {200: ok("the zip", content={"application/zip": {"schema": BINARY}},
                       headers={"Content-Disposition": {"schema": STR, "description": "attachment"}})},
              [(400, ["bad_parameter"], "a refused cut-out option"), BATCH_404,
               (409, ["nothing_finished"], "no job of the batch has succeeded")],
              params=[BATCH, *OPTION_PARAMS])


def _retry_batch() -> Obj:
    # ?status= one retryable status, or all of them comma-separated (web.jobs_control.RETRYABLE).
    retryable = [s.value for s in RETRYABLE]
    status = enum([*retryable, ",".join(retryable)], JobStatus.failed.value)
    return op("retryBatch", "Queue a batch's failed (and, if asked, cancelled) jobs again",
              {202: ok("how many were queued", _change("retried"), LOCATION)},
              [(400, ["bad_parameter"], "a bad status"), BATCH_404],
              params=[BATCH, query("status", status, "which to queue again: failed (default), cancelled, "
                                                       "or both comma-separated")], unsafe=True)


def _segment_paths() -> Obj:
    """One image in, one result back."""
    body = multipart({"image": BINARY, "output": enum(FULL_SIZE), "batch_name": STR, "model": MODEL_FIELD,
                      **{name: STR for name in OPTION_NAMES}}, ["image"])
    return {"/api/v1/segment": {"post": op(
        "segment", "One image in, one result back (waits; 202 with the job if it takes longer)",
        {200: ok("the result", content=IMAGES, headers={
            "X-Job-Id": {"schema": STR, "description": "the job made"},
            "Content-Location": {"schema": STR, "description": "the job's URL"}}),
         202: ok("the job, not finished yet", ref("schemas", "Job"), LOCATION)},
        _image_errors((400, ["bad_parameter", "too_many_files", "unknown_model"],
                       "a bad field, not one image, or an unknown model (the answer lists the choices)"),
                      (422, ["job_failed"], "segmentation failed"), STORAGE),
        body=body, unsafe=True)}}


def _background_paths() -> Obj:
    """Background images for bg=image:<id>."""
    return {
        "/api/v1/backgrounds": {"post": op(
            "createBackground", "Store a background image for bg=image:<id>",
            {201: ok("the background", ref("schemas", "Background"), LOCATION)},
            _image_errors((400, ["too_many_files"], "more than one image"), STORAGE),
            body=multipart({"image": BINARY}, ["image"]), unsafe=True)},
        "/api/v1/backgrounds/{background_id}": {
            "get": op("getBackground", "A stored background image",
                      {200: ok("the image", content=IMAGES), 302: REDIRECT}, [BG_404, STORAGE], params=[BG]),
            "delete": op("deleteBackground", "Forget a background image",
                         {200: ok("deleted", obj({"deleted": obj({"background_id": STR})}))},
                         [BG_404, STORAGE], params=[BG], unsafe=True)},
    }


def _model_paths() -> Obj:
    """What `model=` may name."""
    return {"/api/v1/models": {"get": op(
        "listModels", "The models this server runs, and the default of uploads that name none",
        {200: ok("the registry", ref("schemas", "Models"))}, [])}}


def _page_paths() -> Obj:
    """Health checks, this document, its page, and the one page route linked from outside."""
    html = {"text/html": {"schema": STR}}
    return {
        "/healthz": {"get": op("healthz", "The process answers",
                               {200: ok("alive", ref("schemas", "Health"))}, [], api=False)},
        "/readyz": {"get": page_op("readyz", "Database, broker and storage answer",
                                   {200: ok("ready", ref("schemas", "Ready")),
                                    503: ok("not ready", ref("schemas", "Ready"))})},
        "/openapi.json": {"get": page_op("openapi", "This document",
                                         {200: ok("OpenAPI 3.1", {"type": "object"})})},
        "/docs": {"get": page_op("docs", "The API reference page", {200: ok("HTML", content=html)})},
        "/jobs/{job_id}/composite.png": {"get": page_op(
            "getComposite", "The cut-out on a colour (?bg=#rrggbb), PNG (a page route kept for earlier "
            "links; prefer /api/v1/jobs/{job_id}/cutout?bg=...)",
            {200: ok("the PNG", content={"image/png": {"schema": BINARY}}),
             404: ok("no such job, or not succeeded (the HTML error page)", content=html)},
            params=[JOB, ref("parameters", "Option_bg"),
                    query("download", STR, "any value: saved as a file (Content-Disposition: attachment)")])},
    }


def _paths() -> Obj:
    return {**_list_paths(), **_job_paths(), **_batch_paths(), **_segment_paths(),
            **_background_paths(), **_model_paths(), **_page_paths()}


def _webhooks() -> Obj:
    """One entry per event of core.webhooks.EVENTS: what a batch's webhook_url receives."""
    headers = [{"name": h, "in": "header", "required": True, "schema": STR, "description": text}
               for h, text in WEBHOOK_HEADERS]
    return {event: {"post": {
        "operationId": f"webhook_{event.replace('.', '_')}",
        "summary": f"{event}: sent to a batch's webhook_url, signed as Standard Webhooks says",
        "parameters": headers,
        "requestBody": {"content": {JSON: {"schema": ref("schemas", "Event")}}},
        "responses": {"2XX": {"description": "delivered; anything else is retried"}}}} for event in EVENTS}


@functools.cache
def _document() -> Obj:
    return {
        "openapi": "3.1.0",
        "info": {"title": "humanseg", "version": VERSION,
                 "description": "Cut people out of photos, at batch scale. Upload images, poll "
                 "jobs or batches, download masks, alphas and cut-outs."},
        "servers": [{"url": "/"}],
        "security": [{}, {"bearer": []}, {"apiKey": []}],
        "paths": _paths(),
        "webhooks": _webhooks(),
        "components": {
            "schemas": SCHEMAS, "parameters": PARAMETERS, "headers": HEADERS,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"},
                                "apiKey": {"type": "apiKey", "in": "header", "name": "X-Api-Key"}},
        },
    }


def document() -> Obj:
    """The OpenAPI document (a fresh copy: callers may change it)."""
    return copy.deepcopy(_document())


@bp.get("/openapi.json")
def openapi_json() -> Response:
    """The OpenAPI 3.1 document."""
    return jsonify(_document())


@bp.get("/docs")
def docs() -> str:
    """The API reference, rendered on the server from the document (no scripts, no CDN)."""
    doc = _document()
    operations: list[dict[str, Any]] = []
    for path, methods in doc["paths"].items():
        for method, operation in methods.items():
            params = [_resolve(doc, p) for p in operation.get("parameters", [])]
            operations.append({"path": path, "method": method.upper(), "op": operation,
                               "params": params})
    return render_template("apidocs/docs.html", doc=doc, operations=operations)


def _resolve(doc: Obj, item: Obj) -> Obj:
    if "$ref" not in item:
        return item
    _, kind, name = item["$ref"].lstrip("#/").split("/")
    return doc["components"][kind][name]
