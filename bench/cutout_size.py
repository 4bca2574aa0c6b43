"""Bytes of transparent cut-outs before and after issue 29 (no colour under alpha 0, decontaminated edges).

Runs the shipped model on the photos of a folder (sorted, the first --n), renders each cut-out as
the worker stores it (PNG) and as it was made before (the whole photo kept under the alpha), and
prints the bytes of the first one and of a stored zip of them all (the batch zip's layout:
cutouts/<stem>.png, ZIP_STORED). Bytes only: no timing.

    python bench/cutout_size.py PHOTO_DIR [--n 25] [--model DIR]
"""
from __future__ import annotations

import argparse
import io
import zipfile
from pathlib import Path

from PIL import Image

from humanseg.core.images import load_oriented
from humanseg.core.render import PNG_LEVEL, Sources, encode, render_result
from humanseg.ml.predictor import load_predictor


def before(image: Image.Image, alpha: Image.Image) -> bytes:
    """The cut-out as compose() made it until issue 29: the photo, alpha put on it."""
    out = image.convert("RGBA")
    out.putalpha(alpha)
    return encode(out, "png", png_level=PNG_LEVEL)


def zipped(named: dict[str, bytes]) -> int:
    sink = io.BytesIO()
    with zipfile.ZipFile(sink, "w", compression=zipfile.ZIP_STORED) as zf:
        for name, data in named.items():
            zf.writestr(f"cutouts/{name}.png", data)
    return len(sink.getvalue())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("photos", type=Path)
    parser.add_argument("--n", type=int, default=25)
    parser.add_argument("--model", type=Path, default=None)
    args = parser.parse_args()
    predictor = load_predictor(args.model, backend="onnx")
    paths = sorted(p for p in args.photos.iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png"))[:args.n]
    old, new = {}, {}
    for path in paths:
        image = load_oriented(path)
        seg = predictor.segment(image)
        old[path.stem] = before(image, seg.alpha)
        new[path.stem] = render_result("cutout", Sources(image=image, alpha=seg.alpha, mask=seg.mask))
    first = paths[0].stem
    print(f"one photo ({paths[0].name}): before={len(old[first])} B after={len(new[first])} B")
    print(f"zip of {len(paths)} cut-outs: before={zipped(old)} B after={zipped(new)} B")


if __name__ == "__main__":
    main()
