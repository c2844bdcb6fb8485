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
from ._exchange import client_timeout, read_capped
from ._retry import Deadline, Retry, RetryPolicy, out_of_time, retrying
from ._tasks import failed, wait_shared

__all__ = ["ClientResolver", "ResolvedClient"]

_log = logging.getLogger("jwtmint.tokens")

Clock = Callable[[], float]

#: metadata that a client wanted but could not get is asked for again, in the background,
#: this many seconds apart until the server answers
METADATA_RETRY_AFTER = 300.0
#: a shared task ends by its own deadline, with its own error; a waiter gives it this much
#: longer for that error to arrive (the bound is for a waiter whose deadline comes first)
SHARED_GRACE = 0.05
#: the share of a token request's deadline that metadata it can do without may take
OPTIONAL_SHARE = 0.5


class ResolvedClient:
    """A client made ready to request: its endpoint, and the signer for its assertions.

    ``awaiting`` is set when it was made without the metadata it wanted: the
    background task fetching that metadata, whose result remakes the signer.
    """

    __slots__ = ("awaiting", "signer", "token_endpoint")

    def __init__(
        self,
        token_endpoint: str,
        signer: AssertionSigner | None,
        awaiting: asyncio.Task[dict[str, Any]] | None = None,
    ) -> None:
        self.token_endpoint = token_endpoint
        self.signer = signer
        self.awaiting = awaiting


class ClientResolver:
    """Resolves named clients once each (concurrent callers share one resolution) and
    fetches each issuer's metadata once (RFC 8414, OpenID Connect Discovery 1.0);
    ``closed`` says whether the manager closed (its waiters then learn why).

    Every wait is bounded by the deadline of the token request that waits. Metadata a
    client can do without (its endpoint is known: the metadata would only choose the
    signing algorithm) gets part of that deadline; when it fails the client signs with
    its key's algorithm, and the metadata is fetched again in the background, never by
    a later token request, until the server answers.
    """

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
        #: per issuer, the background fetch of metadata that clients wanted and lack
        self._later: dict[str, asyncio.Task[dict[str, Any]]] = {}
        self._is_closed = closed

    def pending(self) -> list[asyncio.Task[Any]]:
        """The tasks under way (the manager cancels them when it closes)."""
        return [*self._resolving.values(), *self._metadata.values(), *self._later.values()]

    async def resolve(
        self,
        session: aiohttp.ClientSession,
        name: str,
        client: ClientCredentialsClient,
        deadline: Deadline,
    ) -> ResolvedClient:
        resolved = self._resolved.get(name)
        if resolved is not None:
            awaiting = resolved.awaiting
            if awaiting is None or not awaiting.done() or failed(awaiting):
                return resolved
            # the metadata came in the background: remake the signer with it (no I/O)
            endpoint = resolved.token_endpoint
            signer = assertion_signer(client, endpoint, awaiting.result(), self._clock)
            resolved = self._resolved[name] = ResolvedClient(endpoint, signer)
            return resolved
        task = self._resolving.get(name)
        if task is None:
            task = asyncio.get_running_loop().create_task(self._build(session, client, deadline))
            self._resolving[name] = task
            task.add_done_callback(functools.partial(self._resolution_done, name))
        try:
            return await wait_shared(task, self._is_closed, deadline.left() + SHARED_GRACE)
        except (TimeoutError, asyncio.TimeoutError):
            raise out_of_time(deadline, name, "waiting for its discovery") from None

    def _resolution_done(self, name: str, task: asyncio.Task[ResolvedClient]) -> None:
        self._resolving.pop(name, None)
        if not failed(task):
            self._resolved[name] = task.result()

    async def _build(
        self, session: aiohttp.ClientSession, client: ClientCredentialsClient, deadline: Deadline
    ) -> ResolvedClient:
        metadata: dict[str, Any] | None = None
        endpoint = client.token_endpoint
        awaiting: asyncio.Task[dict[str, Any]] | None = None
        if client.issuer is not None and endpoint is None:
            metadata = await self._discover(session, client.issuer, deadline, optional=False)
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
            # takes: one short try, and without it the key's own algorithm
            later = self._later.get(client.issuer)
            if later is not None and not later.done():
                awaiting = later  # asked in the background already: not on this request's path
            elif later is not None and not failed(later):
                metadata = later.result()
            else:
                share = deadline.part(min(self._request_timeout, deadline.left() * OPTIONAL_SHARE))
                try:
                    metadata = await self._discover(session, client.issuer, share, optional=True)
                except DiscoveryError as exc:
                    _log.debug(
                        "no metadata for %r (%s); signing with the key's algorithm", client, exc
                    )
                    awaiting = self._fetch_later(session, client.issuer)
        assert endpoint is not None
        return ResolvedClient(
            endpoint, assertion_signer(client, endpoint, metadata, self._clock), awaiting
        )

    def _fetch_later(
        self, session: aiohttp.ClientSession, issuer: str
    ) -> asyncio.Task[dict[str, Any]]:
        """The background fetch of ``issuer``'s metadata (one per issuer)."""
        task = self._later.get(issuer)
        if task is None or (task.done() and failed(task)):
            task = asyncio.get_running_loop().create_task(self._fetch_until_found(session, issuer))
            self._later[issuer] = task
        return task

    async def _fetch_until_found(
        self, session: aiohttp.ClientSession, issuer: str
    ) -> dict[str, Any]:
        while True:
            # read at each turn: tests shorten it
            await asyncio.sleep(METADATA_RETRY_AFTER)
            try:
                return await self._fetch_metadata(
                    session, issuer, RetryPolicy(attempts=1), Deadline(self._request_timeout)
                )
            except DiscoveryError as exc:
                _log.debug("still no metadata for issuer %r (%s)", issuer, exc)

    async def _discover(
        self,
        session: aiohttp.ClientSession,
        issuer: str,
        deadline: Deadline,
        *,
        optional: bool,
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
                self._fetch_metadata(session, issuer, policy, deadline)
            )
            self._metadata[slot] = task
        try:
            return await wait_shared(task, self._is_closed, deadline.left() + SHARED_GRACE)
        except (TimeoutError, asyncio.TimeoutError):
            # another token request's lookup, still under way (it has its own deadline)
            raise DiscoveryError(
                f"no authorization server metadata for issuer {issuer!r} within "
                f"{deadline.seconds:.3g} s"
            ) from None

    async def _fetch_metadata(
        self,
        session: aiohttp.ClientSession,
        issuer: str,
        policy: RetryPolicy,
        deadline: Deadline,
    ) -> dict[str, Any]:
        """RFC 8414 / OpenID Connect Discovery metadata; each well-known URL in turn, both
        within the attempt's time."""

        async def attempt(timeout: float) -> dict[str, Any]:
            problems: list[str] = []
            transient = False
            ends = time.monotonic() + timeout
            for url in discovery_urls(issuer):
                left = ends - time.monotonic()
                if left <= 0:
                    problems.append(f"{url}: not asked, no time left")
                    transient = True
                    continue
                try:
                    async with session.get(
                        url,
                        timeout=client_timeout(left),
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

        return await retrying(attempt, policy, self._request_timeout, deadline)


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
