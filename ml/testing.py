"""A tiny real model for tests: random-init U-Net, fast on CPU, saved like the shipped one."""
from __future__ import annotations

import json
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


def make_tiny_modnet_dir(path: str | Path, seed: int = 0) -> Path:
    """A tiny random network with MODNet's interface (image in, (N, 1, H, W) matte in [0, 1] out) as model.onnx."""
    import torch

    from humanseg.ml.config import ONNX_FILE

    torch.manual_seed(seed)
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.ReLU(),
                              torch.nn.Conv2d(8, 1, 3, padding=1), torch.nn.Sigmoid()).eval()
    out = Path(path)
    out.mkdir(parents=True, exist_ok=True)
    with torch.no_grad():
        torch.onnx.export(net, (torch.zeros(1, 3, 64, 64),), str(out / ONNX_FILE), input_names=["input"],
                          output_names=["matte"], dynamo=False,
                          dynamic_axes={"input": {0: "n", 2: "h", 3: "w"}, "matte": {0: "n", 2: "h", 3: "w"}})
    ModelConfig(size=512, threshold=0.5, refine=False).save(out)
    return out


def register(folder: Path, kind: str, use: str, *, default: bool = False, **extra) -> Path:
    """Add the registry's description (core/registry.py) to a model folder's config.json, sha256 included."""
    from humanseg.ml.teach import file_sha256

    path = folder / "config.json"
    cfg = json.loads(path.read_text())
    sums = {f.name: file_sha256(f) for f in sorted(folder.iterdir()) if f.suffix in (".onnx", ".safetensors")}
    cfg.update(name=folder.name, title=f"tiny {kind} ({folder.name})", use=use, kind=kind, default=default,
               licence="test", source="ml/testing.py", sha256=sums, card={}, **extra)
    path.write_text(json.dumps(cfg, indent=2) + "\n")
    return folder


def make_tiny_registry(path: str | Path) -> Path:
    """A registry folder like ml/models/: a tiny U-Net `fast` (the default) and a tiny MODNet-like `modnet`."""
    root = Path(path)
    register(make_tiny_model_dir(root / "fast"), "unet", "fast", default=True)
    register(make_tiny_modnet_dir(root / "modnet"), "modnet", "quality")
    return root


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
