"""``jwtmint bench``: every peer, the floor and jwtmint, checked and then timed in one run.

For each algorithm: one fresh key, shared by every contender; each adapter's
first token is verified (PyJWT ``jwt.decode`` with audience and issuer) and a
contender that fails is reported and not timed; then the floor and every
checked contender are timed round-robin (:func:`jwtmint.bench.timing.measure`)
and checked once more. The ratios ("vs floor", "vs PyJWT") divide medians of
the same run, which is what makes them comparable on a noisy machine.
"""

from __future__ import annotations

import contextlib
import json
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from .._algorithms import ALGORITHMS
from .._progress import Progress
from .adapters import PEERS, REFERENCE, NotSupported, Peer, floor, quiet
from .environment import environment
from .job import check_token, new_key, pyjwt_installed
from .report import format_report
from .settings import BENCH, DEFAULT_ALGORITHMS
from .timing import measure

__all__ = ["main", "run", "select"]

FLOOR = "floor"

Say = Callable[[str], None]
#: ``steps(done, total, note)``: batches timed so far, of about ``total``, and what runs now
Steps = Callable[[int, int, str], None]


def _short(exc: BaseException) -> str:
    text = f"{type(exc).__name__}: {exc}".splitlines()[0]
    return text if len(text) <= 160 else text[:157] + "..."


def select(names: Sequence[str] | None, registry: Sequence[Peer] = PEERS) -> list[Peer]:
    """The peers to run, in table order; PyJWT is always one (it is the reference)."""
    known = {peer.name for peer in registry}
    unknown = [name for name in names or () if name not in known]
    if unknown:
        raise ValueError(f"unknown peer(s) {', '.join(unknown)}; known: {', '.join(known)}")
    wanted = set(names) | {REFERENCE} if names else known
    return [peer for peer in registry if peer.name in wanted]


def run(
    algorithms: Sequence[str] = DEFAULT_ALGORITHMS,
    peers: Sequence[str] | None = None,
    *,
    repeats: int = BENCH.full.rounds,
    batch_seconds: float = BENCH.full.batch_seconds,
    registry: Sequence[Peer] = PEERS,
    progress: Say | None = None,
    steps: Steps | None = None,
) -> dict[str, Any]:
    """Check and time ``peers`` (default: all) on ``algorithms``; the results as plain JSON data.

    ``progress(text)`` hears of each algorithm; ``steps`` counts the timed batches (a
    calibration is one) against a total that assumes every installed peer is timed: the
    count jumps at the end of an algorithm where a peer was not (n/a, failed)."""
    unknown = [alg for alg in algorithms if alg not in ALGORITHMS]
    if unknown:
        raise ValueError(f"unknown algorithm(s) {', '.join(unknown)}")
    say = progress or (lambda _text: None)
    started = time.perf_counter()
    contenders = select(peers, registry)
    use_pyjwt = pyjwt_installed()
    peer_info: dict[str, dict[str, Any]] = {}
    for peer in contenders:
        reason = peer.missing()
        peer_info[peer.name] = {
            "label": peer.label,
            "distribution": peer.distribution,
            "version": peer.version(),
            "status": "missing" if reason else "ok",
            "reason": reason,
        }
    present = [peer for peer in contenders if peer_info[peer.name]["status"] == "ok"]
    results: dict[str, Any] = {}
    checked = 0
    per_algorithm = (len(present) + 1) * (repeats + 1)  # the floor too; calibration + rounds
    total = per_algorithm * len(algorithms)
    if steps is not None:
        steps(0, total, "checking every contender's token")
    with quiet():
        for index, algorithm in enumerate(algorithms):
            say(f"  {algorithm}: new key, check every contender's token, time ...")
            step = _stepper(steps, index * per_algorithm, total, algorithm, peer_info)
            results[algorithm], count = _run_algorithm(
                algorithm, contenders, present, peer_info, use_pyjwt, repeats, batch_seconds,
                step,
            )  # fmt: skip
            checked += count
            if steps is not None:
                steps((index + 1) * per_algorithm, total, algorithm)
    return {
        "tool": "jwtmint bench",
        "environment": environment(),
        "settings": {
            "repeats": repeats,
            "batch_seconds": batch_seconds,
            "algorithms": list(algorithms),
            "peers": [peer.name for peer in contenders],
        },
        "checked_by": (
            "PyJWT jwt.decode (audience, issuer, required claims)"
            if use_pyjwt
            else "cryptography (PyJWT is not installed)"
        ),
        "tokens_checked": checked,
        "peers": peer_info,
        "results": results,
        "elapsed_s": round(time.perf_counter() - started, 1),
    }


def _stepper(
    steps: Steps | None, start: int, total: int, algorithm: str, info: dict[str, dict[str, Any]]
) -> Callable[[str], None] | None:
    if steps is None:
        return None
    done = start

    def step(name: str) -> None:
        nonlocal done
        done += 1
        label = info[name]["label"] if name in info else name
        steps(done, total, f"{algorithm} {label}")

    return step


def _run_algorithm(
    algorithm: str,
    contenders: Sequence[Peer],
    present: Sequence[Peer],
    peer_info: dict[str, dict[str, Any]],
    use_pyjwt: bool,
    repeats: int,
    batch_seconds: float,
    on_batch: Callable[[str], None] | None = None,
) -> tuple[dict[str, Any], int]:
    key = new_key(algorithm)
    base = floor(key, algorithm)
    base.verify(base.sign())
    cells: dict[str, dict[str, Any]] = {
        FLOOR: {"label": base.label, "status": "timed"},
    }
    for peer in contenders:
        info = peer_info[peer.name]
        cells[peer.name] = {"label": peer.label, "status": info["status"], "reason": info["reason"]}
    callables: list[tuple[str, Callable[[], object]]] = [(FLOOR, base.sign)]
    checked = 0

    def check(peer: Peer, mint: Callable[[], str], when: str) -> bool:
        nonlocal checked
        try:
            check_token(mint(), key, algorithm, use_pyjwt=use_pyjwt)
        except Exception as exc:  # a wrong token or a crash: report it, time nothing
            cells[peer.name].update(status="failed", reason=f"{when}: {_short(exc)}")
            return False
        checked += 1
        return True

    minters: dict[str, Callable[[], str]] = {}
    for peer in present:
        try:
            mint = peer.minter(key, algorithm)
        except NotSupported as exc:
            cells[peer.name].update(status="n/a", reason=str(exc) or None)
            continue
        except Exception as exc:
            cells[peer.name].update(status="failed", reason=f"adapter: {_short(exc)}")
            continue
        if check(peer, mint, "check before timing"):
            minters[peer.name] = mint
            callables.append((peer.name, mint))

    timings = measure(callables, repeats=repeats, batch_seconds=batch_seconds, on_batch=on_batch)
    base.verify(base.sign())
    for peer in present:
        if peer.name in minters and check(peer, minters[peer.name], "check after timing"):
            cells[peer.name].update(status="timed", reason=None)
    floor_us = timings[FLOOR].median_us
    reference = (
        timings.get(REFERENCE) if cells.get(REFERENCE, {}).get("status") == "timed" else None
    )
    for name, cell in cells.items():
        if cell["status"] != "timed":
            continue
        timing = timings[name]
        cell.update(timing.as_dict())
        cell["vs_floor"] = round(timing.median_us / floor_us, 3)
        cell["vs_pyjwt"] = (
            round(timing.median_us / reference.median_us, 3) if reference is not None else None
        )
    return {"kid": key.kid, "message_bytes": base.message_bytes, "contenders": cells}, checked


def main(
    *,
    algorithms: Sequence[str],
    peers: Sequence[str] | None,
    quick: bool,
    as_json: bool,
    repeats: int | None = None,
    batch_ms: float | None = None,
    plot: Path | None = None,
) -> int:
    """The ``jwtmint bench`` command: a progress bar on stderr (none with ``as_json``), the
    table (or JSON) on stdout, and with ``plot`` the chart written there as a PNG."""
    settings = BENCH.pick(quick, repeats=repeats, batch_ms=batch_ms)
    with contextlib.ExitStack() as stack:
        bars: list[Progress] = []  # made at the first step, when the total is known

        def steps(done: int, total: int, note: str) -> None:
            if not bars:
                bars.append(stack.enter_context(Progress(total, "jwtmint bench", quiet=as_json)))
            bars[0].update(done, note)

        results = run(
            algorithms, peers, repeats=settings.rounds,
            batch_seconds=settings.batch_seconds, steps=steps,
        )  # fmt: skip
    results["settings"]["quick"] = quick
    if plot is not None:
        from .plot import save_plot

        save_plot(results, plot)
        if not as_json:
            print(f"plot written to {plot}", file=sys.stderr)
    print(json.dumps(results, indent=2) if as_json else format_report(results))
    return 0
