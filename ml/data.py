"""The human-segmentation dataset: reading, the fixed split, and augmentation."""
from __future__ import annotations

import csv
import math
import random
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageChops, ImageEnhance, ImageFilter, ImageOps

from humanseg.core.images import IMAGE_SUFFIXES

CSV_PREFIX = "Human-Segmentation-Dataset-master/"


@dataclass(frozen=True)
class Row:
    image: Path
    mask: Path


def read_rows(data_dir: str | Path) -> list[Row]:
    """train.csv rows in file order, with the repository prefix stripped."""
    data_dir = Path(data_dir)
    rows = []
    with open(data_dir / "train.csv", newline="") as fh:
        for rec in csv.DictReader(fh):
            rows.append(Row(data_dir / _strip(rec["images"]), data_dir / _strip(rec["masks"])))
    return rows


# The out-of-distribution check: two whole DAVIS sequences no training image comes from.
# dance-jump has bystanders (main-subject behaviour), lucia is an everyday street walk.
DEFAULT_HELDOUT_SEQUENCES = ("dance-jump", "lucia")


def read_folder(data_dir: str | Path) -> list[Row]:
    """A plain `images/` + `masks/` folder, pairs matched by file stem, in stem order."""
    data_dir = Path(data_dir)
    masks = {p.stem: p for p in (data_dir / "masks").glob("*") if p.suffix.lower() in IMAGE_SUFFIXES}
    rows = [Row(p, masks[p.stem]) for p in sorted((data_dir / "images").glob("*"))
            if p.suffix.lower() in IMAGE_SUFFIXES and p.stem in masks]
    if not rows:
        raise ValueError(f"{data_dir}: no images/<stem> with a matching masks/<stem>")
    return rows


def read_dataset(data_dir: str | Path) -> list[Row]:
    """Either layout: train.csv (+ its image and mask paths) or plain images/ + masks/ folders."""
    return read_rows(data_dir) if (Path(data_dir) / "train.csv").is_file() else read_folder(data_dir)


def sequence_of(row: Row) -> str:
    """Video sequence of a frame named `<sequence>_<frame>` (the stem itself when there is no frame number)."""
    head, _, tail = row.image.stem.rpartition("_")
    return head if head and tail.isdigit() else row.image.stem


def split_by_sequence(rows: list[Row], held: tuple[str, ...] | set[str]) -> tuple[list[Row], list[Row]]:
    """(train, held-out): whole sequences go to one side, never single frames (they are near-duplicates)."""
    held = set(held)
    return [r for r in rows if sequence_of(r) not in held], [r for r in rows if sequence_of(r) in held]


@dataclass(frozen=True)
class DatasetSpec:
    """An extra training dataset and its share of each epoch's samples."""

    path: Path
    weight: float = 1.0

    @classmethod
    def parse(cls, text: str) -> DatasetSpec:
        """`PATH` or `PATH:WEIGHT`."""
        path, sep, weight = text.rpartition(":")
        if sep and weight.replace(".", "", 1).isdigit():
            return cls(Path(path), float(weight))
        return cls(Path(text))


def weighted_order(sizes: list[int], weights: list[float], count: int, generator) -> list[int]:
    """`count` indices into the concatenated datasets, drawn so dataset i gets about weights[i]/sum of them."""
    import torch

    per_item = torch.cat([torch.full((n,), w / n) for n, w in zip(sizes, weights, strict=False) if n])
    return torch.multinomial(per_item, count, replacement=True, generator=generator).tolist()


def _strip(path: str) -> str:
    return path.removeprefix(CSV_PREFIX)


def split_rows(rows: list, test_size: float = 0.2, seed: int = 42) -> tuple[list, list]:
    """The published reference split: sklearn train_test_split(rows, test_size=0.2, random_state=42)."""
    n = len(rows)
    n_test = math.ceil(test_size * n)
    # Same permutation sklearn's ShuffleSplit draws: RandomState(seed).permutation(n),
    # first n_test indices are the test part, the next n - n_test the train part.
    perm = np.random.RandomState(seed).permutation(n)
    test_idx, train_idx = perm[:n_test], perm[n_test:]
    return [rows[i] for i in train_idx], [rows[i] for i in test_idx]


def load_pair(row: Row, long_side: int | None = None, soft: bool = False) -> tuple[Image.Image, Image.Image]:
    """RGB image and its 0/255 'L' mask at the image's size (NEAREST), optionally downscaled.

    soft: the mask is a teacher's soft map (0-255): resized bilinearly and kept soft, not thresholded.
    """
    from humanseg.ml.imageio import load_image

    image = load_image(row.image)
    with Image.open(row.mask) as m:
        mask = m.convert("L")
    resample = Image.Resampling.BILINEAR if soft else Image.Resampling.NEAREST
    if mask.size != image.size:
        mask = mask.resize(image.size, resample)
    if long_side and max(image.size) > long_side:
        scale = long_side / max(image.size)
        size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
        image = image.resize(size, Image.Resampling.BILINEAR, reducing_gap=3.0)
        mask = mask.resize(size, resample)
    if not soft:
        mask = mask.point(lambda v: 255 if v >= 128 else 0)
    return image, mask


class Augmenter:
    """Joint image/mask augmentation into a square canvas of `size` px."""

    def __init__(self, size: int, mean: tuple[float, ...], train: bool, rng: random.Random | None = None,
                 scale_range: tuple[float, float] = (0.6, 1.3)):
        self.size = size
        self.scale_range = scale_range
        self.train = train
        self.fill = tuple(round(255 * m) for m in mean)  # normalises to 0, like letterbox padding
        self.rng = rng or random.Random()

    def __call__(self, image: Image.Image, mask: Image.Image) -> tuple[Image.Image, Image.Image]:
        r, s = self.rng, self.size
        fit = s / max(image.size)
        if not self.train:
            scale, angle, flip, tx, ty = fit, 0.0, False, 0.0, 0.0
        else:
            scale = fit * math.exp(r.uniform(math.log(self.scale_range[0]), math.log(self.scale_range[1])))
            angle = r.uniform(-12, 12) if r.random() < 0.5 else 0.0
            flip = r.random() < 0.5
            slack_x = s - image.width * scale
            slack_y = s - image.height * scale
            tx = r.uniform(min(0, slack_x), max(0, slack_x))
            ty = r.uniform(min(0, slack_y), max(0, slack_y))
        # Inverse affine (output -> input) for PIL: rotate about the canvas centre, scale, translate.
        cx = cy = s / 2
        a = math.radians(angle)
        cos, sin = math.cos(a) / scale, math.sin(a) / scale
        # output p -> rotate around centre -> subtract translation -> divide by scale
        m = (cos, sin, -cos * cx - sin * cy + cx / scale - tx / scale,
             -sin, cos, sin * cx - cos * cy + cy / scale - ty / scale)
        if flip:
            image, mask = ImageOps.mirror(image), ImageOps.mirror(mask)
        img = image.transform((s, s), Image.Transform.AFFINE, m, Image.Resampling.BILINEAR, fillcolor=self.fill)
        msk = mask.transform((s, s), Image.Transform.AFFINE, m, Image.Resampling.NEAREST, fillcolor=0)
        if self.train:
            img = self._colour(img)
        return img, msk

    def _colour(self, img: Image.Image) -> Image.Image:
        r = self.rng
        img = ImageEnhance.Brightness(img).enhance(r.uniform(0.7, 1.3))
        img = ImageEnhance.Contrast(img).enhance(r.uniform(0.7, 1.3))
        img = ImageEnhance.Color(img).enhance(r.uniform(0.6, 1.4))
        if r.random() < 0.1:
            img = ImageOps.grayscale(img).convert("RGB")
        if r.random() < 0.2:
            img = img.filter(ImageFilter.GaussianBlur(r.uniform(0.3, 1.5)))
        return img


def to_tensor_pair(img: Image.Image, msk: Image.Image, mean, std):
    """PIL pair -> normalised float CHW tensor and 1xHxW target in [0, 1] (a 0/255 mask gives {0, 1})."""
    import torch

    x = (np.asarray(img, np.float32) / 255.0 - np.asarray(mean, np.float32)) / np.asarray(std, np.float32)
    y = np.asarray(msk, np.float32) / 255.0
    return torch.from_numpy(x.transpose(2, 0, 1).copy()), torch.from_numpy(y[None].copy())


def paste_person(img: Image.Image, msk: Image.Image, person: Image.Image, person_mask: Image.Image):
    """Copy-paste augmentation: put another photo's person (its mask, edges softened) over this canvas."""
    alpha = person_mask.filter(ImageFilter.GaussianBlur(1.0))
    return Image.composite(person, img, alpha), ImageChops.lighter(msk, person_mask)


def add_bystander(img: Image.Image, msk: Image.Image, person: Image.Image, person_mask: Image.Image,
                  blur: float) -> tuple[Image.Image, Image.Image]:
    """Synthetic bystander: another person, out of focus, put *behind* the subject; the mask is unchanged.

    Teaches that people in the background are background (the main-subject rule of our labels).
    """
    if blur > 0:
        person = person.filter(ImageFilter.GaussianBlur(blur))
    alpha = ImageChops.subtract(person_mask.filter(ImageFilter.GaussianBlur(1.0 + blur)), msk)
    return Image.composite(person, img, alpha), msk


class SegDataset:
    """torch-style dataset over preloaded (image, mask) pairs, with optional copy-paste of a second person.

    `paste_p`: a second person is pasted in front and joins the mask. `bystander_p`: one is pasted small
    and blurred behind the subject and stays background. People are taken from `people` (default: pairs).
    """

    def __init__(self, pairs, augmenter: Augmenter, mean, std, paste_p: float = 0.0, bystander_p: float = 0.0,
                 people=None, scenes=(), scene_p: float = 0.0):
        self.pairs, self.aug, self.mean, self.std = pairs, augmenter, mean, std
        self.paste_p, self.bystander_p = paste_p, bystander_p
        self.people = people if people is not None else pairs
        self.scenes, self.scene_p = list(scenes), scene_p
        if scene_p and self.scenes:  # the pasted subject is large and in focus: it is what the photo is about
            self.subject_aug = Augmenter(augmenter.size, mean, train=True, rng=augmenter.rng, scale_range=(0.6, 1.1))
        if paste_p:  # pasted people are smaller than the subject: they stand further back
            self.paste_aug = Augmenter(augmenter.size, mean, train=True, rng=augmenter.rng, scale_range=(0.3, 0.8))
        if bystander_p:  # bystanders are further back still
            self.bystander_aug = Augmenter(augmenter.size, mean, train=True, rng=augmenter.rng,
                                           scale_range=(0.2, 0.6))

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, i: int):
        rng = self.aug.rng
        if self.scene_p and self.scenes and self.people and rng.random() < self.scene_p:
            return to_tensor_pair(*self.scene_sample(), self.mean, self.std)
        img, msk = self.aug(*self.pairs[i])
        if self.paste_p and len(self.pairs) > 1 and rng.random() < self.paste_p:
            j = rng.randrange(len(self.pairs) - 1)
            j += j >= i  # any other pair
            img, msk = paste_person(img, msk, *self.paste_aug(*self.pairs[j]))
        if self.bystander_p and self.people and rng.random() < self.bystander_p:
            person = self.people[rng.randrange(len(self.people))]
            img, msk = add_bystander(img, msk, *self.bystander_aug(*person), blur=rng.uniform(0.0, 3.0))
        return to_tensor_pair(img, msk, self.mean, self.std)

    def scene_sample(self) -> tuple[Image.Image, Image.Image]:
        """A labelled person pasted large and sharp over a photo of other people: the label is that person only."""
        rng = self.aug.rng
        scene = self.scenes[rng.randrange(len(self.scenes))]
        img, _ = self.aug(scene, Image.new("L", scene.size, 0))
        person = self.people[rng.randrange(len(self.people))]
        return paste_person(img, Image.new("L", img.size, 0), *self.subject_aug(*person))
