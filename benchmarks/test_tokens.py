"""Cached ``await tokens.get_token(name)``: our regression figure for issue #4 (target: 1.5 µs).

pytest-benchmark times sync callables and cannot await, so one round is one
``loop.run_until_complete(...)`` of a coroutine that awaits
``get_token("name")`` ``AWAITS`` times in a loop. The table's figures are
therefore per round of ``AWAITS`` awaits: divide by ``AWAITS``
(``extra_info["median_ns_per_call"]`` has it done). What a round costs
besides the awaits (one task, one turn of the event loop: a few µs) is
spread over ``AWAITS`` calls, well under 1 %. ``await noop()``, an empty
coroutine, is timed the same way as the floor: the cost of the loop and
the await alone.

The token comes from a loopback :class:`~jwtmint.testing.TokenEndpoint` on
the same loop (idle while timed); each test fails if a request reached it
during the benchmark, i.e. if the figure was not a cache hit. Runs on
asyncio, and on uvloop when it is installed. ``jwtmint bench tokens``
compares the same call with authlib's in one run.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Coroutine, Iterator
from typing import Any, TypeVar

import pytest

from jwtmint.testing import TokenEndpoint
from jwtmint.tokens import ClientCredentialsClient, Token, TokenManager

from .conftest import PedanticBenchmark, new_loop, record_awaits

T = TypeVar("T")

AWAITS = 10_000  # awaits per round
ROUNDS = 200
WARMUP_ROUNDS = 10
SECRET = "a client secret long enough for anyone"


class CachedToken:
    """A started TokenManager holding one fresh token, the endpoint and the loop they run on."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.endpoint = TokenEndpoint()
        self.manager: TokenManager | None = None
        self.token: Token | None = None

    async def start(self) -> None:
        await self.endpoint.start()
        self.endpoint.register_client("bench", secret=SECRET)
        client = ClientCredentialsClient(
            "bench", token_endpoint=self.endpoint.token_url, client_secret=SECRET
        )
        self.manager = TokenManager({"name": client})
        await self.manager.start()
        self.token = await self.manager.get_token("name")

    async def close(self) -> None:
        if self.manager is not None:
            await self.manager.aclose()
        await self.endpoint.close()

    def run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        return self.loop.run_until_complete(coroutine)


@pytest.fixture(params=["asyncio", "uvloop"])
def cached(request: pytest.FixtureRequest) -> Iterator[CachedToken]:
    loop = new_loop(request.param)
    state = CachedToken(loop)
    try:
        state.run(state.start())
        yield state
    finally:
        state.run(state.close())
        loop.close()


def test_cached_get_token(benchmark: PedanticBenchmark, cached: CachedToken) -> None:
    benchmark.group = f"cached get_token, per {AWAITS} awaits"
    manager = cached.manager
    assert manager is not None and cached.token is not None

    async def awaits() -> Token:
        get_token, name = manager.get_token, "name"
        for _ in itertools.repeat(None, AWAITS - 1):
            await get_token(name)
        return await get_token(name)

    before = cached.endpoint.request_count()
    token = benchmark.pedantic(
        lambda: cached.run(awaits()),
        rounds=ROUNDS,
        iterations=1,
        warmup_rounds=WARMUP_ROUNDS,
    )
    record_awaits(benchmark, cached.loop, AWAITS)
    # every await was a cache hit: no request, and the same token throughout
    assert cached.endpoint.request_count() == before == 1
    assert token.access_token == cached.token.access_token


async def _noop() -> None:
    return None


def test_await_noop_floor(benchmark: PedanticBenchmark, cached: CachedToken) -> None:
    benchmark.group = f"cached get_token, per {AWAITS} awaits"

    async def awaits() -> None:
        noop = _noop
        for _ in itertools.repeat(None, AWAITS):
            await noop()

    benchmark.pedantic(
        lambda: cached.run(awaits()),
        rounds=ROUNDS,
        iterations=1,
        warmup_rounds=WARMUP_ROUNDS,
    )
    record_awaits(benchmark, cached.loop, AWAITS)
