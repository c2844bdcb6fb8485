"""Fixtures for the tests against a real authorization server (panva's oidc-provider).

A test module registers the clients it needs and gets one server for the module::

    @pytest.fixture(scope="module")
    def issuer(oidc_provider: OidcProviderFactory) -> Iterator[str]:
        with oidc_provider([private_key_jwt_client("rs-client", key)]) as issuer:
            yield issuer

``dpop=True`` (with ``dpop_require_nonce``, ``dpop_algorithms``) turns DPoP on;
``granted``, ``token_requests`` and ``introspect`` read what the server did.

Without node or the npm install the tests skip, unless JWTMINT_REQUIRE_OIDC_PROVIDER=1
(CI sets it) makes that a failure.
"""

from __future__ import annotations

import base64
import functools
import os
from collections.abc import Mapping, Sequence
from contextlib import AbstractContextManager
from typing import Any, Protocol
from urllib.parse import quote_plus

import aiohttp
import pytest

from .oidc_server import REQUIRE_ENV, missing_prerequisite, start_oidc_provider

__all__ = ["OidcProviderFactory", "discover", "granted", "introspect", "token_requests"]


class OidcProviderFactory(Protocol):
    def __call__(
        self,
        clients: Sequence[Mapping[str, Any]],
        *,
        require_issuer_audience: bool = ...,
        access_token_ttl: int = ...,
        dpop: bool = ...,
        dpop_require_nonce: bool = ...,
        dpop_algorithms: Sequence[str] | None = ...,
    ) -> AbstractContextManager[str]: ...


@pytest.fixture(scope="session")
def oidc_provider(tmp_path_factory: pytest.TempPathFactory) -> OidcProviderFactory:
    """Starts oidc-provider servers: ``with oidc_provider(clients) as issuer: ...``."""
    reason = missing_prerequisite()
    if reason is not None:
        if os.environ.get(REQUIRE_ENV) == "1":
            pytest.fail(f"{REQUIRE_ENV}=1 but {reason}", pytrace=False)
        pytest.skip(reason)
    workdir = tmp_path_factory.mktemp("oidc-provider")
    factory: OidcProviderFactory = functools.partial(start_oidc_provider, workdir=workdir)
    return factory


async def discover(session: aiohttp.ClientSession, issuer: str) -> dict[str, Any]:
    """The server's OpenID Provider metadata."""
    async with session.get(f"{issuer}/.well-known/openid-configuration") as response:
        assert response.status == 200
        metadata: dict[str, Any] = await response.json()
    return metadata


async def granted(
    session: aiohttp.ClientSession, issuer: str, client_id: str
) -> list[dict[str, Any]]:
    """Every token the server issued to ``client_id``, in order (server.mjs records them).

    Each is ``{client_id, auth_method, scope, assertion, dpop, jkt}``; ``assertion`` is the
    header and claims of the client assertion, or None. A token is issued only after
    oidc-provider checked the assertion's signature, aud, exp, and its jti against the replay
    store. ``dpop`` is the header and claims of the DPoP proof the token is bound by and
    ``jkt`` the thumbprint the server computed from it (both None for a bearer token).
    """
    async with session.get(f"{issuer}/_test/grants") as response:
        assert response.status == 200
        seen: list[dict[str, Any]] = await response.json()
    return [entry for entry in seen if entry["client_id"] == client_id]


async def token_requests(
    session: aiohttp.ClientSession, issuer: str, client_id: str
) -> list[dict[str, Any]]:
    """Every answered token request for ``client_id``, refusals included, in order.

    Each is ``{client_id, status, error, error_description, token_type, assertion, dpop,
    dpop_nonce}``: the decoded client assertion and DPoP proof as sent (None when absent),
    and the ``DPoP-Nonce`` the server answered with (None when it sent none).
    """
    async with session.get(f"{issuer}/_test/token_requests") as response:
        assert response.status == 200
        seen: list[dict[str, Any]] = await response.json()
    return [entry for entry in seen if entry["client_id"] == client_id]


async def introspect(
    session: aiohttp.ClientSession, issuer: str, token: str, *, client_id: str, secret: str
) -> dict[str, Any]:
    """The server's RFC 7662 introspection of ``token``, asked by a client_secret_basic client."""
    metadata = await discover(session, issuer)
    # RFC 6749 §2.3.1: both form-urlencoded before the Basic encoding
    credentials = f"{quote_plus(client_id)}:{quote_plus(secret)}".encode("ascii")
    async with session.post(
        metadata["introspection_endpoint"],
        data={"token": token},
        headers={"Authorization": f"Basic {base64.b64encode(credentials).decode('ascii')}"},
    ) as response:
        assert response.status == 200
        answer: dict[str, Any] = await response.json()
    return answer
