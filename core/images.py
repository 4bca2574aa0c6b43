"""Safe decoding and validation of uploaded images (formats, pixels, sides, EXIF).

One routine opens and orients an image for everybody: upload validation, the worker and ml.
What validate() accepts is exactly what load_oriented() can turn into an upright image.
"""

from __future__ import annotations

import io
import os
import re
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, cast

from PIL import Image

from humanseg.core.errors import ImageError

# Orientation values 5..8 rotate by 90/270 degrees, swapping width and height.
_EXIF_ORIENTATION = 0x0112
_SHORT = 3  # the TIFF type EXIF gives Orientation; one stored otherwise is ignored, as browsers do
_SWAPS_AXES = {5, 6, 7, 8}
# The transposition that makes each EXIF orientation upright (as ImageOps.exif_transpose,
# but keyed by our own reading of the tag, which honours it only when stored as a SHORT).
_UPRIGHT = {
    2: Image.Transpose.FLIP_LEFT_RIGHT, 3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM, 5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270, 7: Image.Transpose.TRANSVERSE, 8: Image.Transpose.ROTATE_90,
}
# Integer modes whose samples span 0..65535 (PNG's 16-bit grey decodes to one of these).
_SIXTEEN_BIT = ("I;16", "I;16L", "I;16B", "I;16N", "I")
# The worker writes a JPEG overlay of the upload's size; JPEG cannot hold a longer side.
MAX_SIDE = 65_500

FORMATS = {  # PIL format -> (content type, extension)
    "JPEG": ("image/jpeg", ".jpg"),
    "PNG": ("image/png", ".png"),
    "WEBP": ("image/webp", ".webp"),
}
# File names that hold an accepted image: what every tool that walks a folder picks up (the server
# still goes by magic bytes). Copies that cannot import this (the remote CLI, upload.js) are tested
# against it.
IMAGE_SUFFIXES = tuple(sorted({ext for _, ext in FORMATS.values()} | {".jpeg"}))

_UNSUPPORTED_MAGIC = (
    (b"GIF87a", "GIF"), (b"GIF89a", "GIF"),
    (b"II*\x00", "TIFF"), (b"MM\x00*", "TIFF"),
    (b"%!PS", "EPS"), (b"\xc5\xd0\xd3\xc6", "EPS"),
    (b"BM", "BMP"), (b"%PDF", "PDF"),
)

Source = bytes | bytearray | str | Path | BinaryIO


@dataclass(frozen=True)
class Limits:
    """Per-file limits applied by validate()."""

    max_file_bytes: int = 25 * 1024 * 1024
    max_pixels: int = 40_000_000
    max_side: int = MAX_SIDE


@dataclass(frozen=True)
class ImageInfo:
    """What we learned from a valid upload; width/height are after EXIF orientation."""

    format: str
    content_type: str
    extension: str
    width: int
    height: int
    bytes: int

    @property
    def pixels(self) -> int:
        """Width times height: what the worker will decode and render."""
        return self.width * self.height


def sniff(data: bytes) -> str | None:
    """Format by magic bytes: 'JPEG', 'PNG', 'WEBP', or None."""
    if data[:3] == b"\xff\xd8\xff":
        return "JPEG"
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        return "PNG"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "WEBP"
    return None


def _unsupported_name(data: bytes) -> str | None:
    for magic, name in _UNSUPPORTED_MAGIC:
        if data.startswith(magic):
            return name
    return None


@contextmanager
def _quiet() -> Iterator[None]:
    """Silence PIL's bomb warning (our own pixel limit applies) and its malformed-EXIF warnings."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        warnings.simplefilter("ignore", UserWarning)
        yield


def _open(source: Source, formats: list[str] | None = None) -> Image.Image:
    """Image.open on bytes, a path or a file object (rewound first; the caller's file stays open)."""
    if isinstance(source, (bytes, bytearray)):
        return Image.open(io.BytesIO(source), formats=formats)
    if isinstance(source, (str, Path)):
        return Image.open(source, formats=formats)
    source.seek(0)
    return Image.open(source, formats=formats)


def _size_and_head(source: Source) -> tuple[int, bytes]:
    if isinstance(source, (bytes, bytearray)):
        return len(source), bytes(source[:16])
    if isinstance(source, (str, Path)):
        with open(source, "rb") as fh:
            return os.fstat(fh.fileno()).st_size, fh.read(16)
    source.seek(0, io.SEEK_END)
    size = source.tell()
    source.seek(0)
    head = source.read(16)
    source.seek(0)
    return size, head


def readable_bytes(n: int) -> str:
    """26214400 -> '25 MB' (binary units, as the upload page states the limit)."""
    for unit, size in (("GB", 1 << 30), ("MB", 1 << 20), ("KB", 1 << 10)):
        if n >= size:
            value = n / size
            return f"{value:.0f} {unit}" if value >= 10 or value == int(value) else f"{value:.1f} {unit}"
    return f"{n} bytes"


def validate(source: Source, limits: Limits | None = None) -> ImageInfo:
    """Check one upload fully (bytes, a path or a spooled file); raise ImageError(code, message)."""
    limits = limits or Limits()
    size, head = _size_and_head(source)
    if size == 0:
        raise ImageError("empty_file", "the file is empty")
    if size > limits.max_file_bytes:
        raise ImageError("file_too_large",
                         f"the file is {readable_bytes(size)}; the limit is {readable_bytes(limits.max_file_bytes)}")
    fmt = sniff(head)
    if fmt is None:
        other = _unsupported_name(head)
        what = f"{other} images are" if other else "this file type is"
        raise ImageError("unsupported_format", f"{what} not supported; send JPEG, PNG or WebP")
    try:
        with _quiet(), _open(source, [fmt]) as img:
            width, height = _check_header(img, limits)
            if fmt == "JPEG":
                # Every byte of the entropy-coded data is still read (truncated and corrupt data are
                # caught), but the inverse DCT runs at 1/8 scale: the worker's full decode is not paid twice.
                img.draft(img.mode, (max(1, width // 8), max(1, height // 8)))
            img.load()  # the whole image decoded, as the worker will
            turned = orientation(img)
    except ImageError:
        raise
    except Image.DecompressionBombError as exc:  # PIL's own limit, met before ours could look
        raise _too_many_pixels(_claimed_pixels(str(exc)), limits) from exc
    except Exception as exc:  # PIL raises many types for garbage headers and data
        raise ImageError("corrupt_image", f"the {fmt} file is truncated or cannot be read") from exc
    if turned in _SWAPS_AXES:
        width, height = height, width
    content_type, ext = FORMATS[fmt]
    return ImageInfo(fmt, content_type, ext, width, height, size)


def _claimed_pixels(bomb_message: str) -> int | None:
    """The pixel count in PIL's 'Image size (N pixels) exceeds limit of M pixels...', if it is there."""
    found = re.search(r"\((\d+) pixels\)", bomb_message)
    return int(found.group(1)) if found else None


def _too_many_pixels(pixels: int | None, limits: Limits, size: tuple[int, int] | None = None) -> ImageError:
    """Over our configured pixel limit, stated in it (never in PIL's own bomb threshold)."""
    limit = f"the limit is {limits.max_pixels / 1e6:.1f} megapixels"
    if pixels is None:
        return ImageError("too_many_pixels", f"the image has too many pixels; {limit}")
    shown = f"{size[0]}x{size[1]} ({pixels / 1e6:.1f} megapixels)" if size else f"{pixels / 1e6:.1f} megapixels"
    return ImageError("too_many_pixels", f"the image is {shown}; {limit}")


def _check_header(img: Image.Image, limits: Limits) -> tuple[int, int]:
    """Size checks from the header alone, before anything is decoded."""
    width, height = img.size
    pixels = width * height
    if width <= 0 or height <= 0:
        raise ImageError("corrupt_image", "the image has no pixels")
    if pixels > limits.max_pixels:
        raise _too_many_pixels(pixels, limits, (width, height))
    if max(width, height) > limits.max_side:
        raise ImageError("side_too_long", f"the image is {width}x{height}; no side may be longer "
                                          f"than {limits.max_side} pixels")
    return width, height


def orientation(img: Image.Image) -> int:
    """The EXIF orientation (1..8) that validation and decoding both honour; 1 if absent, malformed or
    stored as another type than SHORT (browsers ignore such a tag, so the user sees the image unturned)."""
    try:
        with _quiet():
            exif = img.getexif()
            value = exif.get(_EXIF_ORIENTATION, 1)
            # The type it was stored as (Pillow's parsed IFD); none there when it came from XMP.
            stored = getattr(getattr(exif, "_info", None), "tagtype", {}).get(_EXIF_ORIENTATION, _SHORT)
    except Exception:  # noqa: BLE001 - malformed EXIF (any PIL error type): treat as upright
        return 1
    if stored != _SHORT or type(value) is not int:
        return 1
    return value if value in _UPRIGHT else 1


def upright(img: Image.Image) -> Image.Image:
    """The image turned as its EXIF orientation says (itself when already upright)."""
    method = _UPRIGHT.get(orientation(img))
    if method is None:
        return img
    out = img.transpose(method)
    # The turn is done: drop the metadata that asked for it (EXIF, or XMP's tiff:Orientation),
    # so that turning the result again is a no-op.
    for key in ("exif", "xmp", "XML:com.adobe.xmp"):
        out.info.pop(key, None)
    out._exif = None
    return out


def load_oriented(source: Source) -> Image.Image:
    """Decode bytes, a path or a file to an upright 8-bit RGB image (the one decoder of web, worker and ml)."""
    with _quiet():
        # Not closed here: to_rgb may hand back this very image, and closing would free its pixels.
        img = _open(source)
        img.load()
        return to_rgb(img)


def to_rgb(img: Image.Image) -> Image.Image:
    """Any PIL image as upright 8-bit RGB: EXIF orientation applied, deep samples scaled, alpha on white."""
    img = upright(img)
    mode = img.mode
    if mode in _SIXTEEN_BIT:
        # 16-bit samples: 0..65535 maps to 0..255 (round(v / 257)) rather than clipping at 255.
        img = img.convert("I").point(lambda v: v * (1 / 257) + 0.5).convert("L")
        mode = "L"
    elif mode == "F":
        # Floats in 0..1 are scaled to 0..255; other floats are taken as 0..255 and clipped.
        scale = 255 if _is_unit_float(img) else 1
        img = img.point(lambda v: v * scale + 0.5).convert("L")
        mode = "L"
    if mode == "P":
        img = img.convert("RGBA") if "transparency" in img.info else img.convert("RGB")
        mode = img.mode
    if mode in ("LA", "PA", "RGBA", "La", "RGBa"):
        rgba = img.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, rgba).convert("RGB")
    if mode != "RGB":
        return img.convert("RGB")
    return img


def _is_unit_float(img: Image.Image) -> bool:
    lo, hi = cast("tuple[float, float]", img.getextrema())  # one band: (min, max)
    return lo >= 0.0 and hi <= 1.0
