"""TokenManager.httpx_auth: the middleware's behaviour for httpx.AsyncClient."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from jwtmint.testing import TokenEndpoint
from jwtmint.tokens import ClientCredentialsClient, TokenManager

from .conftest import signing_key


@pytest.fixture
async def tokens(endpoint: TokenEndpoint) -> AsyncIterator[TokenManager]:
    client = ClientCredentialsClient("es", issuer=endpoint.issuer, private_key=signing_key("ES256"))
    async with TokenManager({"es": client}) as manager:
        yield manager


async def test_httpx_calls_carry_the_token_and_renew_on_401(
    endpoint: TokenEndpoint, tokens: TokenManager
) -> None:
    auth = tokens.httpx_auth("es", origins=[endpoint.url])
    async with httpx.AsyncClient(auth=auth) as api:
        assert (await api.get(f"{endpoint.url}/api/a")).status_code == 200
        endpoint.revoke_all()
        assert (await api.get(f"{endpoint.url}/api/b")).status_code == 200
        other = endpoint.url.replace("127.0.0.1", "localhost")
        refused = await api.get(f"{other}/api/c")
        assert refused.status_code == 401 and "Authorization" not in refused.request.headers
    assert endpoint.api_requests == [("a", 200), ("b", 401), ("b", 200), ("c", 401)]
    assert endpoint.request_count() == 2
    assert "es" in repr(auth) and "Bearer" not in repr(auth)


def test_httpx_auth_refuses_the_sync_client(tokens: TokenManager) -> None:
    with (
        httpx.Client(auth=tokens.httpx_auth("es")) as api,
        pytest.raises(RuntimeError, match="AsyncClient"),
    ):
        api.get("http://127.0.0.1:9/")
