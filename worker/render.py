"""Result images made from an upright RGB image and its L 0/255 mask."""

from __future__ import annotations

import io

from PIL import Image, ImageEnhance

TINT = (0, 190, 255)  # the person is tinted with this colour in the overlay
THUMB_SIDE = 256


def encode(img: Image.Image, fmt: str, **params) -> bytes:
    """Image to bytes in the given format."""
    buf = io.BytesIO()
    img.save(buf, fmt, **params)
    return buf.getvalue()


def cutout(image: Image.Image, mask: Image.Image) -> Image.Image:
    """RGBA with alpha = mask."""
    out = image.convert("RGBA")
    out.putalpha(mask)
    return out


def overlay(image: Image.Image, mask: Image.Image) -> Image.Image:
    """Person tinted, everything else dimmed (a quick visual check)."""
    tinted = Image.blend(image, Image.new("RGB", image.size, TINT), 0.35)
    dimmed = ImageEnhance.Brightness(image).enhance(0.35)
    return Image.composite(tinted, dimmed, mask)


def thumb(image: Image.Image, mask: Image.Image) -> Image.Image:
    """Cut-out composited on white, longest side at most 256 px."""
    white = Image.new("RGB", image.size, (255, 255, 255))
    out = Image.composite(image, white, mask)
    out.thumbnail((THUMB_SIDE, THUMB_SIDE), Image.Resampling.LANCZOS)
    return out


def render_all(image: Image.Image, mask: Image.Image) -> dict[str, tuple[bytes, str]]:
    """name -> (bytes, content type) for mask.png, cutout.png, overlay.jpg, thumb.jpg."""
    return {
        "mask.png": (encode(mask, "PNG", optimize=False), "image/png"),
        "cutout.png": (encode(cutout(image, mask), "PNG", compress_level=6), "image/png"),
        "overlay.jpg": (encode(overlay(image, mask), "JPEG", quality=85), "image/jpeg"),
        "thumb.jpg": (encode(thumb(image, mask), "JPEG", quality=85), "image/jpeg"),
    }
