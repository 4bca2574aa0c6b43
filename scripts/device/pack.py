"""Pack what a GPU training run of the v4 model needs into two parts of at most ~55 MB each.

The device tool sends a copy of the repository (64 MiB at most per call), so the photos travel as WebP
copies: part a (MODNet teacher, Roboflow photos, the MODNet matting encoder in float16, the smp wheel),
part b (LSPET photos, the seed dataset). Only the training part of persons/ travels: the fixed held-out
tenth (`humanseg.ml.teach.held_out`) stays here for the teacher check. scripts/train_v4.sh is the CPU twin.

    python scripts/device/pack.py --shared ../shared --out .device [--limit N]
"""
from __future__ import annotations

import argparse
import csv
import shutil
import subprocess
import sys
from pathlib import Path

import torch
from PIL import Image

from humanseg.ml.data import read_rows
from humanseg.ml.imageio import load_image
from humanseg.ml.teach import find_images, held_out


def save_webp(src: Path, dst: Path, long_side: int, quality: int) -> None:
    image = load_image(src)  # EXIF-upright RGB, as training reads it
    scale = long_side / max(image.size)
    if scale < 1:
        image = image.resize((round(image.width * scale), round(image.height * scale)), Image.Resampling.LANCZOS)
    dst.parent.mkdir(parents=True, exist_ok=True)
    image.save(dst, "WEBP", quality=quality, method=4)


def pack_persons(shared: Path, folder: str, out: Path, long_side: int, quality: int, limit: int) -> int:
    root = shared / "data" / "persons"
    photos = [p for p in find_images(root / folder) if not held_out(p.relative_to(root).as_posix())]
    for path in photos[: limit or None]:
        save_webp(path, out / "persons" / path.relative_to(root).with_suffix(".webp"), long_side, quality)
    return len(photos[: limit or None])


def pack_seed(shared: Path, out: Path, long_side: int, quality: int, limit: int) -> int:
    """The seed dataset in its train.csv order (the fixed split depends on it), photos as WebP."""
    rows = read_rows(shared / "data" / "human-segmentation")
    if limit:  # keep the split's val part present in a dry run: rows are split by position
        rows = rows[: max(limit, 10)]
    (out / "seed").mkdir(parents=True)
    with open(out / "seed" / "train.csv", "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["images", "masks"])
        for i, row in enumerate(rows):
            image, mask = Path("images") / f"{i:03d}_{row.image.stem}.webp", Path("masks") / f"{i:03d}.png"
            save_webp(row.image, out / "seed" / image, long_side, quality)
            (out / "seed" / mask).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(row.mask, out / "seed" / mask)
            writer.writerow([image.as_posix(), mask.as_posix()])
    return len(rows)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--shared", type=Path, default=Path("../shared"))
    p.add_argument("--out", type=Path, default=Path(".device"))
    p.add_argument("--limit", type=int, default=0, help="only N photos per folder (a local dry run)")
    args = p.parse_args()
    a, b = args.out / "a", args.out / "b"
    for part in (a, b):
        shutil.rmtree(part, ignore_errors=True)
    (a / "teachers").mkdir(parents=True)
    shutil.copyfile(args.shared / "weights" / "teachers" / "modnet.onnx", a / "teachers" / "modnet.onnx")
    encoder = torch.load(args.shared / "weights" / "mobilenet_v2.modnet-matting.pth", map_location="cpu",
                         weights_only=True)
    torch.save({k: v.half() if v.is_floating_point() else v for k, v in encoder.items()}, a / "encoder.pth")
    subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", "-d", str(a / "whl"),
                    "segmentation-models-pytorch==0.6.0"], check=True)
    counts = {
        "roboflow": pack_persons(args.shared, "roboflow-human-v2", a, 416, 75, args.limit),
        "lspet": pack_persons(args.shared, "lspet", b, 448, 80, args.limit),
        "seed": pack_seed(args.shared, b, 640, 85, args.limit),
    }
    sizes = {part.name: sum(f.stat().st_size for f in part.rglob("*") if f.is_file()) / 2**20 for part in (a, b)}
    print(counts, {k: f"{v:.1f} MiB" for k, v in sizes.items()})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
