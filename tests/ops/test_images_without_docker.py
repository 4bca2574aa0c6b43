"""The web image runs without torch/onnxruntime; the CPU worker without torch.

Each check runs in a subprocess that can import only the dependency closure of
the extra the Dockerfile installs (see tests/ops/isolation.py).
"""

from __future__ import annotations

import re

import pytest

from .conftest import REPO
from .isolation import dependency_closure, run_isolated

MODEL_DISTS = {"torch", "torchvision", "onnxruntime", "onnx", "segmentation-models-pytorch",
               "timm", "triton"}


def test_web_extra_pulls_no_model_runtime():
    closure = dependency_closure({"web"})
    assert "flask" in closure and "gunicorn" in closure
    bad = sorted(d for d in closure if d in MODEL_DISTS or d.startswith("nvidia-"))
    assert not bad, f"humanseg[web] pulls {bad}"


def test_worker_extra_pulls_onnxruntime_but_no_torch():
    closure = dependency_closure({"worker"})
    assert "onnxruntime" in closure and "numpy" in closure and "pillow" in closure
    bad = sorted(d for d in closure if d in {"torch", "torchvision", "triton"} or d.startswith("nvidia-"))
    assert not bad, f"humanseg[worker] (the CPU image) pulls {bad}"


def test_web_app_serves_healthz_with_only_web_extras(tmp_path):
    # What the web image runs: migrate (`humanseg db upgrade`), then gunicorn's
    # `web:create_app()` with settings from the environment.
    code = """
        from humanseg.cli import main
        assert main(["db", "upgrade"]) == 0
        import gunicorn.app.wsgiapp  # the image's server
        from humanseg.web import create_app
        app = create_app()
        client = app.test_client()
        r = client.get("/healthz")
        assert r.status_code == 200 and r.get_json()["status"] == "ok", (r.status_code, r.data)
        r = client.get("/api/v1/jobs/00000000-0000-0000-0000-000000000000")
        assert r.status_code == 404, (r.status_code, r.data)
        r = client.get("/")
        assert r.status_code < 500, (r.status_code, r.data[:500])
        r = client.get("/api/v1/models")  # the registry's descriptions, read without the ml package
        assert r.status_code == 200 and {"fast", "modnet"} <= {m["name"] for m in r.get_json()["models"]}, r.data
        heavy = sorted(m for m in ("torch", "onnxruntime", "numpy", "ml", "worker") if m in sys.modules)
        assert not heavy, heavy
        print("OK", _SEEN_BLOCKED)
    """
    env = {
        "HUMANSEG_DATA_DIR": str(tmp_path),
        "HUMANSEG_DATABASE_URL": f"sqlite:///{tmp_path / 'web.db'}",
        "HUMANSEG_BROKER_URL": "redis://127.0.0.1:9/0",  # never dialled by these requests
        "HUMANSEG_SECRET_KEY": "test",
    }
    proc = run_isolated({"web"}, {"core", "web", "migrations"}, code, env,
                        must_block=("torch", "onnxruntime", "humanseg.ml", "humanseg.worker", "numpy"))
    assert proc.returncode == 0 and "OK" in proc.stdout, proc.stdout + proc.stderr


def test_cpu_worker_starts_without_torch(tmp_path):
    code = """
        from humanseg.core.settings import Settings
        from humanseg.worker.celery_app import make_celery
        import humanseg.worker.tasks
        app = make_celery(Settings.from_env())
        assert "humanseg.segment" in app.tasks, sorted(app.tasks)
        import humanseg.ml.predictor
        assert "torch" not in sys.modules
        print("OK")
    """
    env = {"HUMANSEG_DATA_DIR": str(tmp_path), "HUMANSEG_BROKER_URL": "redis://127.0.0.1:9/0",
           "HUMANSEG_DATABASE_URL": f"sqlite:///{tmp_path / 'w.db'}"}
    proc = run_isolated({"worker"}, {"core", "worker", "ml", "migrations"}, code, env,
                        must_block=("torch", "torchvision", "segmentation_models_pytorch"))
    assert proc.returncode == 0 and "OK" in proc.stdout, proc.stdout + proc.stderr


def test_cpu_worker_runs_the_shipped_onnx_model_without_torch(tmp_path):
    model = REPO / "ml" / "models" / "fast" / "model.onnx"
    if not model.is_file():
        pytest.skip("ml/models/fast/model.onnx not shipped yet (the worker image build checks for it too)")
    code = """
        from PIL import Image
        from humanseg.ml.predictor import load_predictor
        p = load_predictor(backend="auto", threads=1)
        mask = p.predict(Image.new("RGB", (96, 64), (120, 90, 60)))
        assert mask.mode == "L" and mask.size == (96, 64), (mask.mode, mask.size)
        assert "torch" not in sys.modules
        print("OK")
    """
    proc = run_isolated({"worker"}, {"core", "worker", "ml"}, code, {"HUMANSEG_DATA_DIR": str(tmp_path)},
                        must_block=("torch", "torchvision", "segmentation_models_pytorch"), timeout=300)
    assert proc.returncode == 0 and "OK" in proc.stdout, proc.stdout + proc.stderr


def test_isolation_really_blocks(tmp_path):
    """Control: code importing torch fails under the web extra's isolation."""
    proc = run_isolated({"web"}, {"core", "web"}, "import torch\n", {}, must_block=())
    assert proc.returncode != 0 and "not in the image" in proc.stderr
    assert re.search(r"torch", proc.stderr)
