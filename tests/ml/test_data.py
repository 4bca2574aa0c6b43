import random

import numpy as np
import pytest
from PIL import Image

from ml.data import Augmenter, load_pair, read_rows, split_rows


def test_split_matches_sklearn_reference():
    sklearn = pytest.importorskip("sklearn.model_selection")
    rows = [f"row{i}" for i in range(290)]
    train, val = split_rows(rows)
    ref_train, ref_val = sklearn.train_test_split(rows, test_size=0.2, random_state=42)
    assert (len(train), len(val)) == (232, 58)
    assert train == ref_train and val == ref_val


def test_read_rows_strips_prefix(dataset_dir):
    rows = read_rows(dataset_dir)
    assert len(rows) == 10
    assert rows[0].image == dataset_dir / "Training_Images" / "1.jpg"
    assert all(r.image.is_file() and r.mask.is_file() for r in rows)


def test_load_pair_resizes_small_mask_to_image(dataset_dir):
    row = read_rows(dataset_dir)[2]  # 3.png was saved at half size
    with Image.open(row.mask) as m:
        assert m.size != (96, 72)
    image, mask = load_pair(row)
    assert image.mode == "RGB" and mask.mode == "L"
    assert mask.size == image.size
    assert set(np.unique(np.asarray(mask))) <= {0, 255}


def test_augmenter_keeps_image_and_mask_aligned(dataset_dir):
    image, mask = load_pair(read_rows(dataset_dir)[0])
    # Paint the person pixels pure red so alignment can be read back after warping.
    arr = np.asarray(image).copy()
    arr[np.asarray(mask) > 0] = (255, 0, 0)
    arr[np.asarray(mask) == 0] = (0, 0, 255)
    red = Image.fromarray(arr)
    aug = Augmenter(64, (0.5, 0.5, 0.5), train=True, rng=random.Random(3))
    aug._colour = lambda img: img  # geometry only for this check
    for _ in range(5):
        img, msk = aug(red, mask)
        assert img.size == msk.size == (64, 64)
        a, m = np.asarray(img).astype(int), np.asarray(msk) > 0
        if m.sum() < 20:
            continue
        inside_red = (a[..., 0] > 200) & (a[..., 2] < 60)
        # Nearly every mask pixel is red in the image (edges blur a little).
        assert (inside_red & m).sum() / m.sum() > 0.8


def test_eval_augmenter_is_deterministic_letterbox(dataset_dir):
    image, mask = load_pair(read_rows(dataset_dir)[0])
    aug = Augmenter(64, (0.5, 0.5, 0.5), train=False)
    a1, m1 = aug(image, mask)
    a2, m2 = aug(image, mask)
    assert np.array_equal(np.asarray(a1), np.asarray(a2)) and np.array_equal(np.asarray(m1), np.asarray(m2))
