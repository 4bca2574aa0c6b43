"""Building, saving and loading the segmentation network (torch side)."""
from __future__ import annotations

import json
import warnings
from pathlib import Path

import torch
from torch import nn

from humanseg.ml.config import CONFIG_FILE, WEIGHTS_FILE, ModelConfig


def build_model(cfg: ModelConfig, encoder_weights: str | None = None) -> nn.Module:
    """Create the network from its config (encoder_weights="imagenet" asks smp to download them)."""
    import segmentation_models_pytorch as smp

    kwargs: dict = {
        "encoder_name": cfg.encoder,
        "encoder_weights": encoder_weights,
        "encoder_depth": cfg.encoder_depth,
        "classes": 1,
    }
    if cfg.arch.lower() in ("unet", "unetplusplus"):
        kwargs["decoder_channels"] = tuple(cfg.decoder_channels)
    with warnings.catch_warnings():
        # smp deprecates the "timm-" encoder names, but the offline ImageNet file is in that layout.
        warnings.filterwarnings("ignore", message="`timm-` encoders are deprecated", category=DeprecationWarning)
        return smp.create_model(cfg.arch, **kwargs)


def load_encoder_weights(model: nn.Module, path: str | Path) -> None:
    """Initialise the encoder from a local ImageNet state dict (strict)."""
    state = torch.load(Path(path), map_location="cpu", weights_only=True)
    model.encoder.load_state_dict(state)  # type: ignore[union-attr]  # Module.__getattr__: a submodule here


def save_model_dir(model: nn.Module, cfg: ModelConfig, out_dir: str | Path, half: bool = False) -> Path:
    """Write config.json + model.safetensors, enough to rebuild the model (half: store float16)."""
    from safetensors.torch import save_file

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    state = {}
    for k, v in model.state_dict().items():
        v = v.detach().cpu().contiguous()
        state[k] = v.half() if half and v.is_floating_point() else v
    save_file(state, str(out / WEIGHTS_FILE), metadata={"config": json.dumps(cfg.to_dict())})
    cfg.save(out)
    return out


def load_model_dir(model_dir: str | Path, device: str = "cpu") -> tuple[nn.Module, ModelConfig]:
    """Rebuild the model from config.json and load its safetensors weights (eval mode)."""
    from safetensors.torch import load_file

    model_dir = Path(model_dir)
    if not (model_dir / CONFIG_FILE).is_file():
        raise FileNotFoundError(f"no {CONFIG_FILE} in {model_dir}")
    cfg = ModelConfig.load(model_dir)
    model = build_model(cfg)
    state = load_file(str(model_dir / WEIGHTS_FILE), device="cpu")
    # Weights may be stored as float16 to keep the shipped files small; compute in float32.
    model.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in state.items()})
    return model.to(device).eval(), cfg
