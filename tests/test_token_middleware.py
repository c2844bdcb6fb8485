"""The aiohttp client middleware: tokens on API calls, scoped to origins, one retry on 401."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import aiohttp
import httpx
import pytest
from aiohttp import web

from jwtmint.errors import ConfigurationError, UnknownClientError
from jwtmint.testing import Fault, TokenEndpoint
from jwtmint.tokens import ClientCredentialsClient, TokenManager

from .conftest import serving, signing_key


@pytest.fixture
async def tokens(endpoint: TokenEndpoint) -> AsyncIterator[TokenManager]:
    client = ClientCredentialsClient(
        "es", issuer=endpoint.issuer, private_key=signing_key("ES256"), scope="api"
    )
    async with TokenManager({"es": client}) as manager:
        yield manager


async def test_the_token_goes_on_api_calls(endpoint: TokenEndpoint, tokens: TokenManager) -> None:
    async with aiohttp.ClientSession(middlewares=[tokens.middleware("es")]) as api:
        for _ in range(3):
            async with api.get(f"{endpoint.url}/api/invoices") as response:
                assert response.status == 200
                body = await response.json()
    assert body == {"client_id": "es", "scope": "api", "path": "invoices"}
    assert endpoint.request_count() == 1  # one token for three calls


async def test_tokens_go_only_to_the_origins_given(
    endpoint: TokenEndpoint, tokens: TokenManager
) -> None:
    # the same server under another name is another origin: it must not get the token
    other = endpoint.url.replace("127.0.0.1", "localhost")
    middleware = tokens.middleware("es", origins=[endpoint.url])
    async with aiohttp.ClientSession(middlewares=[middleware]) as api:
        async with api.get(f"{endpoint.url}/api/a") as response:
            assert response.status == 200
        async with api.get(f"{other}/api/b") as response:
            assert response.status == 401
            assert "Authorization" not in response.request_info.headers
    assert endpoint.api_requests == [("a", 200), ("b", 401)]


async def test_a_401_renews_once_and_retries_once(
    endpoint: TokenEndpoint, tokens: TokenManager
) -> None:
    async with aiohttp.ClientSession(middlewares=[tokens.middleware("es")]) as api:
        first = await tokens.get_token("es", scope="api")
        endpoint.revoke(first.access_token)
        async with api.post(f"{endpoint.url}/api/pay", json={"amount": 5}) as response:
            assert response.status == 200
    assert endpoint.api_requests == [("pay", 401), ("pay", 200)]
    assert endpoint.request_count() == 2
    assert (await tokens.get_token("es", scope="api")).access_token != first.access_token


async def test_a_burst_of_401s_costs_one_renewal(
    endpoint: TokenEndpoint, tokens: TokenManager
) -> None:
    async with aiohttp.ClientSession(middlewares=[tokens.middleware("es")]) as api:
        async with api.get(f"{endpoint.url}/api/warm") as response:
            assert response.status == 200
        endpoint.revoke_all()

        async def call(i: int) -> int:
            async with api.get(f"{endpoint.url}/api/{i}") as response:
                return response.status

        statuses = await asyncio.gather(*(call(i) for i in range(20)))
    assert statuses == [200] * 20
    assert endpoint.request_count() == 2


async def test_a_resource_that_always_refuses_is_tried_twice_only(tokens: TokenManager) -> None:
    seen: list[str] = []

    async def refuse(request: web.Request) -> web.Response:
        seen.append(request.headers.get("Authorization", ""))
        return web.json_response({"error": "invalid_token"}, status=401)

    async with (
        serving(web.get("/", refuse)) as url,
        aiohttp.ClientSession(middlewares=[tokens.middleware("es")]) as api,
        api.get(f"{url}/") as response,
    ):
        assert response.status == 401
    assert len(seen) == 2 and seen[0] != seen[1]
    assert all(value.startswith("Bearer ") for value in seen)


async def test_the_manager_may_share_the_api_session(endpoint: TokenEndpoint) -> None:
    # token requests must not pass through the session's token middleware (it would recurse)
    client = ClientCredentialsClient("es", issuer=endpoint.issuer, private_key=signing_key("ES256"))
    managers: list[TokenManager] = []

    async def attach(
        request: aiohttp.ClientRequest, handler: aiohttp.ClientHandlerType
    ) -> aiohttp.ClientResponse:
        return await managers[0].middleware("es")(request, handler)

    async with (
        aiohttp.ClientSession(middlewares=[attach]) as session,
        TokenManager({"es": client}, session=session) as tokens,
    ):
        managers.append(tokens)
        async with session.get(f"{endpoint.url}/api/x") as response:
            assert response.status == 200
        assert (await tokens.get_token("es", force_renewal=True)).access_token
    assert endpoint.request_count() == 2


def test_origins_must_be_origins(tokens: TokenManager) -> None:
    with pytest.raises(ConfigurationError, match="scheme://host"):
        tokens.middleware("es", origins=["https://api.example.com/v1"])
    with pytest.raises(ConfigurationError, match="scheme://host"):
        tokens.middleware("es", origins=["api.example.com"])
    tokens.middleware("es", origins="https://api.example.com:443")


async def test_tokens_never_go_over_plain_http_off_loopback(
    endpoint: TokenEndpoint, tokens: TokenManager
) -> None:
    # the rule token endpoints follow (https, or loopback, or allow_insecure_http), for the
    # origins a token goes to: given, from the client's resources, or the first request's
    plain = "http://api.example.com"
    for adapter in (tokens.middleware, tokens.httpx_auth):
        with pytest.raises(ConfigurationError, match="plain http"):
            adapter("es", origins=[plain])
        with pytest.raises(ConfigurationError, match="plain http"):
            adapter("es", origins=["https://api.example.com", f"{plain}:8080"])
        with pytest.raises(ConfigurationError, match="plain http"):
            adapter("es", resource=f"{plain}/v1")
        adapter("es", origins=["https://api.example.com", "http://127.0.0.1:8080"])
        adapter("es", origins=["http://localhost:8080", "http://[::1]:8080"])
    insecure = ClientCredentialsClient(
        "es",
        issuer=endpoint.issuer,
        private_key=signing_key("ES256"),
        resource=f"{plain}/v1",
        allow_insecure_http=True,
    )
    async with TokenManager({"es": insecure}) as trusting:
        trusting.middleware("es")
        trusting.httpx_auth("es", origins=[plain])
    # no origins and no resources: the first request's origin, checked before anything is sent
    # (example.invalid resolves nowhere, RFC 6761: the refusal is the middleware's)
    first = "http://api.example.invalid/x"
    async with aiohttp.ClientSession(middlewares=[tokens.middleware("es")]) as api:
        with pytest.raises(ConfigurationError, match="plain http"):
            await api.get(first)
    async with httpx.AsyncClient(auth=tokens.httpx_auth("es")) as client:
        with pytest.raises(ConfigurationError, match="plain http"):
            await client.get(first)
    assert endpoint.request_count() == 0  # no token was even fetched


async def test_a_redirect_to_another_host_never_gets_the_token(
    endpoint: TokenEndpoint, tokens: TokenManager
) -> None:
    # aiohttp runs middlewares again on each redirect hop: the token must stay home
    elsewhere = endpoint.url.replace("127.0.0.1", "localhost") + "/api/stolen"

    async def bounce(request: web.Request) -> web.Response:
        raise web.HTTPFound(elsewhere)

    async with (
        serving(web.get("/go", bounce)) as here,
        aiohttp.ClientSession(middlewares=[tokens.middleware("es")]) as api,
        api.get(f"{here}/go") as response,  # pins the first origin
    ):
        assert response.status == 401
        assert "Authorization" not in response.request_info.headers
    assert endpoint.api_requests == [("stolen", 401)]


async def test_origins_default_to_the_clients_resources(endpoint: TokenEndpoint) -> None:
    client = ClientCredentialsClient(
        "es",
        issuer=endpoint.issuer,
        private_key=signing_key("ES256"),
        resource=[f"{endpoint.url}/api", "urn:example:not-a-web-origin"],
    )
    other = endpoint.url.replace("127.0.0.1", "localhost")
    async with (
        TokenManager({"es": client}) as tokens,
        aiohttp.ClientSession(middlewares=[tokens.middleware("es")]) as api,
    ):
        async with api.get(f"{other}/api/first") as response:  # not a resource origin
            assert response.status == 401
        async with api.get(f"{endpoint.url}/api/second") as response:
            assert response.status == 200


async def test_a_streamed_body_is_not_sent_twice(
    endpoint: TokenEndpoint, tokens: TokenManager
) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        yield b"chunk1-"
        yield b"chunk2"

    first = await tokens.get_token("es", scope="api")
    endpoint.revoke(first.access_token)
    async with (
        aiohttp.ClientSession(middlewares=[tokens.middleware("es")]) as api,
        api.post(f"{endpoint.url}/api/upload", data=chunks()) as response,
    ):
        # the 401 comes back to the caller: resending would post an empty body
        assert response.status == 401
    assert endpoint.api_requests == [("upload", 401)]
    assert endpoint.request_count() == 2  # but the token was renewed for the next call
    async with (
        aiohttp.ClientSession(middlewares=[tokens.middleware("es")]) as api,
        api.post(f"{endpoint.url}/api/upload", data=b"bytes") as response,
    ):
        assert response.status == 200
    assert endpoint.api_requests[-1] == ("upload", 200)


async def test_the_callers_own_authorization_is_left_alone_elsewhere(
    endpoint: TokenEndpoint, tokens: TokenManager
) -> None:
    other = endpoint.url.replace("127.0.0.1", "localhost")
    middleware = tokens.middleware("es", origins=[endpoint.url])
    async with (
        aiohttp.ClientSession(middlewares=[middleware]) as api,
        api.get(f"{other}/api/x", headers={"Authorization": "Bearer mine"}) as response,
    ):
        assert response.request_info.headers["Authorization"] == "Bearer mine"
    assert endpoint.request_count() == 0


async def test_a_resource_that_refuses_every_token_does_not_drive_the_idp(
    tokens: TokenManager, endpoint: TokenEndpoint
) -> None:
    async def refuse(request: web.Request) -> web.Response:
        return web.json_response({"error": "insufficient_scope"}, status=401)

    async with (
        serving(web.get("/", refuse)) as url,
        aiohttp.ClientSession(middlewares=[tokens.middleware("es")]) as api,
    ):
        for _ in range(20):
            async with api.get(f"{url}/") as response:
                assert response.status == 401
    assert endpoint.request_count() == 2  # the first token, then one forced renewal


async def test_a_failed_renewal_after_a_401_returns_the_401(
    endpoint: TokenEndpoint, tokens: TokenManager
) -> None:
    async with aiohttp.ClientSession(middlewares=[tokens.middleware("es")]) as api:
        async with api.get(f"{endpoint.url}/api/a") as response:
            assert response.status == 200
        endpoint.revoke_all()
        endpoint.set_fault(Fault(status=400, body={"error": "invalid_client"}))
        async with api.get(f"{endpoint.url}/api/b") as response:
            assert response.status == 401  # the API's answer, not the IdP's refusal
    assert endpoint.api_requests == [("a", 200), ("b", 401)]


async def test_a_token_source_is_what_the_adapters_are_given(
    endpoint: TokenEndpoint, tokens: TokenManager
) -> None:
    with pytest.raises(UnknownClientError):
        tokens.token_source("nobody")
    source = tokens.token_source("es", scope="other")
    assert source.client == "es" and source.key.scope == "other"
    first = await source.current()
    assert first.access_token not in repr(source)
    assert await source.current() is first
    assert await tokens.get_token("es", scope="other") is first  # one cache entry
    assert first.scope == "other"
    renewed = await source.renew_after_refusal(first)
    assert renewed is not None and renewed.access_token != first.access_token
    # a second refusal of the old token shares the renewal instead of making another
    assert await source.renew_after_refusal(first) is renewed
    assert endpoint.request_count() == 2
