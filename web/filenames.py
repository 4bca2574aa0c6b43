"""Download and archive names from what clients called their files: safe, unique, RFC 6266."""

from __future__ import annotations

import re
import unicodedata


def safe_stem(filename: str, fallback: str = "image") -> str:
    """A filesystem- and zip-safe base name (no extension) from a client filename."""
    name = unicodedata.normalize("NFC", filename or "")
    name = name.replace("\\", "/").rsplit("/", 1)[-1]        # drop any client path
    name = re.sub(r"\.(jpe?g|png|webp)$", "", name, flags=re.IGNORECASE)
    name = "".join(ch for ch in name if unicodedata.category(ch)[0] != "C")
    name = re.sub(r"[^\w\-. ]+", "_", name)                    # keep letters, digits, - _ . space
    name = re.sub(r"\s+", " ", name).strip(" ._")
    name = name[:100].strip(" ._")
    return name or fallback


def unique_name(stem: str, taken: set[str]) -> str:
    """stem, or stem-2, stem-3 … whichever is free (case-insensitively); records it."""
    candidate, n = stem, 1
    while candidate.lower() in taken:
        n += 1
        candidate = f"{stem}-{n}"
    taken.add(candidate.lower())
    return candidate


def attachment(filename: str) -> str:
    """Content-Disposition value for a download, ASCII fallback plus RFC 5987 UTF-8 name."""
    from urllib.parse import quote

    ascii_name = filename.encode("ascii", "replace").decode().replace("?", "_").replace('"', "_")
    return f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(filename)}"
