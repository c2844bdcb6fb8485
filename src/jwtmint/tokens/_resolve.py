"""Making a client ready to request: discovery, its token endpoint, audience and signer."""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Callable, Mapping
from typing import Any

import aiohttp

from .._algorithms import get_algorithm
from .._assertion import AssertionSigner
from .._display import shown, shown_url
from .._keys import SigningKey, load_secret
from ..errors import ConfigurationError, DiscoveryError, InvalidKeyError
from ._client import CLIENT_SECRET_JWT, PRIVATE_KEY_JWT, ClientCredentialsClient, check_url
from ._discovery import check_metadata, discovery_urls
from ._exchange import read_capped
from ._retry import Retry, RetryPolicy, retrying
from ._tasks import failed, wait_shared

__all__ = ["ClientResolver", "ResolvedClient"]

_log = logging.getLogger("jwtmint.tokens")

Clock = Callable[[], float]

#: a client made without the metadata it wanted asks for it again after this many seconds
METADATA_RETRY_AFTER = 300.0


class ResolvedClient:
    """A client made ready to request: its endpoint, and the signer for its assertions.

    ``until`` (monotonic) is set when it was made without the metadata it wanted,
    so that discovery is tried again later rather than never.
    """

    __slots__ = ("signer", "token_endpoint", "until")

    def __init__(
        self, token_endpoint: str, signer: AssertionSigner | None, until: float | None = None
    ) -> None:
        self.token_endpoint = token_endpoint
        self.signer = signer
        self.until = until


class ClientResolver:
    """Resolves named clients once each (concurrent callers share one resolution) and
    fetches each issuer's metadata once (RFC 8414, OpenID Connect Discovery 1.0);
    ``closed`` says whether the manager closed (its waiters then learn why)."""

    def __init__(
        self,
        retries: RetryPolicy,
        request_timeout: float,
        clock: Clock,
        *,
        closed: Callable[[], bool],
    ) -> None:
        self._retries = retries
        self._request_timeout = request_timeout
        self._clock = clock
        self._resolved: dict[str, ResolvedClient] = {}
        self._resolving: dict[str, asyncio.Task[ResolvedClient]] = {}
        self._metadata: dict[tuple[str, bool], asyncio.Task[dict[str, Any]]] = {}
        self._is_closed = closed

    def pending(self) -> list[asyncio.Task[Any]]:
        """The tasks under way (the manager cancels them when it closes)."""
        return [*self._resolving.values(), *self._metadata.values()]

    async def resolve(
        self, session: aiohttp.ClientSession, name: str, client: ClientCredentialsClient
    ) -> ResolvedClient:
        resolved = self._resolved.get(name)
        if resolved is not None and (resolved.until is None or time.monotonic() < resolved.until):
            return resolved
        task = self._resolving.get(name)
        if task is None:
            task = asyncio.get_running_loop().create_task(self._build(session, client))
            self._resolving[name] = task
            task.add_done_callback(functools.partial(self._resolution_done, name))
        return await wait_shared(task, self._is_closed)

    def _resolution_done(self, name: str, task: asyncio.Task[ResolvedClient]) -> None:
        self._resolving.pop(name, None)
        if not failed(task):
            self._resolved[name] = task.result()

    async def _build(
        self, session: aiohttp.ClientSession, client: ClientCredentialsClient
    ) -> ResolvedClient:
        metadata: dict[str, Any] | None = None
        endpoint = client.token_endpoint
        until: float | None = None
        if client.issuer is not None and endpoint is None:
            metadata = await self._discover(session, client.issuer, optional=False)
            endpoint = metadata["token_endpoint"]
            try:
                # checked per client: clients sharing an issuer may differ on plain http
                check_url(
                    "the discovered token_endpoint", endpoint, allow_http=client.allow_insecure_http
                )
            except ConfigurationError as exc:
                raise DiscoveryError(f"issuer {shown_url(client.issuer)}: {exc}") from None
        elif client.issuer is not None and client.uses_assertion and not client.signing_algorithm:
            # the endpoint is known; the metadata would only say which algorithms the server
            # takes: one short try, and without it the key's own algorithm (asked again later)
            try:
                metadata = await self._discover(session, client.issuer, optional=True)
            except DiscoveryError as exc:
                _log.debug("no metadata for %r (%s); signing with the key's algorithm", client, exc)
                until = time.monotonic() + METADATA_RETRY_AFTER
        assert endpoint is not None
        return ResolvedClient(
            endpoint, assertion_signer(client, endpoint, metadata, self._clock), until
        )

    async def _discover(
        self, session: aiohttp.ClientSession, issuer: str, *, optional: bool
    ) -> dict[str, Any]:
        # keyed by how hard to try too: a client that needs the endpoint must not join, and
        # inherit the failure of, a single try made for a client that only wanted the algorithms
        slot = (issuer, optional)
        if optional:
            # a lookup that must succeed, done or under way, serves an optional one too
            required = self._metadata.get((issuer, False))
            if required is not None and not (required.done() and failed(required)):
                slot = (issuer, False)
        task = self._metadata.get(slot)
        if task is None or (task.done() and failed(task)):
            policy = RetryPolicy(attempts=1) if slot[1] else self._retries
            task = asyncio.get_running_loop().create_task(
                self._fetch_metadata(session, issuer, policy)
            )
            self._metadata[slot] = task
        return await wait_shared(task, self._is_closed)

    async def _fetch_metadata(
        self, session: aiohttp.ClientSession, issuer: str, policy: RetryPolicy
    ) -> dict[str, Any]:
        """RFC 8414 / OpenID Connect Discovery metadata; each well-known URL in turn."""

        async def attempt(timeout: float) -> dict[str, Any]:
            problems: list[str] = []
            transient = False
            for url in discovery_urls(issuer):
                try:
                    async with session.get(
                        url,
                        timeout=aiohttp.ClientTimeout(total=timeout),
                        allow_redirects=False,
                        middlewares=(),
                    ) as response:
                        status, body = response.status, await read_capped(response)
                except (TimeoutError, asyncio.TimeoutError, aiohttp.ClientError) as exc:
                    problems.append(f"{shown_url(url)}: {type(exc).__name__}")
                    transient = True
                    continue  # the other well-known URL may answer
                if status != 200 or body is None:
                    problems.append(f"{shown_url(url)} answered HTTP {status}")
                    transient = transient or status >= 500 or status == 429
                    continue
                checked = check_metadata(issuer, url, body)
                if isinstance(checked, str):
                    raise DiscoveryError(checked)
                return checked
            error = DiscoveryError(
                f"no authorization server metadata for issuer {shown_url(issuer)} ("
                + "; ".join(problems)
                + "); check the issuer, or configure token_endpoint="
            )
            if transient:
                raise Retry(error)
            raise error

        return await retrying(attempt, policy, self._request_timeout)


def assertion_signer(
    client: ClientCredentialsClient,
    endpoint: str,
    metadata: Mapping[str, Any] | None,
    clock: Clock,
) -> AssertionSigner | None:
    """The signer of ``client``'s assertions, or ``None`` when it signs none itself."""
    if not client.uses_assertion:
        return None
    key: SigningKey
    if client.auth_method == CLIENT_SECRET_JWT:
        secret = client.client_secret
        assert secret is not None
        algorithm = client.signing_algorithm or _server_choice(metadata, "HS256", secret)
        key = load_secret(secret, algorithm)
    else:
        assert client.auth_method == PRIVATE_KEY_JWT
        if client.private_key is None:
            return None  # its assertions come from the ClientAssertionService
        key = client.private_key
        algorithm = client.signing_algorithm or _server_choice(metadata, key.algorithm, key)
    # the issuer, not the endpoint, is the audience (draft-ietf-oauth-rfc7523bis;
    # CVE-2025-27370/27371 abused endpoint audiences)
    audience = client.audience or client.issuer or endpoint
    return AssertionSigner(
        key,
        client.client_id,
        audience,
        algorithm=algorithm,
        lifetime=client.assertion_lifetime,
        clock=clock,  # one time source for assertions and token expiry
    )


def _server_choice(
    metadata: Mapping[str, Any] | None, default: str, key: SigningKey | str | bytes
) -> str:
    """The key's default algorithm, or the first one the server lists that the key can do."""
    listed = (metadata or {}).get("token_endpoint_auth_signing_alg_values_supported")
    if not isinstance(listed, list) or not listed or default in listed:
        return default
    for name in listed:
        if not isinstance(name, str) or name == "none":
            continue
        try:
            algorithm = get_algorithm(name)
            algorithm.check_key(load_secret(key, name) if not isinstance(key, SigningKey) else key)
        except (InvalidKeyError, ValueError):
            continue
        return algorithm.name
    raise ConfigurationError(
        "the server lists token_endpoint_auth_signing_alg_values_supported="
        f"{shown(listed)}, "
        f"and the client's key can sign none of them; set signing_algorithm= or change the key"
    )
