"""Per-client token statistics: the counters the manager keeps, and the snapshots it hands out.

What adds up, for each client (and so for the totals in
:class:`TokenManagerStats`)::

    calls   = hits + misses
    misses  = (requests - renewals) + joins
    requests = tokens + sum(failures.values()) + requests in flight (+ those cancelled)

*calls* are ``get_token`` calls and the adapters' token lookups (aiohttp
middleware, httpx auth) that got a token or an error from a request, plus the
renewals a 401 from a resource asks for that got a token or waited for one. A
call that fails before it starts or joins a request (an unknown client name, a
manager not started, a client that only its callers can authenticate) is not
counted. The cache hit costs one more attribute write on the hot path: the
counters are reached by the same dict lookup that finds the client's cache key.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from ..errors import (
    ConfigurationError,
    DiscoveryError,
    InvalidTokenResponseError,
    ManagerNotRunningError,
    TokenEndpointError,
    TokenEndpointTimeout,
    TokenRequestError,
)
from ._cache import CacheKey, TokenCache

__all__ = ["ClientCounters", "ClientStats", "TokenManagerStats", "error_code", "snapshot"]

#: distinct failure codes kept per client; a server inventing more shows as "other"
MAX_ERROR_CODES = 16
# RFC 6749 §5.2: error is %x20-21 / %x23-5B / %x5D-7E; kept short for labels and attributes
_RFC6749_ERROR = re.compile(r"[\x20\x21\x23-\x5b\x5d-\x7e]{1,64}")


@dataclass(frozen=True, slots=True)
class ClientStats:
    """One client's counters (``manager.stats().clients[name]``).

    ``hits + misses`` is the client's calls that got a token or an error from
    a request, and ``misses == (requests - renewals) + joins``; see
    :mod:`jwtmint.tokens` (Metrics in the README) for what counts as a call.
    """

    #: calls answered from the cache without waiting: in process memory, in a shared tier
    #: (Redis) after a local miss, or a token near expiry served while its renewal starts
    hits: int
    #: calls that found no fresh token and waited: they started a request or joined one
    misses: int
    #: token requests started for this client (by callers, forced, or in the background);
    #: each may make several HTTP attempts
    requests: int
    #: of those, renewals started in the background while the cached token was served
    renewals: int
    #: calls that joined a request already in flight (single-flight)
    joins: int
    #: failed requests by RFC 6749 ``error`` code, or ``timeout``, ``unreachable``,
    #: ``invalid_response``, ``discovery``, ``http_<status>`` (a 5xx or 429 without an
    #: ``error``), ``configuration`` (nothing could authenticate), ``closed``, ``other``
    failures: Mapping[str, int]
    #: the code of the last failure, or None if none failed
    last_error: str | None
    #: seconds until the client's default token (no scope, resource or parameters of the
    #: call's own) expires; None when no valid one is cached
    expires_in: float | None
    #: requests that got a token
    tokens: int


@dataclass(frozen=True, slots=True)
class TokenManagerStats:
    """What a :class:`TokenManager` has done, for metrics (``manager.stats()``).

    A snapshot: its mappings are copies (plain dicts, so that ``dataclasses.asdict``,
    ``pickle`` and JSON take it), which nothing changes after it is made. The totals are
    sums over :attr:`clients`: ``hits + misses`` calls, and
    ``misses == (requests - background_renewals) + coalesced``.
    """

    #: token requests started (each may make several HTTP attempts)
    requests: int = 0
    #: HTTP attempts sent to token endpoints, retries included
    attempts: int = 0
    #: tokens received and cached
    tokens: int = 0
    #: requests that ended in an error (refusals and exhausted retries)
    failures: int = 0
    #: renewals started in the background while the cached token was served
    background_renewals: int = 0
    #: background renewals that failed (the cached token was served on)
    background_failures: int = 0
    #: callers that joined a request already in flight (the sum of the clients' ``joins``)
    coalesced: int = 0
    #: requests in flight now
    in_flight: int = 0
    #: DPoP nonces learned from token endpoints and APIs (RFC 9449 §8, §9)
    dpop_nonces: int = 0
    #: calls answered from the cache without waiting
    hits: int = 0
    #: calls that waited for a request (started or joined)
    misses: int = 0
    #: each client's counters, by client name
    clients: Mapping[str, ClientStats] = field(default_factory=dict)


class ClientCounters:
    """One client's live counters, and its default cache key (the hot path's lookup)."""

    __slots__ = (
        "background_failures",
        "failures",
        "hits",
        "joins",
        "key",
        "last_error",
        "misses",
        "renewals",
        "requests",
        "tokens",
    )

    def __init__(self, key: CacheKey) -> None:
        #: the cache key of the client's token when a call overrides nothing
        self.key = key
        self.hits = 0
        self.misses = 0
        self.requests = 0
        self.renewals = 0
        self.joins = 0
        self.tokens = 0
        self.background_failures = 0
        self.failures: dict[str, int] = {}
        self.last_error: str | None = None

    def __repr__(self) -> str:
        return f"ClientCounters(client={self.key.client!r}, hits={self.hits})"

    def failed(self, error: BaseException, *, background: bool) -> None:
        """Count a failed request under its code (see :func:`error_code`)."""
        code = error_code(error)
        failures = self.failures
        if code not in failures and len(failures) >= MAX_ERROR_CODES:
            code = "other"
        failures[code] = failures.get(code, 0) + 1
        self.last_error = code
        if background:
            self.background_failures += 1


def error_code(error: BaseException) -> str:
    """The code a failed token request is counted under: the server's RFC 6749 ``error``
    when it sent a well-formed one, else what kind of failure it was."""
    if isinstance(error, TokenRequestError) and error.error:
        code = error.error
        return code if _RFC6749_ERROR.fullmatch(code) else "invalid_response"
    if isinstance(error, TokenEndpointTimeout):
        return "timeout"
    if isinstance(error, DiscoveryError):
        return "discovery"
    if isinstance(error, InvalidTokenResponseError):
        return "invalid_response"
    if isinstance(error, TokenRequestError) and error.status is not None:
        # a 5xx that stayed, or a 404 page or bare 401 with no OAuth error in it
        return f"http_{error.status}"
    if isinstance(error, TokenEndpointError):
        return "unreachable"
    if isinstance(error, ManagerNotRunningError):
        return "closed"
    if isinstance(error, ConfigurationError):
        return "configuration"
    return "other"


def snapshot(
    counters: Mapping[str, ClientCounters],
    cache: TokenCache,
    clock: Callable[[], float],
    **manager: int,
) -> TokenManagerStats:
    """The stats of every client and their totals, now; ``manager`` adds what the manager
    counts itself (attempts, in_flight, dpop_nonces)."""
    now = clock()
    clients: dict[str, ClientStats] = {}
    for name, c in counters.items():
        entry = cache.peek(c.key)
        left = entry.token.expires_at - now if entry is not None else None
        clients[name] = ClientStats(
            hits=c.hits,
            misses=c.misses,
            requests=c.requests,
            renewals=c.renewals,
            joins=c.joins,
            failures=dict(c.failures),
            last_error=c.last_error,
            expires_in=left if left is not None and left > 0 else None,
            tokens=c.tokens,
        )
    every = counters.values()
    return TokenManagerStats(
        requests=sum(c.requests for c in every),
        tokens=sum(c.tokens for c in every),
        failures=sum(sum(c.failures.values()) for c in every),
        background_renewals=sum(c.renewals for c in every),
        background_failures=sum(c.background_failures for c in every),
        coalesced=sum(c.joins for c in every),
        hits=sum(c.hits for c in every),
        misses=sum(c.misses for c in every),
        clients=clients,
        **manager,
    )
