"""ONNX export of a model directory (dynamic batch, height and width)."""
from __future__ import annotations

import logging
import warnings
from pathlib import Path

import torch

from humanseg.core.logfmt import logkv
from humanseg.ml.config import ONNX_FILE
from humanseg.ml.model import load_model_dir

log = logging.getLogger(__name__)


def export_onnx(model: torch.nn.Module, out_path: str | Path, size: int = 320, opset: int = 17) -> Path:
    """Trace `model` to ONNX with dynamic N/H/W axes."""
    out_path = Path(out_path)
    model = model.eval().cpu()
    dummy = torch.zeros(1, 3, size, size)
    with torch.no_grad(), warnings.catch_warnings():
        # The TorchScript exporter is deprecated but needs no onnxscript and gives a graph that
        # ONNX Runtime fuses well; dynamic H/W work with it for this conv-only network.
        # Its internals raise further DeprecationWarnings of their own; they are scoped to this call.
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.onnx.export(
            model,
            (dummy,),
            str(out_path),
            input_names=["image"],
            output_names=["logits"],
            dynamic_axes={"image": {0: "n", 2: "h", 3: "w"}, "logits": {0: "n", 2: "h", 3: "w"}},
            opset_version=opset,
            dynamo=False,
        )
    log.info(logkv(event="onnx_exported", path=out_path, bytes=out_path.stat().st_size))
    return out_path


def export_model_dir(model_dir: str | Path) -> Path:
    """Write model.onnx next to the safetensors checkpoint of a model directory."""
    model, cfg = load_model_dir(model_dir)
    return export_onnx(model, Path(model_dir) / ONNX_FILE, size=cfg.size)
