"""A Python client of the humanseg API (requests), with typed results.

    from humanseg.client import Client
    api = Client("http://127.0.0.1:8000", api_key=None)
    created = api.upload(["a.jpg", "b.png"], batch_name="team")
    batch = api.wait_batch(created.batch_id, timeout=600)
    for job in batch.jobs:
        if job.status == "succeeded":
            api.download(job.id, "cutout", f"{job.id}.png", bg="#ffffff")
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

_MEDIA = {".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".png": "image/png", ".webp": "image/webp"}


class ApiError(Exception):
    """An error answer of the API: HTTP status, error code and message."""

    def __init__(self, status: int, code: str, message: str, body: Any = None):
        super().__init__(f"{status} {code}: {message}")
        self.status, self.code, self.message, self.body = status, code, message, body


@dataclass(frozen=True)
class Job:
    """One job as GET /api/v1/jobs/<id> answers it."""

    id: str
    batch_id: str
    filename: str
    status: str
    error: str | None
    attempts: int
    width: int
    height: int
    urls: Mapping[str, str | None]
    created_at: str
    finished_at: str | None
    done: bool  # the server's word: the job will not change any more (unless retried)
    model: str = ""  # the registered model that makes its results (GET /api/v1/models)

    @classmethod
    def from_json(cls, body: Mapping[str, Any]) -> Job:
        """Build from the API's JSON."""
        return cls(body["id"], body["batch_id"], body["filename"], body["status"], body["error"],
                   body["attempts"], body["width"], body["height"], dict(body["urls"]),
                   body["created_at"], body["finished_at"], body["done"], body.get("model", ""))


@dataclass(frozen=True)
class JobBrief:
    """A job as the upload answer lists it."""

    id: str
    filename: str
    status: str


@dataclass(frozen=True)
class Created:
    """The answer to an upload."""

    batch_id: str
    jobs: list[JobBrief]
    replayed: bool = False  # the server answered an earlier request with this Idempotency-Key
    webhook: Mapping[str, Any] | None = None


@dataclass(frozen=True)
class Batch:
    """A batch with its counts and (all pages of) its jobs."""

    id: str
    name: str | None
    counts: Mapping[str, int]
    job_count: int
    done: bool
    progress: float
    jobs: list[Job] = field(default_factory=list)


class Client:
    """Talks to one humanseg server; every method raises ApiError on an error answer."""

    def __init__(self, base_url: str, api_key: str | None = None, *, timeout: float = 120.0,
                 session: requests.Session | None = None):
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.http = session or requests.Session()
        if api_key:
            self.http.headers["Authorization"] = f"Bearer {api_key}"
        self.http.headers.setdefault("User-Agent", "humanseg-client/1")

    def close(self) -> None:
        """Close the connection pool."""
        self.http.close()

    def _call(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        resp = self.http.request(method, self.base_url + path, timeout=self.timeout, **kwargs)
        if resp.status_code >= 400:
            try:
                body = resp.json()
                err = body["error"]
                raise ApiError(resp.status_code, err["code"], err["message"], body)
            except (ValueError, KeyError, TypeError):
                raise ApiError(resp.status_code, "http_error", resp.text[:200]) from None
        return resp

    def upload(self, files: Iterable[str | Path], *, batch_id: str | None = None,
               batch_name: str | None = None, outputs: Iterable[str] = (),
               idempotency_key: str | None = None, webhook_url: str | None = None,
               webhook_events: Iterable[str] = (), webhook_secret: str | None = None,
               model: str | None = None) -> Created:
        """POST /api/v1/jobs with these files (one job each); model: a name from models() (default: the server's)."""
        fields: list[tuple[str, str]] = [("outputs", o) for o in outputs]
        fields += [(k, v) for k, v in (("batch_id", batch_id), ("batch_name", batch_name), ("model", model),
                                       ("webhook_url", webhook_url),
                                       ("webhook_secret", webhook_secret)) if v]
        fields += [("webhook_events", e) for e in webhook_events]
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key else {}
        with ExitStack() as stack:  # every file open while the request streams, then closed
            parts = [("images", (path.name, stack.enter_context(path.open("rb")),
                                 _MEDIA.get(path.suffix.lower(), "application/octet-stream")))
                     for path in map(Path, files)]
            resp = self._call("POST", "/api/v1/jobs", data=fields, files=parts, headers=headers)
        body = resp.json()
        return Created(body["batch_id"], [JobBrief(j["id"], j["filename"], j["status"])
                                          for j in body["jobs"]],
                       resp.headers.get("Idempotent-Replayed") == "true", body.get("webhook"))

    def models(self) -> dict[str, Any]:
        """GET /api/v1/models: {"default": name, "models": [{name, title, use, ...}, ...]}."""
        return self._call("GET", "/api/v1/models").json()

    def job(self, job_id: str) -> Job:
        """GET /api/v1/jobs/<id>."""
        return Job.from_json(self._call("GET", f"/api/v1/jobs/{job_id}").json())

    def batch(self, batch_id: str, *, page_size: int = 500) -> Batch:
        """GET /api/v1/batches/<id>, following next_cursor through every page of jobs."""
        jobs: list[Job] = []
        cursor: str | None = None
        while True:
            params = {"limit": page_size, **({"cursor": cursor} if cursor else {})}
            body = self._call("GET", f"/api/v1/batches/{batch_id}", params=params).json()
            jobs += [Job.from_json(j) for j in body["jobs"]]
            cursor = body["next_cursor"]
            if cursor is None:
                return Batch(body["id"], body["name"], body["counts"], body["job_count"],
                             body["done"], body["progress"], jobs)

    def jobs(self, *, batch_id: str | None = None, status: str | None = None,
             page_size: int = 500) -> Iterator[Job]:
        """GET /api/v1/jobs (newest first), optionally of one batch and status, every page."""
        cursor: str | None = None
        while True:
            params = {"limit": page_size, **{k: v for k, v in (("batch_id", batch_id), ("status", status),
                                                               ("cursor", cursor)) if v}}
            body = self._call("GET", "/api/v1/jobs", params=params).json()
            yield from (Job.from_json(j) for j in body["jobs"])
            cursor = body["next_cursor"]
            if cursor is None:
                return

    def progress(self, batch_id: str) -> Batch:
        """GET /api/v1/batches/<id>?limit=0: counts and progress, no jobs (the cheap poll)."""
        body = self._call("GET", f"/api/v1/batches/{batch_id}", params={"limit": 0}).json()
        return Batch(body["id"], body["name"], body["counts"], body["job_count"], body["done"],
                     body["progress"], [])

    def wait_batch(self, batch_id: str, *, timeout: float = 3600.0, every: float = 1.0,
                   on_progress: Callable[[Batch], None] | None = None) -> Batch:
        """Poll the batch until every job is finished; TimeoutError after `timeout` seconds.

        Each poll asks for counts only (`?limit=0`): on_progress gets the batch with its counts,
        progress and an empty job list. Once done, the batch is read whole, every job included.
        """
        deadline = time.monotonic() + timeout
        while True:
            batch = self.progress(batch_id)
            if on_progress:
                on_progress(batch)
            if batch.done:
                return self.batch(batch_id)
            if time.monotonic() >= deadline:
                raise TimeoutError(f"batch {batch_id} not finished after {timeout:g} s")
            time.sleep(every)

    def download(self, job_id: str, kind: str, dest: str | Path, **options: str) -> Path:
        """Save one result (mask, alpha, cutout, overlay, thumb, original) with result options."""
        resp = self._call("GET", f"/api/v1/jobs/{job_id}/{kind}", params=options, stream=True)
        dest = Path(dest)
        tmp = dest.with_name(dest.name + ".part")
        with resp, tmp.open("wb") as out:
            for chunk in resp.iter_content(1 << 16):
                out.write(chunk)
        tmp.replace(dest)  # never a half-written file under the final name
        return dest

    def cancel_job(self, job_id: str) -> Job:
        """POST /api/v1/jobs/<id>/cancel."""
        return Job.from_json(self._call("POST", f"/api/v1/jobs/{job_id}/cancel").json())

    def retry_job(self, job_id: str) -> Job:
        """POST /api/v1/jobs/<id>/retry."""
        return Job.from_json(self._call("POST", f"/api/v1/jobs/{job_id}/retry").json())

    def cancel_batch(self, batch_id: str) -> list[str]:
        """POST /api/v1/batches/<id>/cancel; the ids it cancelled."""
        return self._call("POST", f"/api/v1/batches/{batch_id}/cancel").json()["job_ids"]

    def retry_batch(self, batch_id: str, *, include_cancelled: bool = False) -> list[str]:
        """POST /api/v1/batches/<id>/retry (failed jobs; cancelled ones too if asked)."""
        status = "failed,cancelled" if include_cancelled else "failed"
        return self._call("POST", f"/api/v1/batches/{batch_id}/retry",
                          params={"status": status}).json()["job_ids"]

    def deliveries(self, batch_id: str) -> list[dict[str, Any]]:
        """GET /api/v1/batches/<id>/webhooks: the batch's webhook deliveries, newest first."""
        return self._call("GET", f"/api/v1/batches/{batch_id}/webhooks").json()["deliveries"]

    def delete_job(self, job_id: str) -> None:
        """DELETE /api/v1/jobs/<id>."""
        self._call("DELETE", f"/api/v1/jobs/{job_id}")

    def delete_batch(self, batch_id: str) -> None:
        """DELETE /api/v1/batches/<id>."""
        self._call("DELETE", f"/api/v1/batches/{batch_id}")
