"""The result kinds a job produces: the one table the worker, API, pages, archive and renderer read.

Each entry says what the kind is drawn from (image, alpha, mask), which maker of core/render.py
draws it, the options its URL takes and its job-page preview. A new kind is one entry here (plus
a maker in core/render.py if it draws in a new way); keys are deterministic (core/layout.py), so
no column or migration is needed.
Kinds marked `on_request` are not written by every job: the web tier renders them from
the original and the alpha when first asked for (or the worker does, for a batch that
chose them with `outputs=` at upload), then serves the stored object like the others.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import PurePosixPath

from humanseg.core.layout import result_file_key

# Result options (core/variants.py) by family: what a kind's URL may carry after '?'.
SHAPE = ("size", "crop", "margin")  # every full-size kind can be scaled and cropped
ORIGINAL = "original"  # the upload: served and drawn like a kind, but not a result (ORIGINAL_KIND)
SOURCES = ("image", "alpha", "mask")  # what a kind may be drawn from


@dataclass(frozen=True)
class ResultKind:
    """One image a succeeded job offers."""

    name: str  # URL segment (/api/v1/jobs/<id>/<name>) and the key in a job's "urls"
    filename: str  # object name under results/<job_id>/; also fixes the default format
    content_type: str
    mode: str  # PIL mode of the stored image (checked against the renderer by the tests)
    label: str  # what the HTML pages call it
    description: str
    full_size: bool = True  # same size as the upload; previews (thumb) are not offered as results
    archive_folder: str | None = None  # folder in the batch zip; None keeps it out of the zip
    on_request: bool = False  # made when first asked for, not by every job
    options: tuple[str, ...] = ()  # query options its URL accepts (core/variants.py)
    formats: tuple[str, ...] = ()  # output formats it may be asked for; the first is its default
    drawn_from: tuple[str, ...] = ("image", "alpha")  # of SOURCES, each cropped and scaled alike
    maker: str = "source"  # core/render.py MAKERS; 'source': the one image it is drawn from, as is
    stored: tuple[tuple[str, str], ...] = ()  # options of its stored file, where not the defaults
    preview: tuple[tuple[str, str], ...] = ()  # options of its display-size preview on the job page
    featured: bool = False  # shown first on the job page: what most visitors came for

    @property
    def suffix(self) -> str:
        """File extension with its dot, e.g. '.png'."""
        return PurePosixPath(self.filename).suffix

    @property
    def format_label(self) -> str:
        """Short format name for people, e.g. 'PNG'."""
        return self.content_type.partition("/")[2].upper()

    @property
    def has_alpha(self) -> bool:
        """True when the image is transparent in places (pages show it on a checkerboard)."""
        return "A" in self.mode

    def key(self, job_id: str, model: str | None = None) -> str:
        """Storage key of this result for one job; a rerun overwrites the same object."""
        return result_file_key(job_id, self.filename, model)


RESULTS: tuple[ResultKind, ...] = (
    ResultKind("mask", "mask.png", "image/png", "L", "Mask",
               "person 255, background 0", archive_folder="masks",
               options=("format", *SHAPE), formats=("png", "webp"), drawn_from=("mask",)),
    ResultKind("alpha", "alpha.png", "image/png", "L", "Alpha",
               "soft edges: 0 background, 255 person, in between along hair and edges",
               options=("format", *SHAPE), formats=("png", "webp"), drawn_from=("alpha",)),
    ResultKind("cutout", "cutout.png", "image/png", "RGBA", "Cut-out",
               "the photo with the alpha as transparency, or on a background",
               archive_folder="cutouts", on_request=True,
               options=("bg", "format", "quality", *SHAPE), formats=("png", "webp", "jpeg"),
               maker="cutout", preview=(("format", "webp"), ("quality", "80")), featured=True),
    ResultKind("overlay", "overlay.jpg", "image/jpeg", "RGB", "Overlay",
               "person tinted, background dimmed: a quick visual check", on_request=True,
               options=("format", "quality", *SHAPE), formats=("jpeg", "png", "webp"),
               maker="overlay", preview=(("quality", "80"),)),
    ResultKind("thumb", "thumb.jpg", "image/jpeg", "RGB", "Thumbnail",
               "cut-out on white, longest side 256 px, for the gallery", full_size=False,
               maker="cutout", stored=(("bg", "white"), ("quality", "85"), ("size", "256"))),
)

# The upload, for what it shares with the kinds: its URL's options, how it is drawn, its preview.
ORIGINAL_KIND = ResultKind(ORIGINAL, "", "", "RGB", "Original", "the photo as uploaded",
                           options=("format", "quality", "size"), formats=("jpeg", "png", "webp"),
                           drawn_from=("image",), preview=(("quality", "80"),))

_BY_NAME = {kind.name: kind for kind in RESULTS}


def result_kind(name: str) -> ResultKind | None:
    """The kind called `name`, or None when there is no such result."""
    return _BY_NAME.get(name)


def drawable(name: str) -> ResultKind:
    """The entry that says how `name` is drawn: a result kind or the original (KeyError otherwise)."""
    return ORIGINAL_KIND if name == ORIGINAL else _BY_NAME[name]


def known_kind(name: str) -> ResultKind:
    """The kind called `name`, for names the code itself spells (KeyError for an unknown name)."""
    return _BY_NAME[name]


def result_key(job_id: str, name: str, model: str | None = None) -> str:
    """Storage key of the named result of a job and its model (KeyError for an unknown name)."""
    return _BY_NAME[name].key(job_id, model)


def result_keys(job_id: str, model: str | None = None) -> dict[str, str]:
    """Kind name -> storage key, for every result of a job and its model."""
    return {kind.name: kind.key(job_id, model) for kind in RESULTS}


def stored_kinds() -> tuple[ResultKind, ...]:
    """The kinds every succeeded job has in storage (the worker always writes them)."""
    return tuple(kind for kind in RESULTS if not kind.on_request)


def on_request_kinds() -> tuple[ResultKind, ...]:
    """The kinds made when first asked for (or pre-rendered for a batch with outputs=)."""
    return tuple(kind for kind in RESULTS if kind.on_request)
