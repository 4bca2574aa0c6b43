"""The OpenAPI 3.1 document of the JSON API (/openapi.json) and its reference page (/docs).

tests/web/test_openapi.py keeps it true: every API rule of the URL map is here and every
operation here is a rule; answers of the running API are checked against the schemas.
"""

from __future__ import annotations

import copy
import functools
from typing import Any

from flask import Blueprint, jsonify, render_template
from flask.wrappers import Response

from humanseg.core.webhooks import EVENTS
from humanseg.web.openapi_parts import (
    COMMON,
    FULL_SIZE,
    HEADERS,
    IMAGE_REJECTIONS,
    INT,
    OPTION_PARAMS,
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
STORAGE = (503, ["storage_unavailable"], "storage is unavailable; try again")
JOB_404 = (404, ["job_not_found"], "no such job")
BATCH_404 = (404, ["batch_not_found"], "no such batch")


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


def op(op_id: str, summary: str, answers: dict[int, Obj], errors: list[tuple[int, list[str], str]],
       *, params: list[Obj] | None = None, body: Obj | None = None, unsafe: bool = False,
       api: bool = True) -> Obj:
    """One operation; its error answers merged with those every API request may get."""
    responses: Obj = {str(code): answer for code, answer in answers.items()}
    merged: dict[int, tuple[list[str], list[str], Obj]] = {}
    own = [(status, codes, text, None) for status, codes, text in errors]
    for status, codes, text, headers in own + ((COMMON + (UNSAFE if unsafe else [])) if api else []):
        found = merged.setdefault(status, ([], [], {}))
        found[0].extend(c for c in codes if c not in found[0])
        found[1].append(text)
        found[2].update(headers or {})
    for status, (codes, texts, headers) in sorted(merged.items()):
        responses[str(status)] = error(status, codes, "; ".join(texts), headers or None)
    out: Obj = {"operationId": op_id, "summary": summary, "responses": responses}
    if params:
        out["parameters"] = params
    if body:
        out["requestBody"] = body
    return out


def multipart(props: Obj, required: list[str], encoding: Obj | None = None) -> Obj:
    """A multipart/form-data request body."""
    media: Obj = {"schema": obj(props, required)}
    if encoding:
        media["encoding"] = encoding
    return {"required": True, "content": {"multipart/form-data": media}}


BINARY = {"type": "string", "format": "binary"}
JOB, BATCH, BG = ref("parameters", "JobId"), ref("parameters", "BatchId"), ref("parameters", "BackgroundId")


def _image_errors(*more: tuple[int, list[str], str]) -> list[tuple[int, list[str], str]]:
    found = [(s, c, "the upload is refused; nothing is stored") for s, c in IMAGE_REJECTIONS.items()]
    return [*found, (413, ["request_too_large"], "the body is over the server's limit"),
            (408, ["request_timeout"], "the body arrived too slowly"), *more]


def _paths() -> Obj:
    job_answer = ok("the job", ref("schemas", "Job"))
    created = ok("the batch and its jobs (200: all finished while waiting)", ref("schemas", "Created"),
                 {"Location": ref("headers", "Location"),
                  "Preference-Applied": ref("headers", "PreferenceApplied"),
                  "Idempotent-Replayed": ref("headers", "IdempotentReplayed")})
    upload = multipart({
        "images": {"type": "array", "items": BINARY, "description": "1..max_files JPEG/PNG/WebP"},
        "batch_name": STR, "batch_id": {**STR, "description": "add to this batch"},
        "outputs": {"type": "array", "items": {"type": "string", "enum": ["cutout", "overlay"]},
                    "description": "results the worker makes too (also comma-separated)"},
        "webhook_url": {**STR, "description": "a new batch's callback (public http(s) address)"},
        "webhook_events": {"type": "array", "items": {"type": "string", "enum": list(EVENTS)},
                           "description": "events wanted (default: all; also comma-separated)"},
        "webhook_secret": {**STR, "description": "whsec_ + base64 of 24..64 bytes; "
                           "default: the server makes one and answers it once"},
    }, ["images"])
    segment_body = multipart({"image": BINARY, "output": {"type": "string", "enum": FULL_SIZE},
                              "batch_name": STR, **{p: STR for p in
                                                    ("bg", "format", "quality", "size", "crop", "margin")}},
                             ["image"])

    def deleted(props: Obj) -> Obj:
        return ok("what was deleted", obj({"deleted": obj(props)}))

    page_params = [{"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 500}},
                   {"name": "cursor", "in": "query", "schema": STR, "description": "next_cursor of the page before"}]
    listing = [(400, ["bad_parameter"], "a bad limit, cursor or status")]
    return {
        "/api/v1/batches": {"get": op(
            "listBatches", "Batches, newest first, with counts by status",
            {200: ok("a page of batches", ref("schemas", "BatchList"))}, listing, params=page_params)},
        "/api/v1/jobs": {"get": op(
            "listJobs", "Jobs, newest first, optionally of one status or batch",
            {200: ok("a page of jobs", ref("schemas", "JobList"))}, [*listing, BATCH_404],
            params=[*page_params,
                    {"name": "status", "in": "query", "schema": {"type": "string", "enum": STATUSES}},
                    {"name": "batch_id", "in": "query", "schema": STR}]), "post": op(
            "createJobs", "Upload images; one job per image", {200: created, 202: created},
            _image_errors((400, ["bad_parameter", "bad_idempotency_key", "webhook_url_refused"],
                           "a bad field or key, or a callback to a non-public address"),
                          (404, ["batch_not_found"], "batch_id names no batch"),
                          (409, ["idempotency_key_in_progress"], "the key's first request runs"),
                          (413, ["request_too_many_pixels"], "the images add up to too many pixels"),
                          (422, ["idempotency_key_reused"], "the key was sent with another body"),
                          STORAGE),
            params=[ref("parameters", "Prefer"), ref("parameters", "IdempotencyKey")],
            body=upload, unsafe=True)},
        "/api/v1/jobs/{job_id}": {
            "get": op("getJob", "A job's status, timings and result URLs", {200: job_answer},
                      [JOB_404], params=[JOB]),
            "delete": op("deleteJob", "Delete a job with its original and results",
                         {200: deleted({"job_id": STR, "batch_id": STR, "jobs": INT, "objects": INT})},
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
            {200: job_answer}, [JOB_404, (409, ["job_finished"], "the job already finished")],
            params=[JOB], unsafe=True)},
        "/api/v1/jobs/{job_id}/retry": {"post": op(
            "retryJob", "Queue a failed or cancelled job again",
            {202: ok("the job, queued", ref("schemas", "Job"), {"Location": ref("headers", "Location")})},
            [JOB_404, (409, ["not_retryable"], "the job is not failed or cancelled")],
            params=[JOB], unsafe=True)},
        "/api/v1/batches/{batch_id}": {
            "get": op("getBatch", "Counts by status, progress and a page of jobs",
                      {200: ok("the batch", ref("schemas", "BatchPage"))},
                      [(400, ["bad_parameter"], "a bad limit or cursor"), BATCH_404],
                      params=[BATCH, {"name": "limit", "in": "query", "schema": {
                          "type": "integer", "minimum": 0, "maximum": 500, "default": 100},
                          "description": "jobs per page; 0: counts and progress only (cheap polls)"},
                          {"name": "cursor", "in": "query", "schema": {"type": "integer",
                           "minimum": -1}, "description": "next_cursor of the page before"}]),
            "delete": op("deleteBatch", "Delete a batch with all its jobs and objects",
                         {200: deleted({"batch_id": STR, "jobs": INT, "objects": INT})},
                         [BATCH_404, STORAGE], params=[BATCH], unsafe=True)},
        "/api/v1/batches/{batch_id}/archive": {"get": op(
            "getBatchArchive", "A zip of the batch's masks and cut-outs (not_included.txt lists the rest); "
            "the cut-outs take a result URL's options",
            {200: ok("the zip", content={"application/zip": {"schema": BINARY}},
                     headers={"Content-Disposition": {"schema": STR, "description": "attachment"}})},
            [(400, ["bad_parameter"], "a refused cut-out option"), BATCH_404,
             (409, ["nothing_finished"], "no job of the batch has succeeded")],
            params=[BATCH, *OPTION_PARAMS])},
        "/api/v1/batches/{batch_id}/cancel": {"post": op(
            "cancelBatch", "Cancel every queued or running job of a batch",
            {200: ok("how many were cancelled", {"allOf": [ref("schemas", "BatchChange"),
                                                          obj({"cancelled": INT})]})},
            [BATCH_404], params=[BATCH], unsafe=True)},
        "/api/v1/batches/{batch_id}/retry": {"post": op(
            "retryBatch", "Queue a batch's failed (and, if asked, cancelled) jobs again",
            {202: ok("how many were queued", {"allOf": [ref("schemas", "BatchChange"),
                                                       obj({"retried": INT})]},
                     {"Location": ref("headers", "Location")})},
            [(400, ["bad_parameter"], "a bad status"), BATCH_404],
            params=[BATCH, {"name": "status", "in": "query", "schema": {
                "type": "string", "enum": ["failed", "cancelled", "failed,cancelled"],
                "default": "failed"}}], unsafe=True)},
        "/api/v1/batches/{batch_id}/webhooks": {"get": op(
            "getBatchWebhooks", "The batch's callback and its deliveries, newest first",
            {200: ok("the deliveries", ref("schemas", "Deliveries"))},
            [(400, ["bad_parameter"], "a bad limit"), BATCH_404],
            params=[BATCH, {"name": "limit", "in": "query", "schema": {
                "type": "integer", "minimum": 1, "maximum": 500, "default": 100}}])},
        "/api/v1/segment": {"post": op(
            "segment", "One image in, one result back (waits; 202 with the job if it takes longer)",
            {200: ok("the result", content=IMAGES, headers={
                "X-Job-Id": {"schema": STR, "description": "the job made"},
                "Content-Location": {"schema": STR, "description": "the job's URL"}}),
             202: ok("the job, not finished yet", ref("schemas", "Job"),
                     {"Location": ref("headers", "Location")})},
            _image_errors((400, ["bad_parameter", "too_many_files"], "a bad field, or not one image"),
                          (422, ["job_failed"], "segmentation failed"), STORAGE),
            body=segment_body, unsafe=True)},
        "/api/v1/backgrounds": {"post": op(
            "createBackground", "Store a background image for bg=image:<id>",
            {201: ok("the background", ref("schemas", "Background"),
                     {"Location": ref("headers", "Location")})},
            _image_errors((400, ["too_many_files"], "more than one image"), STORAGE),
            body=multipart({"image": BINARY}, ["image"]), unsafe=True)},
        "/api/v1/backgrounds/{background_id}": {
            "get": op("getBackground", "A stored background image",
                      {200: ok("the image", content=IMAGES), 302: REDIRECT},
                      [(404, ["background_not_found"], "no such background"), STORAGE], params=[BG]),
            "delete": op("deleteBackground", "Forget a background image",
                         {200: ok("deleted", obj({"deleted": obj({"background_id": STR})}))},
                         [(404, ["background_not_found"], "no such background"), STORAGE],
                         params=[BG], unsafe=True)},
        "/healthz": {"get": op("healthz", "The process answers",
                               {200: ok("alive", ref("schemas", "Health"))}, [], api=False)},
        "/readyz": {"get": {"operationId": "readyz", "summary": "Database, broker and storage answer",
                            "responses": {"200": ok("ready", ref("schemas", "Ready")),
                                          "503": ok("not ready", ref("schemas", "Ready"))}}},
        "/openapi.json": {"get": {"operationId": "openapi", "summary": "This document",
                                  "responses": {"200": ok("OpenAPI 3.1", {"type": "object"})}}},
        "/docs": {"get": {"operationId": "docs", "summary": "The API reference page",
                          "responses": {"200": ok("HTML", content={"text/html": {"schema": STR}})}}},
        "/jobs/{job_id}/composite.png": {"get": {
            "operationId": "getComposite", "summary": "The cut-out on a colour (?bg=#rrggbb), PNG "
            "(a page route kept for earlier links; prefer /api/v1/jobs/{job_id}/cutout?bg=...)",
            "parameters": [JOB, ref("parameters", "Option_bg"),
                           {"name": "download", "in": "query", "schema": STR}],
            "responses": {"200": ok("the PNG", content={"image/png": {"schema": BINARY}}),
                          "404": ok("no such job, or not succeeded (the HTML error page)",
                                    content={"text/html": {"schema": STR}})}}},
    }


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
        "webhooks": {event: {"post": {
            "operationId": f"webhook_{event.replace('.', '_')}",
            "summary": f"{event}: sent to a batch's webhook_url, signed as Standard Webhooks says",
            "parameters": [{"name": h, "in": "header", "required": True, "schema": STR,
                            "description": text} for h, text in WEBHOOK_HEADERS],
            "requestBody": {"content": {JSON: {"schema": ref("schemas", "Event")}}},
            "responses": {"2XX": {"description": "delivered; anything else is retried"}}}}
            for event in EVENTS},
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
