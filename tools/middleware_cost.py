"""What jwtmint's aiohttp middleware adds to a forwarded request, measured in one process:
``python tools/middleware_cost.py``.

A client session calls the ``/api`` of a loopback ``jwtmint.testing.TokenEndpoint`` (which checks
the token) 1,000 times a batch, four ways in interleaved rounds: a fixed ``Authorization``
header, a trivial middleware setting it, jwtmint's middleware, and ``get_token`` with the header
set by hand. CPU time of the process (client and server both) per request, medians of 7 rounds.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Awaitable, Callable

import aiohttp

from jwtmint.testing import TokenEndpoint
from jwtmint.tokens import ClientCredentialsClient, TokenManager, run

SECRET = "a client secret for the middleware's cost, long enough"
ROUNDS, BATCH = 7, 1000


async def main() -> None:
    async with TokenEndpoint() as endpoint:
        endpoint.register_client("c1", secret=SECRET)
        client = ClientCredentialsClient(
            "c1", token_endpoint=endpoint.token_url, client_secret=SECRET
        )
        async with TokenManager({"c1": client}) as tokens, aiohttp.ClientSession() as session:
            token = (await tokens.get_token("c1")).access_token
            header = {"Authorization": f"Bearer {token}"}
            jwtmint_middleware = tokens.middleware("c1", origins=[endpoint.url])
            url = f"{endpoint.url}/api/orders"

            async def trivial(
                request: aiohttp.ClientRequest, handler: aiohttp.ClientHandlerType
            ) -> aiohttp.ClientResponse:
                request.headers["Authorization"] = f"Bearer {token}"
                return await handler(request)

            async def fixed() -> None:
                async with session.get(url, headers=header) as response:
                    await response.read()

            async def trivial_middleware() -> None:
                async with session.get(url, middlewares=(trivial,)) as response:
                    await response.read()

            async def jwtmint_mw() -> None:
                async with session.get(url, middlewares=(jwtmint_middleware,)) as response:
                    await response.read()

            async def by_hand() -> None:
                current = await tokens.get_token("c1")
                headers = {"Authorization": current.authorization}
                async with session.get(url, headers=headers) as response:
                    await response.read()

            ways: dict[str, Callable[[], Awaitable[None]]] = {
                "fixed header": fixed,
                "trivial middleware": trivial_middleware,
                "jwtmint middleware": jwtmint_mw,
                "get_token by hand": by_hand,
            }
            times: dict[str, list[float]] = {name: [] for name in ways}
            for _ in range(ROUNDS):
                for name, way in ways.items():
                    started = time.process_time()
                    for _ in range(BATCH):
                        await way()
                    times[name].append((time.process_time() - started) / BATCH * 1e6)
    base = statistics.median(times["fixed header"])
    for name, values in times.items():
        median = statistics.median(values)
        print(f"{name:<20} {median:7.1f} µs CPU per request ({median - base:+.1f} µs)")


if __name__ == "__main__":
    run(main())
