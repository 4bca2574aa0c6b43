"""The copies that cannot import the one definition (the remote CLI, the pages' scripts) agree with it:
the result kinds of core/results.py, the accepted image files of core/images.py."""

import re
from pathlib import Path

from humanseg import remote
from humanseg.core.images import FORMATS, IMAGE_SUFFIXES
from humanseg.core.results import RESULTS, known_kind, on_request_kinds
from humanseg.ml import files

ROOT = Path(__file__).resolve().parents[2]


def test_the_remote_cli_offers_every_kind_named_as_the_table_says():
    assert {kind.name for kind in RESULTS} == set(remote.KINDS) == set(remote.SUFFIXES)
    for name, suffix in remote.SUFFIXES.items():  # <stem>[.<kind>]<the stored file's extension>
        assert suffix.endswith(known_kind(name).suffix) and suffix.count(".") <= 2, name
    assert len(set(remote.SUFFIXES.values())) == len(remote.SUFFIXES)  # no two kinds share a file
    assert {kind.name for kind in on_request_kinds()} == remote.MADE_BY_WORKER
    assert known_kind("cutout").options == remote.CUTOUT_OPTIONS


def test_the_local_cli_names_its_outputs_as_the_remote_cli_does():
    assert set(files.OUTPUTS) <= {kind.name for kind in RESULTS}
    assert {name: remote.SUFFIXES[name] for name in files.OUTPUTS} == files.OUTPUTS


def test_one_list_of_image_files():
    assert set(IMAGE_SUFFIXES) >= {ext for _, ext in FORMATS.values()}  # every accepted format's own
    assert set(IMAGE_SUFFIXES) == remote.IMAGE_SUFFIXES
    script = (ROOT / "web" / "static" / "upload.js").read_text()
    pattern = re.search(r"var ACCEPT = /(.+)/i;", script).group(1)
    picked = {s for s in (".jpg", ".jpeg", ".png", ".webp", ".gif", ".tif", ".bmp", ".heic", ".jpe")
              if re.search(pattern, f"photo{s}", re.IGNORECASE)}
    assert picked == set(IMAGE_SUFFIXES)


def test_folder_walkers_pick_only_the_accepted_files(tmp_path):
    from humanseg.ml.teach import find_images

    for name in ("a.jpg", "b.JPEG", "c.png", "d.webp", "e.bmp", "f.gif", "g.tif", "h.txt"):
        (tmp_path / name).write_bytes(b"")
    walked = [p.name for _, p in files.expand([tmp_path])]
    assert walked == ["a.jpg", "b.JPEG", "c.png", "d.webp"]
    assert [p.name for p in find_images(tmp_path)] == walked
