"""Model latency at serving resolution: torch vs ONNX Runtime, batch 1 and batched, 1 and 2 threads.

Prints one line per case. Usage: python bench/model_speed.py [--checkpoint DIR] [--repeats N]
The input is a 640x480 (4:3 landscape) photo-sized image letterboxed to the model's serving
size, i.e. exactly the tensor the worker runs; pre/post-processing is timed separately.
"""
from __future__ import annotations

import argparse
import os
import statistics
import time

import numpy as np
from PIL import Image


def _time(fn, repeats: int) -> float:
    for _ in range(3):
        fn()
    samples = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - t0)
    return statistics.median(samples) * 1000


def main() -> None:
    from humanseg.ml.config import ONNX_FILE, ModelConfig
    from humanseg.ml.letterbox import Letterbox, to_input
    from humanseg.ml.predictor import (
        SHIPPED_MODEL_DIR,
        OnnxBackend,
        Predictor,
        TorchBackend,
    )

    ap = argparse.ArgumentParser()
    ap.add_argument("--checkpoint", default=str(SHIPPED_MODEL_DIR))
    ap.add_argument("--repeats", type=int, default=30)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--width", type=int, default=640)
    ap.add_argument("--height", type=int, default=480)
    args = ap.parse_args()

    cfg = ModelConfig.load(args.checkpoint)
    rng = np.random.default_rng(0)
    image = Image.fromarray(rng.integers(0, 255, (args.height, args.width, 3), dtype=np.uint8))
    box = Letterbox.fit(image.width, image.height, cfg.size, cfg.pad_multiple)
    x1 = to_input(image, box, cfg.mean, cfg.std)[None]
    xb = np.repeat(x1, args.batch, axis=0)
    print(f"model={args.checkpoint} input={args.width}x{args.height} -> tensor {box.pad_w}x{box.pad_h} "
          f"cores={os.cpu_count()}")
    for threads in (1, 2):
        backends = [("onnxruntime", lambda t=threads: OnnxBackend(os.path.join(args.checkpoint, ONNX_FILE), t)),
                    ("torch", lambda t=threads: TorchBackend(args.checkpoint, t, "cpu"))]
        for name, make in backends:
            backend = make()
            ms1 = _time(lambda b=backend: b.run(x1), args.repeats)
            msb = _time(lambda b=backend: b.run(xb), max(5, args.repeats // 4)) / args.batch
            print(f"backend={name:<11} threads={threads} batch=1  {ms1:7.1f} ms/image")
            print(f"backend={name:<11} threads={threads} batch={args.batch}  {msb:7.1f} ms/image")
            if name == "onnxruntime" and threads == 2:
                pred = Predictor(cfg, backend)
                e2e = _time(lambda p=pred: p.predict(image), args.repeats)
                print(f"backend={name:<11} threads={threads} end-to-end predict() incl. resize/threshold "
                      f"{e2e:7.1f} ms/image")


if __name__ == "__main__":
    main()
