"""Resident memory of one worker process per loaded model: what HUMANSEG_MODELS_LOADED bounds.

Loads the registry's models one after another the way a worker does (ml/registry.py's LoadedModels)
and runs one photo through each, printing the process's resident memory (VmRSS) and its peak
(VmHWM) after every step. Bytes, not time: fine to run on a busy machine.

    python bench/model_memory.py                     # every registered model, 640x480 photo
    python bench/model_memory.py --size 4000x3000    # a 12 MP photo
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def mib(field: str) -> int:
    """A /proc/self/status memory field (VmRSS, VmHWM) in MiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) // 1024
    return -1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", default="640x480", help="the photo, WxH")
    parser.add_argument("--models-dir", default="", help="the registry (default: ml/models)")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    width, height = (int(v) for v in args.size.split("x"))

    from humanseg.core.registry import Registry
    from humanseg.ml.registry import LoadedModels
    from humanseg.ml.testing import draw_person

    registry = Registry.load(args.models_dir)
    models = LoadedModels(registry, limit=len(registry.names), backend="onnx", threads=args.threads)
    photo, _ = draw_person((width, height), seed=0)
    print(f"{'step':24} {'RSS MiB':>8} {'peak MiB':>9}")
    print(f"{'imports':24} {mib('VmRSS'):>8} {mib('VmHWM'):>9}")
    for name in [registry.default, *(n for n in registry.names if n != registry.default)]:
        predictor = models.get(name)
        print(f"{'load ' + name:24} {mib('VmRSS'):>8} {mib('VmHWM'):>9}")
        predictor.segment(photo)
        print(f"{'segment ' + name:24} {mib('VmRSS'):>8} {mib('VmHWM'):>9}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
