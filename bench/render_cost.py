"""The worker's per-photo time outside the model: before (every kind per job) and after (mask, alpha, thumb).

Runs the shipped predictor on generated photos (nothing from ../shared is needed) and splits
one job's worker time into stages; the network itself is timed apart so that "outside the
model" is exact:

  decode    stored JPEG -> upright RGB (core.images.load_oriented)
  pre/post  letterbox, normalise, logits -> probabilities at full size (ml.letterbox)
  refine    colour guided filter at full size (after only: ml.refine)
  maps      binary mask and soft alpha from the probabilities
  <kind>    render and encode one stored result

before: what the worker did until issue 11 (mask, cut-out, overlay, thumbnail from the binary
mask, unrefined). after: mask, alpha and thumbnail from the refined map (core/render.py);
cut-outs and overlays are made on request. Prints `uptime` first: a busy machine (training,
say) inflates every figure, so compare before and after from one run.

    python bench/render_cost.py [--n 12] [--repeats 3] [--model DIR]
"""
from __future__ import annotations

import argparse
import io
import os
import statistics
import subprocess
import time
from collections import defaultdict

import numpy as np
from PIL import Image, ImageDraw, ImageEnhance, ImageFilter

SIZES = [(1184, 789), (800, 1200), (1600, 1067), (640, 480)]  # landscape and portrait photos


def photo(size: tuple[int, int], seed: int) -> bytes:
    """A photo-like JPEG: smooth lit background with fine texture, and a person-shaped figure."""
    rng = np.random.default_rng(seed)
    w, h = size
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    base = np.stack([xx / w * 120 + 90, yy / h * 100 + 80, (xx + yy) / (w + h) * 80 + 110], -1)
    base += rng.normal(0, 4, (h, w, 3))  # sensor noise and texture, as in real photos
    img = Image.fromarray(np.clip(base, 0, 255).astype(np.uint8)).filter(ImageFilter.GaussianBlur(0.7))
    draw = ImageDraw.Draw(img)
    cx = w * rng.uniform(0.35, 0.65)
    draw.ellipse([cx - w * .08, h * .12, cx + w * .08, h * .12 + w * .18], fill=(150, 110, 90))
    draw.rounded_rectangle([cx - w * .17, h * .12 + w * .17, cx + w * .17, h], radius=w * .05,
                           fill=tuple(int(v) for v in rng.integers(20, 200, 3)))
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=90)
    return buf.getvalue()


class TimedBackend:
    """The predictor's own backend, with the time spent inside the network added up."""

    def __init__(self, inner) -> None:
        self.inner, self.name, self.seconds = inner, inner.name, 0.0

    def run(self, batch):
        t0 = time.perf_counter()
        try:
            return self.inner.run(batch)
        finally:
            self.seconds += time.perf_counter() - t0


def _encode(img: Image.Image, fmt: str, **params) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **params)
    return buf.getvalue()


# The worker's renderers until issue 11 (worker/outputs.py at 0ae5e8f), kept here for the "before" run.
def legacy_renderers() -> dict:
    def cutout(image, mask):
        out = image.convert("RGBA")
        out.putalpha(mask)
        return _encode(out, "PNG", compress_level=6)

    def overlay(image, mask):
        tinted = Image.blend(image, Image.new("RGB", image.size, (0, 190, 255)), 0.35)
        dimmed = ImageEnhance.Brightness(image).enhance(0.35)
        return _encode(Image.composite(tinted, dimmed, mask), "JPEG", quality=85)

    def thumb(image, mask):
        out = Image.composite(image, Image.new("RGB", image.size, (255, 255, 255)), mask)
        out.thumbnail((256, 256), Image.Resampling.LANCZOS)
        return _encode(out, "JPEG", quality=85)

    return {"mask": lambda image, mask: _encode(mask, "PNG", optimize=False),
            "cutout": cutout, "overlay": overlay, "thumb": thumb}


def one_job(data: bytes, predictor, timed: TimedBackend, after: bool) -> dict[str, float]:
    """Milliseconds per stage for one photo, as the worker would spend them."""
    from humanseg.core.images import load_oriented
    from humanseg.core.render import Sources, render_result
    from humanseg.ml.predictor import soft_alpha
    from humanseg.ml.refine import guided_filter

    ms: dict[str, float] = {}
    t = time.perf_counter()
    image = load_oriented(data)
    ms["decode"] = (time.perf_counter() - t) * 1000
    timed.seconds = 0.0
    t = time.perf_counter()
    prob = predictor.probabilities([image])[0]
    ms["model"] = timed.seconds * 1000
    ms["pre/post"] = (time.perf_counter() - t) * 1000 - ms["model"]
    if after:
        t = time.perf_counter()
        prob = guided_filter(image, prob)
        ms["refine"] = (time.perf_counter() - t) * 1000
    t = time.perf_counter()
    mask = Image.fromarray(np.where(prob >= predictor.cfg.threshold, 255, 0).astype(np.uint8), "L")
    alpha = Image.fromarray(soft_alpha(prob, predictor.cfg.threshold), "L") if after else None
    ms["maps"] = (time.perf_counter() - t) * 1000
    if after:
        from humanseg.worker.outputs import kinds_for

        src = Sources(image=image, alpha=alpha, mask=mask)
        for name in kinds_for():
            t = time.perf_counter()
            render_result(name, src)
            ms[name] = (time.perf_counter() - t) * 1000
    else:
        for name, make in legacy_renderers().items():
            t = time.perf_counter()
            make(image, mask)
            ms[name] = (time.perf_counter() - t) * 1000
    return ms


def main() -> None:
    from humanseg.ml.predictor import load_predictor

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=12, help="generated photos")
    ap.add_argument("--repeats", type=int, default=3, help="passes over the photos (median kept)")
    ap.add_argument("--model", default=None, help="model directory (default: the shipped one)")
    ap.add_argument("--threads", type=int, default=0, help="model threads (0: all cores)")
    args = ap.parse_args()

    print("uptime:", uptime())
    print(f"cores: {os.cpu_count()}  photos: {args.n} generated, sizes {', '.join(f'{w}x{h}' for w, h in SIZES)}")
    predictor = load_predictor(args.model, backend="onnx", threads=args.threads or None)
    timed = TimedBackend(predictor.backend)
    predictor.backend = timed
    photos = [photo(SIZES[i % len(SIZES)], i) for i in range(args.n)]
    for data in photos[:2]:  # warm-up: ONNX sessions and codecs
        one_job(data, predictor, timed, after=True)
    results = {}
    for label, after in (("before", False), ("after", True)):
        per_stage: dict[str, list[float]] = defaultdict(list)
        for _ in range(args.repeats):
            for data in photos:
                for stage, value in one_job(data, predictor, timed, after).items():
                    per_stage[stage].append(value)
        results[label] = {stage: statistics.median(v) for stage, v in per_stage.items()}
    stages = list(dict.fromkeys([*results["before"], *results["after"]]))
    print(f"\nper photo, median ms ({args.repeats} passes x {args.n} photos)")
    print(f"{'stage':<10}{'before':>10}{'after':>10}")
    for stage in stages:
        row = [results[label].get(stage) for label in ("before", "after")]
        print(f"{stage:<10}" + "".join(f"{v:>10.1f}" if v is not None else f"{'-':>10}" for v in row))
    for label in ("before", "after"):
        outside = sum(v for k, v in results[label].items() if k != "model")
        render = sum(v for k, v in results[label].items() if k not in ("model", "decode", "pre/post",
                                                                         "refine", "maps"))
        print(f"{label}: outside the model {outside:.1f} ms (render+encode {render:.1f} ms); "
              f"model {results[label]['model']:.1f} ms")
    print("uptime:", uptime())


def uptime() -> str:
    """The load averages, so figures from a busy machine read as such."""
    return subprocess.run(["uptime"], check=False, capture_output=True, text=True).stdout.strip()


if __name__ == "__main__":
    main()
