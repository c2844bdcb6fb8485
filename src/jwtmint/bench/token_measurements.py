"""The two measurements of ``jwtmint bench tokens``, each checked before it is believed.

**Cached token.** ``await tokens.get_token(name)`` for a cached, fresh
token, against authlib's cache check for the same kind of token,
``await client.ensure_active_token(client.token)`` on an
``AsyncOAuth2Client`` whose client_credentials token was fetched and has
not expired (what every authlib API call does first: take an
``anyio.Lock``, which yields to the event loop once, then
``token.is_expired(leeway)``). Each is timed as a loop of N awaits inside
one coroutine (:func:`jwtmint.bench.timing.measure_async`); ``await`` of an
empty coroutine is timed alongside as the floor. The token endpoint's
request count per client must not move while the clock runs, and both
clients must hand back the token they had before.

**Cold fetches.** Named clients each get their first token, ``concurrency``
at a time: jwtmint with one ``TokenManager`` for all clients (its own pooled
aiohttp session), authlib with one ``AsyncOAuth2Client`` per client, each
with its own httpx pool (authlib's default), or all on one shared
``httpx.AsyncHTTPTransport`` (jwtmint's layout; httpcore's pool then scans
every connection for every queued request: encode/httpcore#1035). Building
and closing the clients is not timed. Every round must end with one
distinct token per client, each live at the endpoint for the client that
asked for it, and the endpoint must have counted exactly one request per
client, all answered with a token.
"""

from __future__ import annotations

import asyncio
import gc
import itertools
import ssl
import time
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from dataclasses import dataclass
from typing import Any

from ..tokens import ClientCredentialsClient, TokenManager
from .settings import BASIC, Settings
from .timing import Batch, Timing, measure_async
from .token_endpoint import EndpointProcess, MeasurementError, loop_kind
from .token_peers import (
    AUTHLIB,
    CONNECTIONS,
    FLOOR,
    JWTMINT,
    ClientSpec,
    authlib_client,
    authlib_modules,
    jwtmint_client,
)

__all__ = [
    "CACHED_IDS",
    "CachedResult",
    "ColdFetcher",
    "ColdRound",
    "check_cold_round",
    "cold_authlib",
    "cold_jwtmint",
    "floor_batch",
    "get_token_batch",
    "measure_cached",
]

#: the client id of each peer's cached-token client
CACHED_IDS = {JWTMINT: "cached-jwtmint", AUTHLIB: "cached-authlib"}
#: (server, clients, concurrency) -> one round of cold fetches
ColdFetcher = Callable[
    [EndpointProcess, Sequence[ClientSpec], int], Coroutine[Any, Any, "ColdRound"]
]


@dataclass
class CachedResult:
    """Both clients' cached-token timings on one event loop, and the checks that held."""

    event_loop: str
    timings: dict[str, Timing]
    requests_while_timed: dict[str, int]
    token_unchanged: dict[str, bool]


async def _noop() -> None:
    return None


async def floor_batch(n: int) -> float:
    """A :data:`Batch` of ``n`` awaits of an empty coroutine: the floor of any await."""
    noop = _noop
    start = time.perf_counter()
    for _ in itertools.repeat(None, n):
        await noop()
    return time.perf_counter() - start


def get_token_batch(tokens: TokenManager, name: str) -> Batch:
    """A :data:`Batch` of ``n`` awaits of ``tokens.get_token(name)``."""

    async def batch(n: int) -> float:
        get_token = tokens.get_token
        start = time.perf_counter()
        for _ in itertools.repeat(None, n):
            await get_token(name)
        return time.perf_counter() - start

    return batch


async def measure_cached(
    server: EndpointProcess, secrets_by_id: dict[str, str], s: Settings
) -> CachedResult:
    """Time a cached token of each peer (``secrets_by_id``: the secret of each cached client)."""
    perf_counter, repeat = time.perf_counter, itertools.repeat
    jwt_client = ClientCredentialsClient(
        CACHED_IDS[JWTMINT], token_endpoint=server.token_url, client_secret=secrets_by_id[JWTMINT]
    )
    async with TokenManager({"name": jwt_client}) as tokens:
        spec = ClientSpec(CACHED_IDS[AUTHLIB], BASIC, secret=secrets_by_id[AUTHLIB])
        async with authlib_client(spec, server, trust_env=False) as client:
            first = await tokens.get_token("name")
            await client.fetch_token(server.token_url, grant_type="client_credentials")
            authlib_first = client.token["access_token"]
            # the fair equivalent: a token that authlib really judges unexpired (an int expires_at)
            if client.token.is_expired(leeway=client.leeway) is not False:
                raise MeasurementError("authlib's token has no expiry it checks, or has expired")

            async def authlib_batch(n: int) -> float:
                ensure, token = client.ensure_active_token, client.token
                start = perf_counter()
                for _ in repeat(None, n):
                    await ensure(token)
                return perf_counter() - start

            ids = list(CACHED_IDS.values())
            before = server.stats(ids)
            timings = await measure_async(
                [
                    (FLOOR, floor_batch),
                    (JWTMINT, get_token_batch(tokens, "name")),
                    (AUTHLIB, authlib_batch),
                ],
                repeats=s.rounds,
                batch_seconds=s.batch_seconds,
            )
            after = server.stats(ids)
            again = await tokens.get_token("name")
            moved = {
                peer: after.per_client[cid] - before.per_client[cid]
                for peer, cid in CACHED_IDS.items()
            }
            unchanged = {
                JWTMINT: again.access_token == first.access_token,
                AUTHLIB: client.token["access_token"] == authlib_first,
            }
    if any(moved.values()) or not all(unchanged.values()):
        raise MeasurementError(
            f"a cached-token loop left the cache: endpoint requests while timed {moved}, "
            f"token unchanged {unchanged}"
        )
    return CachedResult(loop_kind(asyncio.get_running_loop()), timings, moved, unchanged)


# -- cold fetches -----------------------------------------------------------------------------


@dataclass
class ColdRound:
    """One library's fetch of every client's first token."""

    wall_s: float
    client_cpu_s: float
    server_cpu_s: float
    tokens: int
    distinct: int
    requests: int
    issued: int
    live: int

    def per_request(self) -> dict[str, float]:
        return {
            "tokens_per_s": self.tokens / self.wall_s,
            "client_cpu_us": self.client_cpu_s / self.tokens * 1e6,
            "server_cpu_us": self.server_cpu_s / self.tokens * 1e6,
            # cores kept busy: near 1.0 on the endpoint's side means tokens/s measures the endpoint
            "client_busy": self.client_cpu_s / self.wall_s,
            "server_busy": self.server_cpu_s / self.wall_s,
        }


def check_cold_round(expected: int, result: ColdRound) -> None:
    """Every client got a token, all distinct, all live for their client; one request each."""
    problems = []
    if result.tokens != expected:
        problems.append(f"{result.tokens} tokens for {expected} clients")
    if result.distinct != result.tokens:
        problems.append(f"only {result.distinct} of {result.tokens} tokens are distinct")
    if result.requests != expected:
        problems.append(f"the endpoint counted {result.requests} requests, not {expected}")
    if result.issued != expected:
        problems.append(f"the endpoint issued {result.issued} tokens, not {expected}")
    if result.live != expected:
        problems.append(f"{result.live} of {expected} tokens are live for the client that got it")
    if problems:
        raise MeasurementError("cold fetches: " + "; ".join(problems))


async def _fetch_all(
    server: EndpointProcess,
    names: Sequence[str],
    fetch: Callable[[str], Awaitable[str]],
    concurrency: int,
) -> ColdRound:
    """``fetch`` every one of ``names``, ``concurrency`` at a time, timed and counted."""
    got: dict[str, str] = {}
    pending = iter(names)

    async def worker() -> None:
        for name in pending:  # one shared iterator: at most `concurrency` requests in flight
            got[name] = await fetch(name)

    gc.collect()
    before = server.stats()
    cpu, wall = time.process_time(), time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    after = server.stats()
    return ColdRound(
        wall_s=wall,
        client_cpu_s=cpu,
        server_cpu_s=after.cpu_s - before.cpu_s,
        tokens=len(got),
        distinct=len(set(got.values())),
        requests=after.requests - before.requests,
        issued=after.issued - before.issued,
        live=server.verify(got),
    )


async def cold_jwtmint(
    server: EndpointProcess, specs: Sequence[ClientSpec], concurrency: int
) -> ColdRound:
    """One TokenManager for all clients, on its own pooled aiohttp session."""
    configs = {spec.client_id: jwtmint_client(spec, server) for spec in specs}
    async with TokenManager(configs, connection_limit=CONNECTIONS) as tokens:

        async def fetch(name: str) -> str:
            return (await tokens.get_token(name)).access_token

        return await _fetch_all(server, list(configs), fetch, concurrency)


async def cold_authlib(
    server: EndpointProcess,
    specs: Sequence[ClientSpec],
    concurrency: int,
    *,
    shared_pool: bool = False,
) -> ColdRound:
    """One AsyncOAuth2Client per client, each with its own httpx pool (authlib's way), or
    all on one shared transport (``shared_pool``: jwtmint's layout, but httpcore 1.0.9's
    pool then scans every connection for every queued request)."""
    httpx = authlib_modules()[0]
    options: dict[str, Any] = {"trust_env": False}
    transport = None
    if shared_pool:
        limits = httpx.Limits(max_connections=CONNECTIONS, max_keepalive_connections=CONNECTIONS)
        transport = options["transport"] = httpx.AsyncHTTPTransport(limits=limits)
    else:
        # one context for all: building 1,000 would load the CA bundle 1,000 times (untimed
        # either way, and nothing here is https)
        options["verify"] = ssl.create_default_context()
    clients = {spec.client_id: authlib_client(spec, server, **options) for spec in specs}
    url = server.token_url

    async def fetch(name: str) -> str:
        token = await clients[name].fetch_token(url, grant_type="client_credentials")
        return str(token["access_token"])

    try:
        return await _fetch_all(server, list(clients), fetch, concurrency)
    finally:  # untimed
        for client in clients.values():
            await client.aclose()
        if transport is not None:
            await transport.aclose()
