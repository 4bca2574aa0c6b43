"""Model configuration: everything needed to rebuild a network without code defaults."""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
# Input normalisation per encoder (hard-coded: smp's lookup would download a config).
ENCODER_NORMALIZATION: dict[str, tuple[tuple[float, ...], tuple[float, ...]]] = {
    "timm-tf_efficientnet_lite0": ((0.5, 0.5, 0.5), (0.5, 0.5, 0.5)),
    "timm-tf_efficientnet_lite1": ((0.5, 0.5, 0.5), (0.5, 0.5, 0.5)),
    "timm-tf_efficientnet_lite2": ((0.5, 0.5, 0.5), (0.5, 0.5, 0.5)),
    "mobilenet_v2": (IMAGENET_MEAN, IMAGENET_STD),
}

CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"
ONNX_FILE = "model.onnx"


@dataclass(frozen=True)
class ModelConfig:
    """Architecture and pre/post-processing of one checkpoint."""

    arch: str = "Unet"
    encoder: str = "timm-tf_efficientnet_lite0"
    decoder_channels: tuple[int, ...] = (64, 48, 32, 16, 8)  # the shipped model's (chosen by latency)
    encoder_depth: int = 5
    size: int = 288  # letterbox: longest side resized to this many pixels
    pad_multiple: int = 32
    mean: tuple[float, ...] = (0.5, 0.5, 0.5)
    std: tuple[float, ...] = (0.5, 0.5, 0.5)
    threshold: float = 0.5
    refine: bool = False  # colour guided filter on the probabilities at full size (ml.refine); shipped: on
    meta: dict = field(default_factory=dict, compare=False)

    @classmethod
    def for_encoder(cls, encoder: str, **kwargs) -> ModelConfig:
        """Config with the encoder's own input normalisation."""
        mean, std = ENCODER_NORMALIZATION.get(encoder, (IMAGENET_MEAN, IMAGENET_STD))
        return cls(encoder=encoder, mean=mean, std=std, **kwargs)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["decoder_channels"] = list(self.decoder_channels)
        d["mean"], d["std"] = list(self.mean), list(self.std)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> ModelConfig:
        known = {k: v for k, v in d.items() if k in cls.__dataclass_fields__}
        for key in ("decoder_channels", "mean", "std"):
            if key in known:
                known[key] = tuple(known[key])
        return cls(**known)

    def save(self, model_dir: Path) -> Path:
        path = Path(model_dir) / CONFIG_FILE
        path.write_text(json.dumps(self.to_dict(), indent=2) + "\n")
        return path

    @classmethod
    def load(cls, model_dir: Path) -> ModelConfig:
        return cls.from_dict(json.loads((Path(model_dir) / CONFIG_FILE).read_text()))
