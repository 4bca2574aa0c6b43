"""Fixtures for the ML tests: a tiny real model and a small generated dataset (no ../shared)."""
from __future__ import annotations

import csv
import logging
from pathlib import Path

import pytest
from PIL import Image

from humanseg.ml.data import CSV_PREFIX
from humanseg.ml.testing import draw_person


@pytest.fixture(autouse=True)
def _undo_cli_logging():
    """ml.cli's `main` sets up logging (core/logsetup.py): a root handler on the sys.stderr of that moment,
    under capsys a capture that closes with the test. Take it off again, and the root level back."""
    root = logging.getLogger()
    level = root.level
    yield
    for handler in [h for h in root.handlers if getattr(h, "_humanseg_handler", False)]:
        root.removeHandler(handler)
    root.setLevel(level)


@pytest.fixture(scope="session")
def dataset_dir(tmp_path_factory) -> Path:
    """A train.csv dataset laid out like the real one: prefixed paths, masks smaller than images."""
    root = tmp_path_factory.mktemp("dataset")
    (root / "Training_Images").mkdir()
    (root / "Ground_Truth").mkdir()
    rows = []
    for i in range(1, 11):
        size = (96, 72) if i % 2 else (72, 96)
        image, mask = draw_person(size, seed=i)
        image.save(root / "Training_Images" / f"{i}.jpg", quality=92)
        if i % 3 == 0:  # like remove.bg previews: a uniformly downscaled mask
            mask = mask.resize((size[0] // 2, size[1] // 2), Image.NEAREST)
        mask.save(root / "Ground_Truth" / f"{i}.png")
        rows.append((f"{CSV_PREFIX}Ground_Truth/{i}.png", f"{CSV_PREFIX}Training_Images/{i}.jpg"))
    with open(root / "train.csv", "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["masks", "images"])
        writer.writerows(rows)
    return root
