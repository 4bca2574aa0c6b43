"""Safe decoding and validation of uploaded images (formats, pixels, EXIF)."""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass
from pathlib import Path

from humanseg.core.errors import ImageError
from PIL import Image, ImageOps

# Orientation values 5..8 rotate by 90/270 degrees, swapping width and height.
_EXIF_ORIENTATION = 0x0112
_SWAPS_AXES = {5, 6, 7, 8}
# Integer modes whose samples span 0..65535 (PNG's 16-bit grey decodes to one of these).
_SIXTEEN_BIT = ("I;16", "I;16L", "I;16B", "I;16N", "I")

FORMATS = {  # PIL format -> (content type, extension)
    "JPEG": ("image/jpeg", ".jpg"),
    "PNG": ("image/png", ".png"),
    "WEBP": ("image/webp", ".webp"),
}

_UNSUPPORTED_MAGIC = (
    (b"GIF87a", "GIF"), (b"GIF89a", "GIF"),
    (b"II*\x00", "TIFF"), (b"MM\x00*", "TIFF"),
    (b"%!PS", "EPS"), (b"\xc5\xd0\xd3\xc6", "EPS"),
    (b"BM", "BMP"), (b"%PDF", "PDF"),
)


@dataclass(frozen=True)
class Limits:
    """Per-file limits applied by validate()."""

    max_file_bytes: int = 25 * 1024 * 1024
    max_pixels: int = 40_000_000


@dataclass(frozen=True)
class ImageInfo:
    """What we learned from a valid upload; width/height are after EXIF orientation."""

    format: str
    content_type: str
    extension: str
    width: int
    height: int
    bytes: int


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


def validate(data: bytes, filename: str = "", limits: Limits | None = None) -> ImageInfo:
    """Check one upload fully; raise ImageError(code, message) if unacceptable."""
    limits = limits or Limits()
    size = len(data)
    if size == 0:
        raise ImageError("empty_file", "the file is empty")
    if size > limits.max_file_bytes:
        raise ImageError("file_too_large",
                         f"the file has {size} bytes; the limit is {limits.max_file_bytes}")
    fmt = sniff(data)
    if fmt is None:
        other = _unsupported_name(data)
        what = f"{other} images are" if other else "this file type is"
        raise ImageError("unsupported_format", f"{what} not supported; send JPEG, PNG or WebP")
    with warnings.catch_warnings():
        # We apply our own pixel limit before decoding; PIL's bomb warning is redundant.
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        try:
            img = Image.open(io.BytesIO(data), formats=[fmt])
        except Image.DecompressionBombError as exc:
            raise ImageError("too_many_pixels", f"the image is too large: {exc}") from exc
        except Exception as exc:  # PIL raises many types for garbage headers
            raise ImageError("corrupt_image", f"the {fmt} file cannot be read") from exc
        with img:
            width, height = img.size
            pixels = width * height
            if width <= 0 or height <= 0:
                raise ImageError("corrupt_image", "the image has no pixels")
            if pixels > limits.max_pixels:
                raise ImageError(
                    "too_many_pixels",
                    f"the image has {width}x{height} = {pixels} pixels; "
                    f"the limit is {limits.max_pixels}")
            try:
                img.load()  # full decode: catches truncated and corrupt data
            except Exception as exc:
                raise ImageError("corrupt_image",
                                 f"the {fmt} data is truncated or corrupt") from exc
            turned = orientation(img)
    if turned in _SWAPS_AXES:
        width, height = height, width
    content_type, ext = FORMATS[fmt]
    return ImageInfo(fmt, content_type, ext, width, height, size)


def orientation(img: Image.Image) -> int:
    """The EXIF orientation (1..8) that validation and decoding both honour; 1 if absent or malformed."""
    try:
        return int(img.getexif().get(_EXIF_ORIENTATION, 1))
    except Exception:  # noqa: BLE001 - malformed EXIF: treat as upright
        return 1


def load_oriented(source: bytes | str | Path) -> Image.Image:
    """Decode bytes or a file to an upright 8-bit RGB image (the one decoder of web, worker and ml)."""
    data = source if isinstance(source, (bytes, bytearray)) else Path(source).read_bytes()
    with warnings.catch_warnings():
        # Uploads were checked against our own pixel limit; PIL's bomb warning is redundant.
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        img = Image.open(io.BytesIO(data))
        img.load()
    return to_rgb(img)


def to_rgb(img: Image.Image) -> Image.Image:
    """Any PIL image as upright 8-bit RGB: EXIF orientation applied, deep samples scaled, alpha on white."""
    if orientation(img) != 1:
        img = ImageOps.exif_transpose(img)
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
    lo, hi = img.getextrema()
    return 0.0 <= lo and hi <= 1.0
