import json

import numpy as np
import pytest
import torch

from humanseg.core.registry import Registry
from humanseg.ml.config import ModelConfig
from humanseg.ml.export import export_onnx
from humanseg.ml.model import build_model, load_model_dir, save_model_dir
from humanseg.ml.predictor import SHIPPED_MODEL_DIR, SHIPPED_MODELS, load_predictor
from humanseg.ml.testing import TINY, draw_person


def test_round_trip_rebuilds_the_same_network(tmp_path):
    torch.manual_seed(1)
    cfg = ModelConfig.for_encoder("timm-tf_efficientnet_lite0", **TINY)
    model = build_model(cfg).eval()
    save_model_dir(model, cfg, tmp_path)
    # The config alone rebuilds it: no code defaults are needed.
    stored = json.loads((tmp_path / "config.json").read_text())
    assert stored["decoder_channels"] == [16, 8, 8] and stored["encoder_depth"] == 3
    loaded, cfg2 = load_model_dir(tmp_path)
    assert cfg2 == cfg
    x = torch.randn(2, 3, 64, 96)
    with torch.no_grad():
        assert torch.equal(model(x), loaded(x))


def test_half_precision_storage_halves_the_file(tmp_path):
    cfg = ModelConfig.for_encoder("timm-tf_efficientnet_lite0", **TINY)
    model = build_model(cfg).eval()
    full = save_model_dir(model, cfg, tmp_path / "full") / "model.safetensors"
    half = save_model_dir(model, cfg, tmp_path / "half", half=True) / "model.safetensors"
    assert half.stat().st_size < 0.6 * full.stat().st_size
    loaded, _ = load_model_dir(tmp_path / "half")
    assert all(p.dtype == torch.float32 for p in loaded.parameters())


def _agreement(model_dir, seeds=range(6)):
    onnx = load_predictor(model_dir, backend="onnx", threads=1)
    ref = load_predictor(model_dir, backend="torch", threads=1, device="cpu")
    ious = []
    for seed in seeds:
        image, _ = draw_person((160 + 17 * seed, 120), seed=seed)
        a = np.asarray(onnx.predict(image)) > 0
        b = np.asarray(ref.predict(image)) > 0
        union = (a | b).sum()
        ious.append(1.0 if union == 0 else (a & b).sum() / union)
    return min(ious)


def test_onnx_agrees_with_torch_on_tiny_model(tmp_path):
    torch.manual_seed(0)
    cfg = ModelConfig.for_encoder("timm-tf_efficientnet_lite0", **TINY)
    model = build_model(cfg).eval()
    with torch.no_grad():  # a non-trivial split of foreground/background for a random net
        model.segmentation_head[0].bias.fill_(0.0)
    save_model_dir(model, cfg, tmp_path)
    export_onnx(model, tmp_path / "model.onnx", size=cfg.size)
    assert _agreement(tmp_path) >= 0.999


@pytest.mark.parametrize("name", [m.name for m in Registry.load(SHIPPED_MODELS).models.values() if m.kind == "unet"])
def test_shipped_onnx_agrees_with_shipped_torch(name):
    assert _agreement(SHIPPED_MODELS / name, seeds=range(3)) >= 0.999


def test_the_shipped_default_is_a_unet_of_ours():
    registry = Registry.load(SHIPPED_MODELS)
    assert SHIPPED_MODELS / registry.default == SHIPPED_MODEL_DIR and registry.get(None).kind == "unet"
