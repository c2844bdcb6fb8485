"""``jwtmint bench redis``: RedisTokenCache's hits, misses and fleet, checked and timed in one run.

The run (issue #10): start a throwaway ``redis-server``
(:class:`jwtmint.testing.RedisServer`) and the token endpoint in a child
process (:mod:`~jwtmint.bench.token_endpoint`); on asyncio (and uvloop when
it is installed) time every hit and miss contender in interleaved rounds
(:mod:`~jwtmint.bench.redis_measurements`); then the fleet
(:mod:`~jwtmint.bench.redis_fleet`). The results as plain JSON data, or as
the tables of :func:`jwtmint.bench.report.format_redis_report`.
"""

from __future__ import annotations

import functools
import secrets
import time
from collections.abc import Callable
from dataclasses import asdict
from typing import Any

from ..errors import ConfigurationError
from ..testing import RedisServer, redis_server_available
from ..tokens._runner import run as run_on_loop
from .command import run_command
from .environment import environment, version
from .redis_fleet import run_fleet
from .redis_measurements import (
    CLIENTS,
    GET,
    LOCAL,
    MEMORY,
    MISS_MEMORY,
    MISS_REDIS,
    REDIS,
    SEALED,
    SEALED_GET,
    LoopResult,
    measure_loop,
)
from .report import format_redis_report
from .settings import REDIS as REDIS_MODES
from .settings import RedisSettings
from .token_endpoint import EndpointProcess, event_loops

__all__ = ["TARGETS", "main", "run"]

#: issue #10: a local-tier hit within 10 % of MemoryTokenCache's; a Redis hit within 1.3x
#: of a bare GET of the same value
TARGETS = {"local_over_memory": 1.10, "redis_over_get": 1.3}
FLEET = "fleet"

Progress = Callable[[str], None]


def redis_environment(redis_url: str) -> dict[str, Any]:
    """The redis-server that ran, redis-py and hiredis (and whether redis-py uses it)."""
    from redis import Redis
    from redis.utils import HIREDIS_AVAILABLE

    with Redis.from_url(redis_url) as client:
        info = client.info("server")
    return {
        "redis_server": str(info["redis_version"]),
        "redis": version("redis"),
        "hiredis": version("hiredis"),
        "hiredis_in_use": bool(HIREDIS_AVAILABLE),
        "aiohttp": version("aiohttp"),
        "uvloop": version("uvloop"),
    }


def _ratios(result: LoopResult) -> dict[str, float]:
    median = {name: timing.median_us for name, timing in result.timings.items()}
    return {
        "local_over_memory": round(median[LOCAL] / median[MEMORY], 3),
        "redis_over_get": round(median[REDIS] / median[GET], 3),
        "sealed_over_get": round(median[SEALED] / median[SEALED_GET], 3),
        "miss_redis_over_memory": round(median[MISS_REDIS] / median[MISS_MEMORY], 3),
        "miss_redis_extra_us": round(median[MISS_REDIS] - median[MISS_MEMORY], 1),
    }


def run(
    settings: RedisSettings = REDIS_MODES.full, *, progress: Progress | None = None
) -> dict[str, Any]:
    """Check and time every measurement; the results as plain JSON data. Raises
    :class:`ConfigurationError` without redis-server or redis-py, :class:`MeasurementError`
    when a check fails."""
    say = progress or (lambda _text: None)
    started = time.perf_counter()
    if not redis_server_available():
        raise ConfigurationError("redis-server is not installed (Debian: apt install redis-server)")
    try:
        import redis  # noqa: F401
    except ImportError:
        raise ConfigurationError(
            "redis-py is not installed: pip install 'jwtmint[redis]'"
        ) from None
    loops = event_loops(settings.loops)
    fleet_loop = "uvloop" if "uvloop" in loops else loops[0]
    names = (*CLIENTS, FLEET)
    run_id = secrets.token_hex(4)
    ids = {name: f"rbench-{run_id}-{name}" for name in names}
    client_secrets = {name: secrets.token_urlsafe(32) for name in names}
    registrations = [{"client_id": ids[n], "secret": client_secrets[n]} for n in names]
    with RedisServer() as redis_server, EndpointProcess(registrations, loop=fleet_loop) as server:
        say(f"  redis-server on port {redis_server.port}, token endpoint on {server.event_loop}")
        results: dict[str, Any] = {}
        for loop in loops:
            say(f"  hits and misses on {loop}: {settings.rounds} rounds ...")
            result: LoopResult = run_on_loop(
                measure_loop(
                    server, redis_server.url, client_secrets, ids, f"rbench-{run_id}-{loop}-",
                    rounds=settings.rounds, batch_seconds=settings.batch_seconds,
                ),
                use_uvloop=loop == "uvloop",
            )  # fmt: skip
            ratios = _ratios(result)
            results[loop] = {
                "event_loop": result.event_loop,
                "contenders": {name: t.as_dict() for name, t in result.timings.items()},
                "calls": result.calls,
                "ratios": ratios,
                "meets": {name: ratios[name] <= target for name, target in TARGETS.items()},
                "checks": result.checks,
            }
        fleet = run_fleet(
            server, redis_server.url,
            {"client_id": ids[FLEET], "secret": client_secrets[FLEET]},
            f"rbench-{run_id}-fleet:", settings, loop=fleet_loop, progress=say,
        )  # fmt: skip
        redis_env = redis_environment(redis_server.url)
        server_loop = server.event_loop
    return {
        "tool": "jwtmint bench redis",
        "environment": {**environment(), **redis_env},
        "settings": {**asdict(settings), "loops": loops},
        "server": {
            "token_endpoint": "jwtmint.testing.TokenEndpoint in a child process, 127.0.0.1",
            "event_loop": server_loop,
            "redis": "redis-server on 127.0.0.1 (jwtmint.testing.RedisServer: no persistence)",
        },
        "targets": TARGETS,
        "loops": results,
        "fleet": fleet,
        "elapsed_s": round(time.perf_counter() - started, 1),
    }


def main(
    *,
    quick: bool,
    as_json: bool,
    repeats: int | None = None,
    batch_ms: float | None = None,
    settings: RedisSettings | None = None,
) -> int:
    """``jwtmint bench redis``: progress on stderr, the tables (or JSON) on stdout; 1 when
    redis-server is missing or a check fails."""
    chosen = (settings or REDIS_MODES.pick(quick)).overridden(repeats=repeats, batch_ms=batch_ms)
    return run_command(
        "redis", functools.partial(run, chosen), format_redis_report, quick=quick, as_json=as_json
    )
