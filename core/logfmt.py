"""key=value log lines whose values cannot break out of their line or their field."""

from __future__ import annotations

import enum
import re
import unicodedata

# Values made only of these characters are written bare; anything else is quoted and escaped.
_BARE = re.compile(r"[A-Za-z0-9._:/@+\-]+")
_SHORT_ESCAPES = {'"': '\\"', "\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t"}
# Control and format characters, surrogates, unassigned, and line/paragraph separators:
# a log viewer may take any of them as a line break or hide it.
_UNSAFE_CATEGORIES = {"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"}


def quote_value(value: object) -> str:
    """One log value: bare when plainly safe, else in double quotes with escapes; None is '-'."""
    if value is None:
        return "-"
    if isinstance(value, enum.Enum):
        value = value.value  # str() of a str-valued enum member is "Class.member" on 3.11+
    if isinstance(value, bool | int | float):
        return str(value)
    text = str(value)
    if _BARE.fullmatch(text):
        return text
    out = []
    for ch in text:
        if ch in _SHORT_ESCAPES:
            out.append(_SHORT_ESCAPES[ch])
        elif unicodedata.category(ch) in _UNSAFE_CATEGORIES:
            code = ord(ch)
            out.append(f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def logkv(**fields: object) -> str:
    """`k1=v1 k2="v 2"`: the house log format with every value escaped (see quote_value).

    Pass the result as the whole message (no %-args), e.g. log.info(logkv(event="x", job_id=i)).
    """
    return " ".join(f"{key}={quote_value(value)}" for key, value in fields.items())
