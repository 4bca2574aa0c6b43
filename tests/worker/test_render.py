"""worker/render.py against the result table in core/results.py."""

import io

import numpy as np
import support_images as si
from humanseg.core.results import RESULTS
from humanseg.worker.render import RENDERERS, render_all
from PIL import Image


def _mask(size):
    arr = np.zeros((size[1], size[0]), np.uint8)
    arr[5:15, 10:20] = 255
    return Image.fromarray(arr, "L")


def test_every_kind_has_exactly_one_renderer():
    assert set(RENDERERS) == {kind.name for kind in RESULTS}


def test_render_all_matches_the_table():
    """Each rendered result decodes to the table's content type and mode, at the right size."""
    image = si.person_like((300, 200))
    out = render_all(image, _mask(image.size))
    assert list(out) == [kind.name for kind in RESULTS]
    for kind in RESULTS:
        with Image.open(io.BytesIO(out[kind.name])) as img:
            assert Image.MIME[img.format] == kind.content_type, kind.name
            assert img.mode == kind.mode, kind.name
            if kind.full_size:
                assert img.size == image.size, kind.name
            else:
                assert max(img.size) <= 256 and img.size[0] > img.size[1], kind.name


def test_mask_and_cutout_carry_the_mask():
    image = si.person_like((30, 20))
    mask = _mask(image.size)
    out = render_all(image, mask)
    with Image.open(io.BytesIO(out["mask"])) as stored:
        assert np.array_equal(np.asarray(stored), np.asarray(mask))
    with Image.open(io.BytesIO(out["cutout"])) as cut:
        assert np.array_equal(np.asarray(cut.getchannel("A")), np.asarray(mask))
