"""The serving contract: a predictor that loads once and maps an image to a same-size mask.

Backends: ONNX Runtime (default on CPU: fast and needs no torch) and torch (default on
CUDA, and the reference). Both share the letterbox pre/post-processing in ml.letterbox.
"""
from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np
from PIL import Image

from humanseg.core.logfmt import logkv
from humanseg.core.registry import Registry
from humanseg.ml.config import ONNX_FILE, WEIGHTS_FILE, ModelConfig
from humanseg.ml.imageio import to_rgb
from humanseg.ml.letterbox import Letterbox, to_input, to_probability

log = logging.getLogger(__name__)

# The U-Net this project trains and ships as its default: the folder the shipped registry marks default
# (ml/models/, core/registry.py); the other U-Nets there load by name.
SHIPPED_MODELS = Path(__file__).resolve().parent / "models"
SHIPPED_MODEL_DIR = Registry.load(SHIPPED_MODELS).get(None).folder


class Backend(Protocol):
    name: str

    def run(self, batch: np.ndarray) -> np.ndarray:
        """(N, 3, H, W) float32 -> (N, H, W) logits."""


class OnnxBackend:
    name = "onnx"

    def __init__(self, path: Path, threads: int | None) -> None:
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        if threads:
            opts.intra_op_num_threads = threads
            opts.inter_op_num_threads = 1
        self.session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
        self.input_name = self.session.get_inputs()[0].name

    def run(self, batch: np.ndarray) -> np.ndarray:
        return self.session.run(None, {self.input_name: batch})[0][:, 0]


class TorchBackend:
    name = "torch"

    def __init__(self, model_dir: Path, threads: int | None, device: str | None) -> None:
        import torch

        from humanseg.ml.model import load_model_dir

        if threads:
            torch.set_num_threads(threads)
        self.torch = torch
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        self.model, _ = load_model_dir(model_dir, self.device)

    def run(self, batch: np.ndarray) -> np.ndarray:
        with self.torch.inference_mode():
            x = self.torch.from_numpy(batch).to(self.device)
            return self.model(x)[:, 0].float().cpu().numpy()


def _cuda_available() -> bool:
    # No NVIDIA driver: skip importing torch (seconds and hundreds of MB) in CPU workers.
    if not os.path.exists("/proc/driver/nvidia"):
        return False
    try:
        import torch
    except ImportError:
        return False
    return bool(torch.cuda.is_available())


MAX_MAP_SIDE = 2048  # float maps are made at most this size (see Predictor.segment)
ALPHA_RAMP = 0.25  # probabilities within threshold +- this fade; outside are fully in or out
_MASK_LUT = [0] * 128 + [255] * 128  # alpha -> mask: 128 and above is at or over the threshold


def soft_alpha(prob: np.ndarray, threshold: float = 0.5) -> np.ndarray:
    """uint8 alpha: a linear ramp around the threshold, so edges stay soft but faint doubt is not a ghost."""
    ramp = (prob - (threshold - ALPHA_RAMP)) / (2 * ALPHA_RAMP)
    return np.round(np.clip(ramp, 0.0, 1.0) * 255).astype(np.uint8)


@dataclass(frozen=True)
class Segmentation:
    """One image's result: the binary mask ('L', 0/255) and the soft alpha ('L', 0-255), same size."""

    mask: Image.Image
    alpha: Image.Image


class Predictor:
    """Loads once; `predict` maps any PIL image to an 'L' mask (0/255) of its oriented size."""

    def __init__(self, cfg: ModelConfig, backend: Backend) -> None:
        self.cfg = cfg
        self.backend = backend

    def probabilities(self, images: Sequence[Image.Image], sizes=None) -> list[np.ndarray]:
        """Foreground probability maps, each at its image's size (or at sizes[i])."""
        rgb = [to_rgb(im) for im in images]
        boxes = [Letterbox.fit(im.width, im.height, self.cfg.size, self.cfg.pad_multiple) for im in rgb]
        results: list[np.ndarray | None] = [None] * len(rgb)
        # Batch images whose padded input shapes agree; others run alone.
        groups: dict[tuple[int, int], list[int]] = {}
        for i, box in enumerate(boxes):
            groups.setdefault((box.pad_h, box.pad_w), []).append(i)
        for idx in groups.values():
            inputs = [to_input(rgb[i], boxes[i], self.cfg.mean, self.cfg.std) for i in idx]
            batch = inputs[0][None] if len(inputs) == 1 else np.stack(inputs)  # one image: no copy
            logits = self.backend.run(batch)
            for j, i in enumerate(idx):
                size = sizes[i] if sizes is not None else None
                results[i] = to_probability(logits[j], boxes[i], size)
        return results  # type: ignore[return-value]

    def foreground(self, images: Sequence[Image.Image], refine: bool | None = None) -> list[np.ndarray]:
        """Soft foreground (float32 in [0, 1]) at each oriented image's size, refined when the config says so."""
        refine = self.cfg.refine if refine is None else refine
        if not refine:
            return self.probabilities(images)
        from humanseg.ml.refine import guided_filter, work_size

        # The filter fits its coefficients on a small grid: ask for the probabilities at that size.
        rgb = [to_rgb(im) for im in images]
        probs = self.probabilities(rgb, sizes=[work_size(*im.size) for im in rgb])
        return [guided_filter(im, p) for im, p in zip(rgb, probs, strict=False)]

    def segment(self, image: Image.Image, refine: bool | None = None) -> Segmentation:
        """Binary mask and soft alpha of one image, both from the same (refined) probability map.

        Float maps are made at most MAX_MAP_SIDE px on the longest side; for larger photos the
        8-bit alpha is scaled up and the mask thresholded from it, so memory stays bounded
        (a 40 MP photo would otherwise hold several 160 MB float maps).
        """
        image = to_rgb(image)
        work = image
        if max(image.size) > MAX_MAP_SIDE:
            scale = MAX_MAP_SIDE / max(image.size)
            small = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
            work = image.resize(small, Image.Resampling.BILINEAR, reducing_gap=3.0)
        alpha = Image.fromarray(self._alpha(work, refine), "L")
        if work is not image:
            alpha = alpha.resize(image.size, Image.Resampling.BILINEAR)
        # The alpha ramp is centred on the threshold, so 128 is the threshold in alpha units:
        # the mask is the map's threshold, read from the 8-bit alpha (no float pass at full size).
        return Segmentation(alpha.point(_MASK_LUT), alpha)

    def _alpha(self, work: Image.Image, refine: bool | None) -> np.ndarray:
        """uint8 soft alpha at work's size; refined straight to 8 bits (no float map at full size)."""
        if not (self.cfg.refine if refine is None else refine):
            return soft_alpha(self.probabilities([work])[0], self.cfg.threshold)
        from humanseg.ml.refine import guided_alpha, work_size

        prob = self.probabilities([work], sizes=[work_size(*work.size)])[0]
        return guided_alpha(work, prob, self.cfg.threshold, ALPHA_RAMP)

    def predict_batch(self, images: Sequence[Image.Image]) -> list[Image.Image]:
        """Masks for several images (same contract as predict)."""
        return [self._binary(p) for p in self.foreground(images)]

    def predict(self, image: Image.Image) -> Image.Image:
        """Mask ('L', 0/255) the size of the EXIF-oriented image."""
        return self.predict_batch([image])[0]

    def _binary(self, prob: np.ndarray) -> Image.Image:
        out = (prob >= self.cfg.threshold).view(np.uint8)  # no 64-bit temporary
        out *= 255
        return Image.fromarray(out, "L")


def choose_backend(model_dir: Path, backend: str = "auto", device: str | None = None) -> str:
    """`onnx` or `torch` for a model directory: auto is torch on CUDA (when it has safetensors), else onnx."""
    if backend != "auto":
        return backend
    gpu = device == "cuda" or _cuda_available()
    chosen = "torch" if gpu and (model_dir / WEIGHTS_FILE).is_file() else "onnx"
    return "torch" if chosen == "onnx" and not (model_dir / ONNX_FILE).is_file() else chosen


def backend_file(backend: str) -> str:
    """The weights file a backend loads from a model directory."""
    return WEIGHTS_FILE if backend == "torch" else ONNX_FILE


def load_predictor(
    model_dir: str | Path | None = None,
    backend: str = "auto",
    threads: int | None = None,
    device: str | None = None,
) -> Predictor:
    """Load a model directory (default: the shipped checkpoint) behind the chosen backend."""
    model_dir = Path(model_dir) if model_dir else SHIPPED_MODEL_DIR
    cfg = ModelConfig.load(model_dir)
    backend = choose_backend(model_dir, backend, device)
    threads = threads or None
    if backend == "onnx":
        impl: Backend = OnnxBackend(model_dir / ONNX_FILE, threads)
    elif backend == "torch":
        impl = TorchBackend(model_dir, threads, device)
    else:
        raise ValueError(f"unknown backend {backend!r} (auto, onnx or torch)")
    log.info(logkv(event="predictor_loaded", model_dir=model_dir, backend=impl.name, threads=threads, pid=os.getpid()))
    return Predictor(cfg, impl)
