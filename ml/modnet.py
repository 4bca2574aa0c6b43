"""MODNet (portrait matting) as a served model, sharing its pre/post-processing with the teacher.

ml/teach.py's Modnet teacher and ModnetPredictor below both fit a photo with `modnet_input` and bring
the matte back with `soft_at`, so the labels the teacher made and the masks users get agree.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from PIL import Image

from humanseg.ml.imageio import to_rgb
from humanseg.ml.predictor import Predictor

MODNET_SIDE = 512  # the short side MODNet runs at (kept when the photo is larger on both sides)
MODNET_MULTIPLE = 32


def modnet_input(image: Image.Image) -> np.ndarray:
    """CHW float32 input: short side 512 (kept for large photos), sides a multiple of 32, (rgb - 127.5) / 127.5."""
    w, h = image.size
    if max(w, h) < MODNET_SIDE or min(w, h) > MODNET_SIDE:
        scale = MODNET_SIDE / min(w, h)
        w, h = round(w * scale), round(h * scale)
    w, h = max(MODNET_MULTIPLE, w - w % MODNET_MULTIPLE), max(MODNET_MULTIPLE, h - h % MODNET_MULTIPLE)
    rgb = np.asarray(image.resize((w, h), Image.Resampling.BICUBIC), np.float32)
    return ((rgb - 127.5) / 127.5).transpose(2, 0, 1)


def soft_at(out: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """A network's soft map (H, W) in [0, 1], resized (bilinear) to `size` and clipped."""
    back = Image.fromarray(out.astype(np.float32), mode="F").resize(size, Image.Resampling.BILINEAR)
    return np.clip(np.asarray(back, np.float32), 0.0, 1.0)


class ModnetPredictor(Predictor):
    """The serving contract (segment, predict) on MODNet's matte instead of a letterboxed U-Net's logits."""

    def probabilities(self, images: Sequence[Image.Image], sizes=None) -> list[np.ndarray]:
        """The matte of each image at its size (or at sizes[i]); one photo per run (sizes differ)."""
        out = []
        for i, image in enumerate(images):
            rgb = to_rgb(image)
            matte = self.backend.run(modnet_input(rgb)[None])[0]
            out.append(soft_at(matte, sizes[i] if sizes is not None else rgb.size))
        return out
