"""Access tokens for named OAuth 2.0 clients: requested, cached and renewed before expiry.

The asyncio counterpart of Duende.AccessTokenManagement: a
:class:`TokenManager` holds named :class:`ClientCredentialsClient` configs,
requests tokens with the client_credentials grant (RFC 6749 §4.4) over one
pooled aiohttp session, authenticates with a client secret or a fresh client
assertion (RFC 7523) per attempt, caches tokens per client, scope, resource
and parameters, renews them before they expire, and sends one request at a
time per cache key.

>>> async with TokenManager({"invoice": client}) as tokens:   # doctest: +SKIP
...     token = await tokens.get_token("invoice")
"""

from __future__ import annotations

from ..errors import (
    ClosedError,
    ConfigurationError,
    DiscoveryError,
    InvalidTokenResponseError,
    ManagerNotRunningError,
    TokenEndpointError,
    TokenEndpointTimeout,
    TokenRequestError,
    UnknownClientError,
)
from ._cache import CacheEntry, CacheKey, MemoryTokenCache, TokenCache
from ._client import AUTH_METHODS, ClientCredentialsClient
from ._config import load_clients
from ._credentials import ClientAssertionService, TokenRequestParameters
from ._manager import TokenManager
from ._metrics import ClientStats, TokenManagerStats
from ._redis_cache import RedisCacheStats, RedisTokenCache
from ._retry import RetryPolicy
from ._runner import run
from ._source import TokenSource
from ._token import Token

__all__ = [
    "AUTH_METHODS",
    "CacheEntry",
    "CacheKey",
    "ClientAssertionService",
    "ClientCredentialsClient",
    "ClientStats",
    "ClosedError",
    "ConfigurationError",
    "DiscoveryError",
    "InvalidTokenResponseError",
    "ManagerNotRunningError",
    "MemoryTokenCache",
    "RedisCacheStats",
    "RedisTokenCache",
    "RetryPolicy",
    "Token",
    "TokenCache",
    "TokenEndpointError",
    "TokenEndpointTimeout",
    "TokenManager",
    "TokenManagerStats",
    "TokenRequestError",
    "TokenRequestParameters",
    "TokenSource",
    "UnknownClientError",
    "load_clients",
    "run",
]
