import json
import math

import numpy as np
import torch
from PIL import Image

from humanseg.ml.cli import main as ml_main
from humanseg.ml.predictor import load_predictor
from humanseg.ml.train import TrainConfig, lovasz_hinge, lr_factor, train


def _tiny_train_config(dataset_dir, out, **kw):
    return TrainConfig(data=dataset_dir, out=out, decoder_channels=(16, 8, 8, 8, 8), size=64,
                       batch_size=4, progress=False, **kw)


def test_lr_schedule_warms_up_then_decays():
    assert lr_factor(0, 100, 10) < lr_factor(9, 100, 10) == 1.0
    assert lr_factor(50, 100, 10) < 1.0
    assert math.isclose(lr_factor(100, 100, 10), 0.01)


def _iou(logits, target):
    pred = logits > 0
    return ((pred & target).sum() / (pred | target).sum()).item()


def test_lovasz_hinge_is_zero_for_confident_correct_logits_and_tracks_iou():
    target = torch.zeros(1, 1, 8, 8, dtype=torch.bool)
    target[..., 2:6, 2:6] = True
    perfect = torch.where(target, 3.0, -3.0)
    assert lovasz_hinge(perfect, target.float()).item() == 0.0
    # Growing the false positive region lowers the IoU and must raise the loss.
    losses, ious = [], []
    for extra in (1, 2, 3):
        logits = perfect.clone()
        logits[..., 2:6, 6 : 6 + extra] = 3.0
        losses.append(lovasz_hinge(logits, target.float()).item())
        ious.append(_iou(logits, target))
    assert losses == sorted(losses) and ious == sorted(ious, reverse=True) and losses[0] > 0
    # It is a per-image mean: an empty target with a wrong prediction costs as much in a batch as alone.
    empty = torch.zeros(1, 1, 8, 8)
    wrong = torch.full((1, 1, 8, 8), 1.0)
    both = lovasz_hinge(torch.cat([perfect, wrong]), torch.cat([target.float(), empty]))
    assert torch.isclose(both, lovasz_hinge(wrong, empty) / 2)


def test_second_stage_starts_from_a_model_folder_at_a_new_size(dataset_dir, tmp_path):
    first = tmp_path / "first"
    train(_tiny_train_config(dataset_dir, first, epochs=1))
    second = tmp_path / "second"
    # The encoder and decoder arguments are ignored: the first stage's config fixes the architecture.
    state = train(TrainConfig(data=dataset_dir, out=second, init=str(first / "best"), size=96, epochs=1,
                              batch_size=4, loss="bce_lovasz", progress=False))
    assert np.isfinite(state["history"][0]["loss"])
    cfg = json.loads((second / "best" / "config.json").read_text())
    assert cfg["size"] == 96 and cfg["decoder_channels"] == [16, 8, 8, 8, 8]
    assert cfg["meta"]["recipe"]["init"] == str(first / "best") and cfg["meta"]["recipe"]["loss"] == "bce_lovasz"
    predictor = load_predictor(second / "best", backend="torch", device="cpu")
    assert predictor.predict(Image.new("RGB", (40, 30))).size == (40, 30)


def test_smoke_training_writes_a_loadable_best_checkpoint_and_resumes(dataset_dir, tmp_path):
    out = tmp_path / "run"
    state = train(_tiny_train_config(dataset_dir, out, epochs=1))
    assert state["epoch"] == 1 and np.isfinite(state["history"][0]["loss"])
    assert 0.0 <= state["best_iou"] <= 1.0
    cfg = json.loads((out / "best" / "config.json").read_text())
    assert cfg["meta"]["epoch"] == 1 and cfg["size"] == 64
    # Resuming continues from last.pt instead of starting over.
    state2 = train(_tiny_train_config(dataset_dir, out, epochs=2, resume=True))
    assert [h["epoch"] for h in state2["history"]] == [1, 2]
    assert state2["step"] == 2 * state["step"]
    predictor = load_predictor(out / "best", backend="torch", device="cpu")
    assert predictor.predict(Image.new("RGB", (33, 21))).size == (33, 21)


def test_training_is_seeded(dataset_dir, tmp_path):
    a = train(_tiny_train_config(dataset_dir, tmp_path / "a", epochs=1, max_steps=2))
    b = train(_tiny_train_config(dataset_dir, tmp_path / "b", epochs=1, max_steps=2))
    assert a["history"][0]["loss"] == b["history"][0]["loss"]


def test_cli_train_evaluate_segment(dataset_dir, tmp_path, capsys):
    out = tmp_path / "cli-run"
    assert ml_main(["train", "--data", str(dataset_dir), "--out", str(out), "--epochs", "1", "--size", "64",
                    "--decoder-channels", "16,8,8,8,8", "--batch-size", "4", "--no-progress"]) == 0
    assert (out / "best" / "model.onnx").is_file()
    report = tmp_path / "eval.json"
    assert ml_main(["evaluate", "--data", str(dataset_dir), "--checkpoint", str(out / "best"),
                    "--split", "val", "all", "--json", str(report)]) == 0
    printed = capsys.readouterr().out
    assert "mIoU" in printed and "val" in printed
    results = json.loads(report.read_text())
    assert results["val"]["images"] == 2 and results["all"]["images"] == 10
    assert 0.0 <= results["all"]["mean_iou"] <= 1.0
    images = sorted((dataset_dir / "Training_Images").glob("*.jpg"))[:2]
    masks = tmp_path / "masks"
    assert ml_main(["segment", *map(str, images), "--out", str(masks), "--checkpoint", str(out / "best")]) == 0
    for image in images:
        with Image.open(image) as im, Image.open(masks / f"{image.stem}.cutout.png") as m:
            assert m.size == im.size and m.mode == "RGBA"  # the cut-out by default


def test_cli_segment_reports_unreadable_files_and_continues(tiny_model_dir, tmp_path, capsys):
    good = tmp_path / "good.png"
    Image.new("RGB", (20, 10)).save(good)
    bad = tmp_path / "bad.jpg"
    bad.write_text("not an image")
    rc = ml_main(["segment", str(bad), str(good), "--out", str(tmp_path / "o"), "--checkpoint", str(tiny_model_dir)])
    assert rc == 1
    err = capsys.readouterr().err
    assert "bad.jpg: error: not a JPEG, PNG, WebP" in err and "cannot identify" not in err
    assert (tmp_path / "o" / "good.cutout.png").is_file()


def test_cli_segment_keeps_two_folders_apart_and_refuses_clashing_names(tiny_model_dir, tmp_path, capsys):
    for folder in ("mon", "tue"):
        (tmp_path / folder).mkdir()
        Image.new("RGB", (20, 10)).save(tmp_path / folder / "a.jpg")
    out = tmp_path / "out"
    args = ["--out", str(out), "--checkpoint", str(tiny_model_dir), "--no-progress"]
    assert ml_main(["segment", str(tmp_path / "mon"), str(tmp_path / "tue"), *args]) == 0
    assert (out / "mon" / "a.cutout.png").is_file() and (out / "tue" / "a.cutout.png").is_file()
    capsys.readouterr()
    # Two files of the same stem given directly would write one a.png: refused before anything runs.
    Image.new("RGB", (20, 10)).save(tmp_path / "a.png")
    clash = tmp_path / "clash"
    assert ml_main(["segment", str(tmp_path / "mon" / "a.jpg"), str(tmp_path / "a.png"), "--out", str(clash),
                    "--checkpoint", str(tiny_model_dir)]) == 2
    assert "would write the same results" in capsys.readouterr().err and not clash.exists()


def test_cli_segment_walks_folders_and_writes_every_output(tiny_model_dir, tmp_path, capsys):
    src = tmp_path / "photos"
    (src / "day2").mkdir(parents=True)
    for name, size in (("a.jpg", (40, 30)), ("day2/a.png", (25, 50))):
        Image.new("RGB", size, (120, 80, 40)).save(src / name)
    (src / "notes.txt").write_text("not an image, skipped by the folder walk")
    out = tmp_path / "out"
    rc = ml_main(["segment", str(src), "--out", str(out), "--checkpoint", str(tiny_model_dir),
                  "--outputs", "mask,alpha,cutout"])
    assert rc == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert len(lines) == 2  # same stem in two folders: both kept, mirrored under out/
    for rel, size in (("a", (40, 30)), ("day2/a", (25, 50))):
        with Image.open(out / f"{rel}.mask.png") as m, Image.open(out / f"{rel}.alpha.png") as a, \
                Image.open(out / f"{rel}.cutout.png") as c:
            assert m.size == a.size == c.size == size
            assert (m.mode, a.mode, c.mode) == ("L", "L", "RGBA")
            assert np.array_equal(np.asarray(c)[..., 3], np.asarray(a))


def test_cli_segment_rejects_an_unknown_output_before_loading_the_model(tmp_path, capsys):
    img = tmp_path / "x.png"
    Image.new("RGB", (8, 8)).save(img)
    no_model = tmp_path / "no-model"  # loading it would fail: the refusal comes first
    argv = ["segment", str(img), "--out", str(tmp_path), "--checkpoint", str(no_model), "--outputs", "gif"]
    assert ml_main(argv) == 2
    assert "--outputs takes cutout, mask, alpha" in capsys.readouterr().err


def test_segment_runs_on_onnx_runtime_without_importing_torch(tiny_model_dir, tmp_path):
    import subprocess
    import sys

    Image.new("RGB", (48, 40), (90, 120, 150)).save(tmp_path / "one.jpg")
    code = ("import sys\nfrom humanseg.cli import main\n"
            f"rc = main(['segment', {str(tmp_path / 'one.jpg')!r}, '--out', {str(tmp_path / 'out')!r}, "
            f"'--checkpoint', {str(tiny_model_dir)!r}, '--backend', 'onnx', '--no-progress'])\n"
            "assert rc == 0, rc\nassert 'torch' not in sys.modules, 'segment imported torch'\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    with Image.open(tmp_path / "out" / "one.cutout.png") as cut:
        assert cut.size == (48, 40) and cut.mode == "RGBA"


def test_norm_overrides_the_encoders_input_normalisation():
    from pathlib import Path

    from humanseg.ml.train import build_for_training

    common = {"data": Path("."), "out": Path("unused"), "encoder": "mobilenet_v2", "decoder_channels": (16, 8, 8, 8, 8)}
    _, usual = build_for_training(TrainConfig(**common))
    _, half = build_for_training(TrainConfig(**common, norm="half"))
    assert usual.mean == (0.485, 0.456, 0.406) and half.mean == half.std == (0.5, 0.5, 0.5)


def test_loader_processes_and_a_time_budget_fix_the_schedule(dataset_dir, tmp_path):
    out = tmp_path / "run"
    # A budget far below one epoch's time leaves a one-epoch schedule, whatever --epochs says.
    state = train(_tiny_train_config(dataset_dir, out, epochs=50, workers=2, epoch_samples=8, time_budget=0.001))
    assert state["epoch"] == 1 and state["epochs"] == 1 and state["step"] == 2
    assert np.isfinite(state["history"][0]["loss"]) and "val_miou" in state["history"][0]
    assert (out / "final" / "config.json").is_file() and (out / "best" / "config.json").is_file()
    # Resuming a budgeted run keeps the schedule the budget chose.
    again = train(_tiny_train_config(dataset_dir, out, epochs=50, workers=2, epoch_samples=8, time_budget=0.001,
                                     resume=True))
    assert again["epoch"] == 1 and again["step"] == 2


def test_loader_processes_draw_different_augmentations(dataset_dir, tmp_path):
    from humanseg.ml.data import Augmenter, SegDataset, load_pair, read_dataset
    from humanseg.ml.train import _reseed_worker

    pair = load_pair(read_dataset(dataset_dir)[0])
    ds = SegDataset([pair], Augmenter(64, (0.5,) * 3, train=True), (0.5,) * 3, (0.5,) * 3)
    loader = torch.utils.data.DataLoader(ds, batch_sampler=[[0], [0], [0], [0]], num_workers=2,
                                         worker_init_fn=_reseed_worker)
    first, second, *_ = [x for x, _ in loader]  # one batch from each process
    assert not torch.equal(first, second)


def test_a_time_budget_is_refitted_on_the_second_epoch():
    from humanseg.ml.train import fit_epochs

    # The device run: 62.5 s for the first epoch (loader start-up, autotuning), 23.1 s for the second.
    assert fit_epochs(400, [62.5]) == 6  # the first guess undershoots ...
    assert fit_epochs(400, [62.5, 85.6]) == 15  # ... the second epoch's pace fills the budget
    assert fit_epochs(10, [62.5]) == 1 and fit_epochs(70, [62.5, 85.6]) == 2  # never fewer than done
