"""Every storage key in one place: where originals, results, variants, backgrounds and probes live.

The uploader builds an original's key and the sweeper parses it back; the worker writes results
that the web tier, the archive, deletion and retention read: they all ask here, so the two ends
of a key can never drift apart (tests/core/test_layout.py goes there and back).

A job's objects sit under its own prefix (`results/<job_id>/`), which deletion removes whole.
Functions of one job's results take an optional `model`: None is the layout every job has had so
far; a name puts that model's results and variants in a folder of their own under the job's
prefix (`results/<job_id>/model-<name>/`), so two models never share a key and the job's prefix
still holds everything. No imports of ours: storage, results and both tiers build on it.
"""

from __future__ import annotations

ORIGINALS = "originals/"  # originals/<job_id><.ext>, as uploaded
RESULTS = "results/"  # results/<job_id>/[model-<name>/]<filename>, variants/<canonical>
BACKGROUNDS = "backgrounds/"  # backgrounds/<background_id>, bytes as uploaded
PROBES = "health/probe-"  # health/probe-<token>: /readyz writes, reads and deletes one
VARIANTS = "variants/"  # under a job's (or model's) results: options other than the defaults
MODEL_FOLDER = "model-"  # the folder of one model's results, so no model name meets a file name


def original_key(job_id: str, extension: str) -> str:
    """Where an upload is stored: the server's job id and the extension of its sniffed format."""
    return f"{ORIGINALS}{job_id}{extension}"


def job_id_of(key: str) -> str:
    """The job id an original's key was made from (original_key backwards)."""
    return key.removeprefix(ORIGINALS).split(".", 1)[0]


def results_prefix(job_id: str, model: str | None = None) -> str:
    """Where a job's results live (one model's, when named); deletion removes the job's whole prefix."""
    own = f"{RESULTS}{job_id}/"
    return f"{own}{MODEL_FOLDER}{model}/" if model else own


def result_file_key(job_id: str, filename: str, model: str | None = None) -> str:
    """A result object of a job, by its file name (a rerun overwrites the same object)."""
    return results_prefix(job_id, model) + filename


def variant_key(job_id: str, canonical: str, model: str | None = None) -> str:
    """A result rendered with options, by its canonical name (core/variants.py), stored once."""
    return f"{results_prefix(job_id, model)}{VARIANTS}{canonical}"


def background_key(background_id: str) -> str:
    """Where an uploaded background image is stored."""
    return BACKGROUNDS + background_id


def probe_key(token: str) -> str:
    """A readiness probe's own object (each probe a fresh token, so probes never meet)."""
    return PROBES + token
