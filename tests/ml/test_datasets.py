"""Several datasets: the plain folder layout, weighted sampling, held-out sequences, bystanders."""
import json
import random
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from humanseg.ml.data import (
    Augmenter,
    DatasetSpec,
    SegDataset,
    add_bystander,
    load_pair,
    read_dataset,
    read_folder,
    read_rows,
    sequence_of,
    split_by_sequence,
    weighted_order,
)
from humanseg.ml.testing import draw_person
from humanseg.ml.train import TrainConfig, train


@pytest.fixture(scope="module")
def folder_dataset(tmp_path_factory):
    """A DAVIS-like images/ + masks/ folder: three sequences of frames, plus an image without a mask."""
    root = tmp_path_factory.mktemp("folder")
    (root / "images").mkdir()
    (root / "masks").mkdir()
    for seq, frames in (("walk", 3), ("dance-jump", 2), ("hike", 2)):
        for f in range(frames):
            image, mask = draw_person((80, 60), seed=len(seq) * 10 + f)
            image.save(root / "images" / f"{seq}_{f * 3:05d}.jpg", quality=92)
            mask.save(root / "masks" / f"{seq}_{f * 3:05d}.png")
    draw_person((80, 60), seed=99)[0].save(root / "images" / "orphan.jpg")
    return root


def test_folder_layout_pairs_images_and_masks_by_stem(folder_dataset):
    rows = read_folder(folder_dataset)
    assert len(rows) == 7  # the orphan image has no mask
    assert all(r.image.stem == r.mask.stem for r in rows)
    assert rows == sorted(rows, key=lambda r: r.image.name)
    image, mask = load_pair(rows[0])
    assert image.size == mask.size and set(np.unique(np.asarray(mask))) <= {0, 255}


def test_read_dataset_picks_the_layout(folder_dataset, dataset_dir):
    assert read_dataset(folder_dataset) == read_folder(folder_dataset)
    assert read_dataset(dataset_dir) == read_rows(dataset_dir)


def test_an_empty_folder_is_a_clear_error(tmp_path):
    (tmp_path / "images").mkdir()
    with pytest.raises(ValueError, match="no images"):
        read_folder(tmp_path)


def test_split_by_sequence_keeps_whole_sequences_apart(folder_dataset):
    rows = read_folder(folder_dataset)
    train_rows, held = split_by_sequence(rows, ("dance-jump", "hike"))
    assert {sequence_of(r) for r in held} == {"dance-jump", "hike"}
    assert {sequence_of(r) for r in train_rows} == {"walk"}
    assert len(train_rows) + len(held) == len(rows)


def test_dataset_spec_parses_an_optional_weight():
    assert DatasetSpec.parse("data/davis:0.4") == DatasetSpec(Path("data/davis"), 0.4)
    assert DatasetSpec.parse("data/davis") == DatasetSpec(Path("data/davis"), 1.0)


def test_weighted_order_gives_each_dataset_its_share():
    gen = torch.Generator().manual_seed(0)
    order = weighted_order([10, 100], [3.0, 1.0], 8000, gen)
    first = sum(i < 10 for i in order) / len(order)
    assert abs(first - 0.75) < 0.03  # weights, not dataset sizes, decide the mix
    counts = Counter(i for i in order if i < 10)
    assert len(counts) == 10  # every item of the small set is drawn


def test_bystander_goes_behind_the_subject_and_stays_background():
    subject = Image.new("RGB", (40, 40), (0, 0, 255))
    subject_mask = Image.new("L", (40, 40), 0)
    subject_mask.paste(255, (10, 0, 20, 40))
    person = Image.new("RGB", (40, 40), (0, 255, 0))
    person_mask = Image.new("L", (40, 40), 0)
    person_mask.paste(255, (5, 5, 35, 35))
    img, msk = add_bystander(subject, subject_mask, person, person_mask, blur=0.0)
    a = np.asarray(img)
    assert msk.tobytes() == subject_mask.tobytes()  # the label is unchanged
    assert a[20, 30, 1] > 200  # bystander visible beside the subject
    assert tuple(a[20, 15]) == (0, 0, 255)  # the subject stays in front


def test_dataset_with_bystanders_keeps_the_subject_mask(dataset_dir):
    pairs = [load_pair(r) for r in read_rows(dataset_dir)[:4]]
    plain = SegDataset(pairs, Augmenter(64, (0.5,) * 3, train=True, rng=random.Random(3)), (0.5,) * 3, (0.5,) * 3)
    busy = SegDataset(pairs, Augmenter(64, (0.5,) * 3, train=True, rng=random.Random(3)), (0.5,) * 3, (0.5,) * 3,
                      bystander_p=1.0)
    (x0, y0), (x1, y1) = plain[1], busy[1]
    assert torch.equal(y0, y1) and not torch.equal(x0, x1)


def test_training_with_an_extra_dataset_reports_the_held_out_check(dataset_dir, folder_dataset, tmp_path):
    tc = TrainConfig(data=dataset_dir, out=tmp_path / "run", decoder_channels=(16, 8, 8, 8, 8), size=64,
                     batch_size=4, progress=False, epochs=1, max_steps=2,
                     extra=(DatasetSpec(folder_dataset, 0.5),), holdout_sequences=("dance-jump",))
    state = train(tc)
    record = state["history"][-1]
    assert 0.0 <= record["ood_miou"] <= 1.0 and 0.0 <= record["val_miou"] <= 1.0
    assert record["score"] == pytest.approx((record["ood_miou"] + record["val_miou"]) / 2)
    meta = json.loads((tmp_path / "run" / "best" / "config.json").read_text())["meta"]
    assert meta["ood_mean_iou"] == record["ood_miou"]
    assert meta["recipe"]["extra"] == [f"{folder_dataset.name}:0.5"]
