"""One client assertion per algorithm: jwtmint (C kernel, Python twin), PyJWT, and the floor.

Each algorithm is one pytest-benchmark group, so the table puts the four
side by side: ``jwtmint_c``, ``jwtmint_py``, ``pyjwt`` (``jwt.encode`` with a
pre-loaded key, same header and claims) and ``cryptography_sign`` (the bare
signature over a message of the same size: what no JWT library can beat).
Every callable is checked once before it is timed, and its last output after.
"""

from __future__ import annotations

import pytest

from .conftest import (
    ALGORITHMS,
    Benchmark,
    check_token,
    jwtmint_minter,
    pyjwt_minter,
    signing_floor,
)

pytestmark = pytest.mark.parametrize("algorithm", ALGORITHMS)


def test_jwtmint_c(benchmark: Benchmark, algorithm: str) -> None:
    benchmark.group = algorithm
    mint = jwtmint_minter(algorithm, "c")
    check_token(mint(), algorithm)
    check_token(benchmark(mint), algorithm)


def test_jwtmint_py(benchmark: Benchmark, algorithm: str) -> None:
    benchmark.group = algorithm
    mint = jwtmint_minter(algorithm, "py")
    check_token(mint(), algorithm)
    check_token(benchmark(mint), algorithm)


def test_pyjwt(benchmark: Benchmark, algorithm: str) -> None:
    benchmark.group = algorithm
    mint = pyjwt_minter(algorithm)
    check_token(mint(), algorithm)
    check_token(benchmark(mint), algorithm)


def test_cryptography_sign(benchmark: Benchmark, algorithm: str) -> None:
    benchmark.group = algorithm
    floor = signing_floor(algorithm)
    benchmark.extra_info["message_bytes"] = floor.message_bytes
    floor.verify(floor.sign())
    floor.verify(benchmark(floor.sign))
