"""A batch's results as one zip, streamed while it is written."""

from __future__ import annotations

import io
import logging
from collections.abc import Callable, Iterator
from typing import BinaryIO

from flask import Blueprint, Response, request
from sqlalchemy import select

from humanseg.core.db import session_scope
from humanseg.core.logfmt import logkv
from humanseg.core.models import Job, JobStatus
from humanseg.core.results import RESULTS, ResultKind
from humanseg.core.variants import FORMATS, OPTION_NAMES, Options, defaults
from humanseg.web import variant_cache
from humanseg.web.errors import ErrorAnswer
from humanseg.web.filenames import attachment, safe_stem, unique_name
from humanseg.web.lookup import get_batch_or_404
from humanseg.web.services import Services, services
from humanseg.web.variant_cache import rendered
from humanseg.web.zipstream import Entry, stream_zip

log = logging.getLogger(__name__)

bp = Blueprint("archive", __name__)

_PAGE = 200  # jobs read per query while streaming an archive
# Results that go into the zip, each in its own folder (masks/, cutouts/, ...).
ARCHIVED = tuple(kind for kind in RESULTS if kind.archive_folder)
# Device names Windows reserves whatever the extension: unzipping "CON.png" there fails or hangs.
WINDOWS_RESERVED = frozenset({"CON", "PRN", "AUX", "NUL", "CONIN$", "CONOUT$"} | {
    f"{dev}{n}" for dev in ("COM", "LPT") for n in "0123456789\u00b9\u00b2\u00b3"})


def zip_stem(filename: str, fallback: str = "image") -> str:
    """safe_stem that Windows can also unpack: a reserved device name (CON, com1.x ...) gets a '_'."""
    stem = safe_stem(filename, fallback=fallback)
    if stem.split(".", 1)[0].rstrip(" ").upper() in WINDOWS_RESERVED:
        stem = "_" + stem
    return stem


def _archive_entries(batch_id: str, svc: Services, cutout: Options | None = None) -> Iterator[Entry]:
    """<folder>/<name><suffix> per archived kind and finished job, read page by page.

    cutout: the cut-outs' result options (bg, format, size, crop...), as on a result URL."""
    taken: set[str] = set()
    skipped: list[str] = []
    last_seq = -1
    while True:
        with session_scope(svc.sessions) as session:
            page = list(session.scalars(select(Job).where(Job.batch_id == batch_id,
                                                          Job.seq > last_seq)
                                        .order_by(Job.seq).limit(_PAGE)))
        if not page:
            break
        last_seq = page[-1].seq
        for job in page:
            if job.status != JobStatus.succeeded:
                reason = job.error or job.status.value
                skipped.append(f"{job.filename}\t{job.status.value}\t{reason}")
                continue
            name = unique_name(zip_stem(job.filename), taken)
            for kind in ARCHIVED:
                opts = cutout if cutout is not None and kind.name == "cutout" else defaults(kind.name)
                suffix = FORMATS[opts.format][1] if opts != defaults(kind.name) else kind.suffix
                yield f"{kind.archive_folder}/{name}{suffix}", _opener(svc, job, kind, opts)
    if skipped:
        text = "Not included (file, status, reason):\n" + "\n".join(skipped) + "\n"
        yield "not_included.txt", lambda: io.BytesIO(text.encode("utf-8"))


def _opener(svc: Services, job: Job, kind: ResultKind, opts: Options) -> Callable[[], BinaryIO]:
    if kind.on_request or opts != defaults(kind.name):
        # Made now if the batch did not ask the worker for it (outputs=) or asks for other options,
        # and kept for next time.
        return lambda: io.BytesIO(rendered(job, opts, svc.storage))
    return lambda: svc.storage.open_stream(kind.key(job.id, job.model))


@bp.get("/api/v1/batches/<batch_id>/archive")
def batch_archive(batch_id: str) -> Response:
    """A zip of the batch's archived results (masks, cut-outs), streamed as it is written; the cut-outs
    take a result URL's options (?bg=white&format=jpeg&size=1000...), checked before anything is sent."""
    pairs = [(k, v) for k, v in request.args.items(multi=True) if k in OPTION_NAMES]
    unknown = sorted({k for k in request.args if k not in OPTION_NAMES})
    if unknown:
        raise ErrorAnswer(400, "bad_parameter", f"{unknown[0]}: unknown parameter; the archive takes the cut-out's "
                       f"options {', '.join(OPTION_NAMES)}")
    cutout = variant_cache.options("cutout", pairs) if pairs else None
    svc = services()
    with session_scope(svc.sessions) as session:
        batch = get_batch_or_404(batch_id, session)
        done = session.scalar(select(Job.id).where(Job.batch_id == batch_id,
                                                   Job.status == JobStatus.succeeded).limit(1))
        name, created = batch.name, batch.created_at
    if done is None:
        raise ErrorAnswer(409, "nothing_finished", f"batch {batch_id} has no finished results yet")
    log.info(logkv(event="archive_start", batch_id=batch_id))
    stem = zip_stem(name or "", fallback=f"humanseg-{batch_id[:8]}")
    resp = Response(stream_zip(_archive_entries(batch_id, svc, cutout), when=created),
                    mimetype="application/zip")
    resp.headers["Content-Disposition"] = attachment(f"{stem}.zip")
    resp.headers["Cache-Control"] = "no-store"
    resp.headers["X-Accel-Buffering"] = "no"  # let nginx pass chunks straight through
    return resp
