"""Attaching tokens to API calls: an aiohttp client middleware (aiohttp >= 3.12)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

import aiohttp
from aiohttp import hdrs
from yarl import URL

from ..errors import ConfigurationError
from ._cache import CacheKey

if TYPE_CHECKING:
    from ._manager import TokenManager

__all__ = ["check_origins", "origin_of", "token_middleware"]


def origin_of(url: URL) -> str:
    # yarl drops default ports, so https://api and https://api:443 compare equal
    return str(url.origin())


def check_origins(origins: Iterable[str] | None) -> frozenset[str] | None:
    """``scheme://host[:port]`` strings, normalised, or ConfigurationError."""
    if origins is None:
        return None
    if isinstance(origins, str):
        origins = (origins,)
    normal = set()
    for origin in origins:
        url = URL(origin)
        if not url.absolute or url.scheme not in ("http", "https") or url.path not in ("", "/"):
            raise ConfigurationError(
                f"origins are scheme://host[:port] with no path, got {origin!r}"
            )
        normal.add(origin_of(url))
    return frozenset(normal)


def token_middleware(
    manager: TokenManager, key: CacheKey, origins: Iterable[str] | None
) -> aiohttp.ClientMiddlewareType:
    """Set ``Authorization`` from ``manager`` on requests to ``origins``; on a 401
    (RFC 6750 §3.1 ``invalid_token``: revoked or expired early) renew once and retry once."""
    allowed = check_origins(origins)

    async def attach_token(
        request: aiohttp.ClientRequest, handler: aiohttp.ClientHandlerType
    ) -> aiohttp.ClientResponse:
        if allowed is not None and origin_of(request.url) not in allowed:
            # never hand a token to a host it was not meant for (a redirect, a typo)
            return await handler(request)
        token = await manager.token_for_key(key)
        request.headers[hdrs.AUTHORIZATION] = token.authorization
        response = await handler(request)
        if response.status != 401:
            return response
        response.release()
        renewed = await manager.renew_unless_changed(key, token)
        request.headers[hdrs.AUTHORIZATION] = renewed.authorization
        return await handler(request)

    return attach_token
