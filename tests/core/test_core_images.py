import io

import pytest
import support_images as si
from PIL import Image

from humanseg.core.errors import ImageError
from humanseg.core.images import Limits, load_oriented, orientation, readable_bytes, to_rgb, validate


@pytest.mark.parametrize("data,fmt,ctype", [
    (si.jpeg(), "JPEG", "image/jpeg"), (si.png(), "PNG", "image/png"),
    (si.webp(), "WEBP", "image/webp")])
def test_accepts_jpeg_png_webp(data, fmt, ctype):
    info = validate(data)
    assert (info.format, info.content_type, info.width, info.height) == (fmt, ctype, 96, 64)
    assert info.bytes == len(data)


@pytest.mark.parametrize("data,code", [
    (b"", "empty_file"),
    (si.text(), "unsupported_format"),
    (si.gif(), "unsupported_format"),
    (si.tiff(), "unsupported_format"),
    (si.eps(), "unsupported_format"),
    (si.truncated_jpeg(), "corrupt_image"),
    (b"\xff\xd8\xff\xe0garbage", "corrupt_image"),
    (si.png_bomb(), "too_many_pixels"),
])
def test_rejects_bad_input(data, code):
    with pytest.raises(ImageError) as err:
        validate(data)
    # core names the reason only; the HTTP status is the web tier's choice (web/uploads.py)
    assert err.value.code == code and not hasattr(err.value, "status")


def test_bomb_is_refused_from_the_header_even_past_pil_limit():
    with pytest.raises(ImageError) as err:
        validate(si.png_bomb(100_000, 100_000))
    assert err.value.code == "too_many_pixels"


@pytest.mark.parametrize("width,height,shown", [(20_000, 20_000, "400.0"), (65_535, 65_535, "4294.8"),
                                                (15_000, 15_000, "225.0")])
def test_a_bomb_is_refused_in_the_configured_limit_not_pils(width, height, shown):
    with pytest.raises(ImageError) as err:
        validate(si.png_bomb(width, height), Limits(max_pixels=40_000_000))
    assert err.value.code == "too_many_pixels"
    assert err.value.message.endswith(f"is {width}x{height} ({shown} megapixels); the limit is 40.0 megapixels") or \
        err.value.message == f"the image is {shown} megapixels; the limit is 40.0 megapixels", err.value.message
    assert "178956970" not in err.value.message and "bomb" not in err.value.message


def test_oversize_bytes():
    with pytest.raises(ImageError) as err:
        validate(si.jpeg((200, 200)), Limits(max_file_bytes=100))
    assert err.value.code == "file_too_large"


def test_exif_orientation_swaps_reported_size_and_load():
    data = si.exif_rotated_jpeg(stored=(80, 40), orientation=6)
    info = validate(data)
    assert (info.width, info.height) == (40, 80)
    img = load_oriented(data)
    assert img.size == (40, 80) and img.mode == "RGB"


@pytest.mark.parametrize("data", [
    si.png(mode="L"), si.png(mode="LA"), si.png(mode="RGBA"), si.png(mode="P"),
    si.png(mode="1"), si.cmyk_jpeg(), si.png16()])
def test_load_oriented_gives_8bit_rgb(data):
    validate(data)
    img = load_oriented(data)
    assert img.mode == "RGB"


def test_16bit_png_is_scaled_not_clipped():
    img = load_oriented(si.png16((48, 32)))
    lo, hi = img.convert("L").getextrema()
    assert lo == 0 and hi >= 250
    # mid-grey stays mid-grey rather than saturating at 255
    assert 100 < img.getpixel((24, 16))[0] < 160


def test_rgba_is_composited_on_white():
    img = Image.new("RGBA", (4, 4), (0, 0, 0, 0))
    out = load_oriented(si.encode(img, "PNG"))
    assert out.getpixel((0, 0)) == (255, 255, 255)


# --- to_rgb: the one conversion used by upload checks, the worker and ml ---------------------

SIXTEEN = [0, 128, 129, 257, 32767, 32768, 32896, 65278, 65535]


def _row(mode: str, values) -> Image.Image:
    import numpy as np

    dtype = {"I;16": np.uint16, "I": np.int32, "F": np.float32}[mode]
    img = Image.fromarray(np.array([values], dtype=dtype))
    assert img.mode == mode
    return img


@pytest.mark.parametrize("mode", ["I;16", "I"])
def test_16bit_samples_map_to_the_nearest_8bit_level(mode):
    out = to_rgb(_row(mode, SIXTEEN))
    assert out.mode == "RGB"
    # v -> round(v * 255 / 65535) = round(v / 257): black and white stay exact, nothing clips
    assert [out.getpixel((x, 0))[0] for x in range(len(SIXTEEN))] == [0, 0, 1, 1, 127, 128, 128, 254, 255]


def test_float_samples_in_unit_range_are_scaled_others_clipped():
    unit = to_rgb(_row("F", [0.0, 0.5, 1.0]))
    assert [unit.getpixel((x, 0))[0] for x in range(3)] == [0, 128, 255]
    wide = to_rgb(_row("F", [-5.0, 2.0, 200.6, 300.0]))
    assert [wide.getpixel((x, 0))[0] for x in range(4)] == [0, 2, 201, 255]


def test_16bit_png_file_and_in_memory_image_agree():
    data = si.png16((48, 32))
    with Image.open(io.BytesIO(data)) as raw:
        raw.load()
        direct = to_rgb(raw)
    assert load_oriented(data).tobytes() == direct.tobytes()


def test_ml_reads_images_with_the_same_functions():
    from humanseg.ml import imageio

    assert imageio.to_rgb is to_rgb and imageio.load_image is load_oriented


@pytest.mark.parametrize("turn", range(1, 9))
def test_upload_check_and_decoder_agree_on_orientation(turn):
    data = si.exif_rotated_jpeg(stored=(80, 40), orientation=turn)
    info = validate(data)
    img = load_oriented(data)
    assert img.size == (info.width, info.height)
    with Image.open(io.BytesIO(data)) as raw:
        assert orientation(raw) == turn
        raw.load()
        # a raw image handed straight to to_rgb (as the predictor gets it) is turned the same way
        assert to_rgb(raw).size == img.size
    # already upright: converting again changes nothing
    again = to_rgb(img)
    assert again.size == img.size and again.tobytes() == img.tobytes()


def test_load_oriented_reads_a_path_like_bytes(tmp_path):
    data = si.exif_rotated_jpeg(stored=(80, 40), orientation=6)
    (tmp_path / "r.jpg").write_bytes(data)
    from_path = load_oriented(tmp_path / "r.jpg")
    assert from_path.size == (40, 80)
    assert from_path.tobytes() == load_oriented(data).tobytes()


def test_limits_are_stated_in_the_units_the_page_uses():
    assert [readable_bytes(n) for n in (512, 2048, 26214400, 27911918, 1 << 30)] == \
        ["512 bytes", "2 KB", "25 MB", "27 MB", "1 GB"]
    with pytest.raises(ImageError) as big:
        validate(si.jpeg((96, 64)), Limits(max_file_bytes=300))
    assert "the limit is 300 bytes" in big.value.message and "the file is" in big.value.message
    with pytest.raises(ImageError) as many:
        validate(si.jpeg((3000, 2000)), Limits(max_pixels=1_000_000))
    assert many.value.message == "the image is 3000x2000 (6.0 megapixels); the limit is 1.0 megapixels"


@pytest.mark.parametrize("cut", [0.2, 0.5, 0.8, 0.97])
def test_a_large_jpeg_reports_its_full_size_and_any_truncation_is_caught(cut):
    """validate() decodes a JPEG at reduced scale (its DCT at 1/8): still every byte of the data is
    read, so a file cut anywhere is refused, and the size reported is the stored one, not the draft's."""
    data = si.jpeg((1600, 1200))
    info = validate(data)
    assert (info.width, info.height) == (1600, 1200)
    with pytest.raises(ImageError) as err:
        validate(data[: int(len(data) * cut)])
    assert err.value.code == "corrupt_image"


def test_a_large_exif_rotated_jpeg_reports_its_upright_size():
    info = validate(si.exif_rotated_jpeg(stored=(1600, 800)))
    assert (info.width, info.height) == (800, 1600)
