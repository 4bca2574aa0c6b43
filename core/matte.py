"""Cut-out colours without the background (PIL only): what `compose()` puts under the alpha.

A pixel of the photo at a soft edge is a mix, C = a·F + (1 - a)·B, of the person's colour F and the
background's B. Keeping C under the alpha leaks the background: fully transparent pixels still hold
the whole photo (a privacy leak, and a much larger file), and soft edges keep a fringe of the old
background, which shows over any new one. We decontaminate: B is estimated near each pixel from
the photo's background (alpha 0 pixels, filled into the person by a push-pull pyramid), and the
colour kept is F = (C - (1 - a)·B) / a. Fully transparent pixels become (0, 0, 0, 0).
"""

from __future__ import annotations

from PIL import Image, ImageChops

BACKGROUND_LEVEL = 0  # alpha at or below this is pure background: the samples B is estimated from


def background_estimate(photo: Image.Image, alpha: Image.Image) -> Image.Image | None:
    """Each pixel's nearby background colour (RGB); None when the photo has no background pixel."""
    weight = alpha.point(lambda v: 255 if v <= BACKGROUND_LEVEL else 0)
    if weight.getbbox() is None:
        return None
    levels = [Image.merge("RGBA", (*photo.convert("RGB").split(), weight))]
    while max(levels[-1].size) > 1:  # pull: halve, averaging colours by their weight (RGBA resizes premultiplied)
        w, h = levels[-1].size
        levels.append(levels[-1].resize(((w + 1) // 2, (h + 1) // 2), Image.Resampling.BOX))
    filled = levels[-1]
    for level in reversed(levels[:-1]):  # push: each level's gaps take the coarser level's colours
        filled = Image.alpha_composite(filled.resize(level.size, Image.Resampling.BILINEAR), level)
    return filled.convert("RGB")


def decontaminated(photo: Image.Image, alpha: Image.Image) -> Image.Image:
    """The RGBA cut-out: F = (C - (1 - a)·B) / a under the alpha; (0, 0, 0, 0) where alpha is 0."""
    rgb = photo.convert("RGB")
    background = background_estimate(rgb, alpha)
    if background is None:  # no pixel is transparent: nothing to take out
        return Image.merge("RGBA", (*rgb.split(), alpha))
    a = Image.merge("RGB", (alpha, alpha, alpha))
    left = ImageChops.subtract(rgb, ImageChops.multiply(background, ImageChops.invert(a)))  # a·F, >= 0
    premultiplied = ImageChops.darker(left, a)  # a·F <= a: F at most 255, and 0 where alpha is 0
    return Image.merge("RGBa", (*premultiplied.split(), alpha)).convert("RGBA")  # F = a·F / a
