"""What the worker writes for a job: mask, alpha and thumbnail always, plus the batch's `outputs=`.

The images themselves come from core/render.py, the one renderer the web tier uses too for
results made on request; this module only picks which kinds a job gets.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol

from PIL import Image

from humanseg.core.render import Sources, reducible, render_result
from humanseg.core.results import RESULTS, stored_kinds


class Segmented(Protocol):
    """What the predictor's segment() returns (ml.predictor.Segmentation)."""

    mask: Image.Image  # 'L' 0/255
    alpha: Image.Image  # 'L' 0-255


def kinds_for(outputs: Iterable[str] = ()) -> list[str]:
    """Kind names the worker writes: every stored kind plus the chosen on-request ones, table order."""
    wanted = {kind.name for kind in stored_kinds()} | set(outputs)
    return [kind.name for kind in RESULTS if kind.name in wanted]


def render_job(image: Image.Image, seg: Segmented, outputs: Iterable[str] = ()) -> dict[str, bytes]:
    """Kind name -> encoded bytes, for what this job writes."""
    # The photo goes in as a loader: small outputs (the thumbnail) start from a whole-factor reduction.
    src = Sources(image=reducible(image), alpha=seg.alpha, mask=seg.mask, size=image.size)
    return {name: render_result(name, src) for name in kinds_for(outputs)}
