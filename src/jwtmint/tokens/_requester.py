"""One client_credentials token request (RFC 6749 §4.4), with a fresh assertion per attempt."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping
from contextlib import nullcontext
from typing import TYPE_CHECKING

import aiohttp
from yarl import URL

from .._assertion import AssertionSigner, ClientAssertion
from .._display import shown_url
from ..errors import (
    ConfigurationError,
    InvalidClaimsError,
    TokenEndpointError,
    TokenEndpointTimeout,
    TokenRequestError,
)
from ._cache import CacheKey
from ._client import CLIENT_SECRET_BASIC, CLIENT_SECRET_POST, ClientCredentialsClient
from ._credentials import ClientAssertionService, TokenRequestParameters, credentials
from ._dpop import DPOP, USE_DPOP_NONCE, DPoPNonces, authorization_server, origin_of
from ._exchange import post_token_request, request_form
from ._resolve import ClientResolver
from ._retry import Deadline, Pauses, Retry, RetryPolicy, Stop, out_of_time, retrying
from ._token import Token

if TYPE_CHECKING:
    from ._otel import RequestRecord, Telemetry

__all__ = ["TokenRequester"]

_log = logging.getLogger("jwtmint.tokens")


class TokenRequester:
    """Requests tokens for cache keys: resolves the client, authenticates every attempt
    afresh (Duende's precedence: the caller's assertion, the service's, the client's
    signer, its secret) and retries per the policy. A DPoP client's every attempt carries
    a fresh proof; a ``use_dpop_nonce`` refusal is answered once, within the attempt,
    with the server's nonce, a new proof and a new client assertion (RFC 9449 §8)."""

    def __init__(
        self,
        clients: Mapping[str, ClientCredentialsClient],
        resolver: ClientResolver,
        service: ClientAssertionService | None,
        *,
        retries: RetryPolicy,
        request_timeout: float,
        default_lifetime: float,
        clock: Callable[[], float],
        nonces: DPoPNonces,
    ) -> None:
        self._clients = clients
        self._nonces = nonces
        self._resolver = resolver
        self._service = service
        self._retries = retries
        self._request_timeout = request_timeout
        self._default_lifetime = default_lifetime
        self._clock = clock
        #: HTTP attempts sent, retries included
        self.attempts = 0
        #: token endpoints that asked to be left alone for a while (Retry-After)
        self.pauses = Pauses(clock)
        #: OpenTelemetry's spans and histograms, when it is installed
        self.telemetry: Telemetry | None = None

    async def request(
        self,
        session: aiohttp.ClientSession,
        key: CacheKey,
        client_assertion: ClientAssertion | None,
        force_renewal: bool,
        deadline: Deadline,
    ) -> Token:
        """The token for ``key``, traced and timed when OpenTelemetry is there."""
        telemetry = self.telemetry
        with nullcontext() if telemetry is None else telemetry.request(key.client) as record:
            return await self._request(
                session, key, client_assertion, force_renewal, deadline, record
            )

    async def _request(
        self,
        session: aiohttp.ClientSession,
        key: CacheKey,
        client_assertion: ClientAssertion | None,
        force_renewal: bool,
        deadline: Deadline,
        record: RequestRecord | None,
    ) -> Token:
        name = key.client
        client = self._clients[name]
        resolved = await self._resolver.resolve(session, name, client, deadline)
        parameters = TokenRequestParameters(
            key.scope, key.resource, dict(key.parameters), force_renewal
        )
        form = request_form(key)
        policy = self._retries
        if client_assertion is not None and not self._can_reauthenticate(client, resolved.signer):
            # the caller's assertion is all there is, and a retry would replay its jti
            policy = RetryPolicy(attempts=1, deadline=policy.deadline)
        last: TokenEndpointError | None = None
        dpop = client.dpop
        nonces = self._nonces
        endpoint = resolved.token_endpoint
        if record is not None:
            record.endpoint = endpoint
        htu, server = endpoint, ""
        if dpop is not None:
            # the URL as aiohttp sends it (yarl's encoding): htu must be what the server sees
            posted = URL(endpoint)
            htu, server = str(posted), authorization_server(origin_of(posted))
        #: what the last exchange sent: the nonce in its proof, its client assertion
        sent: dict[str, str | None] = {}

        async def exchange(
            passed: ClientAssertion | None, timeout: float, challenge: TokenRequestError | None
        ) -> Token:
            ends = time.monotonic() + timeout
            # the client's own signer mints this attempt's assertion (see credentials())
            minting = record is not None and passed is None and self._service is None
            minting = minting and resolved.signer is not None
            started = time.perf_counter()
            try:
                auth_form, headers = await self._credentials(
                    name, client, resolved.signer, parameters, passed, timeout
                )
                if minting:
                    assert record is not None
                    record.minted.append(time.perf_counter() - started)
            except ConfigurationError:
                if challenge is not None:
                    # no new assertion to answer the nonce challenge with (the caller's is
                    # spent): the server's refusal is the answer
                    raise challenge from None
                if last is None:
                    raise
                # nothing can authenticate another attempt (the service declined, and the
                # caller's assertion was spent): the endpoint's error is the one to report
                raise Stop(last) from None
            assertion = dict(auth_form).get("client_assertion")
            if challenge is not None and assertion is not None and assertion == sent["assertion"]:
                # an assertion service that handed out the same assertion again (Duende's
                # foss#328): the server has spent its jti, so resending it cannot succeed
                raise challenge
            sent["assertion"] = assertion
            if dpop is not None:
                nonce = sent["nonce"] = nonces.get(server)
                try:
                    headers[DPOP] = dpop.proof("POST", htu, nonce=nonce)
                except InvalidClaimsError as exc:
                    raise ConfigurationError(
                        f"client {name!r}: its token endpoint cannot be a DPoP proof's htu: {exc}"
                    ) from None
            self.attempts += 1
            if record is not None:
                record.attempts += 1
            _log.debug("token request for client %r to %s", name, shown_url(endpoint))
            return await post_token_request(
                session,
                endpoint,
                form + auth_form,
                headers,
                timeout=max(0.001, ends - time.monotonic()),
                client=name,
                requested_scope=key.scope,
                now=self._clock(),
                default_lifetime=self._default_lifetime,
                dpop=(nonces, server) if dpop is not None else None,
            )

        async def attempt(timeout: float) -> Token:
            nonlocal last
            # a fresh assertion (new jti) for every attempt: servers reject one they have
            # seen, so the caller's own assertion is used for the first attempt only (every
            # later attempt follows a failed one, which set ``last``)
            passed = client_assertion if last is None else None
            started = time.monotonic()
            try:
                try:
                    return await exchange(passed, timeout, None)
                except TokenRequestError as refused:
                    if refused.error != USE_DPOP_NONCE or dpop is None:
                        raise
                    current = nonces.get(server)
                    left = timeout - (time.monotonic() - started)
                    if current is None or current == sent.get("nonce") or left <= 0:
                        raise  # no nonce to answer with, or no time: the refusal stands
                    nonces.announce(server)
                    # RFC 9449 §8: once, with the nonce, a new proof and a new assertion (a
                    # reused one would be a replayed jti), within this attempt's time
                    return await exchange(None, left, refused)
            except Retry as retry:
                last = retry.error
                self.pauses.note(endpoint, last)
                raise

        held = self.pauses.left(endpoint)
        if held > 0:
            # the server asked for time (Retry-After): wait it out if it ends in time, and
            # otherwise fail now rather than ask again before it said to
            if held >= deadline.left():
                raise self.pauses.refusal(endpoint, name)
            await asyncio.sleep(held)
        if deadline.left() <= 0:
            raise out_of_time(deadline, name, "before its first attempt (in discovery)")
        token = await retrying(attempt, policy, self._request_timeout, deadline)
        self.pauses.answered(endpoint)
        return token

    def _can_reauthenticate(
        self, client: ClientCredentialsClient, signer: AssertionSigner | None
    ) -> bool:
        """Whether a retry after a caller's assertion has something else to authenticate
        with, in the order of :func:`credentials`: the service, the client's signer (its
        key, or its secret for ``client_secret_jwt``), or the secret itself (basic, post).
        A public client (``none``) given an assertion is not retried without one."""
        return (
            self._service is not None
            or signer is not None
            or client.auth_method in (CLIENT_SECRET_BASIC, CLIENT_SECRET_POST)
        )

    async def _credentials(
        self,
        name: str,
        client: ClientCredentialsClient,
        signer: AssertionSigner | None,
        parameters: TokenRequestParameters,
        passed: ClientAssertion | None,
        timeout: float,
    ) -> tuple[list[tuple[str, str]], dict[str, str]]:
        """The attempt's authentication; an assertion service has the attempt's time for it."""
        asked = credentials(name, client, signer, self._service, parameters, passed)
        if self._service is None:
            return await asked  # nothing to wait for
        try:
            return await asyncio.wait_for(asked, timeout)
        except (TimeoutError, asyncio.TimeoutError):
            raise Retry(
                TokenEndpointTimeout(
                    f"the ClientAssertionService gave client {name!r} no assertion within "
                    f"{timeout:.3g} s",
                    client=name,
                )
            ) from None
