"""Attaching tokens to API calls: an aiohttp client middleware (aiohttp >= 3.12)."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import TYPE_CHECKING

import aiohttp
from aiohttp import hdrs
from yarl import URL

from ..errors import ConfigurationError, TokenRequestError
from ._cache import CacheKey

if TYPE_CHECKING:
    from ._manager import TokenManager

_log = logging.getLogger("jwtmint.tokens")

__all__ = ["check_origins", "origin_of", "token_middleware", "web_origins"]


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


def web_origins(resources: Iterable[str]) -> frozenset[str] | None:
    """The origins of the http(s) URIs among RFC 8707 ``resource`` values, or ``None``."""
    urls = [URL(r) for r in resources]
    return frozenset(origin_of(u) for u in urls if u.scheme in ("http", "https") and u.host) or None


def _replayable(request: aiohttp.ClientRequest) -> bool:
    # a streamed body (an async generator, a pipe) is gone once sent: resending would post
    # an empty body, and a 200 to that would lose the caller's data silently
    body = request.body
    return isinstance(body, bytes) or not body.consumed


def token_middleware(
    manager: TokenManager,
    key: CacheKey,
    origins: Iterable[str] | None,
    resources: Iterable[str] = (),
) -> aiohttp.ClientMiddlewareType:
    """Set ``Authorization`` from ``manager`` on requests to ``origins``; on a 401
    (RFC 6750 §3.1 ``invalid_token``: revoked or expired early) renew once and retry once.

    Without ``origins``, the origins of the client's http(s) ``resource`` values
    (RFC 8707) are used; without those, the origin of the first request the
    middleware sees. aiohttp runs middlewares again on each redirect hop, so
    a fixed set of origins is what keeps a redirect to another host from
    receiving the token.
    """
    allowed = check_origins(origins) or web_origins(resources)
    pinned: list[str] = []

    def permitted(url: URL) -> bool:
        origin = origin_of(url)
        if allowed is not None:
            return origin in allowed
        if not pinned:
            pinned.append(origin)
        return origin == pinned[0]

    async def attach_token(
        request: aiohttp.ClientRequest, handler: aiohttp.ClientHandlerType
    ) -> aiohttp.ClientResponse:
        if not permitted(request.url):
            # never hand our token to a host it was not meant for (a redirect, a typo); the
            # caller's own Authorization, if any, is theirs to send (aiohttp drops it on
            # cross-origin redirects itself)
            return await handler(request)
        token = await manager.token_for_key(key)
        request.headers[hdrs.AUTHORIZATION] = token.authorization
        response = await handler(request)
        if response.status != 401:
            return response
        try:
            renewed = await manager.renew_unless_changed(key, token)
        except TokenRequestError as exc:
            # the API's answer stands; the renewal's failure is for the log (and the next call)
            _log.warning("renewing the token for client %r after a 401 failed: %s", key.client, exc)
            return response
        if not _replayable(request):
            return response  # the caller gets the 401; the next request gets the new token
        response.release()
        request.headers[hdrs.AUTHORIZATION] = renewed.authorization
        return await handler(request)

    return attach_token
