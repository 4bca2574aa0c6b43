"""Per-stage wall times of one job, logged with its outcome (bench/e2e_ratio.py reads them)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

# The stages run_job times, in the order they run; each is logged as <stage>_ms.
STAGES = ("db", "read", "decode", "model", "render", "store")


class Stages:
    """Milliseconds spent per stage; a stage entered twice (db) adds up."""

    def __init__(self) -> None:
        self.ms: dict[str, float] = dict.fromkeys(STAGES, 0.0)
        self._t0 = time.perf_counter()

    @contextmanager
    def timed(self, stage: str) -> Iterator[None]:
        """Add the time spent inside the block to `stage`, even when it raises."""
        start = time.perf_counter()
        try:
            yield
        finally:
            self.ms[stage] = self.ms.get(stage, 0.0) + (time.perf_counter() - start) * 1000

    def fields(self) -> dict[str, float]:
        """<stage>_ms for every stage, plus total_ms since this object was made (1 decimal)."""
        out = {f"{stage}_ms": round(ms, 1) for stage, ms in self.ms.items()}
        out["total_ms"] = round((time.perf_counter() - self._t0) * 1000, 1)
        return out
