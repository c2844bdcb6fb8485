"""One HTTP exchange with a token endpoint: the form, the POST, and what its answer means."""

from __future__ import annotations

import asyncio
import math
from urllib.parse import urlencode

import aiohttp

from .._display import shown, shown_url
from ..errors import (
    InvalidTokenResponseError,
    TokenEndpointError,
    TokenEndpointTimeout,
    TokenRequestError,
)
from ._cache import CacheKey
from ._dpop import DPoPNonces
from ._retry import Retry, parse_retry_after
from ._token import MAX_RESPONSE_BYTES, Token, parse_error_response, parse_token_response

__all__ = [
    "CLIENT_CREDENTIALS",
    "check_token_type",
    "client_timeout",
    "post_token_request",
    "read_capped",
    "request_form",
]

CLIENT_CREDENTIALS = "client_credentials"
FORM = "application/x-www-form-urlencoded"
#: 4xx statuses that say "later": 408, the server gave up waiting for the request (RFC 9110
#: §15.5.9, sending it again is what it expects); 429, too many requests (RFC 6585 §4)
RETRYABLE_STATUSES = frozenset({408, 429})
#: 4xx error codes that say "later", not "never" (RFC 6749 §4.1.2.1 defines them for the
#: authorization endpoint; servers use them at the token endpoint too)
RETRYABLE_ERRORS = frozenset({"temporarily_unavailable", "server_error"})


def client_timeout(seconds: float) -> aiohttp.ClientTimeout:
    """aiohttp's timeout for one exchange of ``seconds``, to the millisecond: by default it
    rounds a timeout of 5 s or more up to the loop's next whole second (``ceil_threshold``)."""
    return aiohttp.ClientTimeout(total=seconds, ceil_threshold=math.inf)


def request_form(key: CacheKey) -> list[tuple[str, str]]:
    """The body fields every attempt for ``key`` shares (RFC 6749 §4.4.2, RFC 8707 §2)."""
    form = [("grant_type", CLIENT_CREDENTIALS)]
    if key.scope:
        form.append(("scope", key.scope))
    form.extend(("resource", value) for value in key.resource)
    for name, values in key.parameters:
        form.extend((name, value) for value in values)
    return form


async def post_token_request(
    session: aiohttp.ClientSession,
    url: str,
    form: list[tuple[str, str]],
    headers: dict[str, str],
    *,
    timeout: float,
    client: str,
    requested_scope: str | None,
    now: float,
    default_lifetime: float,
    dpop: tuple[DPoPNonces, str] | None = None,
) -> Token:
    """One HTTP attempt: a Token, a final TokenRequestError, or :class:`Retry`.

    ``dpop`` (the nonce store and the endpoint's origin) is given when the request
    carries a DPoP proof: the answer's ``DPoP-Nonce`` is kept, whatever the status
    (servers send a new one on any response, RFC 9449 §8), and a ``DPoP`` token type
    is accepted.
    """
    headers["Content-Type"] = FORM
    failure: TokenEndpointError | None = None
    try:
        async with session.post(
            url,
            data=urlencode(form).encode("ascii"),
            headers=headers,
            timeout=client_timeout(timeout),
            allow_redirects=False,  # credentials must not follow a redirect to another host
            middlewares=(),  # the session may carry our own token middleware: not here
        ) as response:
            body = await read_capped(response)
            if body is None:
                raise Retry(_oversized(client, response.status))
            status = response.status
            content_type = response.headers.get("Content-Type")
            retry_after = response.headers.get("Retry-After")
            if dpop is not None:
                dpop[0].learn_from(dpop[1], response.headers)
    except (TimeoutError, asyncio.TimeoutError):  # one class from 3.11; two on 3.10
        failure = TokenEndpointTimeout(
            f"token endpoint {shown_url(url)} did not answer client {client!r} within "
            f"{timeout:.3g} s",
            client=client,
        )
    except aiohttp.ClientError as exc:
        failure = TokenEndpointError(
            # aiohttp's message can quote the server's bytes (a malformed status line)
            f"token request for client {client!r} to {shown_url(url)} failed: "
            f"{type(exc).__name__}: {shown(str(exc), 300)}",
            client=client,
        )
    if failure is not None:
        # raised here, after the except blocks, so that no __context__ (suppressed or not)
        # holds aiohttp's exception: its request_info keeps the request's headers, the
        # Authorization (a client secret in Basic) and DPoP headers included
        raise Retry(failure)
    assert body is not None  # read in full: an oversized body raised Retry above
    if 200 <= status < 300:
        try:
            token = parse_token_response(
                body,
                status=status,
                content_type=content_type,
                now=now,
                requested_scope=requested_scope,
                default_lifetime=default_lifetime,
                client=client,
            )
        except InvalidTokenResponseError as exc:
            # a proxy's error page with a 200 is usually transient
            raise Retry(exc) from None
        check_token_type(token, dpop=dpop is not None, client=client, status=status)
        return token
    refused = parse_error_response(body, status=status, content_type=content_type, client=client)
    later = refused is not None and refused.error in RETRYABLE_ERRORS
    if status in RETRYABLE_STATUSES or status >= 500 or later:
        error = _endpoint_error(refused, client, status, url)
        error.retry_after = parse_retry_after(retry_after, now)
        raise Retry(error)
    if refused is not None:
        raise refused
    raise TokenRequestError(
        f"token endpoint {shown_url(url)} answered HTTP {status} to client {client!r} without "
        "an OAuth error (RFC 6749 §5.2); check the token endpoint URL"
        + (" (redirects are not followed: configure the final URL)" if status < 400 else ""),
        status=status,
        client=client,
    )


#: token types a client can use (RFC 6749 §7.1: never one it does not understand)
_BEARER = "bearer"
_DPOP = "dpop"


def check_token_type(token: Token, *, dpop: bool, client: str, status: int) -> None:
    """Refuse a token whose type this client cannot use: Bearer always works; DPoP only for a
    client that sent a proof (it alone can prove possession of the key); nothing else."""
    kind = token.token_type.lower()
    if kind == _BEARER or (dpop and kind == _DPOP):
        return
    usable = "Bearer or DPoP" if dpop else "Bearer"
    hint = (
        "; give the client a dpop_key to use DPoP-bound tokens"
        if kind == _DPOP
        else " (RFC 6749 §7.1: a client must not use a token type it does not understand)"
    )
    raise InvalidTokenResponseError(
        f"the token endpoint issued client {client!r} a token of type "
        f"{shown(token.token_type, 40, quote=True)}, not {usable}{hint}",
        status=status,
        client=client,
    )


async def read_capped(
    response: aiohttp.ClientResponse, limit: int = MAX_RESPONSE_BYTES
) -> bytes | None:
    """The body, or ``None`` when it is longer than ``limit`` (chunked bodies too)."""
    if (response.content_length or 0) > limit:
        return None
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.content.iter_chunked(1 << 16):
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


def _endpoint_error(
    refused: TokenRequestError | None, client: str, status: int, url: str
) -> TokenEndpointError:
    if refused is None:
        return TokenEndpointError(
            f"token endpoint {shown_url(url)} answered HTTP {status} to client {client!r}",
            status=status,
            client=client,
        )
    return TokenEndpointError(
        str(refused),
        error=refused.error,
        error_description=refused.error_description,
        error_uri=refused.error_uri,
        status=status,
        client=client,
    )


def _oversized(client: str, status: int) -> InvalidTokenResponseError:
    return InvalidTokenResponseError(
        f"the token response for client {client!r} is larger than {MAX_RESPONSE_BYTES} bytes",
        status=status,
        client=client,
    )
