"""A training run's settings (torch-free, so the command line can show its defaults without loading torch)."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from humanseg.ml.data import DEFAULT_HELDOUT_SEQUENCES, DatasetSpec


@dataclass
class TrainConfig:
    data: Path
    out: Path
    encoder: str = "timm-tf_efficientnet_lite0"
    encoder_weights: str | None = None  # "imagenet" (smp download) or a local .pth file
    norm: str | None = None  # input normalisation: "imagenet" or "half" (mean = std = 0.5); None: the encoder's
    arch: str = "Unet"
    decoder_channels: tuple[int, ...] = (64, 48, 32, 16, 8)
    size: int = 256
    epochs: int = 60
    batch_size: int = 8
    lr: float = 1e-3
    weight_decay: float = 1e-4
    warmup_epochs: float = 1.0
    ema_decay: float = 0.99
    seed: int = 42
    val_every: int = 1
    threads: int = 0
    max_steps: int = 0  # >0: stop early (smoke tests)
    limit_rows: int = 0  # >0: use only the first N csv rows (smoke tests)
    resume: bool = False
    progress: bool = True
    init: str | None = None  # start from a model folder's weights (its config fixes the architecture)
    loss: str = "dice_bce"  # or "bce_lovasz": per-image Lovasz hinge, which optimises the per-image IoU
    paste_p: float = 0.0  # probability of copy-pasting a second training person into a sample
    channels_last: bool = True  # ~30% faster training steps on CPU (oneDNN), same numbers
    bystander_p: float = 0.0  # probability of a blurred person pasted behind the subject as background
    extra: tuple[DatasetSpec, ...] = ()  # more datasets (either layout) with their sampling weights
    distill: tuple[DatasetSpec, ...] = ()  # `humanseg teach` label folders (soft targets) with their weights
    min_agreement: float = 0.85  # a teacher-labelled photo is trained on only where the teachers agree this much
    min_area: float = 0.01  # ... and where they find at least this share of the photo to be person
    scene_p: float = 0.0  # probability of a labelled person pasted over a teacher folder's photo (label: that person)
    holdout_sequences: tuple[str, ...] = field(default=DEFAULT_HELDOUT_SEQUENCES)  # extras' OOD check
    device: str = "cpu"  # "cuda" trains on a GPU (bfloat16 autocast); serving never needs one
    workers: int = 0  # data-loading processes (augmentation); 0: in the training process
    epoch_samples: int = 0  # samples per epoch; 0: as many as the primary dataset has
    time_budget: float = 0.0  # >0 (seconds): after the first epoch, fit the number of epochs into this budget
