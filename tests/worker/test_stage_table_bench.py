"""bench/stage_table.py runs the worker's real path and prints every stage (no timings asserted)."""

import re

import stage_table
from PIL import Image


def test_stage_table_prints_every_stage_and_the_round_trips(tmp_path, tiny_model_dir, redis_url, capsys):
    photos = tmp_path / "photos"
    photos.mkdir()
    for i, size in enumerate([(120, 90), (64, 96)]):
        Image.new("RGB", size, (40 * i, 120, 200)).save(photos / f"p{i}.jpg")
    assert stage_table.main(["--images", str(photos), "--n", "3", "--warmup", "1", "--model",
                             str(tiny_model_dir), "--backend", "onnx", "--broker", redis_url]) == 0
    out = capsys.readouterr().out
    rows = dict(re.findall(r"^(\w+) +([\d.]+) +[\d.]+%$", out, re.MULTILINE))
    assert set(rows) == set(stage_table.ORDER)  # one row per stage, each with its share
    assert float(rows["network"]) > 0 and float(rows["refine"]) >= 0
    assert "database round trips per job: 6.0" in out  # claim, ownership check, outcome
    assert out.count("load") >= 2 and "photos=3 (+1 warm-up)" in out
