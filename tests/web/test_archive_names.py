"""Zip entry names every unzip tool can write: no Windows device names (CON, nul.x, COM1 ...)."""

from __future__ import annotations

import io
import zipfile

import pytest
from gallery_support import add_batch

from humanseg.web.archive import WINDOWS_RESERVED, zip_stem

RESERVED_UPLOADS = ["CON.png", "nul.jpg", "com1.webp", "LPT9.txt.jpg", "aux .jpg", "Prn",
                    "COM\u00b9.png", "conin$.jpg", "CON.png"]


def _stems(names: list[str], folder: str) -> list[str]:
    return [n[len(folder):].rsplit(".", 1)[0] for n in names if n.startswith(folder)]


def _device(stem: str) -> bool:
    return stem.split(".", 1)[0].rstrip(" ").upper() in WINDOWS_RESERVED


def test_archive_never_holds_a_windows_device_name(app, client):
    batch_id, _ = add_batch(app, [*RESERVED_UPLOADS, "console.jpg", "a.jpg"], name="CON")
    resp = client.get(f"/api/v1/batches/{batch_id}/archive")
    assert resp.status_code == 200
    assert 'filename="_CON.zip"' in resp.headers["Content-Disposition"]
    names = zipfile.ZipFile(io.BytesIO(resp.get_data())).namelist()
    for folder in ("masks/", "cutouts/"):
        stems = _stems(names, folder)
        assert len(stems) == len(RESERVED_UPLOADS) + 2
        assert not [s for s in stems if _device(s)], stems
        assert len({s.lower() for s in stems}) == len(stems)  # still unique
    assert "masks/console.png" in names and "masks/a.png" in names
    assert "masks/_CON.png" in names and "masks/_CON-2.png" in names


@pytest.mark.parametrize("name,stem", [("CON.png", "_CON"), ("nul.tar.gz", "_nul.tar.gz"),
                                       ("com0.jpg", "_com0"), ("LPT1 .jpg", "_LPT1"),
                                       ("connect.jpg", "connect"), ("COM10.jpg", "COM10"),
                                       ("", "image")])
def test_zip_stem(name, stem):
    assert zip_stem(name) == stem
