"""``jwtmint demo``: mint with every algorithm, verify, and time jwtmint (C and py) vs PyJWT.

The small sibling of ``jwtmint bench``: the same job, adapters, checks and
timing, with jwtmint and PyJWT only, and an example token decoded.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from .. import _kernels
from .._keys import SigningKey
from .adapters import REFERENCE, get_peer
from .environment import environment
from .job import Minter, check_token, decode_segments, new_key, pyjwt_installed
from .report import format_us
from .settings import DEMO
from .timing import Timing, measure

__all__ = ["AlgorithmRun", "prepare", "run_demo"]

_LABELS = {"jwtmint-c": "jwtmint C", "jwtmint-py": "jwtmint py", "pyjwt": "PyJWT"}


@dataclass
class AlgorithmRun:
    """One algorithm's contenders, their example tokens and timings."""

    algorithm: str
    key: SigningKey = field(repr=False)
    minters: dict[str, Minter] = field(repr=False)
    timings: dict[str, Timing] = field(default_factory=dict)


def prepare(algorithm: str, *, with_pyjwt: bool, with_c: bool) -> AlgorithmRun:
    """A fresh key and every demo contender for ``algorithm``; each token checked once."""
    key = new_key(algorithm)
    names = [*(["jwtmint-c"] if with_c else []), "jwtmint-py", *([REFERENCE] if with_pyjwt else [])]
    minters = {name: get_peer(name).minter(key, algorithm) for name in names}
    for mint in minters.values():
        check_token(mint(), key, algorithm, use_pyjwt=with_pyjwt)
    return AlgorithmRun(algorithm, key, minters)


def run_demo(algorithms: Sequence[str], *, quick: bool, as_json: bool) -> int:
    with_pyjwt = pyjwt_installed()
    with_c = _kernels.load_speedups() is not None
    settings = DEMO.pick(quick)
    repeats, batch_seconds = settings.rounds, settings.batch_seconds

    def say(text: str) -> None:
        if not as_json:
            print(text, file=sys.stderr, flush=True)

    started = time.perf_counter()
    runs: list[AlgorithmRun] = []
    for algorithm in algorithms:
        say(f"  {algorithm}: new key, check tokens, time ...")
        run = prepare(algorithm, with_pyjwt=with_pyjwt, with_c=with_c)
        run.timings = measure(
            list(run.minters.items()), repeats=repeats, batch_seconds=batch_seconds
        )
        runs.append(run)
    elapsed = time.perf_counter() - started
    base = "jwtmint-c" if with_c else "jwtmint-py"
    example = next((r for r in runs if r.algorithm == "ES256"), runs[0])
    header, claims = decode_segments(example.minters[base]())
    checked_by = "PyJWT jwt.decode" if with_pyjwt else "cryptography (PyJWT is not installed)"
    env = environment()
    if not with_pyjwt:
        env["pyjwt"] = None
    results = {
        "environment": env,
        "settings": {"repeats": repeats, "batch_seconds": batch_seconds, "quick": quick},
        "checked_by": checked_by,
        "example": {"algorithm": example.algorithm, "header": header, "claims": claims},
        "results": {
            run.algorithm: {
                "kid": run.key.kid,
                "timings": {name: timing.as_dict() for name, timing in run.timings.items()},
                "baseline": base,
                "pyjwt_over_baseline": (
                    round(run.timings[REFERENCE].median_us / run.timings[base].median_us, 3)
                    if REFERENCE in run.timings
                    else None
                ),
            }
            for run in runs
        },
        "elapsed_s": round(elapsed, 1),
    }
    if as_json:
        print(json.dumps(results, indent=2))
    else:
        _print_report(results, runs, base, with_pyjwt)
        from .token_demo import run_token_demo

        run_token_demo(quick=quick)
    return 0


def _print_report(
    results: dict[str, Any], runs: list[AlgorithmRun], base: str, with_pyjwt: bool
) -> None:
    env = results["environment"]
    settings = results["settings"]
    example = results["example"]
    tokens = sum(len(run.minters) for run in runs)
    print(f"jwtmint {env['jwtmint']} demo: client assertions minted, checked and timed")
    print(f"  implementation: {env['implementation']} (C kernel: {env['c_kernel']})")
    print(
        f"  {env['python']} | cryptography {env['cryptography']} ({env['openssl']}) | "
        f"PyJWT {env['pyjwt'] or 'not installed'} | orjson {env['orjson']}"
    )
    print(f"  CPU: {env['cpu']}, {env['cpu_count']} logical ({env['cpu_usable']} usable)")
    print(
        f"\nchecked: {tokens} tokens ({len(runs)} algorithms) verified with {results['checked_by']}"
    )
    print("  (signature, alg/kid/typ header, aud, iss = sub, exp - iat = 60, 128-bit jti)")
    print(f"\nexample ({example['algorithm']}, {_LABELS[base]}), decoded:")
    print(f"  header {json.dumps(example['header'], separators=(',', ':'))}")
    print(f"  claims {json.dumps(example['claims'], separators=(',', ':'))}")

    names = [name for name in _LABELS if any(name in run.timings for run in runs)]
    print(
        f"\nmedian µs per mint (±IQR % of median) and mints/s; {settings['repeats']} "
        f"interleaved batches of ~{settings['batch_seconds'] * 1000:.0f} ms per cell"
    )
    ratio_head = f"{'PyJWT/' + _LABELS[base][8:]:>10}" if with_pyjwt else ""
    print("alg    " + "".join(f"{_LABELS[name]:>25}" for name in names) + ratio_head)
    for run in runs:
        cells = []
        for name in names:
            timing = run.timings.get(name)
            if timing is None:
                cells.append(f"{'not built':>25}")
                continue
            median = timing.median_us
            cells.append(
                f"{format_us(median):>9} ±{timing.spread * 100:>2.0f}%{1e6 / median:>10,.0f}/s"
            )
        ratio = results["results"][run.algorithm]["pyjwt_over_baseline"]
        ratio_text = f"{ratio:>9.2f}x" if ratio is not None else ""
        print(f"{run.algorithm:<7}" + "".join(cells) + ratio_text)
    if not with_pyjwt:
        print("PyJWT is not installed (pip install pyjwt): no PyJWT column")
    print(
        f"\n{results['elapsed_s']:.1f} s. All contenders timed in this run, round-robin, GC off "
        "during batches.\nA shared or throttled machine adds noise: compare ratios from one run, "
        "not µs across runs.\n`jwtmint bench` adds the other peers and the signing floor."
    )
