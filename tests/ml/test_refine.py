"""The guided filter: box means, edge following, shape checks."""
import numpy as np
import pytest
from PIL import Image

from humanseg.ml.predictor import ALPHA_RAMP, soft_alpha
from humanseg.ml.refine import box_mean, guided_alpha, guided_filter, work_size


def test_box_mean_matches_a_direct_window_mean():
    x = np.random.default_rng(0).random((9, 13)).astype(np.float32)
    got = box_mean(x, 2)
    for y, xx in ((0, 0), (4, 6), (8, 12), (3, 1)):
        want = x[max(0, y - 2): y + 3, max(0, xx - 2): xx + 3].mean()
        assert got[y, xx] == pytest.approx(want, rel=1e-5)
    wide = box_mean(x, 20)  # a window wider than the array: every pixel sees all of it
    assert wide.shape == x.shape and np.allclose(wide, x.mean(), rtol=1e-5)


def test_refinement_snaps_a_blurry_edge_to_the_photo_edge():
    # Photo: a sharp vertical edge at x=60; the model's map: that edge blurred and 2 px off.
    w, h = 120, 80
    photo = np.zeros((h, w, 3), np.uint8)
    photo[:, 60:] = (220, 180, 150)
    xs = np.arange(w, dtype=np.float32)
    blurry = np.tile(1 / (1 + np.exp(-(xs - 62) / 3)), (h, 1)).astype(np.float32)
    refined = guided_filter(Image.fromarray(photo), blurry, radius=10)
    row_before, row_after = blurry[h // 2], refined[h // 2]
    assert np.diff(row_before).max() < 0.1  # soft, blind edge
    assert int(np.argmax(np.diff(row_after))) + 1 == 60 and np.diff(row_after).max() > 0.3  # a step at the photo's
    assert int(np.argmax(row_after >= 0.5)) == 60  # the binary mask edge moves onto it
    assert refined.shape == (h, w) and refined.min() >= 0.0 and refined.max() <= 1.0


def test_refinement_rejects_a_map_of_another_size():
    with pytest.raises(ValueError, match="does not match"):
        guided_filter(Image.new("RGB", (10, 8)), np.zeros((10, 8), np.float32))


def test_alpha_straight_from_the_filter_is_the_soft_alpha_of_the_refined_map():
    # A photo-like guide (gradient, texture, a figure) and a blurry map of the figure.
    rng = np.random.default_rng(3)
    h, w = 300, 420  # larger than the fitting grid: the coefficients are scaled up
    yy, xx = np.mgrid[0:h, 0:w]
    photo = np.stack([xx * 0.4 + 40, yy * 0.5 + 30, (xx + yy) * 0.2 + 60], -1) + rng.normal(0, 6, (h, w, 3))
    person = (np.abs(xx - 210) < 70) & (yy > 60)
    photo[person] = (200, 150, 120)
    guide = Image.fromarray(np.clip(photo, 0, 255).astype(np.uint8))
    small = work_size(w, h)
    prob = np.asarray(Image.fromarray(person.astype(np.float32)).resize(small, Image.Resampling.BILINEAR))
    prob = np.asarray(Image.fromarray(prob).resize((small[0] // 8, small[1] // 8)).resize(small), np.float32)
    refined = guided_filter(guide, prob)
    alpha = guided_alpha(guide, prob, 0.5, ALPHA_RAMP)
    assert alpha.dtype == np.uint8 and alpha.shape == (h, w)
    assert np.abs(alpha.astype(int) - soft_alpha(refined, 0.5).astype(int)).max() <= 1  # rounding only
    assert np.array_equal(alpha >= 128, refined >= 0.5)  # the mask read from the alpha is the map's
    assert 0 < (alpha == 255).mean() < 1 and (alpha == 0).any() and ((alpha > 0) & (alpha < 255)).any()
