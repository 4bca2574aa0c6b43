"""Letterbox geometry shared by training, evaluation and serving (numpy only)."""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from PIL import Image


@dataclass(frozen=True)
class Letterbox:
    """Where a resized image sits inside its padded network input."""

    width: int  # original size
    height: int
    new_w: int  # resized content size
    new_h: int
    pad_w: int  # network input size (multiple of pad_multiple)
    pad_h: int

    @classmethod
    def fit(cls, width: int, height: int, size: int, multiple: int = 32) -> Letterbox:
        scale = size / max(width, height)
        new_w = max(1, round(width * scale))
        new_h = max(1, round(height * scale))
        return cls(
            width, height, new_w, new_h,
            math.ceil(new_w / multiple) * multiple, math.ceil(new_h / multiple) * multiple,
        )


def to_input(image: Image.Image, box: Letterbox, mean, std) -> np.ndarray:
    """RGB image -> normalised float32 CHW array of the padded size (pad value = 0 after normalisation)."""
    resized = image.resize((box.new_w, box.new_h), Image.Resampling.BILINEAR, reducing_gap=3.0)
    std_ = np.asarray(std, np.float32)
    scale = (1.0 / (255.0 * std_))[:, None, None]  # (x / 255 - mean) / std as one multiply-add,
    shift = (-np.asarray(mean, np.float32) / std_)[:, None, None]  # written straight into the padded input
    out = np.zeros((3, box.pad_h, box.pad_w), dtype=np.float32)
    view = out[:, : box.new_h, : box.new_w]
    np.multiply(np.asarray(resized).transpose(2, 0, 1), scale, out=view)
    view += shift
    return out


def to_probability(logits: np.ndarray, box: Letterbox, size: tuple[int, int] | None = None) -> np.ndarray:
    """Network logits (H, W) -> float32 probabilities at `size` (default the original size)."""
    prob = np.negative(logits[: box.new_h, : box.new_w], dtype=np.float32)  # 1 / (1 + exp(-x)), in place
    np.clip(prob, -30, 30, out=prob)
    np.exp(prob, out=prob)
    prob += 1.0
    np.reciprocal(prob, out=prob)
    out_w, out_h = size or (box.width, box.height)
    resized = Image.fromarray(prob).resize((out_w, out_h), Image.Resampling.BILINEAR)
    return np.asarray(resized, dtype=np.float32)
