"""A zip archive written into a generator: constant memory, no temp files."""

from __future__ import annotations

import zipfile
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime, timezone
from typing import BinaryIO

CHUNK = 256 * 1024


class _Sink:
    """Write-only, unseekable target: zipfile then uses data descriptors."""

    def __init__(self) -> None:
        self._chunks: list[bytes] = []

    def write(self, data: bytes) -> int:
        self._chunks.append(bytes(data))
        return len(data)

    def flush(self) -> None:
        pass

    def close(self) -> None:  # zipfile never closes a file object it was given
        pass

    def drain(self) -> bytes:
        out = b"".join(self._chunks)
        self._chunks.clear()
        return out


# One entry: the name inside the zip and a callable opening its content stream.
Entry = tuple[str, Callable[[], BinaryIO]]


def stream_zip(entries: Iterable[Entry], *, when: datetime | None = None) -> Iterator[bytes]:
    """Yield the bytes of a zip holding `entries`, reading each in CHUNK pieces.

    Entries are stored, not deflated: PNG and JPEG are already compressed.
    """
    stamp = (when or datetime.now(timezone.utc)).timetuple()[:6]
    sink = _Sink()
    with zipfile.ZipFile(sink, mode="w", compression=zipfile.ZIP_STORED, allowZip64=True) as zf:
        for name, opener in entries:
            info = zipfile.ZipInfo(name, date_time=stamp)
            info.compress_type = zipfile.ZIP_STORED
            info.external_attr = 0o644 << 16
            with opener() as src, zf.open(info, mode="w") as dest:
                while True:
                    chunk = src.read(CHUNK)
                    if not chunk:
                        break
                    dest.write(chunk)
                    data = sink.drain()
                    if data:
                        yield data
            data = sink.drain()
            if data:
                yield data
    tail = sink.drain()  # central directory, written on close
    if tail:
        yield tail
