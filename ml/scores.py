"""Segmentation metrics as pure functions over boolean masks."""
from __future__ import annotations

import numpy as np
from scipy import ndimage


def confusion(pred: np.ndarray, target: np.ndarray) -> tuple[int, int, int, int]:
    """(tp, fp, fn, tn) of two boolean masks of the same shape."""
    if pred.shape != target.shape:
        raise ValueError(f"shape mismatch {pred.shape} vs {target.shape}")
    pred, target = pred.astype(bool), target.astype(bool)
    tp = int(np.count_nonzero(pred & target))
    fp = int(np.count_nonzero(pred & ~target))
    fn = int(np.count_nonzero(~pred & target))
    return tp, fp, fn, pred.size - tp - fp - fn


def iou(pred: np.ndarray, target: np.ndarray) -> float:
    """Intersection over union; 1.0 when both masks are empty."""
    tp, fp, fn, _ = confusion(pred, target)
    union = tp + fp + fn
    return 1.0 if union == 0 else tp / union


def dice(pred: np.ndarray, target: np.ndarray) -> float:
    """Dice coefficient; 1.0 when both masks are empty."""
    tp, fp, fn, _ = confusion(pred, target)
    denom = 2 * tp + fp + fn
    return 1.0 if denom == 0 else 2 * tp / denom


def precision(pred: np.ndarray, target: np.ndarray) -> float:
    """Share of predicted foreground that is foreground; 1.0 when nothing is predicted."""
    tp, fp, _, _ = confusion(pred, target)
    return 1.0 if tp + fp == 0 else tp / (tp + fp)


def recall(pred: np.ndarray, target: np.ndarray) -> float:
    """Share of the foreground that is predicted; 1.0 when there is none."""
    tp, _, fn, _ = confusion(pred, target)
    return 1.0 if tp + fn == 0 else tp / (tp + fn)


def pixel_accuracy(pred: np.ndarray, target: np.ndarray) -> float:
    tp, fp, fn, tn = confusion(pred, target)
    return (tp + tn) / max(1, tp + fp + fn + tn)


def _boundary(mask: np.ndarray) -> np.ndarray:
    mask = mask.astype(bool)
    return mask & ~ndimage.binary_erosion(mask, border_value=0)


def boundary_f1(pred: np.ndarray, target: np.ndarray, tolerance: int | None = None) -> float:
    """Boundary F1 (BF score): contour pixels matched within `tolerance` px (default 0.75% of the diagonal)."""
    if tolerance is None:
        tolerance = max(1, round(0.0075 * float(np.hypot(*target.shape))))
    bp, bt = _boundary(pred), _boundary(target)
    if not bp.any() and not bt.any():
        return 1.0
    if not bp.any() or not bt.any():
        return 0.0
    dist_t = ndimage.distance_transform_edt(~bt)
    dist_p = ndimage.distance_transform_edt(~bp)
    precision = float(np.mean(dist_t[bp] <= tolerance))
    recall = float(np.mean(dist_p[bt] <= tolerance))
    return 0.0 if precision + recall == 0 else 2 * precision * recall / (precision + recall)
