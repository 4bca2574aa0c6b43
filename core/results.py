"""The result kinds a job produces: the one table the worker, API, pages and archive read.

Adding a kind means one entry here plus its renderer in worker/render.py; keys are
deterministic (`results/<job_id>/<filename>`), so no column or migration is needed.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import PurePosixPath

from humanseg.core.storage import results_prefix


@dataclass(frozen=True)
class ResultKind:
    """One image the worker writes for every succeeded job."""

    name: str  # URL segment (/api/v1/jobs/<id>/<name>) and the key in a job's "urls"
    filename: str  # object name under results/<job_id>/; also fixes the extension
    content_type: str
    mode: str  # PIL mode of the stored image (checked against the renderer by the tests)
    label: str  # what the HTML pages call it
    description: str
    full_size: bool = True  # same size as the upload; previews (thumb) are not offered as results
    archive_folder: str | None = None  # folder in the batch zip; None keeps it out of the zip

    @property
    def suffix(self) -> str:
        """File extension with its dot, e.g. '.png'."""
        return PurePosixPath(self.filename).suffix

    @property
    def format_label(self) -> str:
        """Short format name for people, e.g. 'PNG'."""
        return self.content_type.partition("/")[2].upper()

    @property
    def has_alpha(self) -> bool:
        """True when the image is transparent in places (pages show it on a checkerboard)."""
        return "A" in self.mode

    def key(self, job_id: str) -> str:
        """Storage key of this result for one job; a rerun overwrites the same object."""
        return results_prefix(job_id) + self.filename


RESULTS: tuple[ResultKind, ...] = (
    ResultKind("mask", "mask.png", "image/png", "L", "Mask",
               "person 255, background 0", archive_folder="masks"),
    ResultKind("cutout", "cutout.png", "image/png", "RGBA", "Cut-out",
               "the photo with the mask as alpha", archive_folder="cutouts"),
    ResultKind("overlay", "overlay.jpg", "image/jpeg", "RGB", "Overlay",
               "person tinted, background dimmed: a quick visual check"),
    ResultKind("thumb", "thumb.jpg", "image/jpeg", "RGB", "Thumbnail",
               "cut-out on white, longest side 256 px, for the gallery", full_size=False),
)

_BY_NAME = {kind.name: kind for kind in RESULTS}


def result_kind(name: str) -> ResultKind | None:
    """The kind called `name`, or None when there is no such result."""
    return _BY_NAME.get(name)


def result_key(job_id: str, name: str) -> str:
    """Storage key of the named result of a job (KeyError for an unknown name)."""
    return _BY_NAME[name].key(job_id)


def result_keys(job_id: str) -> dict[str, str]:
    """Kind name -> storage key, for every result of a job."""
    return {kind.name: kind.key(job_id) for kind in RESULTS}
