"""Attaching tokens to httpx calls: an ``httpx.Auth`` for ``httpx.AsyncClient``.

Only imported when asked for (``TokenManager.httpx_auth``), so httpx stays optional.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Generator

import httpx
from yarl import URL

from ._dpop import ANSWERABLE, NOT_CHALLENGED, ApiProofs, origin_of
from ._middleware import OriginScope
from ._source import TokenSource
from ._token import Token

__all__ = ["TokenAuth"]


class TokenAuth(httpx.Auth):
    """Sends a named client's token (from its :class:`TokenSource`); on a 401 renews once
    and retries once.

    Async only: tokens come from an asyncio manager. Origins are chosen as
    for the aiohttp middleware (:class:`OriginScope`).
    """

    # httpx reads the body into memory before the flow, so the retry can resend it
    requires_request_body = True

    def __init__(self, source: TokenSource, scope: OriginScope) -> None:
        self._source = source
        self._scope = scope

    def __repr__(self) -> str:
        return f"TokenAuth(client={self._source.client!r})"

    def sync_auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response]:
        raise RuntimeError("TokenAuth works with httpx.AsyncClient: tokens come from asyncio")
        yield request  # pragma: no cover - makes this a generator, as httpx expects

    async def async_auth_flow(
        self, request: httpx.Request
    ) -> AsyncGenerator[httpx.Request, httpx.Response]:
        url = URL(str(request.url))
        if not self._scope.permits(url):
            yield request
            return
        token = await self._source.current()
        proofs = self._source.dpop
        if proofs is None:
            request.headers["Authorization"] = token.authorization
            response = yield request
        else:
            origin = origin_of(url)
            sent = _authorize(request, token, proofs, origin)
            response = yield request
            if response.history:
                # httpx followed redirects inside this send: later hops carried the first
                # hop's proof, and the answer is another URL's; learn its nonce, no retry
                final = URL(str(response.request.url))
                proofs.nonces.learn_from(origin_of(final), response.headers)
                return
            challenged = NOT_CHALLENGED
            if proofs.binds(token):
                challenged = proofs.challenged(origin, response.status_code, response.headers, sent)
            if challenged == ANSWERABLE:  # once: a new proof with the server's nonce
                sent = _authorize(request, token, proofs, origin)
                response = yield request
                challenged = proofs.challenged(origin, response.status_code, response.headers, sent)
            if challenged != NOT_CHALLENGED:
                return  # one nonce retry per request, no loop; a bad proof is not a stale token
        if response.status_code != 401:
            return
        renewed = await self._source.renew_after_refusal(token)
        if renewed is None:
            return  # the API's 401 stands, as with the aiohttp middleware
        if proofs is None:
            request.headers["Authorization"] = renewed.authorization
            yield request
            return
        origin = origin_of(url)
        sent = _authorize(request, renewed, proofs, origin)
        response = yield request
        if proofs.binds(renewed):
            proofs.challenged(origin, response.status_code, response.headers, sent)


def _authorize(request: httpx.Request, token: Token, proofs: ApiProofs, origin: str) -> str | None:
    """Set the token (and, for a DPoP-bound one, a fresh proof); the nonce it carries."""
    url = _sent_url(request.url)
    return proofs.authorize(request.headers, request.method, url, origin, token)[1]


def _sent_url(url: httpx.URL) -> str:
    """The URL as httpx sends it (its own encoding, not yarl's), without query: the htu."""
    path = url.raw_path.split(b"?", 1)[0].decode("ascii")
    return f"{url.scheme}://{url.netloc.decode('ascii')}{path}"
