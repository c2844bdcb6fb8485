"""One cache key's token as the HTTP adapters see it: the current one, and one after a 401."""

from __future__ import annotations

from collections.abc import Callable

from ._cache import CacheEntry, CacheKey
from ._dpop import ApiProofs
from ._flights import TokenFlights
from ._metrics import ClientCounters
from ._token import Token

__all__ = ["TokenSource"]


class TokenSource:
    """The token of one client (one cache key) for the aiohttp middleware and httpx auth.

    It gives the adapters what they need and nothing of the manager: the
    current token (a cache hit costs what ``TokenManager.get_token`` costs) and
    the token to retry with after a resource refused one.
    """

    __slots__ = ("_clock", "_counters", "_flights", "_peek", "dpop", "key")

    def __init__(
        self,
        key: CacheKey,
        peek: Callable[[CacheKey], CacheEntry | None],
        flights: TokenFlights,
        clock: Callable[[], float],
        dpop: ApiProofs | None,
        counters: ClientCounters,
    ) -> None:
        self.key = key
        # the client's stats (hits are counted here; the rest by the flights)
        self._counters = counters
        #: the proofs a DPoP client adds to its API calls, or None for a bearer-only client
        self.dpop = dpop
        # the manager's own cache lookup (tokens._cache.peeker): the same hot path
        self._peek = peek
        self._flights = flights
        self._clock = clock

    def __repr__(self) -> str:
        return f"TokenSource(client={self.key.client!r})"

    @property
    def client(self) -> str:
        return self.key.client

    async def current(self) -> Token:
        """A valid token: the cached one while it is fresh, else renewed as ``get_token`` does."""
        entry = self._peek(self.key)
        if entry is not None and self._clock() < entry.renew_at:
            self._counters.hits += 1
            return entry.token
        return await self._flights.obtain(self.key, entry, False, None)

    async def renew_after_refusal(self, refused: Token) -> Token | None:
        """The token to retry with after a resource answered 401 to ``refused``, or ``None``
        when there is no other (renewed too recently, the renewal failed and was logged, or
        the server handed ``refused`` back): the 401 stands."""
        return await self._flights.renew_after_refusal(self.key, refused)
