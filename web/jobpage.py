"""The job page's display-size previews and its output options form (background, format, size, crop).

The page never loads a full-size file: every view is a variant at most PREVIEW_SIDE pixels
long, made on first view and served from storage after that (web/variant_cache.py).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from humanseg.core.models import Job
from humanseg.core.results import RESULTS, ResultKind, drawable
from humanseg.core.storage import Storage
from humanseg.core.variants import OptionError, parse
from humanseg.web.serialize import object_url
from humanseg.web.variant_cache import variant_url

PREVIEW_SIDE = 720  # CSS pixels of the widest view on a desktop, about, at 2x on a phone
SWATCHES = ("#ffffff", "#000000", "#1e40af", "#16a34a", "#f59e0b", "#ec4899")
FORMAT_CHOICES = (("png", "PNG"), ("webp", "WebP"), ("jpeg", "JPEG"))
HEX_COLOUR = re.compile(r"^#[0-9a-fA-F]{6}$")  # what the page's colour input and swatches send


def parse_colour(value: str | None, default: str = "#ffffff") -> str:
    """A #rrggbb colour, lower-case; the default when missing or malformed."""
    value = (value or "").strip()
    return value.lower() if HEX_COLOUR.match(value) else default


@dataclass(frozen=True)
class View:
    """One result shown on the page: its preview and its full-size download."""

    kind: ResultKind
    preview: str
    full: str | None  # object_url: None where the job has no such object


def preview_url(job: Job, kind: str) -> str:
    """Our URL of a display-size preview of one result (or of the original): the options of its
    entry in core/results.py keep it light (lossy WebP keeps the cut-out's transparency)."""
    return variant_url(job, kind, size=PREVIEW_SIDE, **dict(drawable(kind).preview))


def views(job: Job, storage: Storage) -> list[View]:
    """The full-size kinds, each as a preview plus its download (presigned on S3 when stored); the
    featured kind (the cut-out) first."""
    kinds = sorted((kind for kind in RESULTS if kind.full_size), key=lambda kind: not kind.featured)
    return [View(kind, preview_url(job, kind.name), object_url(job, kind.name, storage)) for kind in kinds]


@dataclass
class OptionsForm:
    """The options form's fields as sent (kept for redisplay) and the API query they make."""

    bgmode: str = "transparent"  # transparent | colour | image
    bgcolor: str = "#ffffff"
    bgimage: str = ""
    format: str = "png"
    quality: str = ""
    size: str = ""
    crop: bool = False
    margin: str = ""
    query: dict[str, str] = field(default_factory=dict)
    error: str = ""

    @property
    def transparent(self) -> bool:
        """True when the result keeps its transparency (the preview goes on a checkerboard)."""
        return self.bgmode == "transparent"

    def preview_query(self) -> dict[str, str]:
        """The same options at display size, for the live preview."""
        size = int(self.query["size"]) if self.query.get("size", "").isdigit() else PREVIEW_SIDE
        return {**self.query, "size": str(min(size, PREVIEW_SIDE))}


def read_form(args: Mapping[str, str]) -> OptionsForm:
    """The form from the page's query string; `error` says what the API would refuse."""
    form = OptionsForm()
    form.bgmode = args.get("bgmode", form.bgmode)
    if HEX_COLOUR.match(args.get("bgcolor", "")):
        form.bgcolor = args["bgcolor"].lower()
    swatch = (args.get("bg") or "").strip()  # a swatch button, or ?bg=#rrggbb from earlier links
    if HEX_COLOUR.match(swatch):
        form.bgmode, form.bgcolor = "colour", swatch.lower()
    form.bgimage = args.get("bgimage", "").strip()
    form.format = args.get("format", form.format).strip().lower() or "png"
    form.quality = args.get("quality", "").strip()
    form.size = args.get("size", "").strip()
    form.crop = args.get("crop", "") in ("1", "true", "on", "yes")
    form.margin = args.get("margin", "").strip() if form.crop else ""
    bg = {"colour": form.bgcolor, "image": f"image:{form.bgimage}"}.get(form.bgmode, "transparent")
    pairs = [("bg", bg), ("format", form.format), ("quality", form.quality), ("size", form.size),
             ("crop", "true" if form.crop else ""), ("margin", form.margin)]
    # Defaults are left out, so the plain choice downloads the plain file.
    form.query = {k: v for k, v in pairs if v and (k, v) not in (("bg", "transparent"), ("format", "png"))}
    try:
        parse("cutout", form.query.items())
    except OptionError as exc:
        form.error = str(exc)
    return form
