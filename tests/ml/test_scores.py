import numpy as np
import pytest

from humanseg.ml import scores


def _square(n, a, b):
    m = np.zeros((n, n), bool)
    m[a:b, a:b] = True
    return m


def test_iou_and_dice_of_known_overlap():
    p = np.zeros((10, 10), bool)
    t = np.zeros((10, 10), bool)
    p[:, :6] = True  # 60 px
    t[:, 4:] = True  # 60 px, overlap 20
    assert scores.iou(p, t) == pytest.approx(20 / 100)
    assert scores.dice(p, t) == pytest.approx(40 / 120)
    assert scores.pixel_accuracy(p, t) == pytest.approx(20 / 100)


def test_empty_masks_score_perfect_and_shapes_must_match():
    z = np.zeros((4, 4), bool)
    assert scores.iou(z, z) == 1.0 and scores.dice(z, z) == 1.0
    with pytest.raises(ValueError):
        scores.iou(z, np.zeros((4, 5), bool))


def test_boundary_f1_tolerates_small_shifts_only():
    t = _square(200, 50, 150)
    assert scores.boundary_f1(t, t) == 1.0
    assert scores.boundary_f1(_square(200, 51, 151), t, tolerance=2) == 1.0
    assert scores.boundary_f1(_square(200, 70, 130), t, tolerance=2) == 0.0
