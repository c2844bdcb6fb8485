"""OpenTelemetry: the meter and tracer named jwtmint, seen through the SDK's in-memory reader
and exporter (no global provider touched), and a manager that works without OpenTelemetry."""

from __future__ import annotations

import asyncio
import gc
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from typing import Any

import pytest
from yarl import URL

pytest.importorskip("opentelemetry.sdk", reason="the test extra installs opentelemetry-sdk")

from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import (
    HistogramDataPoint,
    InMemoryMetricReader,
    Metric,
    NumberDataPoint,
)
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode

import jwtmint
from jwtmint.errors import TokenRequestError
from jwtmint.testing import Fault, TokenEndpoint
from jwtmint.tokens import ClientCredentialsClient, RetryPolicy, TokenManager

from .conftest import TOKEN_CLIENT_SECRET
from .test_token_manager import es_client

SECRET = TOKEN_CLIENT_SECRET


class Telemetry:
    """An SDK meter provider and tracer provider of the test's own, read in memory."""

    def __init__(self) -> None:
        self.reader = InMemoryMetricReader()
        self.meters = MeterProvider(metric_readers=[self.reader])
        self.spans = InMemorySpanExporter()
        self.tracers = TracerProvider()
        self.tracers.add_span_processor(SimpleSpanProcessor(self.spans))

    def manager(self, clients: dict[str, ClientCredentialsClient], **kwargs: Any) -> TokenManager:
        return TokenManager(
            clients, meter_provider=self.meters, tracer_provider=self.tracers, **kwargs
        )

    def metrics(self) -> dict[str, Metric]:
        data = self.reader.get_metrics_data()
        assert data is not None
        found: dict[str, Metric] = {}
        for resource in data.resource_metrics:
            for scope in resource.scope_metrics:
                assert scope.scope.name == "jwtmint"
                assert scope.scope.version == jwtmint.__version__
                found.update({metric.name: metric for metric in scope.metrics})
        return found

    def finished(self) -> tuple[ReadableSpan, ...]:
        return self.spans.get_finished_spans()


@pytest.fixture
def telemetry() -> Iterator[Telemetry]:
    state = Telemetry()
    yield state
    state.meters.shutdown()
    state.tracers.shutdown()


def points(metric: Metric) -> dict[frozenset[tuple[str, Any]], Any]:
    """The data points of ``metric`` by their attributes."""
    return {frozenset((p.attributes or {}).items()): p for p in metric.data.data_points}


def value(metric: Metric, **attributes: Any) -> int | float:
    point = points(metric)[frozenset(attributes.items())]
    assert isinstance(point, NumberDataPoint)
    return point.value


def basic(ep: TokenEndpoint, secret: str = SECRET) -> ClientCredentialsClient:
    return ClientCredentialsClient("basic", token_endpoint=ep.token_url, client_secret=secret)


async def test_counters_and_histograms_after_token_requests(
    endpoint: TokenEndpoint, telemetry: Telemetry
) -> None:
    clients = {"es": es_client(endpoint), "basic": basic(endpoint, "not the secret at all")}
    async with telemetry.manager(clients) as tokens:
        await asyncio.gather(*(tokens.get_token("es") for _ in range(5)))
        for _ in range(7):
            await tokens.get_token("es")
        with pytest.raises(TokenRequestError):
            await tokens.get_token("basic")
        stats = tokens.stats()
    found = telemetry.metrics()
    units = {name: metric.unit for name, metric in found.items()}
    assert units == {
        "jwtmint.token.request.duration": "s",
        "jwtmint.assertion.mint.duration": "s",
        "jwtmint.token.cache.hits": "{hit}",
        "jwtmint.token.requests": "{request}",
        "jwtmint.token.request.failures": "{request}",
        "jwtmint.token.request.joins": "{call}",
    }
    hits = found["jwtmint.token.cache.hits"]
    assert value(hits, **{"jwtmint.client": "es"}) == stats.clients["es"].hits == 7
    assert value(hits, **{"jwtmint.client": "basic"}) == 0
    assert hits.data.is_monotonic  # type: ignore[union-attr]
    requests = found["jwtmint.token.requests"]
    es_caller = {"jwtmint.client": "es", "jwtmint.request.trigger": "caller"}
    assert value(requests, **es_caller) == 1
    assert value(requests, **{**es_caller, "jwtmint.request.trigger": "background"}) == 0
    joins = found["jwtmint.token.request.joins"]
    assert value(joins, **{"jwtmint.client": "es"}) == 4
    failures = found["jwtmint.token.request.failures"]
    assert points(failures).keys() == {
        frozenset({("jwtmint.client", "basic"), ("error.type", "invalid_client")})
    }
    assert value(failures, **{"jwtmint.client": "basic", "error.type": "invalid_client"}) == 1

    durations = points(found["jwtmint.token.request.duration"])
    ok = durations[frozenset({("jwtmint.client", "es")})]
    refused = durations[frozenset({("jwtmint.client", "basic"), ("error.type", "invalid_client")})]
    for point in (ok, refused):
        assert isinstance(point, HistogramDataPoint)
        assert point.count == 1 and 0 < point.sum < 5  # seconds, not milliseconds
    assert ok.explicit_bounds[0] == 0.005
    mint = points(found["jwtmint.assertion.mint.duration"])
    # the ES256 client signs its assertion; the secret client mints none
    assert set(mint) == {frozenset({("jwtmint.client", "es")})}
    minted = mint[frozenset({("jwtmint.client", "es")})]
    assert isinstance(minted, HistogramDataPoint)
    assert minted.count == 1 and 0 < minted.sum < 0.5


async def test_each_token_request_is_a_span(endpoint: TokenEndpoint, telemetry: Telemetry) -> None:
    endpoint.fail_next(1, Fault(status=503))
    retries = RetryPolicy(attempts=3, backoff=0.01, max_backoff=0.02, deadline=5.0)
    clients = {"es": es_client(endpoint), "basic": basic(endpoint, "a wrong secret, long enough")}
    async with telemetry.manager(clients, retries=retries) as tokens:
        token = await tokens.get_token("es")
        await tokens.get_token("es")  # a cache hit: no span
        with pytest.raises(TokenRequestError):
            await tokens.get_token("basic")
    spans = telemetry.finished()
    assert [span.name for span in spans] == ["jwtmint token request"] * 2
    served, refused = spans
    assert served.instrumentation_scope is not None
    assert served.instrumentation_scope.name == "jwtmint"
    assert dict(served.attributes or {}) == {
        "jwtmint.client": "es",
        "jwtmint.token.attempts": 2,  # the 503, then the token
        "server.address": "127.0.0.1",
        "server.port": URL(endpoint.token_url).port,
    }
    assert served.status.status_code == StatusCode.UNSET
    assert refused.status.status_code == StatusCode.ERROR
    assert refused.status.description == "invalid_client"
    assert refused.attributes is not None and refused.attributes["error.type"] == "invalid_client"
    assert not refused.events  # no exception recorded: its traceback holds the request's frames
    # nothing secret on any span
    shown = repr([(s.attributes, s.events, s.status.description) for s in spans])
    for secret in (SECRET, token.access_token, "a wrong secret"):
        assert secret not in shown


async def test_a_background_renewal_is_its_own_trigger(telemetry: Telemetry) -> None:
    from .test_token_manager import FakeClock, wait_for

    clock = FakeClock()
    async with TokenEndpoint(clock=clock, token_lifetime=40) as ep:
        ep.register_client("basic", secret=SECRET)
        async with telemetry.manager({"basic": basic(ep)}, clock=clock, renewal_buffer=60) as t:
            await t.get_token("basic")
            clock.now += 21
            await t.get_token("basic")
            await wait_for(lambda: not t._flights)
    requests = telemetry.metrics()["jwtmint.token.requests"]
    trigger = {"jwtmint.client": "basic", "jwtmint.request.trigger": "background"}
    assert value(requests, **trigger) == 1
    assert value(requests, **{**trigger, "jwtmint.request.trigger": "caller"}) == 1
    assert len(telemetry.finished()) == 2


async def test_managers_on_one_provider_share_its_instruments(
    endpoint: TokenEndpoint, telemetry: Telemetry
) -> None:
    async with telemetry.manager({"es": es_client(endpoint)}) as first:
        await first.get_token("es")
        await first.get_token("es")
        async with telemetry.manager({"basic": basic(endpoint)}) as second:
            await second.get_token("basic")
            await second.get_token("basic")
            await second.get_token("basic")
            hits = telemetry.metrics()["jwtmint.token.cache.hits"]
    # the second manager's callbacks are not lost to the first's instruments
    assert value(hits, **{"jwtmint.client": "es"}) == 1
    assert value(hits, **{"jwtmint.client": "basic"}) == 2


async def test_counters_never_go_back_when_a_manager_is_gone(
    endpoint: TokenEndpoint, telemetry: Telemetry
) -> None:
    # a manager made again (a configuration reload): its predecessor's counts stay counted
    async with telemetry.manager({"es": es_client(endpoint)}) as first:
        for _ in range(5):
            await first.get_token("es")
    del first
    gc.collect()
    async with telemetry.manager({"es": es_client(endpoint)}) as second:
        await second.get_token("es")  # a request of its own, then one hit
        await second.get_token("es")
        found = telemetry.metrics()
    es = {"jwtmint.client": "es"}
    assert value(found["jwtmint.token.cache.hits"], **es) == 4 + 1
    requests = found["jwtmint.token.requests"]
    assert value(requests, **es, **{"jwtmint.request.trigger": "caller"}) == 2


def test_without_opentelemetry_the_manager_works_and_records_nothing() -> None:
    script = textwrap.dedent(
        """
        import asyncio, sys
        sys.modules["opentelemetry"] = None  # as if opentelemetry-api were not installed
        import jwtmint
        from jwtmint.errors import ConfigurationError
        from jwtmint.testing import TokenEndpoint
        from jwtmint.tokens import ClientCredentialsClient, TokenManager

        async def main():
            async with TokenEndpoint() as ep:
                ep.register_client("c", secret="s" * 32)
                client = ClientCredentialsClient("c", token_endpoint=ep.token_url,
                                                 client_secret="s" * 32)
                async with TokenManager({"c": client}) as tokens:
                    assert tokens._requester.telemetry is None
                    await tokens.get_token("c")
                    await tokens.get_token("c")
                    stats = tokens.stats().clients["c"]
                    assert (stats.hits, stats.misses, stats.requests) == (1, 1, 1), stats
            try:
                TokenManager({"c": client}, meter_provider=object())
            except ConfigurationError as exc:
                assert "jwtmint[otel]" in str(exc)
            else:
                raise AssertionError("a meter provider without opentelemetry was taken")
            assert [m for m in sys.modules if m.startswith("opentelemetry")] == ["opentelemetry"]
            print("ok")

        asyncio.run(main())
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "PYTHONWARNINGS": "error"},
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"


def test_importing_jwtmint_does_not_import_opentelemetry() -> None:
    script = (
        "import sys, jwtmint, jwtmint.tokens; "
        "print(any(m.startswith('opentelemetry') for m in sys.modules))"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "False"
