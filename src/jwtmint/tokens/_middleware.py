"""Attaching tokens to API calls: an aiohttp client middleware (aiohttp >= 3.12)."""

from __future__ import annotations

from collections.abc import Iterable

import aiohttp
from aiohttp import hdrs
from yarl import URL

from .._display import shown_url
from ..errors import ConfigurationError
from ._client import is_loopback
from ._dpop import ANSWERABLE, NOT_CHALLENGED, ApiProofs, origin_of
from ._source import TokenSource
from ._token import Token

__all__ = ["OriginScope", "check_origins", "origin_of", "token_middleware", "web_origins"]


def check_origins(
    origins: Iterable[str] | None, *, allow_http: bool = False
) -> frozenset[str] | None:
    """``scheme://host[:port]`` strings, normalised, or ConfigurationError (also for plain
    http off loopback, unless ``allow_http``)."""
    if origins is None:
        return None
    if isinstance(origins, str):
        origins = (origins,)
    normal = set()
    for origin in origins:
        url = URL(origin)
        if not url.absolute or url.scheme not in ("http", "https") or url.path not in ("", "/"):
            raise ConfigurationError(
                f"origins are scheme://host[:port] with no path, got {shown_url(origin)}"
            )
        normal.add(_checked(url, allow_http, "origins="))
    return frozenset(normal)


def web_origins(resources: Iterable[str], *, allow_http: bool = False) -> frozenset[str] | None:
    """The origins of the http(s) URIs among RFC 8707 ``resource`` values, or ``None``;
    ConfigurationError for plain http off loopback, unless ``allow_http``."""
    urls = [URL(r) for r in resources]
    found = [u for u in urls if u.scheme in ("http", "https") and u.host]
    return frozenset(_checked(u, allow_http, "the client's resource") for u in found) or None


def _checked(url: URL, allow_http: bool, given_as: str) -> str:
    """``url``'s origin, if a token may go there: the rule ``check_url`` applies to token
    endpoints (RFC 6750 §5.3: bearer tokens only over TLS), https or loopback or allowed."""
    origin = origin_of(url)
    if url.scheme == "http" and not (allow_http or is_loopback(url.host)):
        raise ConfigurationError(
            f"{given_as} {origin!r} would get the token over plain http: use https, or "
            "allow_insecure_http=True on the client for a trusted network"
        )
    return origin


class OriginScope:
    """Which origins get a client's token (for the aiohttp middleware and httpx auth alike).

    ``origins`` when given; else the origins of the client's http(s)
    ``resource`` values (RFC 8707); else the origin of the first request
    seen. aiohttp runs middlewares again on each redirect hop, so a fixed set
    of origins is what keeps a redirect to another host from receiving the
    token. Plain http origins off loopback raise ConfigurationError (at once,
    or at the first request), unless ``allow_http`` (the client's
    ``allow_insecure_http``).
    """

    __slots__ = ("_allow_http", "_allowed", "_pinned")

    def __init__(
        self, origins: Iterable[str] | None, resources: Iterable[str], *, allow_http: bool = False
    ) -> None:
        self._allow_http = allow_http
        self._allowed = check_origins(origins, allow_http=allow_http) or web_origins(
            resources, allow_http=allow_http
        )
        self._pinned: str | None = None

    def permits(self, url: URL) -> bool:
        if self._allowed is not None:
            return origin_of(url) in self._allowed
        if self._pinned is None:
            # checked before it is pinned: a refused first request pins nothing
            self._pinned = _checked(url, self._allow_http, "the first request's origin")
            return True
        return origin_of(url) == self._pinned


def _replayable(request: aiohttp.ClientRequest) -> bool:
    # a streamed body (an async generator, a pipe) is gone once sent: resending would post
    # an empty body, and a 200 to that would lose the caller's data silently
    body = request.body
    return isinstance(body, bytes) or not body.consumed


def token_middleware(source: TokenSource, scope: OriginScope) -> aiohttp.ClientMiddlewareType:
    """Set ``Authorization`` from ``source`` on requests ``scope`` permits; on a 401
    (RFC 6750 §3.1 ``invalid_token``: revoked or expired early) renew once and retry once.
    A DPoP client's requests go through :func:`_send_with_proofs`."""

    async def attach_token(
        request: aiohttp.ClientRequest, handler: aiohttp.ClientHandlerType
    ) -> aiohttp.ClientResponse:
        if not scope.permits(request.url):
            # never hand our token to a host it was not meant for (a redirect, a typo); the
            # caller's own Authorization, if any, is theirs to send (aiohttp drops it on
            # cross-origin redirects itself)
            return await handler(request)
        token = await source.current()
        if source.dpop is not None:
            return await _send_with_proofs(source, source.dpop, token, request, handler)
        request.headers[hdrs.AUTHORIZATION] = token.authorization
        response = await handler(request)
        if response.status != 401:
            return response
        renewed = await source.renew_after_refusal(token)
        if renewed is None or not _replayable(request):
            # the API's 401 stands; the next request gets the new token, if there is one
            return response
        response.release()
        request.headers[hdrs.AUTHORIZATION] = renewed.authorization
        return await handler(request)

    return attach_token


async def _send_with_proofs(
    source: TokenSource,
    proofs: ApiProofs,
    token: Token,
    request: aiohttp.ClientRequest,
    handler: aiohttp.ClientHandlerType,
) -> aiohttp.ClientResponse:
    """RFC 9449 §7: every send carries a fresh proof (new jti) for the token it sends; a
    ``use_dpop_nonce`` challenge gets one retry with the new nonce; ``invalid_dpop_proof``
    stands (a new token would not mend a proof); any other 401 gets one renewal and retry,
    as for bearer tokens. aiohttp runs middlewares again on each redirect hop, so each hop
    gets its own proof."""

    url = request.url  # as aiohttp sends it: the htu must be what the server sees
    origin = origin_of(url)

    async def send(token: Token) -> tuple[aiohttp.ClientResponse, int]:
        bound, sent = proofs.authorize(request.headers, request.method, str(url), origin, token)
        response = await handler(request)
        if not bound:
            return response, NOT_CHALLENGED
        return response, proofs.challenged(origin, response.status, response.headers, sent)

    response, challenged = await send(token)
    if challenged == ANSWERABLE and _replayable(request):
        response.release()
        response, challenged = await send(token)
    if response.status != 401 or challenged != NOT_CHALLENGED:
        # a nonce challenge (again, or unanswerable) is no sign of a stale token: one retry
        # per request, no loop, no renewal
        return response
    renewed = await source.renew_after_refusal(token)
    if renewed is None or not _replayable(request):
        return response
    response.release()
    response, _ = await send(renewed)
    return response
