"""`humanseg segment`: files and folders in, masks / alpha / cut-outs out (no server needed)."""
from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path

from PIL import Image, UnidentifiedImageError

from humanseg.core.images import IMAGE_SUFFIXES
from humanseg.core.matte import decontaminated
from humanseg.ml.imageio import load_image
from humanseg.ml.predictor import Predictor

# Output kind -> file name suffix: each says its kind (a mask named `<stem>.png` passed for the photo).
OUTPUTS = {"cutout": ".cutout.png", "mask": ".mask.png", "alpha": ".alpha.png"}


def expand(paths: Iterable[Path]) -> Iterator[tuple[Path, Path]]:
    """(file, name relative to the output folder): files as given, folders walked for images (sorted).

    With several folders, each one's results go under its own name (OUT/<folder>/...), so two folders
    holding the same file names do not overwrite each other."""
    paths = list(paths)
    several = sum(1 for p in paths if p.is_dir()) > 1
    for path in paths:
        if path.is_dir():
            for found in sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES):
                rel = found.relative_to(path)
                yield found, Path(path.resolve().name) / rel if several else rel
        else:
            yield path, Path(path.name)


class NameClash(ValueError):
    """Two inputs would write the same output file."""


def check_unique(items: list[tuple[Path, Path]]) -> None:
    """Refuse, before anything is written, inputs whose outputs would overwrite each other."""
    seen: dict[Path, Path] = {}
    clashes = []
    for path, rel in items:
        key = rel.with_suffix("")
        if key in seen:
            clashes.append(f"{seen[key]} and {path}")
        seen.setdefault(key, path)
    if clashes:
        raise NameClash(f"these inputs would write the same results: {'; '.join(clashes[:5])}"
                        + (f" (and {len(clashes) - 5} more)" if len(clashes) > 5 else "")
                        + "; rename them or run them one at a time")


def cutout(image: Image.Image, alpha: Image.Image) -> Image.Image:
    """RGBA cut-out, as the server makes it: no colour under alpha 0, soft edges decontaminated."""
    return decontaminated(image, alpha)


def segment_files(predictor: Predictor, paths: Iterable[Path], out: Path, outputs: Iterable[str],
                  progress: bool = False) -> int:
    """Write the chosen outputs for every image; one JSON line each on stdout; returns how many failed."""
    outputs = list(outputs)
    unknown = sorted(set(outputs) - set(OUTPUTS))
    if unknown:
        raise ValueError(f"unknown output(s) {', '.join(unknown)}; choose from {', '.join(OUTPUTS)}")
    items = list(expand(paths))
    check_unique(items)
    failed = 0
    for path, rel in _maybe_progress(items, progress):
        try:
            image = load_image(path)
            seg = predictor.segment(image)
        except UnidentifiedImageError:  # PIL's "cannot identify image file '...'" says less than this
            print(f"{path}: error: not a JPEG, PNG, WebP, BMP, TIFF or GIF image, or a damaged one",
                  file=sys.stderr)
            failed += 1
            continue
        except (OSError, ValueError) as exc:  # one unreadable file must not stop the rest
            print(f"{path}: error: {exc}", file=sys.stderr)
            failed += 1
            continue
        made = {"mask": seg.mask, "alpha": seg.alpha}
        record = {"image": str(path), "size": list(seg.mask.size)}
        for kind in outputs:
            target = out / rel.parent / (rel.stem + OUTPUTS[kind])
            target.parent.mkdir(parents=True, exist_ok=True)
            (made[kind] if kind in made else cutout(image, seg.alpha)).save(target)
            record[kind] = str(target)
        print(json.dumps(record))
    return failed


def _maybe_progress(items, enabled):
    if not enabled:
        return items
    from tqdm import tqdm

    return tqdm(items, desc="segment", unit="image", file=sys.stderr)
