"""Cut-outs carry no background: nothing under alpha 0, soft edges decontaminated (core.matte, render.compose)."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from humanseg.core.matte import decontaminated
from humanseg.core.render import compose, encode
from humanseg.core.variants import parse

PERSON = np.array([40.0, 170.0, 60.0])  # the subject's true colour, F


def scene(size: tuple[int, int] = (96, 72)) -> tuple[Image.Image, Image.Image, np.ndarray]:
    """(photo, alpha, a): a smooth red-to-blue background and a green disc with a soft rim of 6 px,
    photographed as C = a·F + (1 - a)·B, exactly as the compositing equation says."""
    w, h = size
    x = np.linspace(0.0, 1.0, w)[None, :, None]
    background = (1 - x) * np.array([230.0, 40.0, 30.0]) + x * np.array([30.0, 60.0, 220.0])
    background = np.broadcast_to(background, (h, w, 3))
    yy, xx = np.mgrid[0:h, 0:w]
    dist = np.hypot(xx - w / 2, yy - h / 2)
    a = np.clip((24.0 - dist) / 6.0, 0.0, 1.0)[..., None]  # 1 inside r=18, 0 beyond r=24
    photo = a * PERSON + (1 - a) * background
    return (Image.fromarray(np.round(photo).astype(np.uint8), "RGB"),
            Image.fromarray(np.round(a[..., 0] * 255).astype(np.uint8), "L"), a[..., 0])


def test_fully_transparent_pixels_carry_no_colour():
    photo, alpha, a = scene()
    cut = np.asarray(compose(photo, alpha, parse("cutout", []), None))
    assert (a == 0).sum() > 1000
    assert not cut[a == 0].any()  # (0, 0, 0, 0): the background is gone, not hidden
    inside = cut[a == 1]
    assert (inside[:, 3] == 255).all() and np.abs(inside[:, :3] - PERSON).max() <= 1  # the person as it was


def test_soft_edges_keep_the_person_colour_not_the_old_background():
    photo, alpha, a = scene()
    cut = np.asarray(decontaminated(photo, alpha)).astype(float)
    rim = (a >= 0.25) & (a < 1)
    assert rim.sum() > 200
    error = np.abs(cut[rim][:, :3] - PERSON).mean(axis=1)
    naive = np.abs(np.asarray(photo, float)[rim] - PERSON).mean(axis=1)
    assert naive.mean() > 25  # kept as photographed, the rim is part background
    assert error.mean() < 6 and np.percentile(error, 95) < 15, (error.mean(), np.percentile(error, 95))
    assert (cut[..., 3] == np.asarray(alpha)).all()  # the alpha itself is untouched


def test_over_a_colour_the_rim_blends_the_person_with_the_new_colour_only():
    photo, alpha, a = scene()
    white = np.asarray(compose(photo, alpha, parse("cutout", [("bg", "white")]), None)).astype(float)
    ideal = a[..., None] * PERSON + (1 - a[..., None]) * 255.0
    rim = (a > 0) & (a < 1)
    assert np.abs(white[rim] - ideal[rim]).mean() < 4
    assert (white[a == 0] == 255).all()


def test_a_photo_without_transparent_pixels_keeps_its_colours():
    photo, _, _ = scene()
    alpha = Image.new("L", photo.size, 200)
    cut = decontaminated(photo, alpha)
    assert np.array_equal(np.asarray(cut)[..., :3], np.asarray(photo))


@pytest.mark.parametrize("fmt", ["png", "webp"])
def test_the_encoded_cutout_has_no_hidden_photo(fmt):
    import io

    rng = np.random.default_rng(7)
    photo, alpha, a = scene((200, 150))
    noisy = np.asarray(photo).astype(int) + rng.integers(-30, 31, (150, 200, 3))  # a textured background
    photo = Image.fromarray(np.clip(noisy, 0, 255).astype(np.uint8), "RGB")
    made = encode(compose(photo, alpha, parse("cutout", [("format", fmt)]), None), fmt)
    with Image.open(io.BytesIO(made)) as back:
        assert not np.asarray(back.convert("RGBA"))[a == 0].any()
    if fmt == "png":  # PNG keeps what it is given: the whole photo, before (webp drops it itself)
        naive = photo.convert("RGBA")
        naive.putalpha(alpha)
        assert len(made) * 2 < len(encode(naive, fmt))


def test_local_segment_writes_the_same_cutout_as_the_server():
    from humanseg.ml.files import cutout  # `humanseg segment --outputs cutout`

    photo, alpha, a = scene()
    local = np.asarray(cutout(photo, alpha))
    assert not local[a == 0].any()
    assert np.array_equal(local, np.asarray(compose(photo, alpha, parse("cutout", []), None)))
