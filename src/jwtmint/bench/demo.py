"""``jwtmint demo``: mint and time every algorithm vs PyJWT, then a fleet of clients, a verdict.

First the small sibling of ``jwtmint bench`` (the same job, adapters, checks and
timing, with jwtmint C, jwtmint py and PyJWT only, an example token decoded);
then the main job (:mod:`~jwtmint.bench.token_demo`): a few hundred named
clients of every authentication method getting tokens from a loopback
authorization server under concurrency. It ends with a summary that adds up
(:mod:`~jwtmint.bench.fleet_check`) and one ``verdict:`` line; the exit code is 1
when a check failed.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from .. import _kernels
from .._keys import SigningKey
from .._progress import Progress
from ..testing import TokenEndpoint
from .adapters import REFERENCE, get_peer
from .environment import environment
from .fleet_check import fleet_lines, fleet_result
from .job import (
    Minter,
    TokenCheckError,
    check_token,
    decode_segments,
    new_key,
    pyjwt_installed,
)
from .report import format_us
from .settings import DEMO
from .timing import Timing, measure
from .token_demo import FLEET, KINDS, FleetSettings, run_fleet

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


def _mint(
    algorithms: Sequence[str], *, quick: bool, quiet: bool, with_pyjwt: bool, with_c: bool
) -> list[AlgorithmRun]:
    """Every algorithm's contenders, checked, then timed; a bar while it runs."""
    settings = DEMO.pick(quick)
    runs: list[AlgorithmRun] = []
    with Progress(len(algorithms), "minting", quiet=quiet) as bar:
        for algorithm in algorithms:
            bar.update(len(runs), note=f"{algorithm}: new key, check tokens, time")
            run = prepare(algorithm, with_pyjwt=with_pyjwt, with_c=with_c)
            run.timings = measure(
                list(run.minters.items()),
                repeats=settings.rounds,
                batch_seconds=settings.batch_seconds,
            )
            runs.append(run)
        bar.update(len(runs), note="")
    return runs


def run_demo(
    algorithms: Sequence[str],
    *,
    quick: bool,
    as_json: bool,
    fleet: FleetSettings | None = None,
    after_setup: Callable[[TokenEndpoint], None] | None = None,
) -> int:
    """Mint, then run the token manager's fleet; print the summary and the verdict line.

    0 when every check held, 1 when one did not (the verdict says which). ``fleet``
    replaces the fleet's settings (default: :data:`~jwtmint.bench.token_demo.FLEET`);
    ``after_setup`` sees the endpoint before the first request (see
    :func:`~jwtmint.bench.token_demo.run_fleet`).
    """
    with_pyjwt = pyjwt_installed()
    with_c = _kernels.load_speedups() is not None
    settings = DEMO.pick(quick)
    started = time.perf_counter()
    env = environment()
    if not with_pyjwt:
        env["pyjwt"] = None
    if not as_json:
        _print_header(env, algorithms)
    problems: list[str] = []
    try:
        runs = _mint(algorithms, quick=quick, quiet=as_json, with_pyjwt=with_pyjwt, with_c=with_c)
    except TokenCheckError as exc:
        runs = []
        problems.append(f"a minted token did not verify: {exc}")
    base = "jwtmint-c" if with_c else "jwtmint-py"
    results: dict[str, Any] = {
        "environment": env,
        "settings": {
            "repeats": settings.rounds,
            "batch_seconds": settings.batch_seconds,
            "quick": quick,
        },
        "checked_by": "PyJWT jwt.decode" if with_pyjwt else "cryptography (no PyJWT)",
        "results": {run.algorithm: _timings(run, base) for run in runs},
    }
    if runs:
        example = next((r for r in runs if r.algorithm == "ES256"), runs[0])
        header, claims = decode_segments(example.minters[base]())
        results["example"] = {"algorithm": example.algorithm, "header": header, "claims": claims}
        if not as_json:
            _print_report(results, runs, base, with_pyjwt)
    fleet = fleet or FLEET[quick]
    if not as_json:
        print(f"\n{_fleet_heading(fleet)}", flush=True)
    fleet_run = run_fleet(fleet, quiet=as_json, after_setup=after_setup)
    results["fleet"] = fleet_result(fleet_run)
    problems.extend(results["fleet"]["problems"])
    elapsed = time.perf_counter() - started
    results["elapsed_s"] = round(elapsed, 1)
    results["verdict"] = _verdict(results["fleet"], problems, elapsed)
    if as_json:
        print(json.dumps(results, indent=2))
    else:
        print("\nsummary")
        print("\n".join(fleet_lines(results["fleet"])))
        print("\n".join(_mint_lines(results, base)))
        print(results["verdict"]["line"])
    return 0 if results["verdict"]["ok"] else 1


def _timings(run: AlgorithmRun, base: str) -> dict[str, Any]:
    pyjwt = run.timings.get(REFERENCE)
    return {
        "kid": run.key.kid,
        "timings": {name: timing.as_dict() for name, timing in run.timings.items()},
        "baseline": base,
        "pyjwt_over_baseline": (
            round(pyjwt.median_us / run.timings[base].median_us, 3) if pyjwt else None
        ),
    }


def _fleet_heading(fleet: FleetSettings) -> str:
    return (
        f"token manager: {fleet.clients} named clients ({fleet.clients_per_kind} of each of "
        f"{len(KINDS)} kinds: private_key_jwt ES256/384/512, RS256, PS256, EdDSA; "
        "client_secret_jwt HS256/384/512; client_secret_basic; client_secret_post)\n"
        "  against jwtmint.testing.TokenEndpoint on 127.0.0.1, which verifies every "
        f"client authentication\n  and issues tokens for {fleet.token_lifetime} s (renewed in "
        f"the background at half their life);\n  {fleet.stampede} callers at once for each "
        f"first token, then {fleet.calls:,} calls from {fleet.workers} concurrent workers "
        f"(random clients, {fleet.scope_share * 100:g}% another scope, "
        f"{fleet.force_share * 100:g}% force_renewal)"
    )


def _mint_lines(results: dict[str, Any], base: str) -> list[str]:
    """Mints per second of jwtmint and PyJWT per algorithm, from the timing above."""
    cells = []
    for algorithm, result in results["results"].items():
        timings = result["timings"]
        ours = 1e6 / timings[base]["median_us"]
        ratio = result["pyjwt_over_baseline"]
        vs = f" vs {1e6 / timings[REFERENCE]['median_us']:,.0f} ({ratio:.2f}x)" if ratio else ""
        cells.append(f"{algorithm} {ours:,.0f}{vs}")
    lines = [f"  mint/s    {_LABELS[base]} vs PyJWT, one run:"] if cells else []
    lines += ["            " + "; ".join(cells[i : i + 3]) for i in range(0, len(cells), 3)]
    return lines


def _verdict(fleet: dict[str, Any], problems: list[str], elapsed: float) -> dict[str, Any]:
    """The one line a reader (or a script) looks for: OK, or what failed."""
    if problems:
        line = f"verdict: FAILED — {'; '.join(problems)}"
    else:
        sums, tokens = fleet["sums"], fleet["tokens"]
        line = (
            f"verdict: OK — {sums['calls']:,} calls, {sums['requests']:,} requests, "
            f"all {tokens['verified']:,} tokens verified in {elapsed:.1f} s"
        )
    return {"ok": not problems, "line": line, "problems": problems}


def _print_header(env: dict[str, Any], algorithms: Sequence[str]) -> None:
    print(f"jwtmint {env['jwtmint']} demo: client assertions minted, checked and timed")
    print(f"  implementation: {env['implementation']} (C kernel: {env['c_kernel']})")
    print(
        f"  {env['python']} | cryptography {env['cryptography']} ({env['openssl']}) | "
        f"PyJWT {env['pyjwt'] or 'not installed'} | orjson {env['orjson']}"
    )
    print(f"  CPU: {env['cpu']}, {env['cpu_count']} logical ({env['cpu_usable']} usable)")
    print(f"\nminting with {len(algorithms)} algorithms: a key each, tokens checked, then timed")
    # before the bar (stderr) starts: a pipe would hold these lines until the table
    sys.stdout.flush()


def _print_report(
    results: dict[str, Any], runs: list[AlgorithmRun], base: str, with_pyjwt: bool
) -> None:
    settings = results["settings"]
    example = results["example"]
    tokens = sum(len(run.minters) for run in runs)
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
        "All contenders timed in this run, round-robin, GC off during batches. A shared or "
        "throttled\nmachine adds noise: compare ratios from one run, not µs across runs. "
        "`jwtmint bench` adds\nthe other peers and the signing floor.",
        flush=True,
    )
