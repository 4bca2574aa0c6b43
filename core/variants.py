"""Result options (background, format, size, crop): strict parsing and one canonical name each.

A request such as `/api/v1/jobs/<id>/cutout?bg=%23ffffff&format=jpeg&size=800` names one
variant; equal requests however spelled (`format=jpg`, `bg=FFFFFF`, `crop=1`...) get one
canonical name, so a variant is rendered once and then served from storage under its
variant key (core/layout.py). A kind's default options name its plain result file
(`cutout` with no options is the job's `cutout.png`). What each kind takes and is drawn from
is its entry in core/results.py. No PIL here: the web tier
validates before it loads anything.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field, replace

from humanseg.core.layout import variant_key
from humanseg.core.results import (
    ORIGINAL,  # the upload; with options, a scaled copy of it (page previews)
    RESULTS,
    ResultKind,
    drawable,
    on_request_kinds,
    result_kind,
)

OPTION_NAMES = ("bg", "format", "quality", "size", "crop", "margin")
FORMATS = {"png": ("image/png", ".png"), "webp": ("image/webp", ".webp"),
           "jpeg": ("image/jpeg", ".jpg")}
_ALIASES = {"jpg": "jpeg"}
LOSSY = ("jpeg",)  # always lossy; webp is lossy only when a quality is given
JPEG_QUALITY = 90
MIN_SIDE, MAX_SIDE = 16, 10_000
MAX_MARGIN_PX, MAX_MARGIN_PCT = 2_000, 100
_TRUE, _FALSE = ("1", "true", "yes", "on"), ("0", "false", "no", "off")
_HEX = re.compile(r"#?([0-9a-fA-F]{6})")
_IMAGE = re.compile(r"image:([0-9a-f]{32})")


class OptionError(ValueError):
    """A result option the API refuses: 400 naming the parameter and the reason."""

    def __init__(self, parameter: str, reason: str):
        super().__init__(f"{parameter}: {reason}")
        self.parameter = parameter
        self.reason = reason


@dataclass(frozen=True)
class Background:
    """What shows through a cut-out: nothing, a colour, or an uploaded image."""

    kind: str = "transparent"  # transparent | colour | image
    value: str = ""  # 6 lower-case hex digits, or the background image id

    @property
    def rgb(self) -> tuple[int, int, int]:
        """The colour as an (r, g, b) tuple (colour backgrounds only)."""
        return tuple(int(self.value[i:i + 2], 16) for i in (0, 2, 4))  # type: ignore[return-value]

    @property
    def token(self) -> str:
        """Its part of a canonical name: 'none', 'ffffff' or 'img-<id>'."""
        return {"transparent": "none", "colour": self.value}.get(self.kind, f"img-{self.value}")

    def __str__(self) -> str:
        """As the API spells it: transparent, #rrggbb, image:<id>."""
        return {"transparent": "transparent", "colour": f"#{self.value}"}.get(
            self.kind, f"image:{self.value}")


TRANSPARENT = Background()


@dataclass(frozen=True)
class Margin:
    """Space kept round the subject when cropping: pixels of the upload, or % of the subject."""

    value: int = 0
    unit: str = "px"  # px | pct

    def pixels(self, subject_side: int) -> int:
        """The margin in pixels for a subject whose longest side is `subject_side`."""
        return self.value if self.unit == "px" else round(subject_side * self.value / 100)


@dataclass(frozen=True)
class Options:
    """One variant of one kind; build with parse() or defaults()."""

    kind: str
    format: str
    bg: Background = TRANSPARENT
    quality: int | None = None  # None: lossless (png, webp); jpeg always has one
    size: int | None = None  # longest side in pixels; None: full size
    crop: bool = False
    margin: Margin = field(default_factory=Margin)

    @property
    def content_type(self) -> str:
        """MIME type of the encoded variant."""
        return FORMATS[self.format][0]

    @property
    def extension(self) -> str:
        """File extension with its dot."""
        return FORMATS[self.format][1]

    @property
    def drawing(self) -> ResultKind:
        """The table entry of its kind: what it is drawn from and by which maker."""
        return drawable(self.kind)

    @property
    def transparent(self) -> bool:
        """True when the variant keeps an alpha channel (a cut-out with no background)."""
        return self.drawing.has_alpha and self.bg.kind == "transparent"

    @property
    def sources(self) -> frozenset[str]:
        """What it is rendered from: image, alpha, mask, background."""
        need = set(self.drawing.drawn_from)
        if self.crop:
            need = need | {"alpha"}  # the subject's box comes from the alpha for every kind
        if self.bg.kind == "image":
            need = need | {"background"}
        return frozenset(need)

    def canonical(self) -> str:
        """The one name of this variant, e.g. 'cutout_bg-ffffff_crop-m10pct_s800_q90.jpg'."""
        parts = [self.kind]
        if self.bg != TRANSPARENT:
            parts.append(f"bg-{self.bg.token}")
        if self.crop:
            unit = "pct" if self.margin.unit == "pct" else "px"
            parts.append(f"crop-m{self.margin.value}{unit}" if self.margin.value else "crop")
        if self.size:
            parts.append(f"s{self.size}")
        if self.quality is not None:
            parts.append(f"q{self.quality}")
        return "_".join(parts) + self.extension

    def key(self, job_id: str, original_key: str, model: str | None = None) -> str:
        """Storage key: the plain result (or upload) for default options, else a cached variant."""
        if self == defaults(self.kind):
            return original_key if self.kind == ORIGINAL else self.drawing.key(job_id, model)
        return variant_key(job_id, self.canonical(), model)


def defaults(kind: str) -> Options:
    """The options of a kind's plain result (its stored file); for the original, 'as uploaded'
    (format 'upload'). KeyError for an unknown kind."""
    found = drawable(kind)
    if kind == ORIGINAL:
        return Options(ORIGINAL, "upload")
    fmt = found.formats[0] if found.formats else found.suffix.lstrip(".").replace("jpg", "jpeg")
    plain = Options(kind, fmt, quality=JPEG_QUALITY if fmt in LOSSY else None)
    return _apply(plain, dict(found.stored), (fmt,)) if found.stored else plain


def _one(pairs: Iterable[tuple[str, str]], allowed: tuple[str, ...], kind: str) -> dict[str, str]:
    """Each parameter at most once, and only those the kind accepts."""
    seen: dict[str, str] = {}
    for name, value in pairs:
        if name not in OPTION_NAMES:
            raise OptionError(name, f"unknown parameter; options are {', '.join(OPTION_NAMES)}")
        if name not in allowed:
            what = f"{kind} takes no options" if not allowed else \
                f"not an option of {kind} (it takes {', '.join(allowed)})"
            raise OptionError(name, what)
        if name in seen:
            raise OptionError(name, "given more than once")
        if not value.strip():
            raise OptionError(name, "is empty")
        seen[name] = value.strip()
    return seen


def parse(kind: str, pairs: Iterable[tuple[str, str]]) -> Options:
    """Validate a request's options for `kind` (KeyError: no such kind; OptionError: refused)."""
    found = drawable(kind)
    raw = _one(pairs, found.options, kind)
    if not raw:
        return defaults(kind)
    base = defaults(kind) if kind != ORIGINAL else Options(ORIGINAL, "jpeg", quality=JPEG_QUALITY)
    return _apply(base, raw, found.formats)


def _apply(base: Options, raw: dict[str, str], formats: tuple[str, ...]) -> Options:
    """`base` with the options in `raw` (each already allowed for its kind), checked together."""
    bg = parse_bg(raw["bg"]) if "bg" in raw else base.bg
    fmt = _format(raw["format"], formats) if "format" in raw else base.format
    quality = _quality(raw.get("quality"), fmt)
    crop = _flag("crop", raw["crop"]) if "crop" in raw else False
    margin = _margin(raw["margin"]) if "margin" in raw else Margin()
    if margin.value and not crop:
        raise OptionError("margin", "applies only with crop=true")
    size = _size(raw["size"]) if "size" in raw else None
    opts = replace(base, bg=bg, format=fmt, quality=quality, size=size, crop=crop, margin=margin)
    if opts.transparent and fmt == "jpeg":
        raise OptionError("format", "jpeg has no transparency: give a bg colour or image, "
                                    "or ask for png or webp")
    return opts


# Named colours a request may use for bg= (the CSS names of the common backdrops).
NAMED_COLOURS = {"white": "ffffff", "black": "000000", "grey": "808080", "gray": "808080",
                 "lightgrey": "d3d3d3", "lightgray": "d3d3d3", "red": "ff0000", "green": "008000",
                 "blue": "0000ff", "yellow": "ffff00"}


def parse_bg(value: str) -> Background:
    """transparent | #RRGGBB (or RRGGBB) | a named colour (white, black, grey...) | image:<id>."""
    if value.lower() in ("transparent", "none"):
        return TRANSPARENT
    if value.lower() in NAMED_COLOURS:
        return Background("colour", NAMED_COLOURS[value.lower()])
    if match := _HEX.fullmatch(value):
        return Background("colour", match.group(1).lower())
    if match := _IMAGE.fullmatch(value):
        return Background("image", match.group(1))
    raise OptionError("bg", f"must be transparent, a colour #RRGGBB or {', '.join(sorted(NAMED_COLOURS))}, "
                            "or image:<id> (an id from POST /api/v1/backgrounds)")


def _format(value: str, formats: tuple[str, ...]) -> str:
    fmt = _ALIASES.get(value.lower(), value.lower())
    if fmt not in formats:
        raise OptionError("format", f"must be one of {', '.join(formats)}")
    return fmt


def _quality(value: str | None, fmt: str) -> int | None:
    """jpeg: given or 90; webp: given means lossy, none means lossless; png: refused."""
    if value is None:
        return JPEG_QUALITY if fmt in LOSSY else None
    if fmt == "png":
        raise OptionError("quality", "applies to jpeg and webp only (png is lossless)")
    if not value.isdigit() or not 1 <= int(value) <= 100:
        raise OptionError("quality", "must be an integer from 1 to 100")
    return int(value)


def _flag(name: str, value: str) -> bool:
    if value.lower() in _TRUE:
        return True
    if value.lower() in _FALSE:
        return False
    raise OptionError(name, "must be true or false")


def _size(value: str) -> int | None:
    if value.lower() == "full":
        return None
    if not value.isdigit() or not MIN_SIDE <= int(value) <= MAX_SIDE:
        raise OptionError("size", f"must be full or a longest side from {MIN_SIDE} to {MAX_SIDE} px")
    return int(value)


def _margin(value: str) -> Margin:
    number, unit = (value[:-1], "pct") if value.endswith("%") else (value.removesuffix("px"), "px")
    limit = MAX_MARGIN_PCT if unit == "pct" else MAX_MARGIN_PX
    if not number.isdigit() or int(number) > limit:
        raise OptionError("margin", f"must be pixels (0 to {MAX_MARGIN_PX}, e.g. 20 or 20px) or "
                                    f"a share of the subject (0% to {MAX_MARGIN_PCT}%)")
    return Margin(int(number), unit)


def parse_outputs(values: Iterable[str]) -> str | None:
    """The upload's `outputs=` (names, comma-separated or repeated) as the stored text, or None.

    Only on-request kinds are kept: the others are made for every job anyway.
    """
    names = {n.strip().lower() for v in values for n in v.split(",") if n.strip()}
    known = {kind.name for kind in RESULTS}
    unknown = sorted(names - known)
    if unknown:
        raise OptionError("outputs", f"unknown result {', '.join(unknown)}; choose from "
                                     f"{', '.join(k.name for k in on_request_kinds())}")
    chosen = [kind.name for kind in on_request_kinds() if kind.name in names]
    return ",".join(chosen) or None


def outputs_of(stored: str | None) -> tuple[str, ...]:
    """The on-request kinds a job asked the worker to pre-render (from the job's `outputs`)."""
    return tuple(name for name in (stored or "").split(",") if result_kind(name))
