"""The one maker of test images: small pictures made with PIL (shapes, modes, EXIF, broken files)."""

from __future__ import annotations

import io
import struct
import zlib

from PIL import Image, ImageDraw


def person_like(size=(96, 64), mode="RGB") -> Image.Image:
    """A light background with a dark 'figure' (head + body) drawn on it."""
    img = Image.new("RGB", size, (220, 230, 240))
    d = ImageDraw.Draw(img)
    w, h = size
    d.ellipse([w * 0.4, h * 0.08, w * 0.6, h * 0.35], fill=(90, 60, 40))
    d.rectangle([w * 0.33, h * 0.35, w * 0.67, h * 0.95], fill=(30, 60, 150))
    return img.convert(mode) if mode != "RGB" else img


SOLID_FILL = (200, 120, 90)


def solid(size=(64, 48), colour=SOLID_FILL, mode="RGB") -> Image.Image:
    """One colour all over (a photo stand-in whose every pixel is known)."""
    return Image.new(mode, size, colour)


def solid_jpeg(size=(64, 48), colour=SOLID_FILL) -> bytes:
    """A small valid JPEG of one colour (the originals of the gallery tests)."""
    return encode(solid(size, colour), "JPEG")


def blank_png(size) -> bytes:
    """A black greyscale PNG of the given size (cheap to make at any dimensions)."""
    return encode(solid(size, 0, "L"), "PNG")


def encode(img: Image.Image, fmt: str = "JPEG", **params) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **params)
    return buf.getvalue()


def jpeg(size=(96, 64), **params) -> bytes:
    return encode(person_like(size), "JPEG", quality=90, **params)


def png(size=(96, 64), mode="RGB") -> bytes:
    return encode(person_like(size, mode), "PNG")


def webp(size=(96, 64)) -> bytes:
    return encode(person_like(size), "WEBP")


def png16(size=(48, 32)) -> bytes:
    import numpy as np

    w, h = size
    arr = (np.linspace(0, 65535, w * h).reshape(h, w)).astype(np.uint16)
    return encode(Image.fromarray(arr), "PNG")


def cmyk_jpeg(size=(64, 48)) -> bytes:
    return encode(person_like(size).convert("CMYK"), "JPEG")


def exif_rotated_jpeg(stored=(80, 40), orientation=6) -> bytes:
    """A JPEG stored landscape with an EXIF tag saying 'rotate 90': displayed portrait."""
    img = person_like(stored)
    exif = Image.Exif()
    exif[0x0112] = orientation
    return encode(img, "JPEG", exif=exif.tobytes())


def truncated_jpeg() -> bytes:
    data = jpeg((128, 96))
    return data[: len(data) // 2]


def png_bomb(width=30000, height=30000) -> bytes:
    """A tiny PNG whose header claims huge dimensions (decompression bomb)."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    # One row of zeros compressed repeatedly would be the real bomb; a short stream suffices
    # because the server must refuse on the header alone.
    idat = zlib.compress(b"\x00" * (width + 1) * 8, 9)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def gif() -> bytes:
    return encode(person_like((32, 32)).convert("P"), "GIF")


def tiff() -> bytes:
    return encode(person_like((32, 32)), "TIFF")


def eps() -> bytes:
    return b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\nshowpage\n"


def text() -> bytes:
    return b"hello, this is plainly not an image\n"
