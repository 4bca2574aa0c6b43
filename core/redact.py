"""Text for people outside the server: no absolute filesystem paths of the machine."""

from __future__ import annotations

import re

# A quoted absolute path (OSError messages quote theirs; it may hold spaces), then a bare one:
# not the path part of a URL, nor a relative storage key like results/x/mask.png.
_QUOTED_PATH = re.compile(r"""(['"])(/[^'"\n]+|[A-Za-z]:\\[^'"\n]+)\1""")
_BARE_PATH = re.compile(r"(?<![\w.:/~-])/[^\s'\"/:]+(?:/[^\s'\"/:]*)*|\b[A-Za-z]:\\[^\s'\"]+")


def _last_part(path: str) -> str:
    return re.split(r"[/\\]", path.rstrip("/\\"))[-1] or "<path>"


def without_paths(text: str) -> str:
    """`text` with every absolute path cut down to its last component (the file's own name)."""
    text = _QUOTED_PATH.sub(lambda m: m.group(1) + _last_part(m.group(2)) + m.group(1), text)
    return _BARE_PATH.sub(lambda m: _last_part(m.group(0)), text)
