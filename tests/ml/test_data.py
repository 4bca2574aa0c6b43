import random

import numpy as np
import pytest
from PIL import Image

from humanseg.ml.data import (
    Augmenter,
    SegDataset,
    load_pair,
    paste_person,
    read_rows,
    split_rows,
)


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


def test_copy_paste_adds_the_pasted_person_to_image_and_mask():
    canvas = Image.new("RGB", (40, 40), (0, 0, 255))
    canvas_mask = Image.new("L", (40, 40), 0)
    canvas_mask.paste(255, (2, 2, 12, 30))
    person = Image.new("RGB", (40, 40), (0, 255, 0))
    person_mask = Image.new("L", (40, 40), 0)
    person_mask.paste(255, (20, 5, 36, 35))
    img, msk = paste_person(canvas, canvas_mask, person, person_mask)
    a, m = np.asarray(img), np.asarray(msk) > 0
    union = (np.asarray(canvas_mask) > 0) | (np.asarray(person_mask) > 0)
    assert np.array_equal(m, union)
    assert tuple(a[20, 28]) == (0, 255, 0)  # inside the pasted person
    assert tuple(a[20, 5]) == (0, 0, 255)  # the original stays where nothing was pasted


def test_dataset_with_paste_yields_union_masks_of_two_people(dataset_dir):
    pairs = [load_pair(r) for r in read_rows(dataset_dir)[:4]]
    plain = SegDataset(pairs, Augmenter(64, (0.5,) * 3, train=True, rng=random.Random(5)), (0.5,) * 3, (0.5,) * 3)
    pasted = SegDataset(pairs, Augmenter(64, (0.5,) * 3, train=True, rng=random.Random(5)), (0.5,) * 3, (0.5,) * 3,
                        paste_p=1.0)
    # Same first draw for the subject; the pasted sample can only add foreground.
    (x0, y0), (x1, y1) = plain[0], pasted[0]
    assert x0.shape == x1.shape == (3, 64, 64) and y1.shape == (1, 64, 64)
    assert bool((y1 >= y0).all())
    assert set(y1.unique().tolist()) <= {0.0, 1.0}
