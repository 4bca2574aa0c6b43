"""Result images made from an upright RGB image and its L 0/255 mask, one renderer per kind."""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from humanseg.core.results import RESULTS, ResultKind
from PIL import Image, ImageEnhance

TINT = (0, 190, 255)  # the person is tinted with this colour in the overlay
THUMB_SIDE = 256


def encode(img: Image.Image, fmt: str, **params) -> bytes:
    """Image to bytes in the given format."""
    buf = io.BytesIO()
    img.save(buf, fmt, **params)
    return buf.getvalue()


def mask_as_is(image: Image.Image, mask: Image.Image) -> Image.Image:
    """The mask itself (L, 0/255)."""
    return mask


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


@dataclass(frozen=True)
class Renderer:
    """How the worker makes one result kind: the image, then its encoder options."""

    make: Callable[[Image.Image, Image.Image], Image.Image]  # (upright RGB, L mask) -> image
    options: dict[str, Any] = field(default_factory=dict)


# One renderer per kind in core.results.RESULTS (a test checks the two agree).
RENDERERS: dict[str, Renderer] = {
    "mask": Renderer(mask_as_is, {"optimize": False}),
    "cutout": Renderer(cutout, {"compress_level": 6}),
    "overlay": Renderer(overlay, {"quality": 85}),
    "thumb": Renderer(thumb, {"quality": 85}),
}

# The file format follows from the kind's content type, so the two cannot disagree.
FORMATS = {"image/png": "PNG", "image/jpeg": "JPEG", "image/webp": "WEBP"}


def render(kind: ResultKind, image: Image.Image, mask: Image.Image) -> bytes:
    """The encoded bytes of one result kind."""
    renderer = RENDERERS[kind.name]
    return encode(renderer.make(image, mask), FORMATS[kind.content_type], **renderer.options)


def render_all(image: Image.Image, mask: Image.Image) -> dict[str, bytes]:
    """Kind name -> encoded bytes, for every result kind."""
    return {kind.name: render(kind, image, mask) for kind in RESULTS}
