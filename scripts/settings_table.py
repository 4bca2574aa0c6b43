"""The README's table of settings, made from core/settings.py (the one place settings are described).

    python scripts/settings_table.py           # print the table
    python scripts/settings_table.py --write   # put it into README.md between the markers
    python scripts/settings_table.py --check   # exit 1 when README.md's table is not this one

Each row is one Settings field: its env var (core.settings.env_name), its default (the field's
`shown` text when the default is worked out at run time, else the default itself) and its `doc`.
tests/core/test_core_settings.py fails when README.md's table differs from this one.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import MISSING, Field, fields
from pathlib import Path

from humanseg.core.settings import MiB, Settings, env_name

README = Path(__file__).resolve().parent.parent / "README.md"
START = "<!-- settings-table: start (made by scripts/settings_table.py from core/settings.py) -->"
END = "<!-- settings-table: end -->"
HEAD = ["| env var | default | meaning |", "| --- | --- | --- |"]


def shown_default(f: Field) -> str:
    """The default as the table shows it: 25 MiB, 40,000,000, `1` (on), `local`, empty."""
    if f.metadata.get("shown"):
        return f.metadata["shown"]
    value = f.default if f.default is not MISSING else None
    if isinstance(value, bool):
        return "`1` (on)" if value else "`0` (off)"
    if isinstance(value, int) and f.name.endswith("_bytes") and value % MiB == 0:
        mib = value // MiB
        return f"{mib // 1024} GiB" if mib % 1024 == 0 else f"{mib} MiB"
    if isinstance(value, (int, float)):
        return f"{value:,}" if value >= 10_000 else f"{value:g}"
    if isinstance(value, tuple):
        value = ",".join(value)
    return f"`{value}`" if value not in (None, "") else "empty"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def rows() -> list[str]:
    """One markdown row per Settings field, in the dataclass's order."""
    return [f"| `{env_name(f.name)}` | {_cell(shown_default(f))} | {_cell(f.metadata['doc'])} |"
            for f in fields(Settings)]


def table() -> str:
    """The whole table, header included, with a trailing newline."""
    return "\n".join([*HEAD, *rows()]) + "\n"


def readme_table(text: str) -> str:
    """What README.md holds between the markers (ValueError when a marker is missing)."""
    start, end = text.index(START) + len(START), text.index(END)
    return text[start:end].strip("\n") + "\n"


def with_table(text: str) -> str:
    """README.md's text with the generated table between the markers."""
    start, end = text.index(START) + len(START), text.index(END)
    return f"{text[:start]}\n\n{table()}\n{text[end:]}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--write", action="store_true", help="rewrite README.md's table")
    mode.add_argument("--check", action="store_true", help="exit 1 when README.md's table differs")
    args = parser.parse_args(argv)
    if args.write:
        README.write_text(with_table(README.read_text()))
    elif args.check:
        if readme_table(README.read_text()) != table():
            print("README.md's settings table is stale: run python scripts/settings_table.py --write",
                  file=sys.stderr)
            return 1
    else:
        sys.stdout.write(table())
    return 0


if __name__ == "__main__":
    sys.exit(main())
