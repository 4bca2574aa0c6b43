"""Rendering (core/render.py, shared by worker and web) against the result table, and what the worker writes."""

import io
from dataclasses import dataclass

import numpy as np
import pytest
import support_images as si
from PIL import Image

from humanseg.core.render import (
    Sources,
    load_photo,
    make,
    reducible,
    render,
    render_result,
    subject_box,
)
from humanseg.core.results import RESULTS, stored_kinds
from humanseg.core.variants import Margin, defaults, parse
from humanseg.worker.outputs import kinds_for, render_job


@dataclass
class Seg:
    mask: Image.Image
    alpha: Image.Image


def _seg(size, box=(10, 5, 20, 15)) -> Seg:
    """A soft square: alpha 255 inside `box`, 100 on a one-pixel rim, 0 elsewhere; mask = alpha >= 128."""
    alpha = np.zeros((size[1], size[0]), np.uint8)
    x0, y0, x1, y1 = box
    alpha[y0 - 1:y1 + 1, x0 - 1:x1 + 1] = 100
    alpha[y0:y1, x0:x1] = 255
    return Seg(Image.fromarray(np.where(alpha >= 128, 255, 0).astype(np.uint8), "L"),
               Image.fromarray(alpha, "L"))


def _decode(data: bytes) -> Image.Image:
    img = Image.open(io.BytesIO(data))
    img.load()
    return img


def test_every_kind_renders_as_the_table_says():
    """Each kind's plain result decodes to the table's content type and mode, at the right size."""
    image = si.person_like((300, 200))
    src = Sources(image=image, **vars(_seg(image.size)))
    for kind in RESULTS:
        img = _decode(render_result(kind.name, src))
        assert Image.MIME[img.format] == kind.content_type, kind.name
        assert img.mode == kind.mode, kind.name
        if kind.full_size:
            assert img.size == image.size, kind.name
        else:
            assert max(img.size) == 256 and img.size[0] > img.size[1], kind.name


def test_the_worker_writes_mask_alpha_and_thumb_unless_the_batch_chose_more():
    assert kinds_for() == [k.name for k in stored_kinds()] == ["mask", "alpha", "thumb"]
    assert kinds_for(["overlay"]) == ["mask", "alpha", "overlay", "thumb"]
    image = si.person_like((30, 20))
    seg = _seg(image.size)
    out = render_job(image, seg, ["cutout"])
    assert list(out) == ["mask", "alpha", "cutout", "thumb"]
    assert np.array_equal(np.asarray(_decode(out["mask"])), np.asarray(seg.mask))
    assert np.array_equal(np.asarray(_decode(out["alpha"])), np.asarray(seg.alpha))
    # the cut-out carries the soft alpha, not the binary mask
    assert np.array_equal(np.asarray(_decode(out["cutout"]).getchannel("A")), np.asarray(seg.alpha))


def test_the_worker_thumbnail_starts_from_a_whole_factor_reduction_and_looks_the_same():
    """The worker hands the photo over as reducible(): a 256 px thumbnail of a 1200 px photo is drawn
    from a 1/4 box reduction (never smaller than it needs), within a level or two of the full-size path;
    full-size results are drawn from the photo itself."""
    image = si.person_like((1200, 800))
    seg = _seg(image.size, box=(300, 100, 900, 700))
    asked = []
    loader = reducible(image)

    def spy(want):
        asked.append((want, loader(want).size))
        return loader(want)

    thumb = _decode(render_result("thumb", Sources(image=spy, alpha=seg.alpha, mask=seg.mask, size=image.size)))
    full = _decode(render_result("thumb", Sources(image=image, alpha=seg.alpha, mask=seg.mask)))
    (want, got), = asked
    assert got[0] >= want[0] and got[1] >= want[1] and got[0] < image.width // 2
    assert thumb.size == full.size and max(thumb.size) == 256
    diff = np.abs(np.asarray(thumb, np.int16) - np.asarray(full, np.int16))
    assert diff.mean() < 1.5 and np.percentile(diff, 99) <= 12
    assert loader(image.size) is image
    out = render_job(image, seg, ["overlay"])
    assert _decode(out["overlay"]).size == image.size


def test_background_colour_and_image_show_through_the_alpha():
    image = Image.new("RGB", (40, 30), (200, 100, 0))
    seg = _seg(image.size)
    red = make(parse("cutout", [("bg", "#ff0000")]), Sources(image=image, **vars(seg)))
    assert red.mode == "RGB"
    assert red.getpixel((0, 0)) == (255, 0, 0) and red.getpixel((15, 10)) == (200, 100, 0)
    rim = red.getpixel((9, 4))  # alpha 100: 100/255 of the photo over the red
    # within 2 levels: the colour goes through 8-bit premultiplied arithmetic (core.matte's decontamination)
    assert abs(rim[0] - (200 * 100 + 255 * 155) / 255) <= 2 and abs(rim[1] - 100 * 100 / 255) <= 2
    backdrop = Image.new("RGB", (400, 100), (0, 0, 250))
    opts = parse("cutout", [("bg", "image:" + "a" * 32)])
    over = make(opts, Sources(image=image, background=backdrop, **vars(seg)))
    assert over.size == image.size and over.getpixel((0, 0)) == (0, 0, 250)


def test_crop_keeps_the_subject_and_the_margin_within_the_photo():
    seg = _seg((100, 80), box=(30, 20, 50, 60))  # alpha > 0 on 29..50 x 19..60
    assert subject_box(seg.alpha, Margin()) == (29, 19, 51, 61)
    assert subject_box(seg.alpha, Margin(5)) == (24, 14, 56, 66)
    assert subject_box(seg.alpha, Margin(50, "pct")) == (8, 0, 72, 80)  # 21 px of a 42 px subject
    empty = Image.new("L", (10, 10), 0)
    assert subject_box(empty, Margin(5)) is None
    image = si.person_like((100, 80))
    cut = make(parse("cutout", [("crop", "true"), ("margin", "5px")]), Sources(image=image, **vars(seg)))
    assert cut.size == (32, 52)
    blank = Image.new("L", image.size, 0)
    nothing = make(parse("cutout", [("crop", "1")]), Sources(image=image, mask=blank, alpha=blank))
    assert nothing.size == (100, 80)  # no subject: the whole photo


@pytest.mark.parametrize("query,size", [
    ([("size", "50")], (50, 40)), ([("size", "40")], (40, 32)),
    ([("size", "1000")], (100, 80)),  # never enlarged
    ([("size", "21"), ("crop", "yes")], (11, 21)),  # the 22 x 42 subject
])
def test_size_is_the_longest_side(query, size):
    image = si.person_like((100, 80))
    src = Sources(image=image, **vars(_seg(image.size, box=(30, 20, 50, 60))))
    assert make(parse("cutout", query), src).size == size


def test_a_scaled_mask_stays_binary_and_formats_encode_as_asked():
    image = si.person_like((100, 80))
    src = Sources(image=image, **vars(_seg(image.size, box=(30, 20, 50, 60))))
    small = make(parse("mask", [("size", "33")]), src)
    assert set(np.unique(np.asarray(small))) == {0, 255}
    cases = [([("format", "webp")], "WEBP", "RGBA"), ([("format", "webp"), ("quality", "70")], "WEBP", "RGBA"),
             ([("bg", "ffffff"), ("format", "jpg")], "JPEG", "RGB"), ([], "PNG", "RGBA")]
    for query, fmt, mode in cases:
        img = _decode(render(parse("cutout", query), src))
        assert (img.format, img.mode) == (fmt, mode), query
    lossless = _decode(render(parse("cutout", [("format", "webp")]), src))
    assert np.array_equal(np.asarray(lossless.getchannel("A")), np.asarray(src.alpha))


def test_a_large_jpeg_is_decoded_at_reduced_scale_for_a_small_output():
    data = si.exif_rotated_jpeg(stored=(800, 400), orientation=6)  # shown 400 x 800
    assert load_photo(data).size == (400, 800)
    assert load_photo(data, want=(100, 200)).size == (100, 200)  # 1/4 scale, upright
    wanted = []

    def loader(want):
        wanted.append(want)
        return load_photo(data, want)

    seg = _seg((400, 800), box=(100, 100, 300, 700))
    out = make(parse("original", [("size", "100")]), Sources(image=loader, size=(400, 800)))
    assert out.size == (50, 100) and wanted == [(50, 100)]
    assert make(defaults("cutout"), Sources(image=loader, **vars(seg))).size == (400, 800)
