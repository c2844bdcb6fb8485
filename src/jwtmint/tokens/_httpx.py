"""Attaching tokens to httpx calls: an ``httpx.Auth`` for ``httpx.AsyncClient``.

Only imported when asked for (``TokenManager.httpx_auth``), so httpx stays optional.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Generator

import httpx
from yarl import URL

from ._dpop import ANSWERABLE, DPOP, NOT_CHALLENGED, ApiProofs
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
        sent = self._authorize(request, url, token, proofs)
        response = yield request
        if proofs is not None:
            challenged = proofs.challenged(url, response.status_code, response.headers, sent)
            if challenged == ANSWERABLE:  # once: a new proof with the server's nonce
                sent = self._authorize(request, url, token, proofs)
                response = yield request
                challenged = proofs.challenged(url, response.status_code, response.headers, sent)
            if challenged != NOT_CHALLENGED:
                return  # one nonce retry per request, no loop, no renewal
        if response.status_code != 401:
            return
        renewed = await self._source.renew_after_refusal(token)
        if renewed is None:
            return  # the API's 401 stands, as with the aiohttp middleware
        sent = self._authorize(request, url, renewed, proofs)
        response = yield request
        if proofs is not None:
            proofs.challenged(url, response.status_code, response.headers, sent)

    @staticmethod
    def _authorize(
        request: httpx.Request, url: URL, token: Token, proofs: ApiProofs | None
    ) -> str | None:
        """Set the token (and, for a DPoP-bound one, a fresh proof); the nonce it carries."""
        request.headers["Authorization"] = token.authorization
        if proofs is None or not proofs.binds(token):
            request.headers.pop(DPOP, None)
            return None
        proof, nonce = proofs.proof(request.method, url, token)
        request.headers[DPOP] = proof
        return nonce
