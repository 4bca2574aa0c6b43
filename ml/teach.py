"""`humanseg teach`: label photos with the teacher ensemble (ONNX Runtime), for distillation.

Training only: serving never loads a teacher. Each photo gets one soft label (PNG, mode L, 0-255, the
photo's size: the mean of the teachers' soft maps) and one line in `teach.jsonl` with how far the
teachers agree and how much of the photo they call person. Training keeps the photos where they agree
(teachers are not ground truth) and `held_out()` reserves a fixed part of every folder as the stand-in
for users' photos, never trained on.
"""
from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from humanseg.core.images import IMAGE_SUFFIXES
from humanseg.core.logfmt import logkv
from humanseg.ml.imageio import load_image
from humanseg.ml.modnet import modnet_input, soft_at
from humanseg.ml.predictor import Predictor

log = logging.getLogger(__name__)

MANIFEST = "teach.jsonl"
IMAGENET_MEAN = np.array((0.485, 0.456, 0.406), np.float32)
IMAGENET_STD = np.array((0.229, 0.224, 0.225), np.float32)
HELD_OUT_BUCKETS = 10  # 1 photo in 10 (by a hash of its name) is the held-out teacher-agreement check


class TeacherError(ValueError):
    """A teacher folder or file that cannot be used."""


class OnnxTeacher:
    """One teacher network: a photo in, a soft person map in [0, 1] at the photo's size out."""

    name = "teacher"

    def __init__(self, path: Path, threads: int = 0):
        import onnxruntime as ort

        opts = ort.SessionOptions()
        if threads:
            opts.intra_op_num_threads = threads
        self.path = Path(path)
        self.session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
        self.input = self.session.get_inputs()[0].name
        self.fingerprint = file_sha256(path)[:16]

    def soft(self, image: Image.Image) -> np.ndarray:
        x = self.preprocess(image)
        out = self.session.run(None, {self.input: x[None]})[0][0, 0].astype(np.float32)
        return soft_at(self.postprocess(out), image.size)

    def preprocess(self, image: Image.Image) -> np.ndarray:
        raise NotImplementedError

    def postprocess(self, out: np.ndarray) -> np.ndarray:
        return out


class Modnet(OnnxTeacher):
    """MODNet portrait matting: short side 512 (kept when the photo is large), sides a multiple of 32."""

    name = "modnet"

    def preprocess(self, image: Image.Image) -> np.ndarray:
        return modnet_input(image)  # the same fitting as the served model (ml/modnet.py)


class U2netp(OnnxTeacher):
    """u2netp salient object: 320x320, max-scaled then ImageNet mean/std; output min-max normalised."""

    name = "u2netp"

    def preprocess(self, image: Image.Image) -> np.ndarray:
        rgb = np.asarray(image.resize((320, 320), Image.Resampling.LANCZOS), np.float32)
        rgb = rgb / max(float(rgb.max()), 1e-6)
        return ((rgb - IMAGENET_MEAN) / IMAGENET_STD).transpose(2, 0, 1).astype(np.float32)

    def postprocess(self, out: np.ndarray) -> np.ndarray:
        lo, hi = float(out.min()), float(out.max())
        return (out - lo) / (hi - lo) if hi > lo else np.zeros_like(out)


TEACHERS = {"modnet.onnx": Modnet, "u2netp.onnx": U2netp}


def load_teachers(folder: Path, threads: int = 0, names: set[str] | None = None) -> list[OnnxTeacher]:
    """The teacher files found in `folder` (modnet.onnx, u2netp.onnx), at least one; `names` picks some."""
    folder = Path(folder)
    found = [cls(folder / name, threads) for name, cls in TEACHERS.items()
             if (folder / name).is_file() and (names is None or cls.name in names)]
    if not found:
        raise TeacherError(f"{folder}: no teacher model (expected {' and/or '.join(TEACHERS)}); "
                           "`humanseg fetch-teachers DIR` obtains them")
    return found


@dataclass
class Label:
    """One photo's manifest line."""

    image: str  # relative to the images folder
    label: str  # relative to the labels folder
    agreement: float  # IoU between the teachers' masks at 0.5 (1.0 with one teacher)
    area: float  # share of the photo the ensemble calls person
    keep: bool  # a sizeable person was found
    teachers: str  # fingerprints of the teacher files that made the label


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def held_out(name: str) -> bool:
    """Fixed held-out part of any teacher-labelled folder: about 1 photo in 10, chosen by its name."""
    return int(hashlib.sha1(Path(name).stem.encode()).hexdigest(), 16) % HELD_OUT_BUCKETS == 0


def mask_iou(a: np.ndarray, b: np.ndarray) -> float:
    union = np.logical_or(a, b).sum()
    return float(np.logical_and(a, b).sum() / union) if union else 1.0


def find_images(folder: Path) -> Iterator[Path]:
    yield from sorted(p for p in Path(folder).rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


def read_manifest(labels: Path) -> dict[str, Label]:
    """The labels made so far, by image (the last line for an image wins)."""
    path = Path(labels) / MANIFEST
    if not path.is_file():
        return {}
    entries = {}
    for line in path.read_text().splitlines():
        if line.strip():
            entry = Label(**json.loads(line))
            entries[entry.image] = entry
    return entries


def label_photo(teachers: list[OnnxTeacher], image: Image.Image, min_area: float) -> tuple[np.ndarray, float, float]:
    """(soft label, agreement, area) of one photo."""
    maps = [t.soft(image) for t in teachers]
    soft = np.mean(maps, axis=0)
    hard = [m >= 0.5 for m in maps]
    agreement = float(np.mean([mask_iou(a, b) for i, a in enumerate(hard) for b in hard[i + 1:]])) \
        if len(hard) > 1 else 1.0
    return soft, agreement, float((soft >= 0.5).mean())


def teach(images: Path, out: Path, teachers_dir: Path, min_area: float = 0.01, threads: int = 0,
          progress: bool = False, names: set[str] | None = None, split: str = "all", workers: int = 0) -> dict:
    """Label every photo under `images` into `out` (resumable: photos labelled by the same teachers are skipped).

    names: only these teachers (e.g. {"modnet"}); split: "all", or only the "train" or "heldout" part;
    workers: label in that many processes (each loads the teachers once, with `threads` threads).
    """
    images, out = Path(images), Path(out)
    if not images.is_dir():
        raise TeacherError(f"{images}: not a folder of photos")
    teachers = load_teachers(teachers_dir, threads, names)
    fingerprint = ",".join(f"{t.name}:{t.fingerprint}" for t in teachers)
    out.mkdir(parents=True, exist_ok=True)
    (out / "teach.json").write_text(json.dumps({"images": str(images.resolve()), "teachers": fingerprint}) + "\n")
    done = read_manifest(out)
    counts = {"photos": 0, "labelled": 0, "cached": 0, "dropped": 0, "unreadable": 0}
    entries: list[Label] = []
    todo: list[str] = []
    for path in find_images(images):
        rel = path.relative_to(images).as_posix()
        if split != "all" and held_out(rel) != (split == "heldout"):
            continue
        counts["photos"] += 1
        entry = done.get(rel)
        if entry and entry.teachers == fingerprint and (out / entry.label).is_file():
            counts["cached"] += 1
            entries.append(entry)
        else:
            todo.append(rel)
    with open(out / MANIFEST, "a") as manifest:
        for rel, result in _maybe_progress(_label_all(teachers, images, todo, min_area, workers, threads,
                                                      teachers_dir, names), progress, total=len(todo)):
            if isinstance(result, str):  # one bad photo must not stop the folder
                log.warning(logkv(event="teach_unreadable", image=rel, reason=result))
                counts["unreadable"] += 1
                continue
            soft, agreement, area = result
            label_rel = str(Path(rel).with_suffix(".png"))
            (out / label_rel).parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(soft, mode="L").save(out / label_rel)
            entry = Label(rel, label_rel, round(agreement, 4), round(area, 4), area >= min_area, fingerprint)
            manifest.write(json.dumps(asdict(entry)) + "\n")
            manifest.flush()
            counts["labelled"] += 1
            entries.append(entry)
    dropped = [e.image for e in entries if not e.keep]
    counts["dropped"] = len(dropped)
    agree = np.asarray([e.agreement for e in entries] or [0.0])
    return {**counts, "agree_0.85": int((agree >= 0.85).sum()), "agree_0.7": int((agree >= 0.7).sum()),
            "dropped_photos": dropped, "teachers": fingerprint}


_WORKER_TEACHERS: list[OnnxTeacher] = []


def _label_one(teachers: list[OnnxTeacher], images: Path, rel: str, min_area: float):
    """(soft label as uint8, agreement, area) of one photo, or the reason it cannot be read."""
    try:
        image = load_image(images / rel)
    except (OSError, ValueError) as exc:
        return str(exc)
    soft, agreement, area = label_photo(teachers, image, min_area)
    return np.round(soft * 255).astype(np.uint8), agreement, area


def _init_worker(teachers_dir: Path, threads: int, names: set[str] | None) -> None:
    _WORKER_TEACHERS[:] = load_teachers(teachers_dir, threads, names)


def _label_in_worker(images: Path, rel: str, min_area: float):
    return _label_one(_WORKER_TEACHERS, images, rel, min_area)


def _label_all(teachers, images, todo, min_area, workers, threads, teachers_dir, names) -> Iterator[tuple[str, Any]]:
    """(photo, result) for each photo to label, in order: here, or in `workers` processes."""
    if workers <= 1:
        for rel in todo:
            yield rel, _label_one(teachers, images, rel, min_area)
        return
    from concurrent.futures import ProcessPoolExecutor
    from functools import partial

    with ProcessPoolExecutor(workers, initializer=_init_worker, initargs=(teachers_dir, threads, names)) as pool:
        yield from zip(todo, pool.map(partial(_label_in_worker, images, min_area=min_area), todo, chunksize=8),
                       strict=True)


def labelled_rows(labels: Path, images: Path | None = None, min_agreement: float = 0.85,
                  split: str = "train", min_area: float | None = None) -> list:
    """Training (or held-out) rows of a labels folder: kept photos whose teachers agree at least this much.

    min_area: keep photos whose person covers at least this share (default: as `teach` decided).
    """
    from humanseg.ml.data import Row

    labels = Path(labels)
    meta = json.loads((labels / "teach.json").read_text()) if (labels / "teach.json").is_file() else {}
    root = Path(images) if images else Path(meta.get("images", ""))
    if not root.is_dir():
        raise TeacherError(f"{labels}: images folder {root} not found (pass it explicitly)")
    rows = []
    for entry in read_manifest(labels).values():
        keep = entry.keep if min_area is None else entry.area >= min_area
        if not keep or entry.agreement < min_agreement:
            continue
        if held_out(entry.image) != (split == "heldout"):
            continue
        rows.append(Row(root / entry.image, labels / entry.label))
    return sorted(rows, key=lambda r: r.image.name)


def _maybe_progress(items, enabled, total=None):
    if not enabled:
        return items
    from tqdm import tqdm

    return tqdm(items, desc="teach", unit="photo", total=total)


class TeacherPredictor(Predictor):
    """The teachers behind the predictor's interface (their mean is the probability map), so they
    are scored exactly like our model: through Predictor.segment."""

    def __init__(self, teachers: list[OnnxTeacher]):
        from humanseg.ml.config import ModelConfig

        self.teachers = teachers
        self.cfg = ModelConfig(refine=False, threshold=0.5)

    def probabilities(self, images: Sequence[Image.Image], sizes=None) -> list[np.ndarray]:
        """The teachers' mean soft map of each image, at its size (or at sizes[i])."""
        out = []
        for image, size in zip(images, sizes or [im.size for im in images], strict=True):
            soft = np.mean([t.soft(image) for t in self.teachers], axis=0)
            if soft.shape[::-1] != tuple(size):
                soft = np.asarray(Image.fromarray(soft, mode="F").resize(size, Image.Resampling.BILINEAR))
            out.append(soft)
        return out
