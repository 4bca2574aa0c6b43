"""Reading images the way the platform sees them: EXIF-oriented, 8-bit RGB."""
from __future__ import annotations

from io import BytesIO
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps


def to_rgb(image: Image.Image) -> Image.Image:
    """Any PIL mode (L, LA, P, RGBA, CMYK, I;16, I, F) as 8-bit RGB, EXIF orientation applied."""
    if image.getexif().get(0x0112, 1) != 1:  # only rotate (and copy) when EXIF asks for it
        image = ImageOps.exif_transpose(image)
    if image.mode == "RGB":
        return image
    if image.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        arr = np.asarray(image, dtype=np.float64)
        top = 65535.0 if image.mode.startswith("I;16") or arr.max() > 255 else 255.0
        arr = np.clip(arr / top * 255.0 + 0.5, 0, 255).astype(np.uint8)
        image = Image.fromarray(arr, "L")
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        background = Image.new("RGB", rgba.size, (255, 255, 255))
        background.paste(rgba, mask=rgba.getchannel("A"))
        return background
    return image.convert("RGB")


def load_image(source: str | Path | bytes) -> Image.Image:
    """Open a path or bytes as an oriented RGB image."""
    fp = BytesIO(source) if isinstance(source, (bytes, bytearray)) else source
    with Image.open(fp) as im:
        im.load()
        rgb = to_rgb(im)
        # to_rgb may hand back `im` itself; detach it from the file closed by `with`.
        return rgb.copy() if rgb is im else rgb
