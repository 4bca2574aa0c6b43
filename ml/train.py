"""Training: Dice + BCE, AdamW, warmup + cosine LR, EMA weights, seeded and resumable."""
from __future__ import annotations

import json
import logging
import math
import random
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch import nn

from humanseg.core.logfmt import logkv
from humanseg.ml.config import IMAGENET_MEAN, IMAGENET_STD, ModelConfig
from humanseg.ml.data import (
    Augmenter,
    DatasetSpec,
    SegDataset,
    load_pair,
    read_dataset,
    split_by_sequence,
    split_rows,
    weighted_order,
)
from humanseg.ml.imageio import load_image
from humanseg.ml.model import (
    build_model,
    load_encoder_weights,
    load_model_dir,
    save_model_dir,
)
from humanseg.ml.recipe import TrainConfig
from humanseg.ml.teach import labelled_rows

log = logging.getLogger(__name__)


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
    for lg, tg in zip(logits.flatten(1), target.flatten(1), strict=False):
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


def soft_jaccard(logits: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """Per-image soft IoU loss, 1 - sum(p*t) / sum(p + t - p*t): defined for soft targets too, one value per image.

    mask: only these pixels count (1 = counted)."""
    prob = torch.sigmoid(logits).flatten(1)
    target = target.flatten(1)
    if mask is not None:
        prob, target = prob * mask.flatten(1), target * mask.flatten(1)
    inter = (prob * target).sum(1)
    return 1 - (inter + 1.0) / ((prob + target - prob * target).sum(1) + 1.0)


def is_soft(target: torch.Tensor) -> torch.Tensor:
    """Per image: does the target hold values strictly between 0 and 1 (a teacher's soft map)?"""
    return ((target > 0) & (target < 1)).flatten(1).any(1)


def mixed_loss(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Ground truth and teacher labels in one batch: BCE on every target (soft ones included), plus the
    Lovasz hinge on binary masks and the soft IoU on soft maps (the hinge needs hard labels)."""
    bce = nn.functional.binary_cross_entropy_with_logits(logits, target)
    soft = is_soft(target)
    parts = []
    if (~soft).any():
        parts.append(lovasz_hinge(logits[~soft], target[~soft]) * (~soft).sum())
    if soft.any():
        parts.append(soft_jaccard(logits[soft], target[soft]).sum())
    return bce + torch.stack(parts).sum() / len(target)


def confidence(target: torch.Tensor) -> torch.Tensor:
    """Per pixel: how sure the label is. 1 for ground truth (0 or 1); |2p - 1| for a teacher's soft map, so
    that the band around 0.5 where the teacher hesitates teaches little and its clear regions teach fully."""
    return (2 * target - 1).abs()


def confident_loss(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """The mixed loss with per-pixel confidence: BCE weighted by `confidence` (so every teacher-labelled photo
    teaches its clear regions, with no per-photo agreement cut), the Lovasz hinge on masks and the soft IoU on
    the teacher's confident pixels only."""
    weight = confidence(target)
    bce = nn.functional.binary_cross_entropy_with_logits(logits, target, weight=weight, reduction="sum")
    bce = bce / weight.sum().clamp_min(1.0)
    soft = is_soft(target)
    parts = []
    if (~soft).any():
        parts.append(lovasz_hinge(logits[~soft], target[~soft]) * (~soft).sum())
    if soft.any():
        sure = (weight[soft] >= 0.5).float()  # outside the 0.25-0.75 band
        parts.append(soft_jaccard(logits[soft], target[soft], mask=sure).sum())
    return bce + torch.stack(parts).sum() / len(target)


LOSSES = {"dice_bce": dice_bce_loss, "bce_lovasz": bce_lovasz_loss, "mixed": mixed_loss,
          "confident": confident_loss}


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


@dataclass
class TrainData:
    """Everything one run trains and validates on."""

    train_pairs: list
    people: list  # the primary dataset's subjects: sources of pasted people and bystanders
    sizes: list[int]  # samples per dataset, in train_pairs order
    weights: list[float]
    val_rows: list
    ood_rows: list
    teach_rows: list = field(default_factory=list)  # held-out photos the teachers agree on (never trained on)
    scenes: list = field(default_factory=list)  # teacher folders' photos: backgrounds for pasted subjects


def prepare_data(tc: TrainConfig) -> TrainData:
    """The primary dataset's fixed split, extra datasets minus held-out sequences, and the OOD check."""
    rows = read_dataset(tc.data)
    if tc.limit_rows:
        rows = rows[: tc.limit_rows]
    train_rows, val_rows = split_rows(rows)
    long_side = int(tc.size * 1.6)  # a bit above the training size so scale augmentation keeps detail
    load = _loader(tc.workers)
    primary = load(train_rows, long_side)
    pairs, sizes, weights, ood_rows = list(primary), [len(primary)], [1.0], []
    for spec in tc.extra:
        extra_train, held = split_by_sequence(read_dataset(spec.path), tc.holdout_sequences)
        ood_rows += held
        pairs += load(extra_train, long_side)
        sizes.append(len(extra_train))
        weights.append(spec.weight)
    teach_rows, scenes = [], []
    for spec in tc.distill:
        rows = labelled_rows(spec.path, min_agreement=tc.min_agreement, min_area=tc.min_area)
        distilled = load(rows, long_side, soft=True)
        pairs += distilled
        sizes.append(len(rows))
        weights.append(spec.weight)
        teach_rows += labelled_rows(spec.path, min_agreement=tc.min_agreement, split="heldout", min_area=tc.min_area)
        if tc.scene_p and tc.min_agreement <= 0:  # every photo is a training pair already: reuse its image
            scenes += [image for image, _ in distilled]
        elif tc.scene_p:
            scenes += [load_image(r.image).resize(_fit(r.image, long_side), Image.Resampling.BILINEAR)
                       for r in labelled_rows(spec.path, min_agreement=0.0)]
    log.info(logkv(event="train_data", train=",".join(map(str, sizes)), weights=",".join(map(str, weights)),
                   val=len(val_rows), ood=len(ood_rows), teach=len(teach_rows), scenes=len(scenes), size=tc.size))
    return TrainData(pairs, primary, sizes, weights, val_rows, ood_rows, teach_rows, scenes)


def _loader(workers: int):
    """load_pair over many rows, in `workers` threads (decoding and resizing release the GIL)."""
    def load(rows: list, long_side: int, soft: bool = False) -> list:
        if workers <= 1:
            return [load_pair(r, long_side=long_side, soft=soft) for r in rows]
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(workers) as pool:
            return list(pool.map(lambda r: load_pair(r, long_side=long_side, soft=soft), rows))
    return load


def _fit(path: Path, long_side: int) -> tuple[int, int]:
    with Image.open(path) as im:
        w, h = im.size
    scale = min(1.0, long_side / max(w, h))
    return max(1, round(w * scale)), max(1, round(h * scale))


# The MODNet matting MobileNetV2 expects mean = std = 0.5, not ImageNet's (shared weights README).
NORMS = {"imagenet": (IMAGENET_MEAN, IMAGENET_STD), "half": ((0.5, 0.5, 0.5), (0.5, 0.5, 0.5))}


def build_for_training(tc: TrainConfig) -> tuple[nn.Module, ModelConfig]:
    """A fresh model (ImageNet encoder from a file, or smp's download) or a model folder's weights."""
    if tc.init:
        model, init_cfg = load_model_dir(tc.init)
        cfg = ModelConfig.from_dict({**init_cfg.to_dict(), "size": tc.size, "meta": {}})
    else:
        cfg = ModelConfig.for_encoder(tc.encoder, arch=tc.arch, decoder_channels=tuple(tc.decoder_channels),
                                      size=tc.size)
        if tc.norm:  # weights trained with another input convention than the encoder's usual one
            from dataclasses import replace

            mean, std = NORMS[tc.norm]
            cfg = replace(cfg, mean=mean, std=std)
        online = tc.encoder_weights == "imagenet"
        model = build_model(cfg, encoder_weights="imagenet" if online else None)
        if tc.encoder_weights and not online:
            load_encoder_weights(model, tc.encoder_weights)
    model.train()
    if tc.channels_last:
        model = model.to(memory_format=torch.channels_last)
    return model, cfg


def validate(model: nn.Module, cfg: ModelConfig, data: TrainData) -> dict:
    """Val mean IoU, the OOD check's when there is one, and the score that picks the best epoch (their mean)."""
    from humanseg.ml.evaluate import evaluate_pairs

    record = {"val_miou": evaluate_pairs(model, cfg, data.val_rows)["mean_iou"]}
    if data.ood_rows:
        record["ood_miou"] = evaluate_pairs(model, cfg, data.ood_rows)["mean_iou"]
    if data.teach_rows:  # reported, not selected on: the teachers are not ground truth
        record["teach_miou"] = evaluate_pairs(model, cfg, data.teach_rows)["mean_iou"]
    record["score"] = float(np.mean([record["val_miou"], record.get("ood_miou", record["val_miou"])]))
    return record


class Run:
    """Model, EMA, optimiser, schedule and state of one training run; saves and resumes itself."""

    def __init__(self, tc: TrainConfig, model: nn.Module, steps_per_epoch: int):
        self.tc, self.model = tc, model
        self.ema = Ema(model, tc.ema_decay)
        self.opt = torch.optim.AdamW(model.parameters(), lr=tc.lr, weight_decay=tc.weight_decay)
        self.steps_per_epoch, self.epochs = steps_per_epoch, tc.epochs
        warmup = max(1, int(tc.warmup_epochs * steps_per_epoch))
        self.sched = torch.optim.lr_scheduler.LambdaLR(
            self.opt, lambda s: lr_factor(s, self.steps_per_epoch * self.epochs, warmup))
        self.rng = random.Random(tc.seed)
        self.state: dict[str, Any] = {"epoch": 0, "step": 0, "best_iou": -1.0, "best_score": -1.0,
                                      "history": [], "seconds": 0.0}
        self.last = tc.out / "last.pt"

    def resume(self) -> None:
        ckpt = torch.load(self.last, map_location="cpu", weights_only=False)
        self.model.load_state_dict(ckpt["model"])
        self.ema.model.load_state_dict(ckpt["ema"])
        self.opt.load_state_dict(ckpt["opt"])
        self.sched.load_state_dict(ckpt["sched"])
        self.state = {"best_score": ckpt["state"].get("best_iou", -1.0), **ckpt["state"]}
        if self.tc.time_budget:  # the budget fixed the epochs after the first one: keep that schedule
            self.epochs = self.state.get("epochs", self.epochs)
        self.rng.setstate(ckpt["py_rng"])
        torch.set_rng_state(ckpt["torch_rng"])
        log.info(logkv(event="train_resumed", epoch=self.state["epoch"], step=self.state["step"],
                       best=f"{self.state['best_iou']:.4f}"))

    def save_last(self) -> None:
        torch.save({"model": self.model.state_dict(), "ema": self.ema.model.state_dict(), "opt": self.opt.state_dict(),
                    "sched": self.sched.state_dict(), "state": self.state, "py_rng": self.rng.getstate(),
                    "torch_rng": torch.get_rng_state()}, self.last)

    def step(self, x: torch.Tensor, y: torch.Tensor, loss_fn) -> float:
        x, y = x.to(self.tc.device, non_blocking=True), y.to(self.tc.device, non_blocking=True)
        if self.tc.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=self.tc.device.startswith("cuda")):
            logits = self.model(x)
        loss = loss_fn(logits.float(), y)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()
        self.sched.step()
        self.state["step"] += 1
        self.ema.update(self.model, self.state["step"])
        return loss.item()

    def done(self) -> bool:
        return bool(self.tc.max_steps) and self.state["step"] >= self.tc.max_steps


def train(tc: TrainConfig) -> dict:
    """Train, validating each `val_every` epochs; keeps best/ (by val mean IoU, averaged with the OOD check's),
    final/ (the last EMA weights) and last.pt (to resume)."""
    if tc.threads:
        torch.set_num_threads(tc.threads)
    torch.backends.cudnn.benchmark = tc.device.startswith("cuda")  # fixed input size: pick the fastest kernels
    seed_everything(tc.seed)
    tc.out.mkdir(parents=True, exist_ok=True)
    data = prepare_data(tc)
    model, cfg = build_for_training(tc)
    model.to(tc.device)
    samples = tc.epoch_samples or data.sizes[0]  # default epoch: as many samples as the primary set
    steps_per_epoch = max(1, samples // tc.batch_size)
    run = Run(tc, model, steps_per_epoch)
    ds = SegDataset(data.train_pairs, Augmenter(tc.size, cfg.mean, train=True, rng=run.rng), cfg.mean, cfg.std,
                    paste_p=tc.paste_p, bystander_p=tc.bystander_p, people=data.people, scenes=data.scenes,
                    scene_p=tc.scene_p)
    if tc.resume and run.last.is_file():
        run.resume()
    loss_fn = LOSSES[tc.loss]
    while run.state["epoch"] < run.epochs:
        epoch = run.state["epoch"]
        t0 = time.perf_counter()
        model.train()
        losses = []
        for x, y in _epoch_batches(ds, data, tc, steps_per_epoch, epoch):
            losses.append(run.step(x, y, loss_fn))
            if run.done():
                break
        run.state["epoch"] = epoch + 1
        record = {"epoch": epoch + 1, "loss": float(np.mean(losses)), "lr": run.sched.get_last_lr()[0]}
        if (epoch + 1) % tc.val_every == 0 or epoch + 1 >= run.epochs or run.done():
            record.update(validate(run.ema.model, cfg, data))
            if record["score"] > run.state["best_score"]:
                run.state.update(best_score=record["score"], best_iou=record["val_miou"], best_epoch=epoch + 1,
                                 best_ood_iou=record.get("ood_miou"))
                save_model_dir(run.ema.model, _with_meta(cfg, tc, run.state), tc.out / "best")
        run.state["seconds"] += time.perf_counter() - t0
        if tc.time_budget and epoch < 2:  # fit the schedule into the budget: guessed from the first epoch, then
            # refitted on the second (the first carries the start-up: loader processes, kernel autotuning; on the
            # GPU it took 62 s against 22 s for the next ones, and a budget of 400 s stopped after 221 s)
            run.epochs = fit_epochs(tc.time_budget, [r["seconds"] for r in run.state["history"]]
                                    + [run.state["seconds"]])
        run.state["epochs"] = run.epochs
        record["seconds"] = round(run.state["seconds"], 1)
        run.state["history"].append(record)
        log.info(logkv(event="epoch_done", epochs=run.epochs, **record))
        run.save_last()
        if run.done():
            break
    save_model_dir(run.ema.model, _with_meta(cfg, tc, run.state), tc.out / "final")
    (tc.out / "history.json").write_text(json.dumps(run.state, indent=2, default=str))
    return run.state


def fit_epochs(budget: float, elapsed: list[float]) -> int:
    """How many epochs fit into `budget` seconds, from the cumulative seconds after each epoch so far.

    The last epoch's own time sets the pace: after the first that is all there is, after the second it no
    longer counts the first epoch's start-up."""
    done = len(elapsed)
    per_epoch = elapsed[-1] - (elapsed[-2] if done > 1 else 0.0)
    return max(done, done + int((budget - elapsed[-1]) // max(per_epoch, 1e-9)))


def _epoch_batches(ds: SegDataset, data: TrainData, tc: TrainConfig, steps: int, epoch: int):
    """One epoch's batches, drawn by dataset weight; `tc.workers` processes augment them (each reseeded)."""
    gen = torch.Generator().manual_seed(tc.seed + epoch)
    order = weighted_order(data.sizes, data.weights, steps * tc.batch_size, gen)
    batches = [order[i : i + tc.batch_size] for i in range(0, len(order), tc.batch_size)]
    loader: torch.utils.data.DataLoader = torch.utils.data.DataLoader(
        ds,  # type: ignore[arg-type]  # a map-style dataset (__getitem__ + __len__), not a Dataset subclass
        batch_sampler=batches, num_workers=tc.workers, worker_init_fn=_reseed_worker,
        generator=torch.Generator().manual_seed(tc.seed * 1000 + epoch), pin_memory=tc.device.startswith("cuda"))
    return _progress(loader, f"epoch {epoch + 1}", tc.progress)


def _reseed_worker(worker_id: int) -> None:
    """Each loader process augments with its own random stream (they would all copy the parent's)."""
    info = torch.utils.data.get_worker_info()
    assert info is not None  # called in loader processes only
    dataset: Any = info.dataset
    dataset.aug.rng.seed(info.seed)


def _with_meta(cfg: ModelConfig, tc: TrainConfig, state: dict) -> ModelConfig:
    from dataclasses import replace

    meta = {"epoch": state.get("best_epoch", state["epoch"]), "val_mean_iou": state["best_iou"],
            "ood_mean_iou": state.get("best_ood_iou"), "train_seconds": round(state["seconds"], 1),
            "recipe": {k: _plain(v) for k, v in tc.__dict__.items()
                       if k not in ("data", "out", "progress")}}
    return replace(cfg, meta=meta)


def _plain(value):
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, tuple) and value and isinstance(value[0], DatasetSpec):  # names only: no local paths
        return [f"{spec.path.name}:{spec.weight}" for spec in value]
    return value


def _progress(items, desc: str, enabled: bool):
    if not enabled:
        return items
    from tqdm import tqdm

    return tqdm(items, desc=desc, leave=False, dynamic_ncols=True)
