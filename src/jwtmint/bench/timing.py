"""Interleaved timing: calibrated batches, contenders round-robin, medians.

A batch size per contender is calibrated so that one batch takes
``batch_seconds`` (which doubles as warm-up); then the contenders run
round-robin, ``repeats`` times, the order rotated every round, so that a
noisy neighbour hurts all of them alike. The figure reported is the median
of the per-call times of those batches; the interquartile range says how
noisy it was. The cyclic garbage collector is off during batches (as in
:mod:`timeit`) and runs between rounds.
"""

from __future__ import annotations

import gc
import itertools
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Timing", "measure"]


@dataclass
class Timing:
    """Per-call times (seconds) of ``repeats`` batches of ``batch`` calls each."""

    batch: int
    samples: list[float] = field(default_factory=list)

    @property
    def median_us(self) -> float:
        return statistics.median(self.samples) * 1e6

    @property
    def spread(self) -> float:
        """Interquartile range as a fraction of the median."""
        if len(self.samples) < 4:
            return 0.0
        q1, _, q3 = statistics.quantiles(self.samples, n=4)
        return (q3 - q1) / statistics.median(self.samples)

    def as_dict(self) -> dict[str, Any]:
        median = self.median_us
        return {
            "median_us": round(median, 3),
            "mints_per_s": round(1e6 / median, 1),
            "iqr_fraction": round(self.spread, 4),
            "batch": self.batch,
            "repeats": len(self.samples),
            "samples_us": [round(s * 1e6, 3) for s in self.samples],
        }


def _run_batch(fn: Callable[[], object], n: int) -> float:
    calls = itertools.repeat(None, n)
    start = time.perf_counter()
    for _ in calls:
        fn()
    return time.perf_counter() - start


def _calibrate(fn: Callable[[], object], batch_seconds: float) -> int:
    """Calls per batch so that one batch takes about ``batch_seconds`` (doubles as warm-up)."""
    n = 1
    while True:
        elapsed = _run_batch(fn, n)
        if elapsed >= batch_seconds / 4 or n >= 1 << 24:
            return max(1, round(n * batch_seconds / max(elapsed, 1e-9)))
        n *= 2


def measure(
    contenders: Sequence[tuple[str, Callable[[], object]]],
    *,
    repeats: int,
    batch_seconds: float,
) -> dict[str, Timing]:
    """Round-robin timing of ``contenders``: ``repeats`` batches each, order rotated per round."""
    if not contenders:
        return {}
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        timings = {name: Timing(_calibrate(fn, batch_seconds)) for name, fn in contenders}
        for round_no in range(repeats):
            shift = round_no % len(contenders)
            for name, fn in [*contenders[shift:], *contenders[:shift]]:
                timing = timings[name]
                timing.samples.append(_run_batch(fn, timing.batch) / timing.batch)
            gc.collect()  # between rounds, untimed: keeps a long run's cyclic garbage bounded
    finally:
        if gc_was_enabled:
            gc.enable()
    return timings
