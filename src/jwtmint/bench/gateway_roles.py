"""The child processes of ``jwtmint bench gateway``: the gateway itself, and the load generator.

Each runs on its own event loop in its own process (``python -c``, started
by :mod:`jwtmint.bench.gateway`), so that each one's CPU time is its own.
The gateway answers ``GET /c/{client}/{tail}`` by forwarding it to
``{upstream}/api/{client}/{tail}`` with one of the ways of authenticating
that the benchmark compares (:data:`VARIANTS`); it prints one JSON line when
it listens, then answers ``cpu`` lines on stdin with its CPU seconds, and
stops at end of input. The load generator keeps ``concurrency`` requests in
flight against it for a warm-up and then a measured time, checks every
answer (status 200, and the upstream's record of whose token came), and
prints one JSON line of results.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
from aiohttp import web

from .._keys import generate_key
from ..tokens import ClientCredentialsClient, TokenManager
from ..tokens._runner import run as run_on_loop
from .timing import percentile
from .token_endpoint import loop_kind
from .token_peers import authlib_modules

__all__ = ["VARIANTS", "gateway", "load"]

#: the ways the gateway authenticates what it forwards, in the order of the report
FIXED, CACHED, RENEWING, AUTHLIB, AUTHLIB_RENEWING, DPOP = (
    "fixed-header",
    "jwtmint",
    "jwtmint-5s",
    "authlib",
    "authlib-5s",
    "jwtmint-dpop",
)
VARIANTS = (FIXED, CACHED, RENEWING, AUTHLIB, AUTHLIB_RENEWING, DPOP)

Forward = Callable[[aiohttp.ClientSession, str, str], Awaitable[tuple[int, bytes]]]


def _reply(document: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(document) + "\n")
    sys.stdout.flush()


async def _lines() -> asyncio.StreamReader:
    reader = asyncio.StreamReader()
    await asyncio.get_running_loop().connect_read_pipe(
        lambda: asyncio.StreamReaderProtocol(reader), sys.stdin
    )
    return reader


def gateway(config_json: str) -> None:
    """The gateway process: ``config_json`` names the variant, the upstream and the clients."""
    config = json.loads(config_json)
    run_on_loop(_gateway(config), use_uvloop=config["loop"] == "uvloop")


async def _gateway(config: dict[str, Any]) -> None:
    variant, upstream = config["variant"], config["upstream"]
    clients: dict[str, str] = config["clients"]  # client_id -> secret (client_secret_basic)
    async with (
        # a gateway passes on what the API answered; it never refuses on the API's behalf
        aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=config["connections"]), raise_for_status=False
        ) as session,
        _authenticator(variant, config, clients, upstream) as authenticator,
    ):
        forward = authenticator.forward
        app = web.Application()

        async def handle(request: web.Request) -> web.Response:
            name, tail = request.match_info["client"], request.match_info["tail"]
            status, body = await forward(session, name, f"{upstream}/api/{name}/{tail}")
            return web.Response(status=status, body=body, content_type="application/json")

        app.router.add_get(r"/c/{client}/{tail:.*}", handle)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", 0, backlog=1024).start()
        port = runner.addresses[0][1]
        _reply({"url": f"http://127.0.0.1:{port}", "event_loop": loop_kind(_loop())})
        stdin = await _lines()
        while line := await stdin.readline():
            if line.strip() == b"cpu":
                _reply({"cpu_s": time.process_time(), "waits": authenticator.waits()})
        await runner.cleanup()


def _loop() -> asyncio.AbstractEventLoop:
    return asyncio.get_running_loop()


class _Authenticator:
    """An async context manager yielding the variant's ``forward`` function, tokens fetched."""

    def __init__(
        self, variant: str, config: dict[str, Any], clients: dict[str, str], upstream: str
    ) -> None:
        self._variant, self._config, self._clients = variant, config, clients
        self._upstream = upstream
        self._closers: list[Callable[[], Awaitable[object]]] = []
        self.forward: Forward
        #: forwarded requests so far that waited for a token request (none for a fixed header)
        self.waits: Callable[[], int] = lambda: 0

    async def __aenter__(self) -> _Authenticator:
        self.forward = await self._start()
        return self

    async def _start(self) -> Forward:
        if self._variant in (AUTHLIB, AUTHLIB_RENEWING):
            return await self._authlib()
        tokens = TokenManager(
            {name: self._client(name, secret) for name, secret in self._clients.items()}
        )
        await tokens.start()
        # a miss is a call that found no fresh token and waited for a request
        self.waits = lambda: tokens.stats().misses
        self._closers.append(tokens.aclose)
        await asyncio.gather(*(tokens.get_token(name) for name in self._clients))
        if self._variant == FIXED:
            # one real token, fixed: the upstream checks it as it checks the others
            first = next(iter(self._clients))
            header = {"Authorization": f"Bearer {(await tokens.get_token(first)).access_token}"}

            async def fixed(
                session: aiohttp.ClientSession, name: str, url: str
            ) -> tuple[int, bytes]:
                async with session.get(url, headers=header) as response:
                    return response.status, await response.read()

            return fixed
        middlewares = {
            name: (tokens.middleware(name, origins=[self._upstream]),) for name in self._clients
        }

        async def with_middleware(
            session: aiohttp.ClientSession, name: str, url: str
        ) -> tuple[int, bytes]:
            async with session.get(url, middlewares=middlewares[name]) as response:
                return response.status, await response.read()

        return with_middleware

    def _client(self, name: str, secret: str) -> ClientCredentialsClient:
        return ClientCredentialsClient(
            name,
            token_endpoint=self._config["token_url"],
            client_secret=secret,
            # the gateway's own proof-of-possession key per client: nobody registers it
            dpop_key=generate_key("ES256") if self._variant == DPOP else None,
        )

    async def _authlib(self) -> Forward:
        _, client_class, _ = authlib_modules()
        oauth = {
            name: client_class(
                name,
                secret,
                token_endpoint=self._config["token_url"],
                grant_type="client_credentials",
                # authlib renews a token this many seconds before it expires (default 60:
                # every 5-second token would count as expired)
                leeway=1,
                trust_env=False,
            )
            for name, secret in self._clients.items()
        }
        for client in oauth.values():
            self._closers.append(client.aclose)
        waited = 0

        def waits() -> int:
            return waited

        self.waits = waits
        await asyncio.gather(*(client.fetch_token() for client in oauth.values()))

        async def with_authlib(
            session: aiohttp.ClientSession, name: str, url: str
        ) -> tuple[int, bytes]:
            nonlocal waited
            client = oauth[name]
            before = client.token
            # what authlib's own requests do first: renew the token if it has expired
            await client.ensure_active_token(client.token)
            # a new token came while this call awaited: it waited for (or on) a renewal
            waited += client.token is not before
            header = {"Authorization": f"Bearer {client.token['access_token']}"}
            async with session.get(url, headers=header) as response:
                return response.status, await response.read()

        return with_authlib

    async def __aexit__(self, *exc_info: object) -> None:
        for close in reversed(self._closers):
            await close()


def _authenticator(
    variant: str, config: dict[str, Any], clients: dict[str, str], upstream: str
) -> _Authenticator:
    if variant not in VARIANTS:
        raise ValueError(f"unknown gateway variant {variant!r}")
    return _Authenticator(variant, config, clients, upstream)


def load(config_json: str) -> None:
    """The load generator: ``concurrency`` requests in flight, then one JSON line of results."""
    config = json.loads(config_json)
    _reply(run_on_loop(_load(config), use_uvloop=config["loop"] == "uvloop"))


async def _load(config: dict[str, Any]) -> dict[str, Any]:
    names: list[str] = config["clients"]
    base, concurrency = config["url"], config["concurrency"]
    fixed_client: str | None = config.get("fixed_client")
    latencies: list[int] = []
    failures: list[str] = []
    measuring = False
    stop = False

    rate: float | None = config.get("rate")
    slots = itertools.count()
    begun = time.perf_counter_ns()

    async def worker(session: aiohttp.ClientSession, offset: int) -> None:
        i = offset
        clock = time.perf_counter_ns
        while not stop:
            name = names[i % len(names)]
            i += concurrency
            if rate is not None:
                # paced: the requests are due at a fixed rate, whatever the answers take (the
                # workers outnumber what that rate keeps in flight)
                delay = begun + next(slots) * 1e9 / rate - clock()
                if delay > 0:
                    await asyncio.sleep(delay / 1e9)
            started = clock()
            async with session.get(f"{base}/c/{name}/orders") as response:
                body = await response.read()
            elapsed = clock() - started
            expected = fixed_client or name
            # the upstream answers with the client its token was issued to
            if response.status != 200 or f'"client_id": "{expected}"'.encode() not in body:
                failures.append(f"{response.status} {body[:200]!r}")
            elif measuring:
                latencies.append(elapsed)

    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:
        tasks = [asyncio.create_task(worker(session, k)) for k in range(concurrency)]
        await asyncio.sleep(config["warmup_s"])
        measuring, cpu_before, started = True, time.process_time(), time.perf_counter()
        _reply({"phase": "measuring"})  # the parent samples the other processes' CPU now
        await asyncio.sleep(config["duration_s"])
        measuring, elapsed = False, time.perf_counter() - started
        cpu = time.process_time() - cpu_before
        _reply({"phase": "measured"})
        stop = True
        await asyncio.gather(*tasks)
    latencies.sort()
    count = len(latencies)

    def quantile(q: float) -> float:
        return percentile(latencies, q) / 1000 if count else 0.0

    return {
        "requests": count,
        "seconds": elapsed,
        "rps": count / elapsed,
        "p50_us": quantile(0.5),
        "p99_us": quantile(0.99),
        "cpu_s": cpu,
        "failures": len(failures),
        "first_failure": failures[0] if failures else None,
    }
