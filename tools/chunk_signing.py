"""mint_many with one GIL-free section per chunk (``sign_many``) against the per-item signing it
replaced, interleaved in one process: ``python tools/chunk_signing.py``.

The per-item path is the old ``_batch._sign_chunk`` body (each signature takes and drops the
GIL); both run the same signer, key and batch, in rounds whose order rotates, the collector paused
while timing, medians printed.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

import jwtmint
from jwtmint import _batch
from jwtmint._algorithms import SignFunction
from jwtmint.bench.timing import gc_paused, rotated

BATCHES = {"ES256": 2048, "EdDSA": 4096}
ROUNDS = 11


def _per_item(sign: SignFunction, chunk: list[bytes]) -> list[bytes]:
    return [sign(data) for data in chunk]


def main() -> None:
    chunked = _batch._sign_chunk
    for algorithm, n in BATCHES.items():
        signer = jwtmint.AssertionSigner(
            jwtmint.generate_key(algorithm), "client", "https://idp.example", precompute=0
        )
        signer.mint_many(n)  # the thread pool started
        ways: dict[str, Callable[[], object]] = {
            "loop": lambda: [signer.mint() for _ in range(n)],  # noqa: B023
            "per-item": lambda: signer.mint_many(n),  # noqa: B023
            "chunk": lambda: signer.mint_many(n),  # noqa: B023
        }
        times: dict[str, list[float]] = {name: [] for name in ways}
        try:
            for round_no in range(ROUNDS):
                for name in rotated(list(ways), round_no):  # no contender always goes first
                    _batch._sign_chunk = _per_item if name == "per-item" else chunked
                    with gc_paused():
                        started = time.perf_counter()
                        ways[name]()
                        times[name].append(time.perf_counter() - started)
        finally:
            _batch._sign_chunk = chunked
        loop = statistics.median(times["loop"])
        print(
            f"{algorithm} x{n}: mint_many vs the loop, signatures one GIL release each "
            f"{loop / statistics.median(times['per-item']):.2f}x, one GIL-free section per "
            f"chunk {loop / statistics.median(times['chunk']):.2f}x"
        )


if __name__ == "__main__":
    main()
