"""The fleet of ``jwtmint bench redis``: instances in child processes asking for the same cold keys.

Each instance is its own process (:func:`instance`, driven over a pipe)
with two ``TokenManager`` s for one client: ``shared``, on its own
``RedisTokenCache`` (its own connection pool, its own pub/sub listener) in
front of the one Redis, and ``alone``, on a ``MemoryTokenCache`` (each
instance on its own, as without Redis). In a round every instance is told
the same fresh scopes (one cache key each) and a start time a moment
ahead; at that time each asks for all of them at once (``asyncio.gather``)
and reports the tokens it got, how long that took and its cache's lock
counters. The token endpoint counts the requests.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import subprocess
import sys
import time
from dataclasses import asdict
from typing import IO, Any

from ..tokens import ClientCredentialsClient, RedisTokenCache, TokenManager
from ..tokens._runner import run as run_on_loop
from .settings import RedisSettings
from .token_endpoint import EndpointProcess, MeasurementError

__all__ = ["ALONE", "SHARED", "Fleet", "fleet_round", "instance", "run_fleet"]

SHARED, ALONE = "shared", "alone"
_CHILD = "import sys; from jwtmint.bench.redis_fleet import instance; instance(sys.argv[1])"
#: how far ahead of now a round starts: every instance has read its command by then
_LEAD_SECONDS = 0.1
_COUNTERS = ("locks_taken", "lock_waits", "lock_waits_expired", "hits", "errors")


def instance(loop: str = "asyncio") -> None:
    """The child's side: its configuration on stdin, then one round per line until EOF."""
    run_on_loop(_instance(), use_uvloop=loop == "uvloop")


def _reply(document: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(document) + "\n")
    sys.stdout.flush()


async def _instance() -> None:
    running = asyncio.get_running_loop()

    async def readline() -> str:  # in a thread: the cache's listener runs meanwhile
        return await running.run_in_executor(None, sys.stdin.readline)

    config = json.loads(await readline())
    client = ClientCredentialsClient(
        config["client_id"], token_endpoint=config["token_url"], client_secret=config["secret"]
    )
    async with (
        RedisTokenCache(config["redis_url"], prefix=config["prefix"]) as cache,
        TokenManager({"fleet": client}, cache=cache) as shared,
        TokenManager({"fleet": client}) as alone,
    ):
        for manager in (shared, alone):
            # as many requests at once as a round makes, on keys of this instance's own: the
            # pools hold that many connections (a fleet in steady state), the listener started
            await asyncio.gather(
                *(
                    manager.get_token("fleet", scope=f"warm-up-{config['index']}-{i}")
                    for i in range(config["keys"])
                )
            )
        _reply({"ready": True})
        while line := await readline():
            command = json.loads(line)
            manager = shared if command["mode"] == SHARED else alone
            await asyncio.sleep(max(0.0, command["at"] - time.time()))
            before = asdict(cache.stats())
            start = time.perf_counter()
            tokens = await asyncio.gather(
                *(manager.get_token("fleet", scope=scope) for scope in command["scopes"])
            )
            wall = time.perf_counter() - start
            after = asdict(cache.stats())
            _reply(
                {
                    "tokens": [token.access_token for token in tokens],
                    "wall_s": wall,
                    **{name: after[name] - before[name] for name in _COUNTERS},
                }
            )


class Fleet:
    """``size`` instance processes, started together; a context manager."""

    def __init__(self, size: int, config: dict[str, Any], *, loop: str) -> None:
        self._size, self._config, self._loop = size, config, loop
        self._processes: list[subprocess.Popen[bytes]] = []

    def __enter__(self) -> Fleet:
        try:
            for _ in range(self._size):  # all started before any is waited for
                self._processes.append(
                    subprocess.Popen(
                        [sys.executable, "-c", _CHILD, self._loop],
                        stdin=subprocess.PIPE,
                        stdout=subprocess.PIPE,
                    )
                )
            for index, _ in enumerate(self._processes):
                self._send(index, {**self._config, "index": index})
            for index, _ in enumerate(self._processes):
                self._receive(index)
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _pipes(self, index: int) -> tuple[IO[bytes], IO[bytes]]:
        process = self._processes[index]
        assert process.stdin is not None and process.stdout is not None
        return process.stdin, process.stdout

    def _send(self, index: int, command: dict[str, Any]) -> None:
        stdin = self._pipes(index)[0]
        stdin.write(json.dumps(command).encode() + b"\n")
        stdin.flush()

    def _receive(self, index: int) -> dict[str, Any]:
        line = self._pipes(index)[1].readline()
        if not line:
            raise MeasurementError(f"fleet instance {index} ended unexpectedly")
        answer: dict[str, Any] = json.loads(line)
        return answer

    def round(self, mode: str, scopes: list[str]) -> list[dict[str, Any]]:
        """Every instance asks for all of ``scopes`` at once, in ``mode``; their replies."""
        command = {"mode": mode, "scopes": scopes, "at": time.time() + _LEAD_SECONDS}
        for index, _ in enumerate(self._processes):
            self._send(index, command)
        return [self._receive(index) for index, _ in enumerate(self._processes)]

    def close(self) -> None:
        processes, self._processes = self._processes, []
        for process in processes:
            if process.stdin is not None:
                with contextlib.suppress(OSError):
                    process.stdin.close()  # end of input: the instance stops
        for process in processes:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
            if process.stdout is not None:
                process.stdout.close()


def run_fleet(
    server: EndpointProcess,
    redis_url: str,
    client: dict[str, str],
    prefix: str,
    settings: RedisSettings,
    *,
    loop: str,
    progress: Any = None,
) -> dict[str, Any]:
    """Start the fleet, run ``fleet_rounds`` rounds of each mode (which goes first alternates),
    check each: with the shared lock one request per key, and every instance the same token
    for it; alone one request per key per instance. Every token live at the endpoint."""
    size, keys = settings.fleet_instances, settings.fleet_keys
    config = {"redis_url": redis_url, "token_url": server.token_url, "prefix": prefix, "keys": keys}
    config |= client
    rounds: dict[str, list[dict[str, Any]]] = {SHARED: [], ALONE: []}
    with Fleet(size, config, loop=loop) as fleet:
        _wait_for_listeners(redis_url, prefix, size)
        for round_no in range(settings.fleet_rounds):
            for mode in (SHARED, ALONE) if round_no % 2 == 0 else (ALONE, SHARED):
                if progress is not None:
                    progress(f"  fleet of {size}, {keys} cold keys, {mode}: round {round_no + 1}")
                scopes = [f"fleet-{mode}-{round_no}-{i}" for i in range(keys)]
                before = server.stats([client["client_id"]]).per_client[client["client_id"]]
                replies = fleet.round(mode, scopes)
                after = server.stats([client["client_id"]]).per_client[client["client_id"]]
                figures = fleet_round(replies, mode, keys)
                tokens = {token for reply in replies for token in reply["tokens"]}
                figures["requests"] = after - before
                figures["live"] = server.verify_pairs((client["client_id"], t) for t in tokens)
                _check(figures, size)
                rounds[mode].append(figures)
    return {
        "instances": size,
        "keys": keys,
        "processes": f"{size} child processes, each its own TokenManager and cache on {loop}",
        "rounds": rounds,
        "requests_median": {
            mode: sorted(r["requests"] for r in results)[len(results) // 2]
            for mode, results in rounds.items()
        },
    }


def _check(figures: dict[str, Any], size: int) -> None:
    keys, mode = figures["keys"], figures["mode"]
    expected = keys if mode == SHARED else keys * size
    problems = []
    if figures["requests"] != expected:
        problems.append(f"{figures['requests']} token requests, not {expected}")
    if figures["tokens"] != keys * size:
        problems.append(f"{figures['tokens']} tokens for {keys} keys x {size} instances")
    if figures["distinct"] != expected or figures["live"] != expected:
        problems.append(f"{figures['distinct']} distinct, {figures['live']} live tokens")
    if mode == SHARED and not figures["same_tokens_everywhere"]:
        problems.append("the instances hold different tokens for one key")
    # Redis errors (late replies while 8 processes burst on 2 cores) are reported, not a
    # failure: what they must not cost is an extra token request, checked above
    if problems:
        raise MeasurementError(f"fleet, {mode}: " + "; ".join(problems))


def _wait_for_listeners(redis_url: str, prefix: str, size: int) -> None:
    """Until every instance's cache listens for the others' writes (subscribing empties its
    in-process tier: not something to happen mid-round)."""
    from redis import Redis

    deadline = time.monotonic() + 10.0
    with Redis.from_url(redis_url) as redis:
        while True:
            channels = redis.pubsub_channels(f"{prefix}*")
            listening = sum(n for _, n in redis.pubsub_numsub(*channels)) if channels else 0
            if listening >= size:
                return
            if time.monotonic() > deadline:
                raise MeasurementError(f"only {listening} of {size} fleet instances subscribed")
            time.sleep(0.01)


def fleet_round(replies: list[dict[str, Any]], mode: str, keys: int) -> dict[str, Any]:
    """One round's figures from the instances' replies, before the endpoint's count is added."""
    tokens = [reply["tokens"] for reply in replies]
    same = all(got == tokens[0] for got in tokens)
    return {
        "mode": mode,
        "keys": keys,
        "tokens": sum(len(got) for got in tokens),
        "distinct": len({token for got in tokens for token in got}),
        "same_tokens_everywhere": same,
        "wall_ms": round(max(reply["wall_s"] for reply in replies) * 1000, 2),
        **{name: sum(reply[name] for reply in replies) for name in _COUNTERS},
    }
