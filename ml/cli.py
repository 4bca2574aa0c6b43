"""`humanseg train|evaluate|segment|export`: the ML commands (argparse, dispatched lazily)."""
from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="humanseg", description="humanseg model commands")
    sub = p.add_subparsers(dest="command", required=True)

    t = sub.add_parser("train", help="train the U-Net on train.csv + images + masks")
    t.add_argument("--data", required=True, type=Path, help="dataset folder holding train.csv")
    t.add_argument("--out", type=Path, default=Path("runs/unet"), help="run folder (checkpoints, history)")
    t.add_argument("--encoder", default="timm-tf_efficientnet_lite0")
    t.add_argument("--encoder-weights", default=None,
                   help="'imagenet' (smp download, needs internet) or a local encoder .pth file")
    t.add_argument("--arch", default="Unet")
    t.add_argument("--decoder-channels", default="64,48,32,16,8")
    t.add_argument("--size", type=int, default=256, help="training/serving longest side in px")
    t.add_argument("--epochs", type=int, default=80)
    t.add_argument("--batch-size", type=int, default=8)
    t.add_argument("--lr", type=float, default=1e-3)
    t.add_argument("--seed", type=int, default=42)
    t.add_argument("--threads", type=int, default=0)
    t.add_argument("--max-steps", type=int, default=0, help="stop after N optimiser steps (smoke runs)")
    t.add_argument("--limit-rows", type=int, default=0, help="use only the first N rows (smoke runs)")
    t.add_argument("--resume", action="store_true", help="continue from OUT/last.pt")
    t.add_argument("--init", default=None,
                   help="start from a model folder (e.g. a first stage's best/); its config sets the architecture")
    t.add_argument("--loss", default="dice_bce", choices=["dice_bce", "bce_lovasz"])
    t.add_argument("--warmup-epochs", type=float, default=1.0)
    t.add_argument("--paste-p", type=float, default=0.0, help="copy-paste augmentation probability")
    t.add_argument("--no-progress", action="store_true")

    e = sub.add_parser("evaluate", help="score a checkpoint at the original mask resolution")
    e.add_argument("--data", required=True, type=Path)
    e.add_argument("--split", choices=["val", "train", "all"], nargs="+", default=["val", "all"])
    e.add_argument("--checkpoint", type=Path, default=None, help="model folder (default: shipped model)")
    e.add_argument("--backend", default="auto", choices=["auto", "onnx", "torch"])
    e.add_argument("--json", type=Path, default=Path("evaluation.json"), help="where to write the results")

    s = sub.add_parser("segment", help="write <stem>.png masks for images")
    s.add_argument("images", nargs="+", type=Path)
    s.add_argument("--out", type=Path, required=True)
    s.add_argument("--checkpoint", type=Path, default=None)
    s.add_argument("--backend", default="auto", choices=["auto", "onnx", "torch"])

    x = sub.add_parser("export", help="export model.onnx next to a checkpoint's safetensors")
    x.add_argument("--checkpoint", type=Path, required=True)
    return p


def main(argv: list[str] | None = None) -> int:
    """Entry point for the ML sub-commands."""
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    return {"train": _train, "evaluate": _evaluate, "segment": _segment, "export": _export}[args.command](args)


def _train(args) -> int:
    from ml.export import export_model_dir
    from ml.train import TrainConfig, train

    tc = TrainConfig(
        data=args.data, out=args.out, encoder=args.encoder, encoder_weights=args.encoder_weights, arch=args.arch,
        decoder_channels=tuple(int(c) for c in args.decoder_channels.split(",")), size=args.size,
        epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, seed=args.seed, threads=args.threads,
        max_steps=args.max_steps, limit_rows=args.limit_rows, resume=args.resume, progress=not args.no_progress,
        init=args.init, loss=args.loss, warmup_epochs=args.warmup_epochs, paste_p=args.paste_p,
    )
    state = train(tc)
    best = args.out / "best"
    export_model_dir(best)
    print(f"best val mean IoU {state['best_iou']:.4f} at epoch {state.get('best_epoch')}; model in {best}")
    return 0


def _evaluate(args) -> int:
    from ml.evaluate import evaluate_predictor, format_table, select_rows, write_json
    from ml.predictor import load_predictor

    predictor = load_predictor(args.checkpoint, backend=args.backend)
    results = {split: evaluate_predictor(predictor, select_rows(args.data, split), progress=True)
               for split in args.split}
    print(format_table(results))
    write_json(results, args.json)
    print(f"per-image results in {args.json}")
    return 0


def _segment(args) -> int:
    from ml.imageio import load_image
    from ml.predictor import load_predictor

    predictor = load_predictor(args.checkpoint, backend=args.backend)
    args.out.mkdir(parents=True, exist_ok=True)
    failed = 0
    for path in args.images:
        try:
            mask = predictor.predict(load_image(path))
        except (OSError, ValueError) as exc:  # one unreadable file must not stop the rest
            print(f"{path}: error: {exc}", file=sys.stderr)
            failed += 1
            continue
        target = args.out / f"{path.stem}.png"
        mask.save(target)
        print(json.dumps({"image": str(path), "mask": str(target), "size": list(mask.size)}))
    return 1 if failed else 0


def _export(args) -> int:
    from ml.export import export_model_dir

    print(export_model_dir(args.checkpoint))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
