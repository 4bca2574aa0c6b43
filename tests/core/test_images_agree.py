"""Upload validation and the worker's decoder agree: what validate() accepts, load_oriented() turns
into an upright image of exactly the reported size (issue 10, finding 6)."""

import io
import struct
import zlib

import pytest
import support_images as si
from PIL import Image

from humanseg.core.errors import ImageError
from humanseg.core.images import load_oriented, validate

BAD_TIFF_HEADER = b"MN\x00*\x00\x00\x00\x08"  # neither II nor MM: PIL's EXIF reader raises
SHORT_TIFF = b"MM\x00*\x00\x00\x00"  # cut inside the first IFD offset
MAX_SIDE = 65_500  # the longest side a JPEG (the overlay) can have


def _exif_entry_ascii_orientation(value: bytes) -> bytes:
    # One IFD entry: tag 0x0112 (Orientation) typed ASCII (2) instead of SHORT (3).
    return struct.pack(">HHI", 0x0112, 2, len(value)) + value.ljust(4, b"\x00")


def _tiff(entries: list[bytes]) -> bytes:
    return b"MM\x00*\x00\x00\x00\x08" + struct.pack(">H", len(entries)) + b"".join(entries) + b"\x00" * 4


def jpeg_with_exif(tiff: bytes, size=(120, 80)) -> bytes:
    """A JPEG whose APP1 segment carries the given raw TIFF/EXIF bytes."""
    data = si.encode(si.person_like(size), "JPEG")
    payload = b"Exif\x00\x00" + tiff
    return data[:2] + b"\xff\xe1" + struct.pack(">H", len(payload) + 2) + payload + data[2:]


def png_with_exif(tiff: bytes, size=(120, 80)) -> bytes:
    """A PNG with an eXIf chunk of the given raw TIFF bytes (valid CRC, bad content)."""
    data = si.png(size)
    chunk = struct.pack(">I", len(tiff)) + b"eXIf" + tiff + struct.pack(">I", zlib.crc32(b"eXIf" + tiff))
    return data[:33] + chunk + data[33:]  # right after IHDR


def webp_with_exif(tiff: bytes, size=(120, 80)) -> bytes:
    return si.encode(si.person_like(size), "WEBP", exif=tiff)


@pytest.mark.parametrize("data", [
    png_with_exif(BAD_TIFF_HEADER), png_with_exif(SHORT_TIFF),
    webp_with_exif(BAD_TIFF_HEADER), webp_with_exif(SHORT_TIFF),
    jpeg_with_exif(BAD_TIFF_HEADER), jpeg_with_exif(SHORT_TIFF),
], ids=["png-header", "png-short", "webp-header", "webp-short", "jpeg-header", "jpeg-short"])
def test_malformed_exif_is_accepted_and_decoded_upright_as_is(data):
    from humanseg.ml.imageio import to_rgb as predictor_to_rgb

    info = validate(data)
    img = load_oriented(data)  # the worker's decoder
    assert (info.width, info.height) == img.size == (120, 80)
    with Image.open(io.BytesIO(data)) as raw:
        raw.load()
        # what the predictor does to the image it is handed: once an unguarded getexif() raised here
        assert predictor_to_rgb(raw).size == (120, 80)


def _exif_entry_orientation(tiff_type: int, value: int) -> bytes:
    # One IFD entry: Orientation as a LONG (4) or SSHORT (8), types the standard does not give it.
    packed = struct.pack(">I", value) if tiff_type == 4 else struct.pack(">hxx", value)
    return struct.pack(">HHI", 0x0112, tiff_type, 1) + packed


@pytest.mark.parametrize("entry", [
    _exif_entry_ascii_orientation(b"6\x00"), _exif_entry_ascii_orientation(b"8\x00"),
    _exif_entry_ascii_orientation(b"x\x00"), _exif_entry_orientation(4, 6), _exif_entry_orientation(8, 6),
], ids=["ascii-6", "ascii-8", "ascii-x", "long", "sshort"])
def test_orientation_not_stored_as_short_is_ignored_by_both_as_browsers_do(entry):
    data = jpeg_with_exif(_tiff([entry]))
    info = validate(data)
    img = load_oriented(data)
    assert (info.width, info.height) == img.size == (120, 80)  # the size the user sees
    assert abs(sum(img.convert("L").tobytes()) - sum(load_oriented(si.encode(si.person_like((120, 80)), "JPEG"))
                                                     .convert("L").tobytes())) / (120 * 80) < 8  # not turned


def test_orientation_stored_as_short_is_honoured():
    data = jpeg_with_exif(_tiff([struct.pack(">HHIHxx", 0x0112, 3, 1, 6)]))
    info = validate(data)
    assert (info.width, info.height) == load_oriented(data).size == (80, 120)


def _png(width: int, height: int) -> bytes:
    return si.blank_png((width, height))


@pytest.mark.parametrize("width,height", [(MAX_SIDE + 1, 1), (1, 70_000)])
def test_a_side_longer_than_jpeg_allows_is_refused_at_upload(width, height):
    with pytest.raises(ImageError) as err:
        validate(_png(width, height))
    assert err.value.code == "side_too_long"
    assert str(MAX_SIDE) in err.value.message


def test_the_longest_accepted_side_decodes():
    data = _png(MAX_SIDE, 1)
    info = validate(data)
    assert (info.width, info.height) == load_oriented(data).size == (MAX_SIDE, 1)


def test_validate_reads_a_spooled_file_without_taking_it_whole(tmp_path):
    data = si.exif_rotated_jpeg(stored=(80, 40), orientation=6)
    with open(tmp_path / "part", "w+b") as fh:
        fh.write(data)
        info = validate(fh)
        assert (info.width, info.height, info.bytes) == (40, 80, len(data))
        assert load_oriented(fh).size == (40, 80)
        assert not fh.closed  # the caller's file stays open for storing
