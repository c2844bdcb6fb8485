"""Interleaved timing of calls and of awaits: calibrated batches, round-robin, medians.

A batch size per contender is calibrated so that one batch takes
``batch_seconds`` (which doubles as warm-up); then the contenders run
round-robin, ``repeats`` times, the order rotated every round, so that a
noisy neighbour hurts all of them alike. The figure reported is the median
of the per-call times of those batches; the interquartile range says how
noisy it was. The cyclic garbage collector is off during batches (as in
:mod:`timeit`) and runs between rounds.
"""

from __future__ import annotations

import contextlib
import gc
import itertools
import math
import statistics
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

__all__ = [
    "Batch",
    "Timing",
    "calibrated_batch",
    "gc_paused",
    "iqr",
    "measure",
    "measure_async",
    "percentile",
    "rotated",
    "run_batch",
    "summarize",
]

_T = TypeVar("_T")
#: ``await batch(n)``: n awaits of the contender in one coroutine, and the seconds they took
Batch = Callable[[int], Awaitable[float]]


def percentile(ordered: Sequence[float], fraction: float) -> float:
    """The nearest-rank percentile of ``ordered`` (sorted, not empty): the smallest value with
    at least ``fraction`` of the values at or below it."""
    return ordered[min(len(ordered) - 1, max(0, math.ceil(fraction * len(ordered)) - 1))]


def iqr(values: Sequence[float]) -> float | None:
    """The interquartile range, or ``None`` from fewer than 4 values."""
    if len(values) < 4:
        return None
    q1, _, q3 = statistics.quantiles(values, n=4)
    return q3 - q1


def summarize(values: Sequence[float], digits: int) -> dict[str, float | None]:
    """Median and interquartile range (absolute and as a fraction of the median), rounded to
    ``digits``; no IQR from fewer than 4 values."""
    median, quartile_range = statistics.median(values), iqr(values)
    if quartile_range is None:
        return {"median": round(median, digits), "iqr": None, "iqr_fraction": None}
    return {
        "median": round(median, digits),
        "iqr": round(quartile_range, digits),
        "iqr_fraction": round(quartile_range / median, digits),
    }


def calibrated_batch(n: int, elapsed: float, batch_seconds: float) -> int | None:
    """After ``n`` calls took ``elapsed`` s: calls per ``batch_seconds`` batch, or ``None``
    while the sample is too short to tell (then try ``2 * n``)."""
    if elapsed >= batch_seconds / 4 or n >= 1 << 24:
        return max(1, round(n * batch_seconds / max(elapsed, 1e-9)))
    return None


def rotated(items: Sequence[_T], round_no: int) -> list[_T]:
    """``items`` in the order of round ``round_no``: each round starts one further on."""
    shift = round_no % len(items)
    return [*items[shift:], *items[:shift]]


@contextlib.contextmanager
def gc_paused() -> Iterator[None]:
    """The cyclic garbage collector off (as :mod:`timeit` does), restored afterwards."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


@dataclass
class Timing:
    """Per-call times (seconds) of ``rounds`` batches of ``batch`` calls each."""

    batch: int
    samples: list[float] = field(default_factory=list)

    @property
    def median_us(self) -> float:
        return statistics.median(self.samples) * 1e6

    @property
    def spread(self) -> float:
        """Interquartile range as a fraction of the median (0.0 from < 4 batches)."""
        quartile_range = iqr(self.samples)
        if quartile_range is None:
            return 0.0
        return quartile_range / statistics.median(self.samples)

    def as_dict(self) -> dict[str, Any]:
        """Median, IQR (absolute and as a fraction; None from < 4 batches), and every sample."""
        samples_us = [sample * 1e6 for sample in self.samples]
        figures = summarize(samples_us, 4)
        return {
            "median_us": figures["median"],
            "iqr_us": figures["iqr"],
            "iqr_fraction": figures["iqr_fraction"],
            "calls_per_s": round(1e6 / self.median_us, 1),
            "batch": self.batch,
            "rounds": len(self.samples),
            "samples_us": [round(sample, 4) for sample in samples_us],
        }


def run_batch(fn: Callable[[], object], n: int) -> float:
    """Seconds ``n`` calls of ``fn`` take, back to back."""
    calls = itertools.repeat(None, n)
    start = time.perf_counter()
    for _ in calls:
        fn()
    return time.perf_counter() - start


def _calibrate(fn: Callable[[], object], batch_seconds: float) -> int:
    """Calls per batch so that one batch takes about ``batch_seconds`` (doubles as warm-up)."""
    n = 1
    while (size := calibrated_batch(n, run_batch(fn, n), batch_seconds)) is None:
        n *= 2
    return size


def measure(
    contenders: Sequence[tuple[str, Callable[[], object]]],
    *,
    repeats: int,
    batch_seconds: float,
    on_batch: Callable[[str], None] | None = None,
) -> dict[str, Timing]:
    """Round-robin timing of ``contenders``: ``repeats`` batches each, order rotated per round.

    ``on_batch(name)`` (a progress bar) is called after each contender's calibration and
    after each of its batches, outside the timed section."""
    if not contenders:
        return {}
    step = on_batch or (lambda _name: None)
    with gc_paused():
        timings: dict[str, Timing] = {}
        for name, fn in contenders:
            timings[name] = Timing(_calibrate(fn, batch_seconds))
            step(name)
        for round_no in range(repeats):
            for name, fn in rotated(contenders, round_no):
                timing = timings[name]
                timing.samples.append(run_batch(fn, timing.batch) / timing.batch)
                step(name)
            gc.collect()  # between rounds, untimed: keeps a long run's cyclic garbage bounded
    return timings


async def measure_async(
    contenders: Sequence[tuple[str, Batch]], *, repeats: int, batch_seconds: float
) -> dict[str, Timing]:
    """:func:`measure` for awaits: each contender is a :data:`Batch`, calibrated, timed
    round-robin with the order rotated per round, the cyclic GC off during batches."""
    with gc_paused():
        timings: dict[str, Timing] = {}
        for name, batch in contenders:
            n = 1  # calibration, which doubles as warm-up
            while (size := calibrated_batch(n, await batch(n), batch_seconds)) is None:
                n *= 2
            timings[name] = Timing(size)
        for round_no in range(repeats):
            for name, batch in rotated(contenders, round_no):
                timing = timings[name]
                timing.samples.append(await batch(timing.batch) / timing.batch)
            gc.collect()
    return timings
