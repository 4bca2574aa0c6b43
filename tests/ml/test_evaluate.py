"""ml/evaluate.py scores exactly what users get: the mask the worker stores for each photo."""

import io
from dataclasses import replace

import numpy as np
import pytest
from PIL import Image

from humanseg.core.render import Sources, render_result
from humanseg.ml.data import Row
from humanseg.ml.evaluate import evaluate_predictor
from humanseg.ml.imageio import load_image
from humanseg.ml.predictor import load_predictor
from humanseg.ml.testing import draw_person


@pytest.fixture(scope="module")
def predictor(tiny_model_dir):
    served = load_predictor(tiny_model_dir, backend="onnx", threads=1)
    # A threshold inside this random model's range, so its masks have both person and background.
    probs = np.concatenate([p.ravel() for p in served.probabilities([draw_person((96, 72), 1)[0]])])
    served.cfg = replace(served.cfg, threshold=float(np.median(probs)), refine=True)
    return served


def _stored_mask(predictor, path) -> Image.Image:
    """The mask as the worker writes it: one segment() of the upright photo, encoded as stored."""
    seg = predictor.segment(load_image(path))
    data = render_result("mask", Sources(mask=seg.mask, alpha=seg.alpha))
    return Image.open(io.BytesIO(data)).convert("L")


@pytest.mark.parametrize("size", [(96, 72), (400, 300)])  # 400 px: the filter works on a smaller grid
def test_the_stored_mask_scores_perfect_and_its_inverse_scores_nothing(predictor, tmp_path, size):
    photo = tmp_path / "photo.jpg"
    draw_person(size, seed=3)[0].save(photo, quality=92)
    stored = _stored_mask(predictor, photo)
    assert {0, 255} <= set(np.unique(np.asarray(stored)))  # a real mask, not all one value
    stored.save(tmp_path / "same.png")
    Image.eval(stored, lambda v: 255 - v).save(tmp_path / "inverse.png")

    same = evaluate_predictor(predictor, [Row(photo, tmp_path / "same.png")])
    assert same["mean_iou"] == 1.0 and same["pixel_accuracy"] == 1.0
    inverse = evaluate_predictor(predictor, [Row(photo, tmp_path / "inverse.png")])
    assert inverse["mean_iou"] == 0.0


def test_a_smaller_ground_truth_is_compared_with_the_stored_mask_scaled_down(predictor, tmp_path):
    photo = tmp_path / "photo.jpg"
    draw_person((96, 72), seed=4)[0].save(photo, quality=92)
    half = _stored_mask(predictor, photo).resize((48, 36), Image.Resampling.NEAREST)
    half.save(tmp_path / "half.png")
    assert evaluate_predictor(predictor, [Row(photo, tmp_path / "half.png")])["mean_iou"] == 1.0
