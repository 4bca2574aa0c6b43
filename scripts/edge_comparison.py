"""Side-by-side picture of cut-out edges before and after refinement (docs/edge-comparison.png).

usage: python scripts/edge_comparison.py --data DATASET_DIR IMAGE_NAME... [--out docs/edge-comparison.png]
Each row: the photo, the hard cut-out (upsampled probabilities at 0.5), the soft refined cut-out,
the last two on a checkerboard so halos and stair steps show.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from humanseg.ml.imageio import load_image
from humanseg.ml.predictor import load_predictor, soft_alpha

TILE = 300


def checkerboard(size: tuple[int, int], cell: int = 12) -> Image.Image:
    w, h = size
    yy, xx = np.mgrid[0:h, 0:w]
    board = np.where(((yy // cell) + (xx // cell)) % 2, 200, 255).astype(np.uint8)
    return Image.fromarray(board, "L").convert("RGB")


def on_board(image: Image.Image, alpha: np.ndarray) -> Image.Image:
    board = checkerboard(image.size)
    return Image.composite(image, board, Image.fromarray(alpha, "L"))


def row(predictor, path: Path) -> list[Image.Image]:
    image = load_image(path)
    raw = predictor.foreground([image], refine=False)[0]
    soft = predictor.foreground([image], refine=True)[0]
    alpha = soft_alpha(soft, predictor.cfg.threshold)
    hard = np.where(raw >= 0.5, 255, 0).astype(np.uint8)
    tiles = [image, on_board(image, hard), on_board(image, alpha)]
    # Zoom on the top of the subject (hair), where edges differ most.
    ys, xs = np.nonzero(soft >= 0.5)
    if len(ys):
        top, cx = int(ys.min()), int(np.median(xs))
        side = max(64, int(0.35 * (ys.max() - ys.min())))
        box = (max(0, cx - side // 2), max(0, top - side // 6), min(image.width, cx + side // 2),
               min(image.height, top - side // 6 + side))
        tiles = [t.crop(box) for t in tiles]
    return [t.resize((TILE, round(TILE * t.height / max(1, t.width)))) for t in tiles]


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--data", type=Path, required=True, help="folder holding the images (searched recursively)")
    p.add_argument("--checkpoint", type=Path, default=None)
    p.add_argument("--out", type=Path, default=Path("docs/edge-comparison.png"))
    p.add_argument("names", nargs="+")
    args = p.parse_args()
    predictor = load_predictor(args.checkpoint, backend="onnx")
    rows = [row(predictor, next(args.data.rglob(name))) for name in args.names]
    heights = [max(t.height for t in r) for r in rows]
    sheet = Image.new("RGB", (3 * TILE + 40, sum(heights) + 10 * len(rows) + 30), "white")
    draw = ImageDraw.Draw(sheet)
    for i, label in enumerate(("photo", "before: hard mask", "after: refined soft alpha")):
        draw.text((10 + i * (TILE + 10), 8), label, fill="black")
    y = 30
    for r, h in zip(rows, heights, strict=False):
        for i, tile in enumerate(r):
            sheet.paste(tile, (10 + i * (TILE + 10), y))
        y += h + 10
    args.out.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(args.out, optimize=True)
    print(args.out)


if __name__ == "__main__":
    main()
