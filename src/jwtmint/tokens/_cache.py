"""Token caches: the key that tells requests apart, and the in-process store.

A cache holds :class:`CacheEntry` values: the token and the epoch second
after which the manager renews it. Deadlines are epoch seconds rather than
``time.monotonic()`` because a token's expiry is the server's wall-clock
time and a shared (Redis) tier must store values that mean the same in every
process.

The :class:`TokenCache` protocol has one synchronous method, :meth:`peek`,
which must answer from process memory without I/O: it is the whole cost of
a cache hit. A shared tier keeps a local copy for ``peek`` and does its I/O
in the async methods, which the manager awaits only on a miss.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import NamedTuple, Protocol, runtime_checkable

from ..errors import ConfigurationError
from ._token import Token

__all__ = ["CacheEntry", "CacheKey", "MemoryTokenCache", "TokenCache", "cache_key", "peeker"]

Parameters = tuple[tuple[str, tuple[str, ...]], ...]


class CacheKey(NamedTuple):
    """What makes two token requests interchangeable.

    Every input that can change the token the server issues is in the key:
    the client (its name here, and its ``client_id`` at its server, so that
    managers sharing a cache never trade tokens between two clients that
    happen to have one name), scope, resources (RFC 8707) and every custom
    parameter (Duende.AccessTokenManagement keys on the client and scope
    only, its Support#634), plus the thumbprint of a DPoP key (RFC 9449),
    for when tokens are bound to one.
    """

    client: str
    identity: str = ""
    scope: str | None = None
    resource: tuple[str, ...] = ()
    parameters: Parameters = ()
    dpop_jkt: str | None = None

    def __repr__(self) -> str:
        # parameter values may be sensitive (a tenant, a user hint): names only
        names = ",".join(name for name, _ in self.parameters)
        return (
            f"CacheKey(client={self.client!r}, identity={self.identity!r}, scope={self.scope!r}, "
            f"resource={self.resource!r}, parameters=[{names}], dpop_jkt={self.dpop_jkt!r})"
        )


def normalize_resource(resource: str | Sequence[str] | None) -> tuple[str, ...]:
    if resource is None:
        return ()
    if isinstance(resource, str):
        return (resource,)
    return tuple(sorted(set(resource)))


def normalize_parameters(
    parameters: Mapping[str, str | Sequence[str]] | None,
) -> Parameters:
    if not parameters:
        return ()
    items = []
    for name, value in parameters.items():
        values = (value,) if isinstance(value, str) else tuple(value)
        items.append((name, values))
    return tuple(sorted(items))


def cache_key(
    client: str,
    identity: str,
    scope: str | None,
    resource: tuple[str, ...],
    parameters: Parameters,
    dpop_jkt: str | None = None,
) -> CacheKey:
    """The key for normalised request parts; ``"a b"`` and ``"b a"`` scopes share it."""
    normal_scope = " ".join(sorted(set(scope.split()))) if scope else None
    return CacheKey(client, identity, normal_scope, resource, parameters, dpop_jkt)


@dataclass(frozen=True, slots=True)
class CacheEntry:
    """A cached token and the epoch second from which it is renewed."""

    token: Token
    renew_at: float


@runtime_checkable
class TokenCache(Protocol):
    """Where a :class:`~jwtmint.tokens.TokenManager` keeps tokens.

    ``peek`` answers from process memory (no I/O, no await): the hot path.
    ``get`` may look further (a shared tier) on a miss; ``set`` and
    ``delete`` write through. ``lock`` is held around each token request
    for a key, entered and exited in the requesting task (its ``__aenter__``
    must be safe to cancel: the wait is bounded): in-process single-flight
    already makes one request per key, so the plain :class:`MemoryTokenCache`
    is not asked at all, and a shared tier's lock makes it one request per
    key across every process that shares it (the manager reads the tier
    again once it holds the lock). The manager waits for the lock within the token
    request's deadline (``RetryPolicy.deadline``), which also covers the request, then
    fails with ``TokenEndpointTimeout``. A cache whose lock lets a waiter go on without
    it after a while (``__aenter__`` returns without holding it) says so with a
    ``max_lock_wait`` attribute (seconds, the longest that can take): the manager then
    waits at most half of what is left of the deadline, and goes on without it too.
    """

    def peek(self, key: CacheKey) -> CacheEntry | None: ...

    async def get(self, key: CacheKey) -> CacheEntry | None: ...

    async def set(self, key: CacheKey, entry: CacheEntry) -> None: ...

    async def delete(self, key: CacheKey) -> None: ...

    def lock(self, key: CacheKey) -> AbstractAsyncContextManager[object]: ...


class MemoryTokenCache:
    """An in-process cache, bounded to ``max_entries``.

    When full, the entry whose token expires first goes (an expired one, if
    any; the oldest written among equals). Parameters chosen per request can
    make many keys; the bound keeps a misbehaving caller from growing the
    process without limit.
    """

    __slots__ = ("_entries", "max_entries")

    def __init__(self, max_entries: int = 10_000) -> None:
        if type(max_entries) is not int or max_entries < 1:
            raise ConfigurationError(f"max_entries must be a positive int, got {max_entries!r}")
        self.max_entries = max_entries
        self._entries: dict[CacheKey, CacheEntry] = {}

    def __len__(self) -> int:
        return len(self._entries)

    def __repr__(self) -> str:
        return f"MemoryTokenCache(entries={len(self._entries)}, max_entries={self.max_entries})"

    def peek(self, key: CacheKey) -> CacheEntry | None:
        return self._entries.get(key)

    async def get(self, key: CacheKey) -> CacheEntry | None:
        return self._entries.get(key)

    async def set(self, key: CacheKey, entry: CacheEntry) -> None:
        entries = self._entries
        entries.pop(key, None)  # re-inserted last: the newest
        if len(entries) >= self.max_entries:
            self._evict()
        entries[key] = entry

    async def delete(self, key: CacheKey) -> None:
        self.discard(key)

    def clear(self) -> None:
        self._entries.clear()

    def discard(self, key: CacheKey) -> bool:
        """Drop ``key`` now (no await); whether it was there."""
        return self._entries.pop(key, None) is not None

    def lock(self, key: CacheKey) -> AbstractAsyncContextManager[object]:
        # one process: the manager's single-flight is the lock
        return contextlib.nullcontext()

    def _evict(self) -> None:
        entries = self._entries
        # the token that expires first (an expired one, if any) has the least value left;
        # min() keeps the first of equals, and dict order is write order: the oldest
        victim = min(entries.items(), key=lambda item: item[1].token.expires_at)[0]
        del entries[victim]


def peeker(cache: TokenCache) -> Callable[[CacheKey], CacheEntry | None]:
    """``cache.peek``; for the plain :class:`MemoryTokenCache` (not a subclass, and not
    with its ``peek`` replaced), its dict's own ``get``: the same answer without a Python
    call, which pays for the hit counting on the manager's cached path."""
    if type(cache) is MemoryTokenCache and MemoryTokenCache.peek is _MEMORY_PEEK:
        return cache._entries.get
    return cache.peek


#: the class's own peek: a replaced one (a test's broken cache) is called, not bypassed
_MEMORY_PEEK = MemoryTokenCache.peek
