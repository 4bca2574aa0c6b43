"""Worker cost of one large, cheap image: time and peak memory of decode, predict and render.

A black PNG of --mp megapixels is a few hundred kB to upload and costs the worker its full size
(issue 10, finding 11). The image is made in a child process so that this process's peak
resident memory (VmHWM) counts only the pipeline's stages.

    python bench/worker_memory.py --mp 40            # the shipped model, ONNX on CPU
"""

from __future__ import annotations

import argparse
import math
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def hwm_mib() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) // 1024
    return -1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mp", type=float, default=40.0, help="megapixels (4:3)")
    parser.add_argument("--threads", type=int, default=0)
    args = parser.parse_args()
    height = int(math.sqrt(args.mp * 1e6 * 3 / 4))
    width = int(args.mp * 1e6 / height)
    path = Path(tempfile.mkdtemp()) / "black.png"
    make = f"import sys; from PIL import Image; Image.new('RGB', ({width}, {height})).save(sys.argv[1])"
    subprocess.run([sys.executable, "-c", make, str(path)], check=True)

    from humanseg.core.images import load_oriented
    from humanseg.ml.predictor import load_predictor
    from humanseg.worker.outputs import render_job

    predictor = load_predictor(threads=args.threads or None)
    data = path.read_bytes()
    print(f"image: {width}x{height} black PNG, {len(data) / 1e3:.0f} kB")
    print(f"{'stage':8} {'seconds':>8} {'peak MiB':>9}")
    print(f"{'loaded':8} {'':>8} {hwm_mib():>9}")
    t0 = time.perf_counter()
    image = load_oriented(data)
    t1 = time.perf_counter()
    print(f"{'decode':8} {t1 - t0:8.1f} {hwm_mib():>9}")
    seg = predictor.segment(image)
    t2 = time.perf_counter()
    print(f"{'predict':8} {t2 - t1:8.1f} {hwm_mib():>9}")
    outputs = render_job(image, seg)
    t3 = time.perf_counter()
    print(f"{'render':8} {t3 - t2:8.1f} {hwm_mib():>9}   ({sum(map(len, outputs.values())) / 1e6:.1f} MB written)")
    print("load:", subprocess.run(["uptime"], check=False, capture_output=True, text=True).stdout.strip())
    path.unlink()
    return 0


if __name__ == "__main__":
    sys.exit(main())
