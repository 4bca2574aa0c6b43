"""Results made on request: check the options, then serve the stored object or render it once.

Rendering runs here, in the web process, with PIL (core/render.py): a variant is a crop,
a scale, a composite and an encode of the original and its alpha, tens of milliseconds for
a typical photo, made once and then served from storage like any result. A Celery task
would queue a page's previews behind whole batches of model jobs and need a way back to
the waiting request, for no gain: the work needs neither the model nor torch.
Under gunicorn's gevent workers the decoding and rendering run in gevent's thread pool (Pillow
releases the GIL while it works), so one large render does not stall the other requests of
its process; storage reads and writes stay on the event loop.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Iterable
from dataclasses import dataclass

from flask import url_for
from PIL import Image

from humanseg.core.errors import ObjectNotFound, StorageError
from humanseg.core.images import orientation
from humanseg.core.layout import background_key
from humanseg.core.logfmt import logkv
from humanseg.core.models import Job
from humanseg.core.render import Sources, load_gray, load_photo, render
from humanseg.core.results import known_kind, result_key
from humanseg.core.storage import Storage
from humanseg.core.variants import (
    OPTION_NAMES,
    ORIGINAL,
    OptionError,
    Options,
    defaults,
    parse,
    parse_outputs,
)
from humanseg.web.errors import ErrorAnswer, storage_unavailable
from humanseg.web.offload import off_loop

log = logging.getLogger(__name__)


def bad_option(exc: OptionError) -> ErrorAnswer:
    """The 400 for a refused option, naming the parameter."""
    return ErrorAnswer(400, "bad_parameter", str(exc), extra={"parameter": exc.parameter})


def options(kind: str, pairs: Iterable[tuple[str, str]]) -> Options:
    """A request's options for `kind` (400 bad_parameter when any is refused)."""
    try:
        return parse(kind, pairs)
    except OptionError as exc:
        raise bad_option(exc) from exc


def upload_outputs(values: Iterable[str]) -> str | None:
    """The upload's `outputs=` fields as the jobs' stored text (400 naming `outputs` if refused)."""
    try:
        return parse_outputs(values)
    except OptionError as exc:
        raise bad_option(exc) from exc


def option_pairs(pairs: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
    """Only the result options among a form's fields (/segment also carries image, output...)."""
    return [(name, value) for name, value in pairs if name in OPTION_NAMES]


def media_type(job: Job, opts: Options) -> str:
    """Content type of what `opts` names: the upload's own for the plain original."""
    return job.content_type if opts == defaults(ORIGINAL) else opts.content_type


def variant_url(job: Job, kind: str, **query: str | int) -> str:
    """Our URL of one result with options (rendered on first request, then served from storage)."""
    return url_for("api.job_result", job_id=job.id, kind=kind, **query)  # type: ignore[arg-type]  # option names, not url_for's _anchor & co


def ensure(job: Job, opts: Options, storage: Storage) -> str:
    """The storage key of the variant, rendered and stored first when it is not there yet."""
    key = opts.key(job.id, job.original_key, job.model)
    plain = opts == defaults(opts.kind)
    if plain and (opts.kind == ORIGINAL or not known_kind(opts.kind).on_request):
        return key  # uploads and the kinds every job writes are there (or truly missing: 404)
    try:
        if storage.exists(key):
            return key
        blobs = fetch(job, opts, storage)
        data = off_loop(render_blobs, opts, blobs)
        # Two requests may render the same variant at once: same bytes, same key, no harm.
        storage.put(key, data, opts.content_type)
    except StorageError as exc:
        raise storage_unavailable(exc, job_id=job.id) from exc
    log.info(logkv(event="variant_made", job_id=job.id, variant=opts.canonical(), bytes=len(data)))
    return key


def rendered(job: Job, opts: Options, storage: Storage) -> bytes:
    """The bytes of the variant (made and stored first when needed)."""
    key = ensure(job, opts, storage)
    try:
        return storage.get(key)
    except ObjectNotFound as exc:
        raise ErrorAnswer(404, "result_missing", f"job {job.id} has no {opts.kind}") from exc
    except StorageError as exc:
        raise storage_unavailable(exc, job_id=job.id) from exc


@dataclass
class Blobs:
    """The stored bytes a variant is made from (read on the event loop, decoded off it)."""

    original: bytes | None = None
    alpha: bytes | None = None
    mask: bytes | None = None
    background: bytes | None = None


def fetch(job: Job, opts: Options, storage: Storage) -> Blobs:
    """Read what the variant needs from storage (only that)."""
    need = opts.sources
    blobs = Blobs()
    try:
        if "image" in need:
            blobs.original = storage.get(job.original_key)
        if "alpha" in need:
            blobs.alpha = _alpha_bytes(job, storage)
        if "mask" in need:
            blobs.mask = storage.get(result_key(job.id, "mask", job.model))
    except ObjectNotFound as exc:
        raise ErrorAnswer(404, "result_missing", f"job {job.id} is missing {exc}") from exc
    if "background" in need:
        try:
            blobs.background = storage.get(background_key(opts.bg.value))
        except ObjectNotFound as exc:
            raise bad_option(OptionError("bg", f"no background image {opts.bg.value}; upload one "
                                               "with POST /api/v1/backgrounds")) from exc
    return blobs


def _alpha_bytes(job: Job, storage: Storage) -> bytes:
    try:
        return storage.get(result_key(job.id, "alpha", job.model))
    except ObjectNotFound:
        # Jobs finished before the soft alpha existed have only their mask: it is their alpha.
        return storage.get(result_key(job.id, "mask", job.model))


def render_blobs(opts: Options, blobs: Blobs) -> bytes:
    """Decode and render (CPU only: safe in a worker thread)."""
    src = Sources(alpha=load_gray(blobs.alpha) if blobs.alpha else None,
                  mask=load_gray(blobs.mask) if blobs.mask else None,
                  background=load_photo(blobs.background) if blobs.background else None)
    if blobs.original is not None:
        original = blobs.original
        src.size = photo_size(original)
        src.image = lambda want: load_photo(original, want)  # decoded at the scale the output needs
    return render(opts, src)


def photo_size(data: bytes) -> tuple[int, int]:
    """The upright size of a stored photo, from its header (nothing is decoded)."""
    with Image.open(io.BytesIO(data)) as img:
        w, h = img.size
        return (h, w) if orientation(img) in (5, 6, 7, 8) else (w, h)
