"""A tiny real model for tests: random-init U-Net, fast on CPU, saved like the shipped one."""
from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from humanseg.ml.config import ModelConfig

TINY = {"arch": "Unet", "decoder_channels": (16, 8, 8), "encoder_depth": 3, "size": 64}


def make_tiny_model_dir(path: str | Path, onnx: bool = True, seed: int = 0) -> Path:
    """Write config.json, model.safetensors and (optionally) model.onnx of a tiny random U-Net."""
    import torch

    from humanseg.ml.config import ONNX_FILE
    from humanseg.ml.export import export_onnx
    from humanseg.ml.model import build_model, save_model_dir

    torch.manual_seed(seed)
    cfg = ModelConfig.for_encoder("timm-tf_efficientnet_lite0", **TINY)
    model = build_model(cfg).eval()
    out = save_model_dir(model, cfg, path)
    if onnx:
        export_onnx(model, out / ONNX_FILE, size=cfg.size)
    return out


def draw_person(size: tuple[int, int], seed: int) -> tuple[Image.Image, Image.Image]:
    """A noisy background with a person-like blob (head + body); returns (image, mask)."""
    rng = np.random.default_rng(seed)
    w, h = size
    bg = rng.integers(0, 255, (h, w, 3), dtype=np.uint8)
    image = Image.fromarray(bg)
    mask = Image.new("L", size, 0)
    cx, top = int(w * rng.uniform(0.35, 0.65)), int(h * rng.uniform(0.1, 0.3))
    head = (cx - w // 10, top, cx + w // 10, top + h // 5)
    body = (cx - w // 5, top + h // 5, cx + w // 5, h)
    colour = tuple(int(c) for c in rng.integers(0, 255, 3))
    for d, fill in ((ImageDraw.Draw(image), colour), (ImageDraw.Draw(mask), 255)):
        d.ellipse(head, fill=fill)
        d.rectangle(body, fill=fill)
    return image, mask
