"""The token-manager half of ``jwtmint demo``: three named clients against a loopback server.

A real :class:`~jwtmint.testing.TokenEndpoint` on 127.0.0.1 (discovery,
assertions verified, tokens issued), a :class:`~jwtmint.tokens.TokenManager`
with a private_key_jwt, a client_secret_jwt and a client_secret_basic client,
single-flight under 1,000 concurrent callers, the cost of a cached
``get_token``, and the middleware on an API call.
"""

from __future__ import annotations

import asyncio
import secrets
from typing import Any

import aiohttp

from .._keys import generate_key
from ..testing import TokenEndpoint
from ..tokens import ClientCredentialsClient, TokenManager
from ..tokens._runner import event_loop_name, run
from .settings import TOKEN_DEMO
from .timing import measure_async
from .token_measurements import get_token_batch

__all__ = ["run_token_demo"]


async def _demo(quick: bool) -> dict[str, Any]:
    key = generate_key("ES256")
    hmac_secret = secrets.token_urlsafe(32)
    basic_secret = secrets.token_urlsafe(24)
    async with TokenEndpoint() as server:
        server.register_client("invoice", public_key=key)
        server.register_client("billing", secret=hmac_secret, auth_method="client_secret_jwt")
        server.register_client("reports", secret=basic_secret)
        clients = {
            "invoice": ClientCredentialsClient(
                "invoice", issuer=server.issuer, private_key=key, scope="invoice.read"
            ),
            "billing": ClientCredentialsClient(
                "billing",
                issuer=server.issuer,
                client_secret=hmac_secret,
                auth_method="client_secret_jwt",
            ),
            "reports": ClientCredentialsClient(
                "reports", issuer=server.issuer, client_secret=basic_secret
            ),
        }
        async with TokenManager(clients) as tokens:
            first = await asyncio.gather(*(tokens.get_token(name) for name in clients))
            methods = {r.client_id: r.auth_method for r in server.requests}
            before = server.request_count()
            crowd = await asyncio.gather(
                *(tokens.get_token("invoice", scope="invoice.write") for _ in range(1000))
            )
            crowd_requests = server.request_count() - before
            cached_ns = await _time_cached(tokens, quick)
            async with (
                aiohttp.ClientSession(middlewares=[tokens.middleware("invoice")]) as api,
                api.get(f"{server.url}/api/invoices/42") as response,
            ):
                api_status, api_body = response.status, await response.json()
        return {
            "issuer": server.issuer,
            "tokens": {name: repr(token) for name, token in zip(clients, first, strict=True)},
            "methods": methods,
            "crowd_distinct": len({t.access_token for t in crowd}),
            "crowd_requests": crowd_requests,
            "cached_ns": cached_ns,
            "api": (api_status, api_body),
            "requests": server.request_count(),
        }


async def _time_cached(tokens: TokenManager, quick: bool) -> float:
    """Median ns per cached ``await get_token`` (the bench's interleaved batches)."""
    settings = TOKEN_DEMO.pick(quick)
    timings = await measure_async(
        [("get_token", get_token_batch(tokens, "invoice"))],
        repeats=settings.rounds,
        batch_seconds=settings.batch_seconds,
    )
    return timings["get_token"].median_us * 1000


def run_token_demo(*, quick: bool) -> dict[str, Any]:
    """Run the demo on uvloop when installed; print it and return the figures."""
    loop = event_loop_name()
    result = run(_demo(quick))
    result["event_loop"] = loop
    print(f"\ntoken manager ({loop}): a loopback authorization server at {result['issuer']}")
    for name, token in result["tokens"].items():
        print(f"  {name:<8} {result['methods'][name]:<20} {token}")
    print(
        f"  1,000 concurrent get_token calls for a new scope: {result['crowd_requests']} token "
        f"request, {result['crowd_distinct']} distinct token (single-flight)"
    )
    print(f"  cached get_token: {result['cached_ns']:.0f} ns median (no I/O, no lock)")
    status, body = result["api"]
    print(f"  API call through tokens.middleware('invoice'): HTTP {status} {body}")
    print(f"  {result['requests']} token requests in all, each authenticated for real")
    return result
