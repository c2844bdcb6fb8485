"""OpenTelemetry metrics and spans of token requests (imported only when opentelemetry-api is).

Instruments of the meter ``jwtmint`` (OpenTelemetry's naming rules: dotted lowercase
names, no ``_total``, UCUM units in the unit field); every one carries ``jwtmint.client``,
the client's name in the manager:

- ``jwtmint.token.request.duration``: histogram, s; ``error.type`` when the request failed
- ``jwtmint.assertion.mint.duration``: histogram, s (the assertions jwtmint signs itself)
- ``jwtmint.token.cache.hits``: observable counter, {hit}
- ``jwtmint.token.requests``: observable counter, {request}; ``jwtmint.request.trigger``
  (``caller`` or ``background``)
- ``jwtmint.token.request.failures``: observable counter, {request}; ``error.type``
- ``jwtmint.token.request.joins``: observable counter, {call}

The counters are observable: their callbacks read the clients' counters (the ones
``manager.stats()`` shows) when the meter collects, so a cache hit costs nothing more with
OpenTelemetry than without. Each token request (a flight: discovery, retries and all) is a
span, ``jwtmint token request``, with the client, the token endpoint's host and port, the
attempts made and, on failure, ``error.type`` and an error status; never a secret, an
assertion or a token, nor an exception's message.
"""

from __future__ import annotations

import asyncio
import itertools
import threading
import time
import weakref
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager

from opentelemetry import metrics, trace
from opentelemetry.metrics import CallbackOptions, Meter, MeterProvider, Observation
from opentelemetry.trace import SpanKind, Status, StatusCode, TracerProvider
from yarl import URL

from .. import __version__
from ._metrics import ClientCounters, error_code

__all__ = ["RequestRecord", "Telemetry"]

CLIENT = "jwtmint.client"
ERROR_TYPE = "error.type"
TRIGGER = "jwtmint.request.trigger"
SPAN_NAME = "jwtmint token request"
# seconds; OpenTelemetry's advice for HTTP client durations, and a mint's microseconds
REQUEST_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10)
MINT_BUCKETS = (1e-5, 2.5e-5, 5e-5, 1e-4, 2.5e-4, 5e-4, 1e-3, 2.5e-3, 5e-3, 1e-2, 5e-2)


class RequestRecord:
    """What the requester learns about one token request, for its span."""

    __slots__ = ("attempts", "endpoint", "minted")

    def __init__(self) -> None:
        self.attempts = 0
        self.endpoint: str | None = None
        #: seconds each assertion the request signed itself took to mint
        self.minted: list[float] = []


class _Instruments:
    """One meter provider's instruments, shared by every manager that reports to it (an
    SDK hands back the first instrument of a name, and ignores a later one's callbacks)."""

    def __init__(self, meter: Meter) -> None:
        self._lock = threading.Lock()
        #: the live managers' counters, by a number of their Telemetry's
        self._sources: dict[int, Mapping[str, ClientCounters]] = {}
        self._numbers = itertools.count()
        #: what managers that are gone had counted: a counter never goes back (a manager made
        #: again on a reload, or one per job, would otherwise look like a reset to backends)
        self._retired: dict[tuple[str, str, str], int] = {}
        self.duration = _histogram(
            meter,
            "jwtmint.token.request.duration",
            "Duration of token requests (discovery, every attempt and the waits between them)",
            REQUEST_BUCKETS,
        )
        self.mint = _histogram(
            meter,
            "jwtmint.assertion.mint.duration",
            "Time to sign a client assertion on the token request path",
            MINT_BUCKETS,
        )
        counters = (
            ("jwtmint.token.cache.hits", self._hits, "{hit}",
             "Calls answered from the token cache without waiting"),
            ("jwtmint.token.requests", self._requests, "{request}",
             "Token requests started, by callers or by background renewal"),
            ("jwtmint.token.request.failures", self._failures, "{request}",
             "Token requests that failed, by error code"),
            ("jwtmint.token.request.joins", self._joins, "{call}",
             "Calls that joined a token request already in flight"),
        )  # fmt: skip
        for name, callback, unit, description in counters:
            meter.create_observable_counter(name, [callback], unit=unit, description=description)

    def add(self, source: Telemetry) -> None:
        with self._lock:
            number = next(self._numbers)
            self._sources[number] = source.counters
        # the finalizer holds the counters, not the Telemetry: it runs when that goes
        weakref.finalize(source, self._retire, number)

    def _retire(self, number: int) -> None:
        with self._lock:
            counters = self._sources.pop(number, None)
            if counters is not None:
                _fold(self._retired, counters)

    def _totals(self) -> dict[tuple[str, str, str], int]:
        """(instrument, client, attribute value) -> count: the retired and the live managers'."""
        # collection may run on an exporter's thread while the loop's thread counts, and
        # the lock keeps a manager from being counted twice or not at all as it retires
        with self._lock:
            totals = dict(self._retired)
            for counters in self._sources.values():
                _fold(totals, counters)
        return totals

    def _observed(self, instrument: str, attribute: str | None) -> Iterable[Observation]:
        return [
            Observation(value, {CLIENT: name} | ({attribute: extra} if attribute else {}))
            for (kind, name, extra), value in self._totals().items()
            if kind == instrument
        ]

    def _hits(self, options: CallbackOptions) -> Iterable[Observation]:
        return self._observed("hits", None)

    def _joins(self, options: CallbackOptions) -> Iterable[Observation]:
        return self._observed("joins", None)

    def _requests(self, options: CallbackOptions) -> Iterable[Observation]:
        return self._observed("requests", TRIGGER)

    def _failures(self, options: CallbackOptions) -> Iterable[Observation]:
        return self._observed("failures", ERROR_TYPE)


def _fold(totals: dict[tuple[str, str, str], int], counters: Mapping[str, ClientCounters]) -> None:
    """Add one manager's counts to ``totals``, keyed as :meth:`_Instruments._totals` says."""

    def add(key: tuple[str, str, str], value: int) -> None:
        totals[key] = totals.get(key, 0) + value

    for name, c in counters.items():
        add(("hits", name, ""), c.hits)
        add(("joins", name, ""), c.joins)
        renewals = c.renewals
        add(("requests", name, "caller"), c.requests - renewals)
        add(("requests", name, "background"), renewals)
        for code, value in dict(c.failures).items():  # a copy: the loop's thread counts
            add(("failures", name, code), value)


_registry: weakref.WeakKeyDictionary[MeterProvider, _Instruments] = weakref.WeakKeyDictionary()
_registry_lock = threading.Lock()


class Telemetry:
    """One manager's instruments and tracer (``None`` providers: the global ones)."""

    __slots__ = ("__weakref__", "_instruments", "_tracer", "counters")

    def __init__(
        self,
        counters: Mapping[str, ClientCounters],
        meter_provider: MeterProvider | None,
        tracer_provider: TracerProvider | None,
    ) -> None:
        self.counters = counters
        provider = meter_provider if meter_provider is not None else metrics.get_meter_provider()
        with _registry_lock:
            instruments = _registry.get(provider)
            if instruments is None:
                meter = provider.get_meter("jwtmint", __version__)
                instruments = _registry[provider] = _Instruments(meter)
        instruments.add(self)
        self._instruments = instruments
        self._tracer = trace.get_tracer("jwtmint", __version__, tracer_provider=tracer_provider)

    @contextmanager
    def request(self, client: str) -> Iterator[RequestRecord]:
        """Time and trace one token request of ``client`` while the block runs."""
        record = RequestRecord()
        attributes = {CLIENT: client}
        started = time.perf_counter()
        with self._tracer.start_as_current_span(
            SPAN_NAME,
            kind=SpanKind.INTERNAL,
            attributes=attributes,
            record_exception=False,  # messages are secret-free, but tracebacks hold frames
            set_status_on_exception=False,
        ) as span:
            code: str | None = None
            try:
                yield record
            except BaseException as exc:
                code = "cancelled" if isinstance(exc, asyncio.CancelledError) else error_code(exc)
                raise
            finally:
                elapsed = time.perf_counter() - started
                for seconds in record.minted:
                    self._instruments.mint.record(seconds, attributes)
                if code is not None:
                    span.set_attribute(ERROR_TYPE, code)
                    span.set_status(Status(StatusCode.ERROR, code))
                    self._instruments.duration.record(elapsed, {**attributes, ERROR_TYPE: code})
                else:
                    self._instruments.duration.record(elapsed, attributes)
                span.set_attribute("jwtmint.token.attempts", record.attempts)
                if record.endpoint is not None:
                    url = URL(record.endpoint)
                    if url.host is not None:
                        span.set_attribute("server.address", url.host)
                    if url.port is not None:
                        span.set_attribute("server.port", url.port)


def _histogram(
    meter: Meter, name: str, description: str, buckets: tuple[float, ...]
) -> metrics.Histogram:
    try:
        return meter.create_histogram(
            name, unit="s", description=description, explicit_bucket_boundaries_advisory=buckets
        )
    except TypeError:  # opentelemetry-api before 1.23 takes no bucket advice
        return meter.create_histogram(name, unit="s", description=description)
