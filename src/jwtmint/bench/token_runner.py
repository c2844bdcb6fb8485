"""``jwtmint bench tokens``: TokenManager vs authlib's AsyncOAuth2Client, checked and timed.

The run (issue #4): make the clients and register them at a token endpoint
in a child process (:mod:`~jwtmint.bench.token_endpoint`), time a cached
token on asyncio (and uvloop when it is installed), then the cold fetches of
every client's first token, jwtmint and authlib alternating first from round
to round (:mod:`~jwtmint.bench.token_measurements`); the results as plain
JSON data, or as the tables of :func:`jwtmint.bench.report.format_tokens_report`.
"""

from __future__ import annotations

import functools
import secrets
import time
from collections.abc import Callable
from dataclasses import asdict
from typing import Any

from ..tokens._runner import run as run_on_loop
from .command import run_command
from .environment import environment, version
from .report import format_tokens_report
from .settings import TOKENS, Settings
from .timing import summarize
from .token_endpoint import EndpointProcess, event_loops
from .token_measurements import (
    CACHED_IDS,
    CachedResult,
    ColdFetcher,
    ColdRound,
    check_cold_round,
    cold_authlib,
    cold_jwtmint,
    measure_cached,
)
from .token_peers import AUTHLIB, CONNECTIONS, JWTMINT, authlib_modules, make_clients

__all__ = ["TARGET_US", "main", "run"]

#: issue #4: the median of a cached get_token
TARGET_US = 1.5

Progress = Callable[[str], None]


def run(settings: Settings = TOKENS.full, *, progress: Progress | None = None) -> dict[str, Any]:
    """Check and time both measurements; the results as plain JSON data."""
    say = progress or (lambda _text: None)
    started = time.perf_counter()
    loops = event_loops(settings.loops)
    cold_loop = "uvloop" if "uvloop" in loops else loops[0]
    authlib_modules()  # fail early, before keys are made, when the peer is missing
    say(f"  {settings.clients} clients per method: keys and secrets ...")
    specs = {method: make_clients(method, settings.clients) for method in settings.methods}
    cached_secrets = {peer: secrets.token_urlsafe(32) for peer in CACHED_IDS}
    registrations = [
        {"client_id": CACHED_IDS[peer], "secret": secret} for peer, secret in cached_secrets.items()
    ] + [spec.registration() for group in specs.values() for spec in group]
    say(f"  token endpoint process: {len(registrations)} clients registered ...")
    with EndpointProcess(registrations, loop=cold_loop) as server:
        cached: dict[str, Any] = {}
        for loop in loops:
            say(f"  cached token on {loop}: {settings.rounds} rounds ...")
            result: CachedResult = run_on_loop(
                measure_cached(server, cached_secrets, settings), use_uvloop=loop == "uvloop"
            )
            jwt_us, authlib_us = (
                result.timings[JWTMINT].median_us,
                result.timings[AUTHLIB].median_us,
            )
            cached[loop] = {
                "event_loop": result.event_loop,
                "contenders": {name: t.as_dict() for name, t in result.timings.items()},
                "ratio_authlib_over_jwtmint": round(authlib_us / jwt_us, 3),
                "jwtmint_meets_target": jwt_us <= TARGET_US,
                "endpoint_requests_while_timed": result.requests_while_timed,
                "token_unchanged": result.token_unchanged,
            }
        cold: dict[str, Any] = {}
        for method, group in specs.items():
            rounds: dict[str, list[ColdRound]] = {JWTMINT: [], AUTHLIB: []}
            fetchers: dict[str, ColdFetcher] = {
                JWTMINT: cold_jwtmint,
                AUTHLIB: functools.partial(cold_authlib, shared_pool=settings.authlib_shared_pool),
            }
            for round_no in range(settings.cold_rounds):
                say(f"  cold fetches, {method}: round {round_no + 1}/{settings.cold_rounds} ...")
                order = [JWTMINT, AUTHLIB] if round_no % 2 == 0 else [AUTHLIB, JWTMINT]
                for peer in order:
                    one: ColdRound = run_on_loop(
                        fetchers[peer](server, group, settings.concurrency),
                        use_uvloop=cold_loop == "uvloop",
                    )
                    check_cold_round(settings.clients, one)
                    rounds[peer].append(one)
            cold[method] = _cold_summary(rounds)
        server_loop = server.event_loop
    return {
        "tool": "jwtmint bench tokens",
        "environment": {
            **environment(),
            **{name: version(name) for name in ("aiohttp", "Authlib", "httpx", "anyio", "uvloop")},
        },
        "settings": {**asdict(settings), "methods": list(settings.methods), "loops": loops},
        "server": {
            "process": "child process (time.process_time() of this one is the client's alone)",
            "event_loop": server_loop,
            "clients_registered": len(registrations),
        },
        "cached": {"target_us": TARGET_US, "loops": cached},
        "cold": {
            "event_loop": cold_loop,
            "clients": settings.clients,
            "concurrency": settings.concurrency,
            "rounds": settings.cold_rounds,
            "jwtmint_pool": f"one aiohttp pool (limit {CONNECTIONS}) for all clients",
            "authlib_pool": (
                f"one shared httpx transport (limit {CONNECTIONS}, all kept alive)"
                if settings.authlib_shared_pool
                else "one httpx pool per AsyncOAuth2Client (authlib's default)"
            ),
            "methods": cold,
        },
        "elapsed_s": round(time.perf_counter() - started, 1),
    }


def _cold_summary(rounds: dict[str, list[ColdRound]]) -> dict[str, Any]:
    summary: dict[str, Any] = {}
    for peer, results in rounds.items():
        figures = [r.per_request() for r in results]
        summary[peer] = {
            metric: summarize([f[metric] for f in figures], 3)
            for metric in (
                "tokens_per_s",
                "client_cpu_us",
                "server_cpu_us",
                "client_busy",
                "server_busy",
            )
        }
        summary[peer]["rounds"] = [asdict(r) for r in results]
        summary[peer]["checked"] = all(r.live == r.tokens == r.distinct for r in results)
    jwt, peer = summary[JWTMINT], summary[AUTHLIB]
    summary["ratios"] = {
        "tokens_per_s_jwtmint_over_authlib": round(
            jwt["tokens_per_s"]["median"] / peer["tokens_per_s"]["median"], 3
        ),
        "client_cpu_authlib_over_jwtmint": round(
            peer["client_cpu_us"]["median"] / jwt["client_cpu_us"]["median"], 3
        ),
    }
    return summary


def main(
    *,
    quick: bool,
    as_json: bool,
    repeats: int | None = None,
    batch_ms: float | None = None,
    settings: Settings | None = None,
) -> int:
    """``jwtmint bench tokens``: progress on stderr, the tables (or JSON) on stdout."""
    chosen = (settings or TOKENS.pick(quick)).overridden(repeats=repeats, batch_ms=batch_ms)
    return run_command(
        "tokens", functools.partial(run, chosen), format_tokens_report, quick=quick, as_json=as_json
    )
