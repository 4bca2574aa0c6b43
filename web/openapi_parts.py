"""Reusable pieces of the OpenAPI document: schemas, parameters, headers and error answers.

Every enum is taken from the table the code itself reads (core.results, core.models' JobStatus and
DeliveryStatus, core.variants, core.webhooks, web.errors), so a new result kind, status, option,
event or image rejection appears here by itself; tests/web/test_openapi.py checks each table
against the document.
"""

from __future__ import annotations

from typing import Any

from humanseg.core.models import DeliveryStatus, JobStatus
from humanseg.core.results import RESULTS, on_request_kinds
from humanseg.core.variants import OPTION_NAMES
from humanseg.core.webhooks import EVENTS
from humanseg.web.errors import IMAGE_ERROR_STATUS
from humanseg.web.serialize import KINDS

Obj = dict[str, Any]

STATUSES = [s.value for s in JobStatus]
EVENT = {"type": "string", "enum": list(EVENTS)}
EVENT_LIST = {"type": "array", "items": EVENT}
FULL_SIZE = [k.name for k in RESULTS if k.full_size]  # what /segment can answer with
OUTPUTS = [k.name for k in on_request_kinds()]  # what an upload's outputs= may ask the worker for


def ref(kind: str, name: str) -> Obj:
    """A $ref into components."""
    return {"$ref": f"#/components/{kind}/{name}"}


def nullable(schema: Obj) -> Obj:
    """schema or null (JSON Schema 2020-12, as OpenAPI 3.1 uses)."""
    return {"anyOf": [schema, {"type": "null"}]}


STR = {"type": "string"}
INT = {"type": "integer"}
TIME = {"type": "string", "format": "date-time"}
PUBLIC_ID = {"type": "string", "pattern": "^[0-9a-f]{32}$", "description": "public id (hex)"}


def obj(props: Obj, required: list[str] | None = None, description: str = "") -> Obj:
    """An object schema whose properties are all required unless said otherwise."""
    out: Obj = {"type": "object", "properties": props,
                "required": list(props) if required is None else required}
    if description:
        out["description"] = description
    return out


def error(codes: list[str], description: str, headers: Obj | None = None) -> Obj:
    """An error answer: {"error": {"code", "message", ...}} with the codes it may carry."""
    schema = {"allOf": [ref("schemas", "Error"), {"properties": {"error": {
        "properties": {"code": {"enum": sorted(codes)}}}}}]}
    out: Obj = {"description": f"{description} (codes: {', '.join(sorted(codes))})",
                "content": {"application/json": {"schema": schema}}}
    if headers:
        out["headers"] = headers
    return out


def header(description: str, schema: Obj | None = None) -> Obj:
    """A response header."""
    return {"description": description, "schema": schema or STR}


JOB_URLS = obj({"self": STR, **{k: nullable(STR) for k in KINDS}},
               description="self, and one URL per result (null until succeeded; original always): "
               "our own URL, or a presigned S3 URL")

SCHEMAS: Obj = {
    "Error": obj({"error": obj({
        "code": STR, "message": STR,
        "file": {**STR, "description": "the file a rejection is about"},
        "files": {"type": "array", "items": obj(
            {"file": STR, "code": STR, "message": STR}),
            "description": "every rejected file of an upload"},
        "parameter": {**STR, "description": "the refused parameter (bad_parameter, unknown_model)"},
        "choices": {"type": "array", "items": STR, "description": "the names a parameter may take (unknown_model)"},
        "status": {**STR, "description": "the job's status (409 on a job)"},
        "job_id": PUBLIC_ID,
        "limit": INT, "retry_after": INT,
    }, required=["code", "message"])}),
    "JobStatus": {"type": "string", "enum": STATUSES},
    "Job": obj({
        "id": PUBLIC_ID, "batch_id": PUBLIC_ID, "filename": STR,
        "status": ref("schemas", "JobStatus"),
        "done": {"type": "boolean", "description": "true when no more work will happen (succeeded, "
                 "failed or cancelled); a retry makes it false again"},
        "model": {**STR, "description": "the model that makes its results (GET /api/v1/models)"},
        "content_type": STR,
        "width": INT, "height": INT, "bytes": INT,
        "attempts": {**INT, "description": "deliveries so far, retries included"},
        "error": nullable(STR), "created_at": TIME, "started_at": nullable(TIME),
        "finished_at": nullable(TIME), "duration_ms": nullable(INT),
        "urls": JOB_URLS,
    }),
    "JobBrief": obj({"id": PUBLIC_ID, "filename": STR, "status": ref("schemas", "JobStatus"),
                     "model": STR, "url": STR}),
    "Models": obj({"default": STR, "models": {"type": "array", "items": obj({
        "name": STR, "title": STR, "use": {**STR, "description": "fast, balanced, quality, ..."},
        "default": {"type": "boolean"},
        "input_size": INT, "input": {**STR, "description": "pre-processing and normalisation"},
        "licence": STR, "source": STR,
        "card": {"type": "object", "description": "the model card's figures (val58 mean IoU, speed)"}})}}),
    "Created": obj({"batch_id": PUBLIC_ID, "batch_url": STR, "batch_name": nullable(STR),
                    "jobs": {"type": "array", "items": ref("schemas", "JobBrief")},
                    "webhook": obj({"url": STR, "events": EVENT_LIST, "secret": {
                        **STR, "description": "whsec_...; shown only here"}},
                        description="when webhook_url was sent")},
                   required=["batch_id", "batch_url", "batch_name", "jobs"]),
    "Counts": obj({s: INT for s in STATUSES}),
    "Batch": obj({
        "id": PUBLIC_ID, "name": nullable(STR), "created_at": TIME, "job_count": INT,
        "counts": ref("schemas", "Counts"),
        "progress": {"type": "number", "minimum": 0, "maximum": 1},
        "done": {"type": "boolean"}, "url": STR,
        "webhook": nullable(obj({"url": STR, "events": EVENT_LIST})),
    }),
    "Delivery": obj({
        "id": {**STR, "description": "the webhook-id header"}, "event": EVENT,
        "job_id": nullable(PUBLIC_ID), "url": STR,
        "status": {"type": "string", "enum": [s.value for s in DeliveryStatus]},
        "attempts": INT, "last_status_code": nullable(INT), "last_error": nullable(STR),
        "created_at": TIME, "delivered_at": nullable(TIME), "next_attempt_at": nullable(TIME),
    }),
    "Deliveries": obj({"batch_id": PUBLIC_ID,
                       "webhook": nullable(obj({"url": STR, "events": EVENT_LIST})),
                       "deliveries": {"type": "array", "items": ref("schemas", "Delivery")}}),
    "Event": obj({"type": EVENT, "timestamp": TIME, "data": {"type": "object", "description":
                  "job.finished: {job: {id, batch_id, filename, status, error, attempts, "
                  "finished_at, url}}; batch.finished: {batch: {id, name, job_count, counts, url}}"}}),
    "BatchPage": {"allOf": [ref("schemas", "Batch"), obj({
        "jobs": {"type": "array", "items": ref("schemas", "Job")},
        "next_cursor": nullable(STR)})]},
    "BatchList": obj({"batches": {"type": "array", "items": ref("schemas", "Batch")},
                      "next_cursor": nullable(STR)}),
    "JobList": obj({"jobs": {"type": "array", "items": ref("schemas", "Job")}, "next_cursor": nullable(STR)}),
    "BatchChange": obj({"batch": ref("schemas", "Batch"),
                        "job_ids": {"type": "array", "items": PUBLIC_ID}}),
    "Background": obj({"id": PUBLIC_ID, "bg": STR, "url": STR, "content_type": STR,
                       "width": INT, "height": INT, "bytes": INT}),
    "Health": obj({"status": {"type": "string", "enum": ["ok"]}}),
    "Ready": obj({"status": {"type": "string", "enum": ["ok", "unavailable"]},
                  "checks": {"type": "object", "additionalProperties": STR}}),
}

# What each result option (core.variants.OPTION_NAMES) means; an option without a line here is
# still documented, as a plain string.
_OPTION_TEXT = {
    "bg": "cutout: transparent, #RRGGBB (or RRGGBB) or image:<background id>",
    "format": "png, webp, jpeg (jpg); jpeg only on a background",
    "quality": "1..100 (jpeg, or lossy webp)",
    "size": "full, or the longest side in pixels (16..10000; never enlarged)",
    "crop": "true/false: crop to the person's box",
    "margin": "with crop: pixels (20, 20px) or a share of the person (10%)",
}


def _query(name: str, description: str, schema: Obj | None = None) -> Obj:
    return {"name": name, "in": "query", "required": False, "description": description,
            "schema": schema or STR}


def _path(name: str, description: str, schema: Obj | None = None) -> Obj:
    return {"name": name, "in": "path", "required": True, "description": description,
            "schema": schema or STR}


PARAMETERS: Obj = {
    "JobId": _path("job_id", "a job's public id"),
    "BatchId": _path("batch_id", "a batch's public id"),
    "BackgroundId": _path("background_id", "a background image's id"),
    "Kind": _path("kind", "a result, or the original upload", {"type": "string", "enum": list(KINDS)}),
    **{f"Option_{name}": _query(name, _OPTION_TEXT.get(name, "a result option")) for name in OPTION_NAMES},
    "Prefer": {"name": "Prefer", "in": "header", "required": False,
               "description": "wait=N: wait up to N seconds (bounded by the server) for the jobs",
               "schema": STR},
    "IdempotencyKey": {"name": "Idempotency-Key", "in": "header", "required": False,
                       "description": "1..200 printable ASCII characters; the same key and body "
                       "answers the first answer again for 24 hours", "schema": STR},
}
OPTION_PARAMS = [ref("parameters", f"Option_{name}") for name in OPTION_NAMES]

HEADERS: Obj = {
    "Location": header("where the created or changed resource is"),
    "PreferenceApplied": header("wait=N when the request waited for its jobs"),
    "IdempotentReplayed": header("true when this is the stored answer to an earlier request"),
    "RetryAfter": header("seconds to wait", INT),
    "RateLimitLimit": header("requests per minute (or images per day) allowed", INT),
    "RateLimitRemaining": header("what is left of the limit", INT),
    "RateLimitReset": header("seconds until the limit resets", INT),
    "WWWAuthenticate": header("Bearer realm=\"humanseg\""),
}

# Answers any API request may get, whatever its path: (status, codes, why, headers).
Err = tuple[int, list[str], str, Obj | None]
COMMON: list[Err] = [
    (400, ["host_not_allowed"], "the Host header is not an allowed name", None),
    (401, ["api_key_required", "invalid_api_key"],
     "an API key is required, or the one sent is unknown or revoked",
     {"WWW-Authenticate": ref("headers", "WWWAuthenticate")}),
    (414, ["url_too_long"], "path and query over 4 KB", None),
    (429, ["rate_limited", "quota_exceeded"], "over the key's rate limit or daily quota",
     {"Retry-After": ref("headers", "RetryAfter"),
      "RateLimit-Limit": ref("headers", "RateLimitLimit"),
      "RateLimit-Remaining": ref("headers", "RateLimitRemaining"),
      "RateLimit-Reset": ref("headers", "RateLimitReset")}),
    (500, ["internal_server_error"], "the server failed", None),
]
UNSAFE: list[Err] = [(403, ["cross_origin"], "a browser's request from another origin", None)]


def _image_rejections() -> dict[int, list[str]]:
    """Status -> the codes an upload of images may be refused with (web.errors.IMAGE_ERROR_STATUS).

    core.images codes missing from that table answer 400; no_files (no image part) is 400 and
    too_many_files (over max_files) 413; invalid_files (several files refused) carries their
    common status, 400 when they differ, so it may come with any of them.
    """
    found: dict[int, list[str]] = {400: ["no_files", *IMAGE_CODES_400]}
    for code, status in IMAGE_ERROR_STATUS.items():
        found.setdefault(status, []).append(code)
    found.setdefault(413, []).append("too_many_files")
    return {status: [*codes, "invalid_files"] for status, codes in sorted(found.items())}


IMAGE_CODES_400 = ("empty_file", "corrupt_image")  # core.images codes IMAGE_ERROR_STATUS leaves at 400
IMAGE_REJECTIONS = _image_rejections()
