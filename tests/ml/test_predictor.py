import io

import numpy as np
import pytest
from PIL import Image

from humanseg.ml.imageio import load_image
from humanseg.ml.predictor import load_predictor
from humanseg.ml.testing import draw_person


@pytest.fixture(scope="module")
def predictor(tiny_model_dir):
    return load_predictor(tiny_model_dir, backend="onnx", threads=1)


def _check_mask(mask, size):
    assert mask.mode == "L"
    assert mask.size == size
    assert set(np.unique(np.asarray(mask))) <= {0, 255}


@pytest.mark.parametrize("size", [(1, 1), (31, 977), (640, 480), (480, 640), (2000, 37)])
def test_mask_has_the_image_size(predictor, size):
    _check_mask(predictor.predict(Image.new("RGB", size, (90, 120, 30))), size)


@pytest.mark.parametrize("mode", ["L", "LA", "P", "RGBA", "CMYK", "I;16", "I", "F", "1"])
def test_any_mode_is_accepted(predictor, mode):
    image, _ = draw_person((80, 60), seed=1)
    if mode == "I;16":
        arr = (np.asarray(image.convert("L"), dtype=np.uint16) * 257)
        converted = Image.fromarray(arr)
    else:
        converted = image.convert(mode)
    _check_mask(predictor.predict(converted), (80, 60))


def test_sixteen_bit_png_uses_the_full_range(tmp_path):
    arr = np.linspace(0, 65535, 64 * 32, dtype=np.uint16).reshape(32, 64)
    Image.fromarray(arr).save(tmp_path / "deep.png")
    rgb = load_image(tmp_path / "deep.png")
    values = np.asarray(rgb)[..., 0]
    assert values.min() == 0 and values.max() == 255


def test_exif_rotated_jpeg_gives_mask_in_displayed_orientation(predictor):
    stored = Image.new("RGB", (120, 40), (10, 200, 10))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 CW on display: displayed size is 40x120
    buf = io.BytesIO()
    stored.save(buf, "JPEG", exif=exif)
    displayed = load_image(buf.getvalue())
    assert displayed.size == (40, 120)
    with Image.open(io.BytesIO(buf.getvalue())) as raw:
        raw.load()
        _check_mask(predictor.predict(raw), (40, 120))


def test_batched_call_equals_single_calls(predictor):
    images = [draw_person(s, seed=i)[0] for i, s in enumerate([(80, 60), (80, 60), (50, 90)])]
    batched = predictor.predict_batch(images)
    for image, mask in zip(images, batched, strict=False):
        assert np.array_equal(np.asarray(mask), np.asarray(predictor.predict(image)))


def test_unknown_backend_is_rejected(tiny_model_dir):
    with pytest.raises(ValueError):
        load_predictor(tiny_model_dir, backend="tensorflow")


@pytest.mark.parametrize("size", [(1, 1), (97, 61), (640, 480)])
def test_foreground_is_a_probability_map_of_the_image_size(predictor, size):
    image, _ = draw_person(size, seed=3)
    prob = predictor.foreground([image], refine=False)[0]
    assert prob.shape == (size[1], size[0]) and prob.dtype == np.float32
    assert 0.0 <= prob.min() <= prob.max() <= 1.0
    mask = np.asarray(predictor.predict(image)) > 0
    assert np.array_equal(mask, prob >= predictor.cfg.threshold)  # the binary contract is the thresholded map


def test_segment_gives_a_binary_mask_and_a_soft_alpha_from_one_map(predictor):
    image, _ = draw_person((120, 90), seed=4)
    seg = predictor.segment(image, refine=True)
    alpha, mask = np.asarray(seg.alpha), np.asarray(seg.mask)
    assert seg.alpha.mode == seg.mask.mode == "L" and seg.alpha.size == seg.mask.size == image.size
    assert set(np.unique(mask)) <= {0, 255}
    assert (alpha[mask == 255] >= 127).all() and (alpha[mask == 0] <= 128).all()  # one map, one threshold


def test_segment_serves_the_refined_map_that_evaluation_scores(predictor):
    # segment() makes its alpha straight from the filter's coefficients; evaluation and predict()
    # threshold foreground(): both must be the same map.
    from humanseg.ml.predictor import soft_alpha

    image, _ = draw_person((150, 110), seed=5)
    seg = predictor.segment(image, refine=True)
    prob = predictor.foreground([image], refine=True)[0]
    alpha = np.asarray(seg.alpha).astype(int)
    assert np.abs(alpha - soft_alpha(prob, predictor.cfg.threshold)).max() <= 1
    differ = np.count_nonzero((np.asarray(seg.mask) == 255) != (prob >= predictor.cfg.threshold))
    assert differ <= prob.size // 10_000  # float rounding right at the threshold at most


def test_soft_alpha_ramps_around_the_threshold():
    from humanseg.ml.predictor import soft_alpha

    prob = np.array([0.0, 0.2, 0.25, 0.5, 0.75, 0.9, 1.0], np.float32)
    assert soft_alpha(prob).tolist() == [0, 0, 0, 128, 255, 255, 255]


def test_large_photos_get_full_size_results_from_a_bounded_map(predictor, monkeypatch):
    import humanseg.ml.predictor as mod

    monkeypatch.setattr(mod, "MAX_MAP_SIDE", 64)  # stands in for 2048 on a 40 MP photo
    image, _ = draw_person((300, 200), seed=6)
    seg = predictor.segment(image, refine=True)
    assert seg.mask.size == seg.alpha.size == (300, 200)
    mask, alpha = np.asarray(seg.mask), np.asarray(seg.alpha)
    assert set(np.unique(mask)) <= {0, 255}
    assert np.array_equal(mask == 255, alpha >= 128)  # the mask is the alpha's threshold
