"""core/variants.py: strict result options, one canonical name each, and `outputs=` at upload."""

import pytest

from humanseg.core.models import new_id
from humanseg.core.results import RESULTS, result_kind
from humanseg.core.variants import (
    ORIGINAL,
    OptionError,
    defaults,
    outputs_of,
    parse,
    parse_outputs,
)

JOB = new_id()


def key(kind, **query):
    return parse(kind, query.items()).key(JOB, f"originals/{JOB}.jpg")


def test_plain_options_name_the_plain_files():
    for kind in RESULTS:
        assert key(kind.name) == kind.key(JOB)
    # spelled-out defaults are still the plain file
    assert key("cutout", format="PNG", bg="transparent", size="full", crop="false") == f"results/{JOB}/cutout.png"
    assert key("overlay", format="jpg", quality="90") == f"results/{JOB}/overlay.jpg"
    assert key(ORIGINAL) == f"originals/{JOB}.jpg"


def test_equal_requests_share_one_canonical_variant():
    spellings = [{"bg": "#1E40AF", "format": "jpg", "size": "800", "crop": "1", "margin": "10%"},
                 {"bg": "1e40af", "format": "JPEG", "size": "800", "crop": "true", "margin": "10%",
                  "quality": "90"},
                 {"margin": "10%", "crop": "yes", "size": "800", "format": "jpeg", "bg": "#1e40af"}]
    keys = {key("cutout", **q) for q in spellings}
    assert keys == {f"results/{JOB}/variants/cutout_bg-1e40af_crop-m10pct_s800_q90.jpg"}
    assert key("cutout", format="webp") == f"results/{JOB}/variants/cutout.webp"  # lossless
    assert key("cutout", format="webp", quality="80", size="720").endswith("/variants/cutout_s720_q80.webp")
    assert key("cutout", bg=f"image:{JOB}", crop="on", margin="20px").endswith(
        f"/variants/cutout_bg-img-{JOB}_crop-m20px.png")
    assert key("cutout", crop="1", margin="0").endswith("/variants/cutout_crop.png")
    assert key("mask", size="512").endswith("/variants/mask_s512.png")
    assert key(ORIGINAL, size="720").endswith("/variants/original_s720_q90.jpg")


def test_every_canonical_name_is_a_valid_storage_key():
    from humanseg.core.storage import check_key

    for query in ({"bg": "#abcdef", "format": "webp", "quality": "1", "size": "16", "crop": "1",
                   "margin": "100%"}, {"bg": f"image:{JOB}", "format": "jpeg"}, {"size": "10000"}):
        check_key(key("cutout", **query))


@pytest.mark.parametrize("kind,query,parameter,words", [
    ("cutout", {"format": "jpeg"}, "format", "no transparency"),
    ("cutout", {"format": "gif"}, "format", "png, webp, jpeg"),
    ("mask", {"format": "jpeg"}, "format", "png, webp"),
    ("cutout", {"bg": "reddish"}, "bg", "#RRGGBB"),
    ("cutout", {"bg": "#12345"}, "bg", "#RRGGBB"),
    ("cutout", {"bg": "image:nope"}, "bg", "POST /api/v1/backgrounds"),
    ("overlay", {"bg": "#ffffff"}, "bg", "not an option of overlay"),
    ("thumb", {"size": "100"}, "size", "thumb takes no options"),
    ("cutout", {"quality": "80"}, "quality", "jpeg and webp only"),
    ("cutout", {"format": "webp", "quality": "0"}, "quality", "1 to 100"),
    ("cutout", {"format": "webp", "quality": "abc"}, "quality", "1 to 100"),
    ("cutout", {"size": "15"}, "size", "16 to 10000"),
    ("cutout", {"size": "-5"}, "size", "16 to 10000"),
    ("cutout", {"size": "10001"}, "size", "16 to 10000"),
    ("cutout", {"crop": "maybe"}, "crop", "true or false"),
    ("cutout", {"margin": "10"}, "margin", "only with crop=true"),
    ("cutout", {"crop": "1", "margin": "101%"}, "margin", "0% to 100%"),
    ("cutout", {"crop": "1", "margin": "2001px"}, "margin", "0 to 2000"),
    ("cutout", {"crop": "1", "margin": "1.5px"}, "margin", "pixels"),
    ("cutout", {"colour": "#fff"}, "colour", "unknown parameter"),
    ("cutout", {"size": ""}, "size", "empty"),
    (ORIGINAL, {"crop": "1"}, "crop", "not an option of original"),
])
def test_refused_options_name_the_parameter_and_the_reason(kind, query, parameter, words):
    with pytest.raises(OptionError) as caught:
        parse(kind, query.items())
    assert caught.value.parameter == parameter and words in caught.value.reason


def test_a_parameter_given_twice_is_refused():
    with pytest.raises(OptionError, match="given more than once"):
        parse("cutout", [("size", "100"), ("size", "200")])


def test_unknown_kinds_are_a_key_error():
    with pytest.raises(KeyError):
        parse("sparkles", [])


def test_what_each_variant_is_made_from():
    assert parse("cutout", []).sources == {"image", "alpha"}
    assert parse("mask", [("size", "64")]).sources == {"mask"}
    assert parse("mask", [("crop", "1")]).sources == {"mask", "alpha"}  # one crop box for every kind
    assert parse("cutout", [("bg", f"image:{JOB}")]).sources == {"image", "alpha", "background"}
    assert parse(ORIGINAL, [("size", "64")]).sources == {"image"}
    assert parse("cutout", [("bg", "000000"), ("format", "jpeg")]).content_type == "image/jpeg"
    assert defaults("overlay").content_type == result_kind("overlay").content_type


def test_outputs_at_upload():
    assert parse_outputs([]) is None and parse_outputs([""]) is None
    assert parse_outputs(["overlay, CUTOUT"]) == "cutout,overlay"
    assert parse_outputs(["cutout", "overlay", "cutout"]) == "cutout,overlay"
    assert parse_outputs(["mask,alpha"]) is None  # made for every job anyway
    with pytest.raises(OptionError) as caught:
        parse_outputs(["cutout,sparkles"])
    assert caught.value.parameter == "outputs" and "sparkles" in caught.value.reason
    assert outputs_of("cutout,overlay") == ("cutout", "overlay") and outputs_of(None) == ()


def test_named_colours_are_the_same_variant_as_their_hex():
    white = parse("cutout", [("bg", "White"), ("format", "jpeg")])
    assert white == parse("cutout", [("bg", "#ffffff"), ("format", "jpeg")]) and white.bg.value == "ffffff"
    with pytest.raises(OptionError, match="white"):  # the refusal lists the names it knows
        parse("cutout", [("bg", "whitish")])
