"""core/layout.py: every storage key in one place, each one read back the way it was made."""

import ast
from pathlib import Path

import pytest

from humanseg.core import layout
from humanseg.core.images import FORMATS
from humanseg.core.models import new_id
from humanseg.core.storage import check_key, check_prefix


@pytest.mark.parametrize("extension", sorted({ext for _, ext in FORMATS.values()}))
def test_an_originals_key_gives_back_the_job_id_it_was_made_from(extension):
    job_id = new_id()
    key = layout.original_key(job_id, extension)
    assert check_key(key).startswith(layout.ORIGINALS)  # the sweeper lists this prefix
    assert layout.job_id_of(key) == job_id


def test_job_keys_are_valid_and_all_under_the_jobs_prefix_whatever_the_model():
    job_id, other = new_id(), new_id()
    prefix = check_prefix(layout.results_prefix(job_id))
    for model in (None, "fast", "modnet"):
        keys = [layout.result_file_key(job_id, "mask.png", model),
                layout.variant_key(job_id, "cutout_s720_q80.webp", model)]
        assert all(check_key(k).startswith(prefix) for k in keys)  # deleting the job removes them
        assert not any(k.startswith(layout.results_prefix(other)) for k in keys)
        assert layout.results_prefix(job_id, model).endswith("/")


def test_two_models_never_share_a_key_and_no_model_keeps_the_layout_jobs_have():
    job_id = new_id()
    assert layout.result_file_key(job_id, "mask.png") == f"results/{job_id}/mask.png"
    assert layout.variant_key(job_id, "mask_s64.png") == f"results/{job_id}/variants/mask_s64.png"
    keys = {layout.result_file_key(job_id, "mask.png", m) for m in (None, "fast", "modnet")}
    keys |= {layout.variant_key(job_id, "mask_s64.png", m) for m in (None, "fast", "modnet")}
    assert len(keys) == 6
    # a model called like the variants folder still gets a folder of its own
    assert layout.variant_key(job_id, "x.png") != layout.result_file_key(job_id, "x.png", "variants")


def test_backgrounds_and_probes_have_prefixes_of_their_own():
    token = new_id()
    keys = [layout.background_key(token), layout.probe_key(token)]
    assert all(check_key(k) for k in keys)
    prefixes = (layout.ORIGINALS, layout.RESULTS, layout.BACKGROUNDS, layout.PROBES)
    # no prefix holds another's objects: listing originals never meets a result or a probe
    assert all(sum(k.startswith(p) for p in prefixes) == 1 for k in
               [*keys, layout.original_key(token, ".jpg"), layout.results_prefix(token)])


def test_layout_imports_nothing_of_ours():
    """Storage, results and both tiers build on it: an import of ours would make a cycle."""
    tree = ast.parse(Path(layout.__file__).read_text())
    imported = [alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names]
    imported += [node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)]
    assert imported == ["__future__"]
