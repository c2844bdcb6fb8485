"""Shared pieces of the benchmark suite: keys, contenders and their correctness checks.

Every contender mints the same client assertion as ``jwtmint bench`` and
``jwtmint demo`` (header ``{alg, kid, typ}``, claims iss/sub/aud/jti/iat/nbf/exp,
a fresh jti and time per call): the adapters of :mod:`jwtmint.bench` build
them, so that the harness and this suite time the same job. Each callable is
checked once before it is timed.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from typing import Any, Protocol, TypeVar

import pytest

import jwtmint
from jwtmint import _kernels, _pure
from jwtmint.bench import adapters, job
from jwtmint.bench.settings import DEFAULT_ALGORITHMS

T = TypeVar("T")

SPEEDUPS = _kernels.load_speedups()

#: One line per algorithm in the benchmark table (one group each).
ALGORITHMS = list(DEFAULT_ALGORITHMS)


class Benchmark(Protocol):
    """The part of pytest-benchmark's ``benchmark`` fixture this suite uses."""

    group: str | None
    extra_info: dict[str, Any]

    def __call__(self, function_to_benchmark: Callable[[], T]) -> T: ...


class Stats(Protocol):
    median: float


class Metadata(Protocol):
    stats: Stats


class PedanticBenchmark(Benchmark, Protocol):
    """The fixture with ``pedantic`` (explicit rounds) and its results (``stats``)."""

    stats: Metadata | None

    def pedantic(
        self,
        target: Callable[[], T],
        *,
        rounds: int,
        iterations: int,
        warmup_rounds: int,
    ) -> T: ...


_KEYS: dict[str, jwtmint.SigningKey] = {}


def signing_key(algorithm: str) -> jwtmint.SigningKey:
    """One fresh key per algorithm per session: every contender signs with the same key."""
    if algorithm not in _KEYS:
        _KEYS[algorithm] = job.new_key(algorithm)
    return _KEYS[algorithm]


def speedups() -> Any:
    """The compiled kernel; skip (or fail, under JWTMINT_REQUIRE_EXTENSIONS) when missing."""
    if SPEEDUPS is None:
        if os.environ.get("JWTMINT_REQUIRE_EXTENSIONS"):
            pytest.fail("the C extension jwtmint._speedups did not load")
        pytest.skip("C extension not built")
    return SPEEDUPS


def jwtmint_minter(algorithm: str, implementation: str) -> Callable[[], str]:
    module = speedups() if implementation == "c" else _pure
    return adapters.jwtmint_minter(signing_key(algorithm), module, algorithm)


def pyjwt_minter(algorithm: str) -> Callable[[], str]:
    return adapters.get_peer("pyjwt").minter(signing_key(algorithm), algorithm)


def check_token(token: str, algorithm: str) -> None:
    """The token verifies with PyJWT and carries the expected header and claims."""
    job.check_token(token, signing_key(algorithm), algorithm, use_pyjwt=True)


def signing_floor(algorithm: str) -> adapters.Floor:
    """cryptography's bare ``sign()`` of a real signing input with the same key.

    The signing callable has all its arguments bound, as a minter would hold
    them; the message is the signing input of one of our assertions, so it
    has the real size (~300-400 B). For HMAC: primed hash states, copied.
    """
    return adapters.floor(signing_key(algorithm), algorithm)


def new_loop(name: str) -> asyncio.AbstractEventLoop:
    """A new event loop: ``"asyncio"``, or ``"uvloop"`` (skipped when it is not installed)."""
    if name == "uvloop":
        uvloop: Any = pytest.importorskip("uvloop")
        loop: asyncio.AbstractEventLoop = uvloop.new_event_loop()
        return loop
    return asyncio.new_event_loop()


def record_awaits(
    benchmark: PedanticBenchmark, loop: asyncio.AbstractEventLoop, awaits: int
) -> None:
    """Note the event loop and awaits per round, and the median per await, in extra_info."""
    benchmark.extra_info["awaits_per_round"] = awaits
    benchmark.extra_info["event_loop"] = type(loop).__module__.split(".")[0]
    if benchmark.stats is not None:  # None under --benchmark-disable
        per_call = benchmark.stats.stats.median / awaits
        benchmark.extra_info["median_ns_per_call"] = round(per_call * 1e9, 1)
