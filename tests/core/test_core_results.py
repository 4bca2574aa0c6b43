"""core/results.py: the one table of result kinds."""

import subprocess
import sys

from humanseg.core.models import new_id
from humanseg.core.results import (
    RESULTS,
    on_request_kinds,
    result_key,
    result_keys,
    result_kind,
    stored_kinds,
)


def test_names_and_files_are_unique_and_keys_follow_the_contract():
    names = [kind.name for kind in RESULTS]
    files = [kind.filename for kind in RESULTS]
    assert len(set(names)) == len(names) and len(set(files)) == len(files)
    assert "original" not in names  # that URL serves the upload
    job_id = new_id()
    assert result_keys(job_id) == {k.name: f"results/{job_id}/{k.filename}" for k in RESULTS}
    assert result_key(job_id, "mask") == f"results/{job_id}/mask.png"
    assert result_kind("mask").suffix == ".png" and result_kind("overlay").format_label == "JPEG"
    assert result_kind("cutout").has_alpha and not result_kind("mask").has_alpha
    assert result_kind("nope") is None
    # every job gets mask, alpha and thumbnail from the worker; cut-outs and overlays on request
    assert [k.name for k in stored_kinds()] == ["mask", "alpha", "thumb"]
    assert [k.name for k in on_request_kinds()] == ["cutout", "overlay"]
    assert result_kind("alpha").mode == "L" and result_kind("alpha").full_size


def test_the_table_is_light_to_import():
    """The web tier reads the table and checks options before loading anything: no PIL, no worker code."""
    code = ("import sys, humanseg.core.results, humanseg.core.variants; "
            "print(sorted(m for m in sys.modules if m == 'PIL' or m.startswith('humanseg.worker')"
            " or m == 'torch'))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
