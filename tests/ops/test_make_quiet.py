"""`make up`'s install step: one line on the screen, pip's output in a log file (shown when it fails).

Runs the Makefile's real recipe with PIP replaced by a stand-in that talks as much as pip does, in a
throw-away VENV folder, so nothing is installed."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CHATTY = "import sys; print('Collecting something\\n' * 180); sys.exit({code})"


def make_install_serve(tmp_path: Path, code: int) -> tuple[subprocess.CompletedProcess, Path]:
    if shutil.which("make") is None:
        pytest.skip("no make")
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    (venv / "bin" / "python").symlink_to(sys.executable)  # the venv "exists": no real one is made
    fetch = venv / "bin" / "humanseg"  # `humanseg fetch-models` after pip: a stand-in that talks too
    fetch.write_text("#!/bin/sh\necho 'modnet: fetched'\n")
    fetch.chmod(0o755)
    pip = f"{sys.executable} -c \"{CHATTY.format(code=code)}\""
    done = subprocess.run(["make", "--no-print-directory", "install-serve", f"VENV={venv}", f"PIP={pip}"],
                          cwd=ROOT, capture_output=True, text=True, timeout=60)
    return done, venv


def test_install_says_one_line_and_logs_pip(tmp_path):
    done, venv = make_install_serve(tmp_path, 0)
    assert done.returncode == 0, done.stdout + done.stderr
    screen = [line for line in (done.stdout + done.stderr).splitlines() if line.strip()]
    assert len(screen) == 1 and "install.log" in screen[0], screen
    assert (venv / "install.log").read_text().count("Collecting something") == 360  # both pip runs


def test_a_failed_install_shows_the_end_of_pips_output(tmp_path):
    done, venv = make_install_serve(tmp_path, 1)
    assert done.returncode != 0
    assert "Collecting something" in done.stdout and "its whole output: " + str(venv / "install.log") in done.stdout
