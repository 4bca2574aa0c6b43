"""The result-kind copies outside the server (remote CLI, local CLI) agree with core/results.py."""

from humanseg import remote
from humanseg.core.results import RESULTS, known_kind, on_request_kinds
from humanseg.ml import files


def _local_suffix(name: str) -> str:
    """How `humanseg segment` names a result: the mask keeps <stem>.png, the rest say their kind."""
    suffix = known_kind(name).suffix
    return suffix if name == "mask" else f".{name}{suffix}"


def test_the_remote_cli_offers_every_kind_named_as_the_table_says():
    assert remote.KINDS == tuple(kind.name for kind in RESULTS)
    assert remote.SUFFIXES == {name: _local_suffix(name) for name in remote.KINDS}
    assert remote.MADE_BY_WORKER == {kind.name for kind in on_request_kinds()}
    assert remote.CUTOUT_OPTIONS == known_kind("cutout").options


def test_the_local_cli_names_its_outputs_as_the_remote_cli_does():
    assert set(files.OUTPUTS) <= {kind.name for kind in RESULTS}
    assert files.OUTPUTS == {name: _local_suffix(name) for name in files.OUTPUTS}
