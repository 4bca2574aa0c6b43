"""The README's commands work in the environment `make up` builds (no torch, no training extra)."""

from __future__ import annotations

import subprocess
import sys

import pytest
from PIL import Image
from support_serve_env import hidden_modules, prelude

# Commands the README lists for a `make up` environment, by their help (each must parse and answer 0).
SERVE_COMMANDS = (["up", "-h"], ["db", "-h"], ["web", "-h"], ["sweep", "-h"], ["keys", "-h"], ["keys", "list", "-h"],
                  ["segment", "-h"], ["remote", "segment", "-h"])


def serve_python(code: str, timeout: float = 180) -> subprocess.CompletedProcess:
    """Run `code` in a fresh interpreter that sees only what `make up` installs."""
    return subprocess.run([sys.executable, "-c", prelude() + code], capture_output=True, text=True,
                          timeout=timeout)


def test_the_serve_environment_lacks_the_training_extra():
    hidden = hidden_modules()
    assert {"torch", "sklearn", "segmentation_models_pytorch"} <= set(hidden), hidden
    assert not {"onnxruntime", "numpy", "PIL", "flask", "celery", "requests"} & set(hidden), hidden
    done = serve_python("import torch\n")
    assert done.returncode == 1 and "not in make up" in done.stderr


@pytest.mark.parametrize("argv", SERVE_COMMANDS, ids=" ".join)
def test_each_command_answers_its_help(argv):
    done = serve_python(f"from humanseg.cli import main\nraise SystemExit(main({argv!r}))\n")
    assert done.returncode == 0, done.stderr[-2000:]
    assert "usage:" in done.stdout.lower() or "usage:" in done.stderr.lower()


def test_segment_runs_with_its_progress_bar_as_the_readme_shows(tiny_model_dir, tmp_path):
    (tmp_path / "photos").mkdir()
    for i in range(2):
        Image.new("RGB", (48, 40), (90, 120 + i, 150)).save(tmp_path / "photos" / f"p{i}.jpg")
    argv = ["segment", str(tmp_path / "photos"), "--out", str(tmp_path / "out"), "--checkpoint",
            str(tiny_model_dir), "--outputs", "mask,alpha,cutout"]
    done = serve_python(f"from humanseg.cli import main\nraise SystemExit(main({argv!r}))\n")
    assert done.returncode == 0, done.stderr[-2000:]
    assert "segment: 100%" in done.stderr  # the progress bar, not a ModuleNotFoundError
    for i in range(2):
        for suffix in (".cutout.png", ".mask.png", ".alpha.png"):
            assert (tmp_path / "out" / f"p{i}{suffix}").is_file()


@pytest.mark.parametrize("command", ["train", "evaluate", "export"])
def test_training_commands_say_they_need_make_train(command, tmp_path):
    argv = {"train": ["train", "--data", str(tmp_path), "--out", str(tmp_path / "o")],
            "evaluate": ["evaluate", "--data", str(tmp_path)],
            "export": ["export", "--checkpoint", str(tmp_path)]}[command]
    done = serve_python(f"from humanseg.cli import main\nraise SystemExit(main({argv!r}))\n")
    assert done.returncode == 2, (done.stdout, done.stderr[-2000:])
    assert "Traceback" not in done.stderr and "make train" in done.stderr, done.stderr[-2000:]
