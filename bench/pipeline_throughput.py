"""Time from one upload of N images to all N jobs finished, against a running server.

    humanseg up &                                   # or any deployment
    python bench/pipeline_throughput.py --n 20                 # synthetic 640x480 images
    python bench/pipeline_throughput.py --images photos/ --n 20  # your own photos
"""

from __future__ import annotations

import argparse
import io
import sys
import time
from pathlib import Path

import requests
from PIL import Image, ImageDraw


def synthetic(i: int, size=(640, 480)) -> bytes:
    """A light background with a figure drawn on it (varies a little per image)."""
    img = Image.new("RGB", size, (200 + i % 40, 210, 225))
    d = ImageDraw.Draw(img)
    w, h = size
    d.ellipse([w * 0.42, h * 0.1, w * 0.58, h * 0.32], fill=(120, 80, 60))
    d.rectangle([w * 0.35, h * 0.32, w * 0.65, h * 0.98], fill=(40, 70, 140))
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=90)
    return buf.getvalue()


def load_files(images: Path | None, n: int) -> list[tuple[str, bytes]]:
    if images is None:
        return [(f"synthetic-{i}.jpg", synthetic(i)) for i in range(n)]
    paths = sorted(p for p in images.iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png", ".webp"))
    if not paths:
        sys.exit(f"no images in {images}")
    return [(paths[i % len(paths)].name, paths[i % len(paths)].read_bytes()) for i in range(n)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", default="http://127.0.0.1:8000")
    parser.add_argument("--n", type=int, default=20)
    parser.add_argument("--images", type=Path, default=None)
    parser.add_argument("--timeout", type=float, default=600)
    args = parser.parse_args(argv)
    files = load_files(args.images, args.n)
    t0 = time.perf_counter()
    resp = requests.post(args.url + "/api/v1/jobs", files=[("images", f) for f in files],
                         data={"batch_name": "bench"}, timeout=args.timeout)
    resp.raise_for_status()
    t_upload = time.perf_counter() - t0
    batch_url = args.url + resp.json()["batch_url"]
    while True:
        batch = requests.get(batch_url, timeout=30).json()
        if batch["done"] or time.perf_counter() - t0 > args.timeout:
            break
        time.sleep(0.1)
    total = time.perf_counter() - t0
    counts = batch["counts"]
    print(f"images={len(files)} upload_s={t_upload:.2f} all_finished_s={total:.2f} "
          f"per_image_s={total / len(files):.3f} succeeded={counts['succeeded']} "
          f"failed={counts['failed']} pending={counts['queued'] + counts['running']}")
    return 0 if counts["succeeded"] == len(files) else 1


if __name__ == "__main__":
    sys.exit(main())
