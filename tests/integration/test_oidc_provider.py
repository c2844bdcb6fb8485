"""jwtmint's client assertions against a real authorization server, by hand.

No token manager here: AssertionSigner mints, aiohttp posts the form (RFC 6749 §4.4,
RFC 7523 §2.2) to oidc-provider's token endpoint. This proves the server set-up that the
token-manager tests rely on, and pins down what oidc-provider accepts (aud, alg, jti).
"""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator, Iterator
from typing import Any
from urllib.parse import quote_plus

import aiohttp
import pytest

import jwtmint
from jwtmint import JWT_BEARER, AssertionSigner, SigningKey, load_secret

from .conftest import OidcProviderFactory, discover, granted
from .oidc_server import private_key_jwt_client, secret_client

#: ≥ 32 bytes, with characters that client_secret_basic must form-urlencode (RFC 6749 §2.3.1)
SECRET = "jwtmint integration: s3cret+with/form&chars=%41"
ASYMMETRIC = ["RS256", "PS256", "ES256", "EdDSA"]
CLIENT_IDS = {alg: f"{alg.lower()}-client" for alg in ASYMMETRIC}


@pytest.fixture(scope="module")
def keys() -> dict[str, SigningKey]:
    return {alg: jwtmint.generate_key(alg) for alg in ASYMMETRIC}


def _clients(keys: dict[str, SigningKey]) -> list[dict[str, Any]]:
    return [
        *(private_key_jwt_client(CLIENT_IDS[alg], key) for alg, key in keys.items()),
        secret_client("hs-client", SECRET, "client_secret_jwt", signing_algorithm="HS256"),
        secret_client("basic-client", SECRET, "client_secret_basic"),
        secret_client("post-client", SECRET, "client_secret_post"),
    ]


@pytest.fixture(scope="module")
def issuer(oidc_provider: OidcProviderFactory, keys: dict[str, SigningKey]) -> Iterator[str]:
    """oidc-provider as it comes: it takes aud = issuer or token endpoint URL."""
    with oidc_provider(_clients(keys)) as url:
        yield url


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as http:
        yield http


async def _token_endpoint(session: aiohttp.ClientSession, issuer: str) -> str:
    endpoint: str = (await discover(session, issuer))["token_endpoint"]
    return endpoint


async def _post(
    session: aiohttp.ClientSession,
    endpoint: str,
    form: dict[str, str],
    *,
    basic: tuple[str, str] | None = None,
) -> tuple[int, dict[str, Any]]:
    headers = None
    if basic is not None:
        pair = ":".join(basic).encode()
        headers = {"Authorization": "Basic " + base64.b64encode(pair).decode("ascii")}
    async with session.post(endpoint, data=form, headers=headers) as response:
        body: dict[str, Any] = await response.json()
        return response.status, body


def _assertion_form(assertion: str, scope: str = "api.read") -> dict[str, str]:
    return {
        "grant_type": "client_credentials",
        "client_assertion_type": JWT_BEARER,
        "client_assertion": assertion,
        "scope": scope,
    }


async def _request_with_assertion(
    session: aiohttp.ClientSession, issuer: str, signer: AssertionSigner, scope: str = "api.read"
) -> tuple[int, dict[str, Any]]:
    endpoint = await _token_endpoint(session, issuer)
    return await _post(session, endpoint, _assertion_form(signer.mint(), scope))


def _assert_token(status: int, body: dict[str, Any], scope: str = "api.read") -> None:
    assert status == 200, body
    assert isinstance(body["access_token"], str) and body["access_token"]
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 300
    assert body["scope"] == scope


def _assert_invalid_client(status: int, body: dict[str, Any]) -> None:
    assert status in (400, 401), body
    assert body["error"] == "invalid_client", body


async def test_discovery_names_the_issuer_and_every_method(
    session: aiohttp.ClientSession, issuer: str
) -> None:
    metadata = await discover(session, issuer)
    assert metadata["issuer"] == issuer
    assert metadata["token_endpoint"] == f"{issuer}/token"
    assert "client_credentials" in metadata["grant_types_supported"]
    assert {
        "private_key_jwt",
        "client_secret_jwt",
        "client_secret_basic",
        "client_secret_post",
    } <= set(metadata["token_endpoint_auth_methods_supported"])
    assert {"RS256", "PS256", "ES256", "EdDSA", "HS256"} <= set(
        metadata["token_endpoint_auth_signing_alg_values_supported"]
    )


@pytest.mark.parametrize("alg", ASYMMETRIC)
async def test_private_key_jwt_gets_a_token_with_the_scope(
    session: aiohttp.ClientSession, issuer: str, keys: dict[str, SigningKey], alg: str
) -> None:
    signer = AssertionSigner(keys[alg], CLIENT_IDS[alg], audience=issuer)
    status, body = await _request_with_assertion(session, issuer, signer, "api.read api.write")
    _assert_token(status, body, "api.read api.write")


async def test_client_secret_jwt_gets_a_token(session: aiohttp.ClientSession, issuer: str) -> None:
    signer = AssertionSigner(load_secret(SECRET, "HS256"), "hs-client", audience=issuer)
    _assert_token(*await _request_with_assertion(session, issuer, signer))


async def test_client_secret_basic_gets_a_token(
    session: aiohttp.ClientSession, issuer: str
) -> None:
    endpoint = await _token_endpoint(session, issuer)
    form = {"grant_type": "client_credentials", "scope": "api.read"}
    # RFC 6749 §2.3.1: id and secret are form-urlencoded before base64, and oidc-provider
    # decodes them: the raw secret ("+" reads as a space, "%41" as "A") is refused
    raw = ("basic-client", SECRET)
    _assert_invalid_client(*await _post(session, endpoint, form, basic=raw))
    encoded = (quote_plus("basic-client"), quote_plus(SECRET))
    _assert_token(*await _post(session, endpoint, form, basic=encoded))


async def test_client_secret_post_gets_a_token(session: aiohttp.ClientSession, issuer: str) -> None:
    endpoint = await _token_endpoint(session, issuer)
    form = {
        "grant_type": "client_credentials",
        "scope": "api.read",
        "client_id": "post-client",
        "client_secret": SECRET,
    }
    _assert_token(*await _post(session, endpoint, form))


async def test_wrong_key_is_invalid_client(session: aiohttp.ClientSession, issuer: str) -> None:
    signer = AssertionSigner(jwtmint.generate_key("RS256"), "rs256-client", audience=issuer)
    _assert_invalid_client(*await _request_with_assertion(session, issuer, signer))


async def test_wrong_algorithm_is_invalid_client(
    session: aiohttp.ClientSession, issuer: str, keys: dict[str, SigningKey]
) -> None:
    """The clients are registered with token_endpoint_auth_signing_alg: a token for
    ps256-client proves the assertion was PS256, not RS256 with the same key."""
    signer = AssertionSigner(keys["PS256"], "ps256-client", audience=issuer, algorithm="RS256")
    _assert_invalid_client(*await _request_with_assertion(session, issuer, signer))


async def test_replayed_assertion_is_invalid_client(
    session: aiohttp.ClientSession, issuer: str, keys: dict[str, SigningKey]
) -> None:
    endpoint = await _token_endpoint(session, issuer)
    assertion = AssertionSigner(keys["ES256"], "es256-client", audience=issuer).mint()
    _assert_token(*await _post(session, endpoint, _assertion_form(assertion)))
    status, body = await _post(session, endpoint, _assertion_form(assertion))
    # the reason ("client assertion tokens must only be used once") stays in the server
    _assert_invalid_client(status, body)


async def test_server_saw_what_jwtmint_minted(
    session: aiohttp.ClientSession, issuer: str, keys: dict[str, SigningKey]
) -> None:
    signer = AssertionSigner(keys["EdDSA"], "eddsa-client", audience=issuer)
    before = len(await granted(session, issuer, "eddsa-client"))
    for _ in range(3):
        _assert_token(*await _request_with_assertion(session, issuer, signer))
    seen = [entry["assertion"] for entry in (await granted(session, issuer, "eddsa-client"))]
    seen = seen[before:]
    assert len(seen) == 3
    assert len({entry["claims"]["jti"] for entry in seen}) == 3
    for entry in seen:
        assert entry["header"] == {
            "alg": "EdDSA",
            "kid": keys["EdDSA"].kid,
            "typ": "client-authentication+jwt",
        }
        claims = entry["claims"]
        assert claims["iss"] == claims["sub"] == "eddsa-client"
        assert claims["aud"] == issuer
        assert claims["exp"] - claims["iat"] == 60


# --------------------------------------------------------------------------- the audience


@pytest.mark.parametrize(
    ("audience", "accepted"),
    [
        pytest.param("{issuer}", True, id="issuer"),
        pytest.param("{issuer}/token", True, id="token-endpoint"),
        pytest.param(["https://elsewhere.example", "{issuer}"], True, id="list-with-issuer"),
        pytest.param("{issuer}/", False, id="issuer-with-slash"),
        pytest.param("{issuer}/token/introspection", False, id="introspection-endpoint"),
        pytest.param("https://elsewhere.example", False, id="elsewhere"),
    ],
)
async def test_which_audiences_oidc_provider_accepts(
    session: aiohttp.ClientSession,
    issuer: str,
    keys: dict[str, SigningKey],
    audience: str | list[str],
    accepted: bool,
) -> None:
    """oidc-provider takes the issuer or the token endpoint URL (or a list holding one):
    its accepting an assertion does not by itself prove aud = issuer."""
    aud = (
        audience.format(issuer=issuer)
        if isinstance(audience, str)
        else [a.format(issuer=issuer) for a in audience]
    )
    signer = AssertionSigner(keys["ES256"], "es256-client", audience=aud)
    status, body = await _request_with_assertion(session, issuer, signer)
    if accepted:
        _assert_token(status, body)
    else:
        _assert_invalid_client(status, body)


async def test_strict_server_takes_only_the_issuer(
    oidc_provider: OidcProviderFactory, session: aiohttp.ClientSession, keys: dict[str, SigningKey]
) -> None:
    """With require_issuer_audience (the token-manager tests use it), aud must be the issuer
    (draft-ietf-oauth-rfc7523bis); the token endpoint URL is refused."""
    with oidc_provider(
        [private_key_jwt_client("es256-client", keys["ES256"])], require_issuer_audience=True
    ) as strict:
        to_endpoint = AssertionSigner(keys["ES256"], "es256-client", audience=f"{strict}/token")
        _assert_invalid_client(*await _request_with_assertion(session, strict, to_endpoint))
        to_list = AssertionSigner(keys["ES256"], "es256-client", audience=[strict])
        _assert_invalid_client(*await _request_with_assertion(session, strict, to_list))
        to_issuer = AssertionSigner(keys["ES256"], "es256-client", audience=strict)
        _assert_token(*await _request_with_assertion(session, strict, to_issuer))


# --------------------------------------------------------------------------- scopes


async def test_scope_the_client_may_not_have_is_invalid_scope(
    session: aiohttp.ClientSession, issuer: str, keys: dict[str, SigningKey]
) -> None:
    signer = AssertionSigner(keys["ES256"], "es256-client", audience=issuer)
    status, body = await _request_with_assertion(session, issuer, signer, "api.read api.admin")
    assert status == 400, body
    assert body["error"] == "invalid_scope"


async def test_scope_unknown_to_the_server_is_dropped(
    session: aiohttp.ClientSession, issuer: str, keys: dict[str, SigningKey]
) -> None:
    """oidc-provider grants less than asked and says so in ``scope`` (RFC 6749 §5.1)."""
    signer = AssertionSigner(keys["ES256"], "es256-client", audience=issuer)
    status, body = await _request_with_assertion(session, issuer, signer, "api.read nonsense")
    _assert_token(status, body, "api.read")
