"""Result images from the photo, its alpha and mask, with PIL only (the web image has no numpy).

One path for every variant: find the crop box on the full-size alpha, pick the output size,
crop and scale each source the kind is drawn from once (at output size, so compositing is cheap),
hand them to the kind's maker (its entry in core/results.py names it), encode. The worker calls it
with images in memory; the web tier with images from storage, the photo decoded at reduced scale
when a small output allows (JPEG draft).
"""

from __future__ import annotations

import io
import math
import warnings
import zlib
from collections.abc import Callable
from dataclasses import dataclass

from PIL import Image, ImageEnhance, ImageOps

from humanseg.core.images import orientation, to_rgb
from humanseg.core.matte import decontaminated
from humanseg.core.results import known_kind
from humanseg.core.variants import Margin, Options, defaults

TINT = (0, 190, 255)  # the person is tinted with this colour in the overlay
CROP_LEVEL = 8  # alpha at or above this is subject when cropping, so faint speckle is not
PNG_LEVEL = 6  # variants: smaller downloads; they are made once and then served from storage
# Mask and alpha in the worker: zlib's run-length strategy (its level makes no difference) encodes
# them faster than level 3's default strategy and smaller (seed photos: mask 3.96 -> 2.05 KB,
# alpha 12.2 -> 9.4 KB; bench/stage_table.py has the time).
STORED_PNG_LEVEL = 1
STORED_PNG_STRATEGY = zlib.Z_RLE
WEBP_METHOD = 4
_SWAPS_AXES = {5, 6, 7, 8}  # EXIF orientations that turn the stored image by 90 degrees
_RESAMPLE = Image.Resampling.LANCZOS
_REDUCING_GAP = 2.0  # integer-reduce big downscales first: much faster, same look


@dataclass
class Sources:
    """What a variant is made from; `image` may be a loader given the pixel size it must reach."""

    image: Image.Image | Callable[[tuple[int, int]], Image.Image] | None = None
    alpha: Image.Image | None = None  # 'L' soft alpha, full (upright) size
    mask: Image.Image | None = None  # 'L' 0/255, full size
    background: Image.Image | None = None  # any size; fitted to the output
    size: tuple[int, int] | None = None  # full upright size; else taken from alpha, mask or image

    def full_size(self) -> tuple[int, int]:
        """The upright size every box is measured in."""
        for known in (self.size, self.alpha, self.mask, self.image):
            if isinstance(known, tuple):
                return known
            if isinstance(known, Image.Image):
                return known.size
        raise ValueError("sources need a size, an alpha, a mask or an image")

    def photo(self, want: tuple[int, int]) -> Image.Image:
        """The photo, at least `want` pixels wide and high when it is loaded at reduced scale."""
        if self.image is None:
            raise ValueError("this variant needs the photo")
        return self.image if isinstance(self.image, Image.Image) else self.image(want)


def _needed(img: Image.Image | None, what: str) -> Image.Image:
    """A source the variant cannot be made without (as Sources.photo does for the photo)."""
    if img is None:
        raise ValueError(f"this variant needs the {what}")
    return img


def load_photo(data: bytes, want: tuple[int, int] | None = None) -> Image.Image:
    """Upright RGB from stored bytes; a JPEG is decoded at 1/2, 1/4 or 1/8 scale when `want` allows."""
    with warnings.catch_warnings():
        # Uploads were checked against our own pixel limit; PIL's bomb warning is redundant.
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        img = Image.open(io.BytesIO(data))
        if want and img.format == "JPEG":
            w, h = want[::-1] if orientation(img) in _SWAPS_AXES else want
            img.draft("RGB", (w, h))  # never smaller than (w, h)
        img.load()
    return to_rgb(img)


def reducible(photo: Image.Image) -> Callable[[tuple[int, int]], Image.Image]:
    """A photo in memory as a Sources loader: box-reduced by a whole factor when a small output allows.

    What load_photo's JPEG draft does for stored bytes, for the worker's decoded photo: a 256 px
    thumbnail of a 640 px photo is resized from 320 px, not from the full size.
    """
    def load(want: tuple[int, int]) -> Image.Image:
        factor = min(photo.width // max(1, want[0]), photo.height // max(1, want[1]))
        return photo.reduce(factor) if factor >= 2 else photo
    return load


def load_gray(data: bytes) -> Image.Image:
    """A stored mask or alpha as 'L'."""
    with Image.open(io.BytesIO(data)) as img:
        return img.convert("L")


def subject_box(alpha: Image.Image, margin: Margin) -> tuple[int, int, int, int] | None:
    """The subject's bounding box with the margin, clipped to the image; None when nothing is there."""
    box = alpha.point(lambda v: 255 if v >= CROP_LEVEL else 0).getbbox()
    if box is None:
        return None
    left, top, right, bottom = box
    pad = margin.pixels(max(right - left, bottom - top))
    w, h = alpha.size
    return max(0, left - pad), max(0, top - pad), min(w, right + pad), min(h, bottom + pad)


def fit(width: int, height: int, side: int | None) -> tuple[int, int]:
    """The size with longest side `side` (never larger than the input; None keeps it)."""
    longest = max(width, height)
    if not side or side >= longest:
        return width, height
    scale = side / longest
    return max(1, round(width * scale)), max(1, round(height * scale))


def _scaled(img: Image.Image, box: tuple[int, int, int, int], full: tuple[int, int],
            out: tuple[int, int]) -> Image.Image:
    """The box (in full-size pixels) of img, whatever img's own scale, resized to out."""
    sx, sy = img.width / full[0], img.height / full[1]
    region = (box[0] * sx, box[1] * sy, box[2] * sx, box[3] * sy)
    if region == (0, 0, img.width, img.height) and out == img.size:
        return img
    return img.resize(out, _RESAMPLE, box=region, reducing_gap=_REDUCING_GAP)


def make(opts: Options, src: Sources) -> Image.Image:
    """The variant as a PIL image (before encoding)."""
    full = src.full_size()
    box = (0, 0, *full)
    if opts.crop and src.alpha is not None:
        box = subject_box(src.alpha, opts.margin) or box  # nothing found: keep the whole photo
    out = fit(box[2] - box[0], box[3] - box[1], opts.size)
    drawing = opts.drawing
    pieces = {name: _piece(name, src, box, full, out) for name in drawing.drawn_from}
    return MAKERS[drawing.maker](pieces, opts, src.background)


def _piece(name: str, src: Sources, box: tuple[int, int, int, int], full: tuple[int, int],
           out: tuple[int, int]) -> Image.Image:
    """One source (image, alpha or mask) cropped to the box and scaled to the output size."""
    if name == "image":
        want = (math.ceil(full[0] * out[0] / (box[2] - box[0])), math.ceil(full[1] * out[1] / (box[3] - box[1])))
        return _scaled(src.photo(want), box, full, out)
    whole = _needed(getattr(src, name), name)
    piece = _scaled(whole, box, full, out)
    if name == "mask" and piece is not whole:
        return piece.point(lambda v: 255 if v >= 128 else 0)  # a scaled mask stays 0/255
    return piece


Pieces = dict[str, Image.Image]  # source name -> that source cropped and scaled for the output


def _source(pieces: Pieces, opts: Options, background: Image.Image | None) -> Image.Image:
    """The one source the kind is drawn from, as it comes (mask, alpha, the photo)."""
    (only,) = pieces.values()
    return only


def _overlay(pieces: Pieces, opts: Options, background: Image.Image | None) -> Image.Image:
    """The overlay maker: the photo tinted where the alpha is."""
    return overlay(pieces["image"], pieces["alpha"])


def _cutout(pieces: Pieces, opts: Options, background: Image.Image | None) -> Image.Image:
    """The cut-out maker: the photo through the alpha, over the background the options name."""
    return compose(pieces["image"], pieces["alpha"], opts, background)


# Maker name (a kind's `maker` in core/results.py) -> how it draws from its cropped, scaled sources.
MAKERS: dict[str, Callable[[Pieces, Options, Image.Image | None], Image.Image]] = {
    "source": _source, "overlay": _overlay, "cutout": _cutout,
}


def overlay(photo: Image.Image, alpha: Image.Image) -> Image.Image:
    """Person tinted, everything else dimmed (a quick visual check)."""
    tinted = Image.blend(photo, Image.new("RGB", photo.size, TINT), 0.35)
    dimmed = ImageEnhance.Brightness(photo).enhance(0.35)
    return Image.composite(tinted, dimmed, alpha)


def compose(photo: Image.Image, alpha: Image.Image, opts: Options,
            background: Image.Image | None) -> Image.Image:
    """The cut-out: with its alpha (transparent), or over a colour or a background image."""
    cut = decontaminated(photo, alpha)  # no colour under alpha 0, no old background in soft edges
    if opts.bg.kind == "transparent":
        return cut
    if opts.bg.kind == "colour":
        under = Image.new("RGB", photo.size, opts.bg.rgb)
    else:
        if background is None:
            raise ValueError("a background image was asked for but not given")
        under = ImageOps.fit(to_rgb(background), photo.size, _RESAMPLE)  # cover, centred
    return Image.composite(cut.convert("RGB"), under, alpha)


def encode(img: Image.Image, fmt: str, quality: int | None = None, png_level: int = PNG_LEVEL,
           png_strategy: int = zlib.Z_DEFAULT_STRATEGY) -> bytes:
    """Image to bytes: png; webp lossless (quality None) or lossy; jpeg at `quality`."""
    buf = io.BytesIO()
    if fmt == "png":
        img.save(buf, "PNG", compress_level=png_level, compress_type=png_strategy)
    elif fmt == "webp":
        params = {"lossless": True} if quality is None else {"quality": quality}
        img.save(buf, "WEBP", method=WEBP_METHOD, **params)
    elif fmt == "jpeg":
        img.save(buf, "JPEG", quality=quality or 90)
    else:
        raise ValueError(f"unknown format {fmt!r}")
    return buf.getvalue()


def render(opts: Options, src: Sources) -> bytes:
    """The encoded variant."""
    return encode(make(opts, src), opts.format, opts.quality)


def render_result(name: str, src: Sources) -> bytes:
    """A result kind as stored under its plain key (the worker's writes and lazy defaults)."""
    kind = known_kind(name)
    if kind.maker == "source" and not kind.stored:  # a source stored as it comes: quick PNG
        (source,) = kind.drawn_from
        return encode(_needed(getattr(src, source), source), "png", png_level=STORED_PNG_LEVEL,
                      png_strategy=STORED_PNG_STRATEGY)
    return render(defaults(name), src)
