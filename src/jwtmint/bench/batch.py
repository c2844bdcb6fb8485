"""``jwtmint bench batch``: ``mint_many`` against the ceiling every core gives, measured in one run.

For each algorithm, interleaved rounds time the same ``n`` assertions three
ways: ``n`` calls of ``mint()`` on one thread (the loop), one
``mint_many(n)``, and the **ceiling**: one process per core, each minting
``n / cores`` with a signer of its own and sharing nothing, timed from the
moment the parent tells them to start until the last one is done. ``mint_many``'s
speed-up over the loop, divided by the ceiling's, is the fraction of what the
machine gives that it reaches.

**The model.** Per assertion, ``mint_many`` does some work under the GIL
(the claims spliced into the signing input, the token assembled after,
handing out chunks), ``s``, and the signature, ``p``, which runs without it
in one section per chunk. On ``N`` cores the batch takes about
``n * (s + p / N)``, so the speed-up is ``(s + p) / (s + p / N)`` and no
number of cores takes it past ``(s + p) / s``. ``s`` and ``p`` are measured
here (the splice and assembly timed alone; the signature as loop minus
``s``) and the prediction is printed for 1, 2, 8 and 32 cores beside the
measured speed-up with the process pinned to one core and to every core
(``os.sched_setaffinity``).
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import select
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import IO, Any

from .. import _batch
from .._assertion import AssertionSigner
from .environment import environment
from .job import AUDIENCE, CLIENT_ID, check_token, new_key
from .report import machine_line
from .timing import gc_paused, rotated, run_batch
from .token_endpoint import MeasurementError

__all__ = ["ALGORITHMS", "BatchSettings", "main", "measure_batches", "worker"]

#: the algorithms the issue names, with a batch that takes tens of milliseconds on one core
ALGORITHMS = {"ES256": 2048, "EdDSA": 4096, "RS256": 64}
_WORKER = "import sys; from jwtmint.bench.batch import worker; worker(sys.argv[1])"
_MODEL_CORES = (1, 2, 8, 32)
#: seconds a ceiling process may take for its share (an RSA batch on a busy machine included)
_WORKER_TIMEOUT = 120.0


@dataclass(frozen=True)
class BatchSettings:
    rounds: int
    scale: float  # of ALGORITHMS' batch sizes


FULL = BatchSettings(rounds=9, scale=1.0)
QUICK = BatchSettings(rounds=3, scale=0.25)


def _signer(algorithm: str) -> AssertionSigner:
    # no precomputed ECDSA pairs: every contender pays for whole signatures
    return AssertionSigner(new_key(algorithm), CLIENT_ID, AUDIENCE, precompute=0)


def worker(algorithm: str) -> None:
    """A ceiling process: mint the count on each stdin line, answer when it was done
    (``time.perf_counter()``: CLOCK_MONOTONIC on Linux, the same clock in every process)."""
    signer = _signer(algorithm)
    signer.mint()
    for line in sys.stdin:
        count = int(line)
        with gc_paused():
            run_batch(signer.mint, count)
            done = time.perf_counter()
        sys.stdout.write(f"{done}\n")
        sys.stdout.flush()


class _Ceiling:
    """One process per core for one algorithm, told to start together."""

    def __init__(self, algorithm: str, cores: int) -> None:
        self._processes: list[subprocess.Popen[str]] = []
        try:
            for _ in range(cores):
                self._processes.append(
                    subprocess.Popen(
                        [sys.executable, "-c", _WORKER, algorithm],
                        stdin=subprocess.PIPE,
                        stdout=subprocess.PIPE,
                        text=True,
                    )
                )
        except BaseException:
            self.close()
            raise

    def _pipes(self, process: subprocess.Popen[str]) -> tuple[IO[str], IO[str]]:
        assert process.stdin is not None and process.stdout is not None
        return process.stdin, process.stdout

    def run(self, total: int) -> float:
        """Seconds from telling the processes to mint ``total`` between them until the last
        one is done (a late start counts against the ceiling, as a late thread would)."""
        shares = [total // len(self._processes)] * len(self._processes)
        shares[0] += total - sum(shares)
        started = time.perf_counter()
        for process, share in zip(self._processes, shares, strict=True):
            stdin = self._pipes(process)[0]
            stdin.write(f"{share}\n")
            stdin.flush()
        return max(self._done_at(p) for p in self._processes) - started

    def _done_at(self, process: subprocess.Popen[str]) -> float:
        stdout = self._pipes(process)[1]
        ready, _, _ = select.select([stdout], [], [], _WORKER_TIMEOUT)
        line = stdout.readline() if ready else ""
        if not line:
            raise MeasurementError("a ceiling process ended or did not answer in time")
        return float(line)

    def close(self) -> None:
        for process in self._processes:
            stdin, stdout = self._pipes(process)
            with contextlib.suppress(OSError):
                stdin.close()
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
            stdout.close()


def _timed(fn: Callable[[], object], calls: int = 1) -> float:
    with gc_paused():
        return run_batch(fn, calls)


def _serial_part(signer: AssertionSigner, n: int) -> float:
    """Seconds per assertion that mint_many spends under the GIL: the splice and the assembly
    (the same kernel calls it makes), timed alone with a dummy signature of the right size."""
    state = signer._state
    kernel = signer._kernel
    splice, compact = kernel.assertion_signing_input, kernel.compact
    header, prefix, suffix = state.header_b64, signer._prefix, signer._suffix
    signature = state.sign(b"x")
    entropy, now = signer._entropy, math.floor(time.time())

    def serial() -> None:
        inputs = [splice(header, prefix, entropy(), now, now + 60, suffix) for _ in range(n)]
        [compact(data, signature, state.ec_size) for data in inputs]

    return statistics.median(_timed(serial) for _ in range(5)) / n


def _pinned(cores: set[int], fn: Callable[[], float]) -> float:
    """``fn()`` with this process allowed only ``cores`` (the thread pool sizes by them)."""
    every = os.sched_getaffinity(0)
    os.sched_setaffinity(0, cores)
    try:
        return fn()
    finally:
        os.sched_setaffinity(0, every)


def _measure(algorithm: str, n: int, rounds: int) -> dict[str, Any]:
    signer = _signer(algorithm)
    cores = _batch.cpu_count()
    check = signer.mint_many(n)
    check_token(check[0], signer.key, algorithm, use_pyjwt=False)
    check_token(check[-1], signer.key, algorithm, use_pyjwt=False)
    ceiling = _Ceiling(algorithm, cores)
    times: dict[str, list[float]] = {"loop": [], "mint_many": [], "ceiling": []}
    try:
        ceiling.run(cores * 4)  # warm: keys made, code paths taken
        contenders: dict[str, Callable[[], float]] = {
            "loop": lambda: _timed(signer.mint, n),
            "mint_many": lambda: _timed(lambda: signer.mint_many(n)),
            "ceiling": lambda: ceiling.run(n),
        }
        for round_no in range(rounds):
            for name in rotated(list(contenders), round_no):
                times[name].append(contenders[name]())
    finally:
        ceiling.close()
    loop, many, roof = (statistics.median(times[k]) for k in ("loop", "mint_many", "ceiling"))
    serial = _serial_part(signer, n)
    parallel = loop / n - serial
    pinned = {}
    if hasattr(os, "sched_setaffinity"):
        every = sorted(os.sched_getaffinity(0))
        for label, allowed in (("1", {every[0]}), (str(len(every)), set(every))):
            pinned[label] = statistics.median(
                _pinned(allowed, lambda: _timed(signer.mint, n))
                / _pinned(allowed, lambda: _timed(lambda: signer.mint_many(n)))
                for _ in range(max(3, rounds // 2))
            )
    return {
        "n": n,
        "cores": cores,
        "loop_ms": loop * 1e3,
        "mint_many_ms": many * 1e3,
        "ceiling_ms": roof * 1e3,
        "speedup": loop / many,
        "ceiling_speedup": loop / roof,
        "fraction_of_ceiling": roof / many,
        "serial_us": serial * 1e6,
        "signature_us": parallel * 1e6,
        "predicted": {str(k): (serial + parallel) / (serial + parallel / k) for k in _MODEL_CORES},
        # the same with this machine's scaling: N processes get efficiency * N cores' worth
        "efficiency": (loop / roof) / cores,
        "predicted_here": {
            str(k): (serial + parallel) / (serial + parallel / (k * (loop / roof) / cores))
            for k in _MODEL_CORES
        },
        "limit": (serial + parallel) / serial,
        "pinned_speedup": pinned,
    }


def measure_batches(
    settings: BatchSettings, algorithms: Sequence[str] = tuple(ALGORITHMS)
) -> dict[str, Any]:
    """Every algorithm's figures (see the module docstring), and the environment."""
    results = {
        algorithm: _measure(algorithm, max(8, round(ALGORITHMS[algorithm] * settings.scale)),
                            settings.rounds)
        for algorithm in algorithms
    }  # fmt: skip
    return {
        "tool": "jwtmint bench batch",
        "rounds": settings.rounds,
        "results": results,
        "environment": environment(),
    }


def _print(report: dict[str, Any]) -> None:
    print(
        f"mint_many(n) vs n x mint() vs one process per core, medians of {report['rounds']} "
        "interleaved rounds"
    )
    print(
        f"{'alg':<7}{'n':>6}{'loop ms':>9}{'many ms':>9}{'ceil ms':>9}{'speed-up':>10}"
        f"{'ceiling':>9}{'fraction':>10}{'s µs':>7}{'p µs':>8}"
    )
    for algorithm, r in report["results"].items():
        print(
            f"{algorithm:<7}{r['n']:>6}{r['loop_ms']:>9.1f}{r['mint_many_ms']:>9.1f}"
            f"{r['ceiling_ms']:>9.1f}{r['speedup']:>9.2f}x{r['ceiling_speedup']:>8.2f}x"
            f"{r['fraction_of_ceiling']:>10.2f}{r['serial_us']:>7.2f}{r['signature_us']:>8.1f}"
        )
    print(
        "model: speed-up on N cores = (s + p) / (s + p/N), s: per assertion under the GIL, "
        "p: its signature; 'here': N replaced by e*N, e = the ceiling's speed-up / cores "
        "(what this machine's cores give processes); measured: the process pinned to 1 and "
        "to every core"
    )
    for algorithm, r in report["results"].items():
        predicted = ", ".join(f"{k}: {v:.2f}x" for k, v in r["predicted"].items())
        here = ", ".join(f"{k}: {v:.2f}x" for k, v in r["predicted_here"].items())
        measured = ", ".join(f"{k}: {v:.2f}x" for k, v in r["pinned_speedup"].items())
        print(f"  {algorithm}: ideal cores {predicted} (limit {r['limit']:.0f}x)")
        pad = " " * len(algorithm)
        print(f"  {pad}  here (e {r['efficiency']:.2f}) {here}; measured {measured}")
    print(machine_line(report["environment"]))


def main(*, quick: bool, as_json: bool, repeats: int | None = None) -> int:
    settings = QUICK if quick else FULL
    if repeats is not None:
        settings = BatchSettings(repeats, settings.scale)
    report = measure_batches(settings)
    if as_json:
        print(json.dumps(report, indent=2))
    else:
        _print(report)
    return 0
