"""What per-client stats and OpenTelemetry cost the cached ``await tokens.get_token(name)``.

Three contenders on one loop, one loopback endpoint, one process:

* ``uncounted``: ``get_token`` as it was before issue #12 counted cache hits (the
  method's body of commit 0e9b581, in a subclass), the baseline;
* ``counted``: today's ``get_token`` (it counts the hit, and asks the memory cache's dict
  directly instead of calling its ``peek``), with no OpenTelemetry (as without
  opentelemetry-api: the manager's telemetry is None);
* ``counted+otel``: today's ``get_token`` on a manager reporting to an SDK
  ``MeterProvider`` (in-memory reader) and ``TracerProvider``.

The pytest-benchmark tests time each on its own (per round of ``AWAITS`` awaits, like
benchmarks/test_tokens.py); ``python -m benchmarks.test_token_metrics`` times them
interleaved (jwtmint.bench.timing: calibrated batches, round-robin, order rotated) and
prints ns per call, which is the figure the README quotes. Every timing fails if a token
request reached the endpoint meanwhile: the figures are cache hits.
"""

from __future__ import annotations

import asyncio
import itertools
import platform
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import pytest

from jwtmint.bench.timing import Batch, Timing, measure_async
from jwtmint.bench.token_measurements import get_token_batch
from jwtmint.errors import UnknownClientError
from jwtmint.testing import TokenEndpoint
from jwtmint.tokens import ClientCredentialsClient, Token, TokenManager
from jwtmint.tokens._cache import CacheKey

from .conftest import PedanticBenchmark, record_awaits

AWAITS = 10_000
ROUNDS = 60
WARMUP_ROUNDS = 5
SECRET = "a client secret long enough for anyone"
CONTENDERS = ("uncounted", "counted", "counted+otel")


class UncountedManager(TokenManager):
    """A TokenManager whose ``get_token`` counts no hits: the body before issue #12."""

    def __init__(self, clients: Mapping[str, ClientCredentialsClient], **kwargs: Any) -> None:
        super().__init__(clients, **kwargs)
        self._default_keys: dict[str, CacheKey] = {
            name: counters.key for name, counters in self._counters.items()
        }
        self._requester.telemetry = None

    async def get_token(
        self,
        name: str,
        *,
        force_renewal: bool = False,
        scope: str | Sequence[str] | None = None,
        resource: str | Sequence[str] | None = None,
        parameters: Mapping[str, str | Sequence[str]] | None = None,
        client_assertion: Any = None,
    ) -> Token:
        if scope is None and resource is None and parameters is None:
            key = self._default_keys.get(name)
            if key is None:
                raise UnknownClientError(name, self._clients)
        else:
            key = self._key(name, scope, resource, parameters)
        entry = None
        if not force_renewal:
            entry = self._cache.peek(key)
            if entry is not None and self._clock() < entry.renew_at:
                return entry.token
        return await self._flights.obtain(key, entry, force_renewal, client_assertion)


class Contenders:
    """The three managers, each holding one cached token from the same endpoint."""

    def __init__(self) -> None:
        self.endpoint = TokenEndpoint()
        self.managers: dict[str, TokenManager] = {}
        self._providers: list[Any] = []

    async def start(self) -> None:
        from opentelemetry.sdk.metrics import MeterProvider
        from opentelemetry.sdk.metrics.export import InMemoryMetricReader
        from opentelemetry.sdk.trace import TracerProvider

        await self.endpoint.start()
        self.endpoint.register_client("bench", secret=SECRET)
        client = ClientCredentialsClient(
            "bench", token_endpoint=self.endpoint.token_url, client_secret=SECRET
        )
        meters = MeterProvider(metric_readers=[InMemoryMetricReader()])
        tracers = TracerProvider()
        self._providers = [meters, tracers]
        plain = TokenManager({"name": client})
        plain._requester.telemetry = None  # what a manager is without opentelemetry-api
        self.managers = {
            "uncounted": UncountedManager({"name": client}),
            "counted": plain,
            "counted+otel": TokenManager(
                {"name": client}, meter_provider=meters, tracer_provider=tracers
            ),
        }
        for manager in self.managers.values():
            await manager.start()
            await manager.get_token("name")

    async def close(self) -> None:
        for manager in self.managers.values():
            await manager.aclose()
        for provider in self._providers:
            provider.shutdown()
        await self.endpoint.close()

    def requests(self) -> int:
        return self.endpoint.request_count()

    async def interleaved(self, repeats: int, batch_seconds: float) -> dict[str, Timing]:
        batches: list[tuple[str, Batch]] = [
            (name, get_token_batch(manager, "name")) for name, manager in self.managers.items()
        ]
        before = self.requests()
        timings = await measure_async(batches, repeats=repeats, batch_seconds=batch_seconds)
        assert self.requests() == before, "a timed call was not a cache hit"
        return timings


@pytest.fixture(scope="module")
def contenders() -> Iterator[tuple[asyncio.AbstractEventLoop, Contenders]]:
    pytest.importorskip("opentelemetry.sdk")
    loop = asyncio.new_event_loop()
    state = Contenders()
    try:
        loop.run_until_complete(state.start())
        yield loop, state
    finally:
        loop.run_until_complete(state.close())
        loop.close()


@pytest.mark.parametrize("name", CONTENDERS)
def test_cached_get_token_counted_and_instrumented(
    benchmark: PedanticBenchmark,
    contenders: tuple[asyncio.AbstractEventLoop, Contenders],
    name: str,
) -> None:
    benchmark.group = f"cached get_token: stats and OpenTelemetry, per {AWAITS} awaits"
    loop, state = contenders
    manager = state.managers[name]

    async def awaits() -> Token:
        get_token = manager.get_token
        for _ in itertools.repeat(None, AWAITS - 1):
            await get_token("name")
        return await get_token("name")

    before = state.requests()
    benchmark.pedantic(
        lambda: loop.run_until_complete(awaits()),
        rounds=ROUNDS,
        iterations=1,
        warmup_rounds=WARMUP_ROUNDS,
    )
    record_awaits(benchmark, loop, AWAITS)
    assert state.requests() == before  # every await was a cache hit


def test_interleaved_figures(
    benchmark: PedanticBenchmark, contenders: tuple[asyncio.AbstractEventLoop, Contenders]
) -> None:
    """The three interleaved, in extra_info (ns per call); timed: one interleaved run."""
    benchmark.group = "cached get_token: stats and OpenTelemetry, interleaved"
    loop, state = contenders
    found: dict[str, Timing] = {}

    def run() -> None:
        found.update(loop.run_until_complete(state.interleaved(repeats=7, batch_seconds=0.02)))

    benchmark.pedantic(run, rounds=1, iterations=1, warmup_rounds=0)
    for name, timing in found.items():
        benchmark.extra_info[f"{name}_median_ns"] = round(timing.median_us * 1000, 1)


def cpu_name() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as info:
            for line in info:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


async def _main(repeats: int, batch_seconds: float) -> None:
    import jwtmint

    state = Contenders()
    await state.start()
    try:
        timings = await state.interleaved(repeats, batch_seconds)
    finally:
        await state.close()
    base = timings["uncounted"].median_us
    print(f"cached await get_token(name), {repeats} interleaved batches of ~{batch_seconds} s")
    print(f"{cpu_name()}; Python {platform.python_version()}; jwtmint {jwtmint.IMPLEMENTATION}")
    for name, timing in timings.items():
        print(
            f"  {name:<14} {timing.median_us * 1000:7.1f} ns/call  "
            f"(IQR {timing.spread:5.1%}, x{timing.median_us / base:.3f})"
        )


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=31)
    parser.add_argument("--batch-seconds", type=float, default=0.05)
    args = parser.parse_args()
    asyncio.run(_main(args.repeats, args.batch_seconds))
