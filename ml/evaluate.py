"""Evaluation at the original mask resolution: mean per-image IoU (primary) and friends."""
from __future__ import annotations

import json
import logging
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image

from humanseg.ml import scores
from humanseg.ml.config import ModelConfig
from humanseg.ml.data import (
    Row,
    read_dataset,
    read_folder,
    read_rows,
    split_by_sequence,
    split_rows,
)
from humanseg.ml.imageio import load_image
from humanseg.ml.predictor import Predictor

if TYPE_CHECKING:
    from humanseg.ml.teach import TeacherPredictor

log = logging.getLogger(__name__)


class ModuleBackend:
    """Serve an in-memory torch module (used for validation during training)."""

    name = "torch-module"

    def __init__(self, model) -> None:
        import torch

        self.torch, self.model = torch, model

    def run(self, batch: np.ndarray) -> np.ndarray:
        was_training = self.model.training
        self.model.eval()
        device = next(self.model.parameters()).device
        with self.torch.inference_mode():
            out = self.model(self.torch.from_numpy(batch).to(device))[:, 0].float().cpu().numpy()
        self.model.train(was_training)
        return out


def evaluate_predictor(predictor: Predictor | TeacherPredictor, rows: Sequence[Row], progress: bool = False,
                       resolution: str = "mask", refine: bool | None = None) -> dict:
    """Score each image against its mask at the mask's resolution, or at the photo's ("image").

    What is scored is the mask the worker stores (Predictor.segment, the one path), brought to the
    mask's resolution when that differs. refine: apply the guided-filter refinement (default: as
    the model's config says).
    """
    per_image, tp, model_ms = [], np.zeros(4, dtype=np.int64), []
    t0 = time.perf_counter()
    for row in _maybe_progress(rows, progress):
        image = load_image(row.image)
        with Image.open(row.mask) as m:
            target_img = m.convert("L")
        if resolution == "image" and target_img.size != image.size:
            target_img = target_img.resize(image.size, Image.Resampling.NEAREST)
        target = np.asarray(target_img) >= 128
        started = time.perf_counter()
        served = predictor.segment(image, refine).mask
        model_ms.append((time.perf_counter() - started) * 1000)
        if served.size != target_img.size:
            served = served.resize(target_img.size, Image.Resampling.NEAREST)
        pred = np.asarray(served) >= 128
        tp += np.asarray(scores.confusion(pred, target))
        per_image.append({
            "image": row.image.name,
            "iou": scores.iou(pred, target),
            "dice": scores.dice(pred, target),
            "pixel_accuracy": scores.pixel_accuracy(pred, target),
            "boundary_f1": scores.boundary_f1(pred, target),
            "precision": scores.precision(pred, target),
            "recall": scores.recall(pred, target),
        })
    t_tp, t_fp, t_fn, _ = (int(v) for v in tp)
    summary = {
        "images": len(per_image),
        "mean_iou": float(np.mean([r["iou"] for r in per_image])) if per_image else 0.0,
        "pooled_iou": t_tp / max(1, t_tp + t_fp + t_fn),
        "mean_dice": float(np.mean([r["dice"] for r in per_image])) if per_image else 0.0,
        "pixel_accuracy": float(np.mean([r["pixel_accuracy"] for r in per_image])) if per_image else 0.0,
        "boundary_f1": float(np.mean([r["boundary_f1"] for r in per_image])) if per_image else 0.0,
        "precision": float(np.mean([r["precision"] for r in per_image])) if per_image else 0.0,
        "recall": float(np.mean([r["recall"] for r in per_image])) if per_image else 0.0,
        "seconds": round(time.perf_counter() - t0, 2),
        # the served path's time per photo (Predictor.segment: pre/post-processing and refinement
        # included; reading the files and scoring not)
        "model_ms_median": round(float(np.median(model_ms)), 1) if model_ms else 0.0,
    }
    return {**summary, "per_image": per_image}


def evaluate_pairs(model, cfg: ModelConfig, rows: Sequence[Row]) -> dict:
    """Evaluate an in-memory torch model with the serving pre/post-processing."""
    return evaluate_predictor(Predictor(cfg, ModuleBackend(model)), rows)


def select_rows(data_dir: str | Path, split: str) -> list[Row]:
    """val/train/all of the train.csv layout's fixed split; a folder dataset is one split, all."""
    if not (Path(data_dir) / "train.csv").is_file():
        return read_folder(data_dir)
    rows = read_rows(data_dir)
    train, val = split_rows(rows)
    return {"val": val, "train": train, "all": rows}[split]


def select_heldout(data_dir: str | Path, sequences: Sequence[str]) -> list[Row]:
    """The out-of-distribution check: the held-out sequences of a folder dataset (e.g. DAVIS)."""
    rows = split_by_sequence(read_dataset(data_dir), tuple(sequences))[1]
    if not rows:
        raise ValueError(f"{data_dir}: none of the sequences {', '.join(sequences)}")
    return rows


def format_table(results: dict[str, dict]) -> str:
    """One row per split: images, mean IoU, pooled IoU, Dice, pixel accuracy, boundary F1, precision,
    recall and the model's median time per photo (ms)."""
    head = (f"{'split':<14} {'images':>6} {'mIoU':>7} {'pooledIoU':>9} {'Dice':>7} {'PixAcc':>7} {'BF1':>7} "
            f"{'Prec':>7} {'Recall':>7} {'ms':>7}")
    lines = [head, "-" * len(head)]
    for split, r in results.items():
        lines.append(f"{split:<14} {r['images']:>6} {r['mean_iou']:>7.4f} {r['pooled_iou']:>9.4f} "
                     f"{r['mean_dice']:>7.4f} {r['pixel_accuracy']:>7.4f} {r['boundary_f1']:>7.4f} "
                     f"{r['precision']:>7.4f} {r['recall']:>7.4f} {r.get('model_ms_median', 0.0):>7.1f}")
    return "\n".join(lines)


def write_json(results: dict, path: str | Path) -> None:
    Path(path).write_text(json.dumps(results, indent=2))


def _maybe_progress(rows, enabled):
    if not enabled:
        return rows
    from tqdm import tqdm

    return tqdm(rows, desc="evaluate", leave=False)
