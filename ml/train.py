"""Training: Dice + BCE, AdamW, warmup + cosine LR, EMA weights, seeded and resumable."""
from __future__ import annotations

import json
import logging
import math
import random
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ml.config import ModelConfig
from ml.data import Augmenter, SegDataset, load_pair, read_rows, split_rows
from ml.model import build_model, load_encoder_weights, load_model_dir, save_model_dir

log = logging.getLogger(__name__)


@dataclass
class TrainConfig:
    data: Path
    out: Path
    encoder: str = "timm-tf_efficientnet_lite0"
    encoder_weights: str | None = None  # "imagenet" (smp download) or a local .pth file
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


def dice_bce_loss(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """BCE plus soft Dice over the batch."""
    bce = nn.functional.binary_cross_entropy_with_logits(logits, target)
    prob = torch.sigmoid(logits)
    inter = (prob * target).sum()
    dice = 1 - (2 * inter + 1.0) / (prob.sum() + target.sum() + 1.0)
    return bce + dice


def lovasz_hinge(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Lovasz hinge (Berman et al., 2018), averaged over images: a convex surrogate of 1 - IoU per image."""
    losses = []
    for lg, tg in zip(logits.flatten(1), target.flatten(1)):
        signs = 2 * tg - 1
        errors = 1 - lg * signs
        errors_sorted, perm = torch.sort(errors, descending=True)
        gt_sorted = tg[perm]
        gts = gt_sorted.sum()
        intersection = gts - gt_sorted.cumsum(0)
        union = gts + (1 - gt_sorted).cumsum(0)
        jaccard = 1 - intersection / union
        grad = torch.cat([jaccard[:1], jaccard[1:] - jaccard[:-1]])
        losses.append(torch.dot(nn.functional.relu(errors_sorted), grad))
    return torch.stack(losses).mean()


def bce_lovasz_loss(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """BCE for calibrated probabilities plus the per-image Lovasz hinge for IoU."""
    return nn.functional.binary_cross_entropy_with_logits(logits, target) + lovasz_hinge(logits, target)


LOSSES = {"dice_bce": dice_bce_loss, "bce_lovasz": bce_lovasz_loss}


def lr_factor(step: int, total: int, warmup: int) -> float:
    """Linear warmup then cosine decay to 1% of the peak."""
    if step < warmup:
        return (step + 1) / warmup
    progress = (step - warmup) / max(1, total - warmup)
    return 0.01 + 0.99 * 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))


class Ema:
    """Exponential moving average of a model's parameters and buffers."""

    def __init__(self, model: nn.Module, decay: float):
        import copy

        self.decay = decay
        self.model = copy.deepcopy(model).eval()
        for p in self.model.parameters():
            p.requires_grad_(False)

    @torch.no_grad()
    def update(self, model: nn.Module, step: int) -> None:
        d = min(self.decay, (1 + step) / (10 + step))  # warm start
        src = model.state_dict()
        for k, v in self.model.state_dict().items():
            if v.dtype.is_floating_point:
                v.mul_(d).add_(src[k].detach(), alpha=1 - d)
            else:
                v.copy_(src[k])


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def train(tc: TrainConfig) -> dict:
    """Train, validating each epoch; keeps best.safetensors (by val mean IoU) and a resumable last.pt."""
    from ml.evaluate import evaluate_pairs

    if tc.threads:
        torch.set_num_threads(tc.threads)
    seed_everything(tc.seed)
    tc.out.mkdir(parents=True, exist_ok=True)
    rows = read_rows(tc.data)
    if tc.limit_rows:
        rows = rows[: tc.limit_rows]
    train_rows, val_rows = split_rows(rows)
    if tc.init:
        model, init_cfg = load_model_dir(tc.init)
        cfg = ModelConfig.from_dict({**init_cfg.to_dict(), "size": tc.size, "meta": {}})
    else:
        cfg = ModelConfig.for_encoder(tc.encoder, arch=tc.arch, decoder_channels=tuple(tc.decoder_channels),
                                      size=tc.size)
    loss_fn = LOSSES[tc.loss]
    # Preload once, downscaled to a bit above the training size so scale augmentation keeps detail.
    train_pairs = [load_pair(r, long_side=int(tc.size * 1.6)) for r in train_rows]
    log.info("data train=%d val=%d size=%d", len(train_pairs), len(val_rows), tc.size)

    if not tc.init:
        online = tc.encoder_weights == "imagenet"
        model = build_model(cfg, encoder_weights="imagenet" if online else None)
        if tc.encoder_weights and not online:
            load_encoder_weights(model, tc.encoder_weights)
    model.train()
    if tc.channels_last:
        model = model.to(memory_format=torch.channels_last)
    ema = Ema(model, tc.ema_decay)
    opt = torch.optim.AdamW(model.parameters(), lr=tc.lr, weight_decay=tc.weight_decay)
    rng = random.Random(tc.seed)
    ds = SegDataset(train_pairs, Augmenter(tc.size, cfg.mean, train=True, rng=rng), cfg.mean, cfg.std,
                    paste_p=tc.paste_p)
    steps_per_epoch = max(1, len(ds) // tc.batch_size)
    total = steps_per_epoch * tc.epochs
    warmup = max(1, int(tc.warmup_epochs * steps_per_epoch))
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: lr_factor(s, total, warmup))

    state = {"epoch": 0, "step": 0, "best_iou": -1.0, "history": [], "seconds": 0.0}
    last = tc.out / "last.pt"
    if tc.resume and last.is_file():
        ckpt = torch.load(last, map_location="cpu", weights_only=False)
        model.load_state_dict(ckpt["model"])
        ema.model.load_state_dict(ckpt["ema"])
        opt.load_state_dict(ckpt["opt"])
        sched.load_state_dict(ckpt["sched"])
        state = ckpt["state"]
        rng.setstate(ckpt["py_rng"])
        torch.set_rng_state(ckpt["torch_rng"])
        log.info("resumed epoch=%d step=%d best=%.4f", state["epoch"], state["step"], state["best_iou"])

    gen = torch.Generator().manual_seed(tc.seed + state["epoch"])
    for epoch in range(state["epoch"], tc.epochs):
        t0 = time.perf_counter()
        model.train()
        order = torch.randperm(len(ds), generator=gen).tolist()
        losses = []
        batches = [order[i : i + tc.batch_size] for i in range(0, steps_per_epoch * tc.batch_size, tc.batch_size)]
        bar = _progress(batches, f"epoch {epoch + 1}/{tc.epochs}", tc.progress)
        for idx in bar:
            xs, ys = zip(*(ds[i] for i in idx))
            x, y = torch.stack(xs), torch.stack(ys)
            if tc.channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            loss = loss_fn(model(x), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            state["step"] += 1
            ema.update(model, state["step"])
            losses.append(loss.item())
            if hasattr(bar, "set_postfix"):
                bar.set_postfix(loss=f"{np.mean(losses):.4f}")
            if tc.max_steps and state["step"] >= tc.max_steps:
                break
        state["epoch"] = epoch + 1
        state["seconds"] += time.perf_counter() - t0
        record = {"epoch": epoch + 1, "loss": float(np.mean(losses)), "lr": sched.get_last_lr()[0]}
        if (epoch + 1) % tc.val_every == 0 or epoch + 1 == tc.epochs or tc.max_steps:
            metrics = evaluate_pairs(ema.model, cfg, val_rows)
            record["val_miou"] = metrics["mean_iou"]
            if metrics["mean_iou"] > state["best_iou"]:
                state["best_iou"] = metrics["mean_iou"]
                state["best_epoch"] = epoch + 1
                save_model_dir(ema.model, _with_meta(cfg, tc, state), tc.out / "best")
        state["history"].append(record)
        log.info("epoch %s", json.dumps(record))
        torch.save({"model": model.state_dict(), "ema": ema.model.state_dict(), "opt": opt.state_dict(),
                    "sched": sched.state_dict(), "state": state, "py_rng": rng.getstate(),
                    "torch_rng": torch.get_rng_state()}, last)
        if tc.max_steps and state["step"] >= tc.max_steps:
            break
    (tc.out / "history.json").write_text(json.dumps(state, indent=2, default=str))
    return state


def _with_meta(cfg: ModelConfig, tc: TrainConfig, state: dict) -> ModelConfig:
    from dataclasses import replace

    meta = {"epoch": state["epoch"], "val_mean_iou": state["best_iou"], "train_seconds": round(state["seconds"], 1),
            "recipe": {k: (str(v) if isinstance(v, Path) else v) for k, v in tc.__dict__.items()
                       if k not in ("data", "out", "progress")}}
    return replace(cfg, meta=meta)


def _progress(items, desc: str, enabled: bool):
    if not enabled:
        return items
    from tqdm import tqdm

    return tqdm(items, desc=desc, leave=False, dynamic_ncols=True)
