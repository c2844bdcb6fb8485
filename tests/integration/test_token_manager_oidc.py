"""jwtmint.tokens against a real authorization server: panva's oidc-provider.

Seven clients, one per way to authenticate (private_key_jwt with RS256, PS256, ES256 and
EdDSA; client_secret_jwt; client_secret_basic; client_secret_post), each registered with
its algorithm pinned, on a server that takes a client assertion only when its ``aud`` is
exactly the issuer: a token therefore proves the algorithm and the audience jwtmint chose.
The server's record of what it issued (``granted``) shows how many token requests the
manager really made and the assertions' claims as the server saw them.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import aiohttp
import pytest

import jwtmint
from jwtmint import SigningKey
from jwtmint.errors import TokenRequestError
from jwtmint.tokens import ClientCredentialsClient, Token, TokenManager

from .conftest import OidcProviderFactory, granted
from .oidc_server import private_key_jwt_client, secret_client

#: ≥ 32 bytes (jwtmint refuses shorter HMAC secrets), with characters that
#: client_secret_basic must form-urlencode (RFC 6749 §2.3.1)
SECRET = "jwtmint integration: s3cret+with/form&chars=%41"
TTL = 300

#: client name -> (client_id, signing algorithm or None)
CLIENTS = {
    "rs": ("rs-client", "RS256"),
    "ps": ("ps-client", "PS256"),
    "es": ("es-client", "ES256"),
    "ed": ("ed-client", "EdDSA"),
    "hs": ("hs-client", "HS256"),
    "basic": ("basic-client", None),
    "post": ("post-client", None),
}
ASSERTION_CLIENTS = ["rs", "ps", "es", "ed", "hs"]
KEY_ALGORITHMS = {"rs": "RS256", "ps": "PS256", "es": "ES256", "ed": "EdDSA"}
AUTH_METHODS = {
    "rs": "private_key_jwt",
    "ps": "private_key_jwt",
    "es": "private_key_jwt",
    "ed": "private_key_jwt",
    "hs": "client_secret_jwt",
    "basic": "client_secret_basic",
    "post": "client_secret_post",
}


@pytest.fixture(scope="module")
def keys() -> dict[str, SigningKey]:
    return {name: jwtmint.generate_key(alg) for name, alg in KEY_ALGORITHMS.items()}


@pytest.fixture(scope="module")
def issuer(oidc_provider: OidcProviderFactory, keys: dict[str, SigningKey]) -> Iterator[str]:
    registered = [
        *(private_key_jwt_client(CLIENTS[name][0], key) for name, key in keys.items()),
        secret_client("hs-client", SECRET, "client_secret_jwt", signing_algorithm="HS256"),
        secret_client("basic-client", SECRET, "client_secret_basic"),
        secret_client("post-client", SECRET, "client_secret_post"),
    ]
    with oidc_provider(registered, require_issuer_audience=True, access_token_ttl=TTL) as url:
        yield url


def _clients(issuer: str, keys: dict[str, SigningKey]) -> dict[str, ClientCredentialsClient]:
    scope = "api.read"
    return {
        "rs": ClientCredentialsClient(
            "rs-client", issuer=issuer, private_key=keys["rs"], scope=scope
        ),
        "ps": ClientCredentialsClient(
            "ps-client",
            issuer=issuer,
            private_key=keys["ps"],
            signing_algorithm="PS256",
            scope=scope,
        ),
        "es": ClientCredentialsClient(
            "es-client", issuer=issuer, private_key=keys["es"], scope=scope
        ),
        "ed": ClientCredentialsClient(
            "ed-client", issuer=issuer, private_key=keys["ed"], scope=scope
        ),
        "hs": ClientCredentialsClient(
            "hs-client",
            issuer=issuer,
            client_secret=SECRET,
            auth_method="client_secret_jwt",
            scope=scope,
        ),
        "basic": ClientCredentialsClient(
            "basic-client", issuer=issuer, client_secret=SECRET, scope=scope
        ),
        "post": ClientCredentialsClient(
            "post-client",
            issuer=issuer,
            client_secret=SECRET,
            auth_method="client_secret_post",
            scope=scope,
        ),
        # rs-client's id with a key the server does not know
        "wrong": ClientCredentialsClient(
            "rs-client", issuer=issuer, private_key=jwtmint.generate_key("RS256")
        ),
        # es-client's key, but aud = the token endpoint: oidc-provider alone would take it
        "endpoint-aud": ClientCredentialsClient(
            "es-client", issuer=issuer, private_key=keys["es"], audience=f"{issuer}/token"
        ),
    }


@pytest.fixture
async def tokens(issuer: str, keys: dict[str, SigningKey]) -> AsyncIterator[TokenManager]:
    async with TokenManager(_clients(issuer, keys)) as manager:
        yield manager


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as http:
        yield http


async def _grants(session: aiohttp.ClientSession, issuer: str, name: str) -> list[dict[str, Any]]:
    return await granted(session, issuer, CLIENTS[name][0])


@pytest.mark.parametrize("name", list(CLIENTS))
async def test_each_method_gets_a_token_with_the_scope(
    tokens: TokenManager,
    session: aiohttp.ClientSession,
    issuer: str,
    keys: dict[str, SigningKey],
    name: str,
) -> None:
    before = len(await _grants(session, issuer, name))
    started = time.time()
    token = await tokens.get_token(name)
    finished = time.time()

    assert isinstance(token, Token)
    assert token.access_token and token.access_token == token.raw["access_token"]
    assert token.token_type == "Bearer"
    assert token.scope == "api.read"
    assert token.raw["expires_in"] == TTL
    assert started + TTL - 1 <= token.expires_at <= finished + TTL + 1

    grants = (await _grants(session, issuer, name))[before:]
    assert len(grants) == 1
    grant = grants[0]
    assert grant["auth_method"] == AUTH_METHODS[name]
    assert grant["scope"] == "api.read"
    client_id, algorithm = CLIENTS[name]
    if algorithm is None:
        assert grant["assertion"] is None
        return
    assertion = grant["assertion"]
    assert isinstance(assertion, dict)
    header, claims = assertion["header"], assertion["claims"]
    assert header["alg"] == algorithm
    if name in keys:
        assert header["kid"] == keys[name].kid
    assert claims["iss"] == claims["sub"] == client_id
    assert claims["aud"] == issuer


@pytest.mark.parametrize("name", list(CLIENTS))
async def test_second_call_is_served_from_the_cache(
    tokens: TokenManager, session: aiohttp.ClientSession, issuer: str, name: str
) -> None:
    first = await tokens.get_token(name)
    requests = len(await _grants(session, issuer, name))
    second = await tokens.get_token(name)
    assert second.access_token == first.access_token
    assert second == first
    assert len(await _grants(session, issuer, name)) == requests


@pytest.mark.parametrize("name", list(CLIENTS))
async def test_force_renewal_gets_a_new_token(
    tokens: TokenManager, session: aiohttp.ClientSession, issuer: str, name: str
) -> None:
    before = len(await _grants(session, issuer, name))
    first = await tokens.get_token(name)
    renewed = await tokens.get_token(name, force_renewal=True)
    assert renewed.access_token != first.access_token
    assert renewed.scope == "api.read"
    # the cache now holds the renewed token
    assert (await tokens.get_token(name)).access_token == renewed.access_token

    grants = (await _grants(session, issuer, name))[before:]
    assert len(grants) == 2
    if name in ASSERTION_CLIENTS:
        jtis = {grant["assertion"]["claims"]["jti"] for grant in grants}
        assert len(jtis) == 2


@pytest.mark.parametrize("name", ASSERTION_CLIENTS)
async def test_twenty_renewals_each_get_a_token_with_a_fresh_jti(
    tokens: TokenManager, session: aiohttp.ClientSession, issuer: str, name: str
) -> None:
    """oidc-provider refuses a reused jti (invalid_client): every renewal mints anew."""
    before = len(await _grants(session, issuer, name))
    seen = {(await tokens.get_token(name)).access_token}
    for _ in range(20):
        seen.add((await tokens.get_token(name, force_renewal=True)).access_token)
    assert len(seen) == 21

    grants = (await _grants(session, issuer, name))[before:]
    assert len(grants) == 21
    assertions = [grant["assertion"] for grant in grants]
    assert len({a["claims"]["jti"] for a in assertions}) == 21
    assert all(a["claims"]["aud"] == issuer for a in assertions)


async def test_concurrent_callers_share_one_request(
    tokens: TokenManager, session: aiohttp.ClientSession, issuer: str
) -> None:
    before = len(await _grants(session, issuer, "es"))
    results = await asyncio.gather(*(tokens.get_token("es") for _ in range(10)))
    assert len({token.access_token for token in results}) == 1
    assert len(await _grants(session, issuer, "es")) == before + 1


async def test_scope_per_request_is_its_own_token(tokens: TokenManager) -> None:
    default = await tokens.get_token("rs")
    write = await tokens.get_token("rs", scope="api.write")
    both = await tokens.get_token("rs", scope="api.read api.write")
    assert default.scope == "api.read"
    assert write.scope == "api.write"
    assert both.scope == "api.read api.write"
    assert len({default.access_token, write.access_token, both.access_token}) == 3
    # each is cached under its own scope
    assert (await tokens.get_token("rs", scope="api.write")).access_token == write.access_token
    assert (await tokens.get_token("rs")).access_token == default.access_token


async def test_wrong_key_is_invalid_client(tokens: TokenManager) -> None:
    with pytest.raises(TokenRequestError) as caught:
        await tokens.get_token("wrong")
    assert caught.value.error == "invalid_client"
    assert caught.value.status in (400, 401)


async def test_the_audience_is_the_issuer(tokens: TokenManager) -> None:
    """The server takes only aud = issuer, so the token for es proves jwtmint sent it; the
    same key with aud = token endpoint is refused here (oidc-provider alone takes both)."""
    assert (await tokens.get_token("es")).access_token
    with pytest.raises(TokenRequestError) as caught:
        await tokens.get_token("endpoint-aud")
    assert caught.value.error == "invalid_client"


@pytest.mark.parametrize("name", ["rs", "hs", "basic", "post"])
async def test_scope_the_client_may_not_have_is_invalid_scope(
    tokens: TokenManager, name: str
) -> None:
    """api.admin is a scope the server knows, not one these clients are registered for."""
    with pytest.raises(TokenRequestError) as caught:
        await tokens.get_token(name, scope="api.admin")
    assert caught.value.error == "invalid_scope"
    assert caught.value.status == 400
    # the refusal is not cached: the client's own scope still works
    assert (await tokens.get_token(name)).scope == "api.read"


async def test_scope_unknown_to_the_server_is_granted_narrower(tokens: TokenManager) -> None:
    """oidc-provider drops scopes no resource server lists and says so in the response's
    ``scope`` (RFC 6749 §5.1): Token.scope is what was granted, not what was asked."""
    token = await tokens.get_token("es", scope="api.read no.such.scope")
    assert token.scope == "api.read"
