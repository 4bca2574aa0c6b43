import pytest
import support_images as si
from humanseg.core.errors import ImageError
from humanseg.core.images import Limits, load_oriented, validate
from PIL import Image


@pytest.mark.parametrize("data,fmt,ctype", [
    (si.jpeg(), "JPEG", "image/jpeg"), (si.png(), "PNG", "image/png"),
    (si.webp(), "WEBP", "image/webp")])
def test_accepts_jpeg_png_webp(data, fmt, ctype):
    info = validate(data, "x")
    assert (info.format, info.content_type, info.width, info.height) == (fmt, ctype, 96, 64)
    assert info.bytes == len(data)


@pytest.mark.parametrize("data,code,status", [
    (b"", "empty_file", 400),
    (si.text(), "unsupported_format", 415),
    (si.gif(), "unsupported_format", 415),
    (si.tiff(), "unsupported_format", 415),
    (si.eps(), "unsupported_format", 415),
    (si.truncated_jpeg(), "corrupt_image", 400),
    (b"\xff\xd8\xff\xe0garbage", "corrupt_image", 400),
    (si.png_bomb(), "too_many_pixels", 413),
])
def test_rejects_bad_input(data, code, status):
    with pytest.raises(ImageError) as err:
        validate(data, "f.jpg")
    assert (err.value.code, err.value.status) == (code, status)


def test_bomb_is_refused_from_the_header_even_past_pil_limit():
    with pytest.raises(ImageError) as err:
        validate(si.png_bomb(100_000, 100_000), "bomb.png")
    assert err.value.code == "too_many_pixels"


def test_oversize_bytes():
    with pytest.raises(ImageError) as err:
        validate(si.jpeg((200, 200)), "big.jpg", Limits(max_file_bytes=100))
    assert (err.value.code, err.value.status) == ("file_too_large", 413)


def test_exif_orientation_swaps_reported_size_and_load():
    data = si.exif_rotated_jpeg(stored=(80, 40), orientation=6)
    info = validate(data, "r.jpg")
    assert (info.width, info.height) == (40, 80)
    img = load_oriented(data)
    assert img.size == (40, 80) and img.mode == "RGB"


@pytest.mark.parametrize("data", [
    si.png(mode="L"), si.png(mode="LA"), si.png(mode="RGBA"), si.png(mode="P"),
    si.png(mode="1"), si.cmyk_jpeg(), si.png16()])
def test_load_oriented_gives_8bit_rgb(data):
    validate(data, "m")
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
