"""jwtmint.testing.TokenEndpoint: a strict loopback token endpoint, checked over real HTTP.

Assertions come from two independent minters (jwtmint's AssertionSigner and
PyJWT) or are assembled by hand where both refuse to make the broken token a
test needs. Tests that judge time inject a FakeClock into the endpoint.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import io
import json
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote_plus, urlencode

import aiohttp
import jwt
import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import jwtmint
from jwtmint.errors import ConfigurationError
from jwtmint.testing import Fault, RecordedRequest, TokenEndpoint
from tests.conftest import ed448_key, signing_key

JWT_BEARER = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
SECRET = "a client secret: long enough for HS256 + odd chars"
OTHER_SECRET = "another client secret, also long enough for HS256"
DROP = object()  # a claim override that removes the claim


class FakeClock:
    """Epoch seconds that move only when the test moves them."""

    def __init__(self, now: float | None = None) -> None:
        self.now = time.time() if now is None else now

    def __call__(self) -> float:
        return self.now


@dataclass
class Reply:
    status: int
    headers: Mapping[str, str]
    text: str

    @property
    def json(self) -> dict[str, Any]:
        document: dict[str, Any] = json.loads(self.text)
        return document


Form = dict[str, str] | list[tuple[str, str]]
Request = tuple[Form, dict[str, str]]  # form fields, HTTP headers


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as client:
        yield client


@pytest.fixture
async def ep() -> AsyncIterator[TokenEndpoint]:
    async with TokenEndpoint() as endpoint:
        yield endpoint


async def post(
    session: aiohttp.ClientSession,
    url: str,
    data: Form,
    headers: Mapping[str, str] | None = None,
) -> Reply:
    async with session.post(url, data=data, headers=headers) as response:
        return Reply(response.status, response.headers, await response.text())


async def get(
    session: aiohttp.ClientSession, url: str, headers: Mapping[str, str] | None = None
) -> Reply:
    async with session.get(url, headers=headers) as response:
        return Reply(response.status, response.headers, await response.text())


def basic(client_id: str, secret: str) -> dict[str, str]:
    """RFC 6749 §2.3.1: both parts form-encoded before base64."""
    pair = f"{quote_plus(client_id)}:{quote_plus(secret)}".encode()
    return {"Authorization": "Basic " + base64.b64encode(pair).decode("ascii")}


def assertion_form(assertion: str, **extra: str) -> dict[str, str]:
    return {
        "grant_type": "client_credentials",
        "client_assertion_type": JWT_BEARER,
        "client_assertion": assertion,
        **extra,
    }


def claims(
    client_id: str, audience: Any, now: float | None = None, **overrides: Any
) -> dict[str, Any]:
    """A valid assertion claims set; an override of DROP removes that claim."""
    now = time.time() if now is None else now
    base: dict[str, Any] = {
        "iss": client_id,
        "sub": client_id,
        "aud": audience,
        "jti": uuid.uuid4().hex,
        "iat": int(now),
        "exp": int(now) + 60,
    }
    base.update(overrides)
    return {name: value for name, value in base.items() if value is not DROP}


def pyjwt_assertion(key: jwtmint.SigningKey, payload: dict[str, Any]) -> str:
    return jwt.encode(payload, key.key, algorithm=key.algorithm)


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def hand_made(header: dict[str, Any], payload: dict[str, Any], hmac_key: bytes | None) -> str:
    """A JWS neither minter will make: alg none, or HS256 keyed with a public key."""
    signing_input = f"{b64url(json.dumps(header).encode())}.{b64url(json.dumps(payload).encode())}"
    signature = b""
    if hmac_key is not None:
        signature = hmac.new(hmac_key, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64url(signature)}"


# ---------------------------------------------------------------------------- successes


@pytest.mark.parametrize(
    "algorithm", ["RS256", "PS256", "ES256", "ES384", "ES512", "EdDSA", "Ed448"]
)
async def test_private_key_jwt_from_jwtmint_is_accepted(
    session: aiohttp.ClientSession, algorithm: str
) -> None:
    key = ed448_key() if algorithm == "Ed448" else signing_key(algorithm)
    async with TokenEndpoint(require_typ=True) as ep:
        ep.register_client("svc", public_key=key)
        signer = jwtmint.AssertionSigner(key, "svc", ep.issuer)
        reply = await post(session, ep.token_url, assertion_form(signer.mint()))

        assert reply.status == 200, reply.text
        document = reply.json
        assert document["token_type"] == "Bearer"
        assert document["expires_in"] == 3600
        assert "scope" not in document
        assert reply.headers["Cache-Control"] == "no-store"
        assert reply.headers["Pragma"] == "no-cache"
        info = ep.token_info(document["access_token"])
        assert info is not None
        assert info["client_id"] == "svc"
        assert ep.requests[-1].auth_method == "private_key_jwt"


@pytest.mark.parametrize("algorithm", ["RS384", "PS512", "ES256"])
async def test_private_key_jwt_from_pyjwt_with_list_audience(
    ep: TokenEndpoint, session: aiohttp.ClientSession, algorithm: str
) -> None:
    key = signing_key(algorithm)
    # a cryptography public key object: no JWK alg, so every RSA algorithm is allowed
    ep.register_client("svc", public_key=key.key.public_key())  # type: ignore[union-attr]
    payload = claims("svc", ["https://other.example", ep.issuer])
    reply = await post(session, ep.token_url, assertion_form(pyjwt_assertion(key, payload)))
    assert reply.status == 200, reply.text


async def test_client_secret_jwt_hs256(ep: TokenEndpoint, session: aiohttp.ClientSession) -> None:
    ep.register_client("svc", secret=SECRET, auth_method="client_secret_jwt")
    signer = jwtmint.AssertionSigner(jwtmint.load_key(SECRET), "svc", ep.issuer)
    reply = await post(session, ep.token_url, assertion_form(signer.mint(), client_id="svc"))
    assert reply.status == 200, reply.text
    assert ep.requests[-1].auth_method == "client_secret_jwt"


async def test_client_secret_basic_form_encodes_both_parts(
    ep: TokenEndpoint, session: aiohttp.ClientSession
) -> None:
    client_id, secret = "team:svc+1", "p:ss+w/rd=%&"
    ep.register_client(client_id, secret=secret)
    form = {"grant_type": "client_credentials", "scope": "read write"}
    reply = await post(session, ep.token_url, form, basic(client_id, secret))
    assert reply.status == 200, reply.text
    assert reply.json["scope"] == "read write"
    assert ep.requests[-1].client_id == client_id
    assert ep.requests[-1].auth_method == "client_secret_basic"

    # the same credentials without the form-encoding step are a different client id
    raw = base64.b64encode(f"{client_id}:{secret}".encode()).decode()
    reply = await post(session, ep.token_url, form, {"Authorization": f"Basic {raw}"})
    assert reply.status == 401


async def test_client_secret_post(ep: TokenEndpoint, session: aiohttp.ClientSession) -> None:
    ep.register_client("svc", secret=SECRET, auth_method="client_secret_post")
    form = {"grant_type": "client_credentials", "client_id": "svc", "client_secret": SECRET}
    reply = await post(session, ep.token_url, form)
    assert reply.status == 200, reply.text
    assert ep.requests[-1].auth_method == "client_secret_post"


async def test_public_client_none(ep: TokenEndpoint, session: aiohttp.ClientSession) -> None:
    ep.register_client("spa")
    reply = await post(
        session, ep.token_url, {"grant_type": "client_credentials", "client_id": "spa"}
    )
    assert reply.status == 200, reply.text
    assert ep.requests[-1].auth_method == "none"


async def test_jwk_set_picks_the_key_by_kid(
    ep: TokenEndpoint, session: aiohttp.ClientSession
) -> None:
    old, new = jwtmint.generate_key("ES256"), signing_key("ES256")
    ep.register_client("svc", public_key={"keys": [old.public_jwk(), new.public_jwk()]})
    for key in (old, new):
        assertion = jwtmint.AssertionSigner(key, "svc", ep.issuer).mint()
        assert (await post(session, ep.token_url, assertion_form(assertion))).status == 200

    stranger = jwtmint.generate_key("ES256")
    assertion = jwtmint.AssertionSigner(stranger, "svc", ep.issuer).mint()
    reply = await post(session, ep.token_url, assertion_form(assertion))
    assert reply.status == 401
    assert "kid" in reply.json["error_description"]


async def test_a_jwk_alg_limits_the_key_to_that_algorithm(
    ep: TokenEndpoint, session: aiohttp.ClientSession
) -> None:
    key = signing_key("RS256")
    ep.register_client("svc", public_key=key.public_jwk())  # carries "alg": "RS256"
    ps256 = jwtmint.AssertionSigner(key, "svc", ep.issuer, algorithm="PS256").mint()
    reply = await post(session, ep.token_url, assertion_form(ps256))
    assert reply.status == 401
    assert "verifies PS256" in reply.json["error_description"]


def _signed(key: jwtmint.SigningKey, alg: str, payload: dict[str, Any], sign: Any) -> str:
    """A JWS whose signature bytes come from ``sign(signing_input)``, made by hand."""
    header = {"alg": alg, "kid": key.kid}
    signing_input = f"{b64url(json.dumps(header).encode())}.{b64url(json.dumps(payload).encode())}"
    return f"{signing_input}.{b64url(sign(signing_input.encode()))}"


async def test_signatures_must_have_the_jws_encoding(
    ep: TokenEndpoint, session: aiohttp.ClientSession
) -> None:
    rsa_key, ec_key = signing_key("PS256"), signing_key("ES256")
    ep.register_client("rsa", public_key=rsa_key)
    ep.register_client("ec", public_key=ec_key)
    rsa_private, ec_private = rsa_key.key, ec_key.key
    assert isinstance(rsa_private, rsa.RSAPrivateKey)
    assert isinstance(ec_private, ec.EllipticCurvePrivateKey)
    # RFC 7518 §3.5: the PSS salt is as long as the hash, not the longest that fits
    long_salt = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=padding.PSS.MAX_LENGTH)
    pss = _signed(
        rsa_key,
        "PS256",
        claims("rsa", ep.issuer),
        lambda data: rsa_private.sign(data, long_salt, hashes.SHA256()),
    )
    # RFC 7518 §3.4: R || S, not the DER that cryptography returns
    der = _signed(
        ec_key,
        "ES256",
        claims("ec", ep.issuer),
        lambda data: ec_private.sign(data, ec.ECDSA(hashes.SHA256())),
    )
    for assertion in (pss, der):
        reply = await post(session, ep.token_url, assertion_form(assertion))
        assert reply.status == 401
        assert "signature" in reply.json["error_description"]


async def test_blank_parameters_count_as_omitted(
    ep: TokenEndpoint, session: aiohttp.ClientSession
) -> None:
    ep.register_client("basic", secret=SECRET)
    # RFC 6749 §3.1: "scope=" is no scope at all, and "resource=" no resource
    form = {"grant_type": "client_credentials", "scope": "", "resource": ""}
    reply = await post(session, ep.token_url, form, basic("basic", SECRET))
    assert reply.status == 200, reply.text
    assert "scope" not in reply.json
    assert ep.requests[-1].scope is None


async def test_resource_indicators_and_extra_parameters_are_recorded(
    ep: TokenEndpoint, session: aiohttp.ClientSession
) -> None:
    key = signing_key("ES256")
    ep.register_client("svc", public_key=key)
    signer = jwtmint.AssertionSigner(key, "svc", ep.issuer)
    assertion = signer.mint()
    form = [
        *assertion_form(assertion, scope="read").items(),
        ("resource", "https://api.example/a"),
        ("resource", "urn:example:b"),
        ("audience", "billing"),
    ]
    reply = await post(session, ep.token_url, form)
    assert reply.status == 200, reply.text

    (record,) = ep.requests
    sent = jwt.decode(assertion, options={"verify_signature": False})
    assert record == RecordedRequest(
        client_id="svc",
        auth_method="private_key_jwt",
        grant_type="client_credentials",
        scope="read",
        resource=("https://api.example/a", "urn:example:b"),
        parameters={"audience": ["billing"]},
        jti=sent["jti"],
        assertion_claims=sent,
        assertion_header=jwt.get_unverified_header(assertion),
        outcome="issued",
        at=record.at,
        status=200,
    )
    info = ep.token_info(reply.json["access_token"])
    assert info is not None
    assert info["resource"] == ("https://api.example/a", "urn:example:b")
    assert info["parameters"] == {"audience": ["billing"]}
    assert info["scope"] == "read"
    assert assertion not in repr(record)


# ---------------------------------------------------------------------------- refusals


@pytest.fixture
def clients(ep: TokenEndpoint) -> TokenEndpoint:
    ep.register_client("es", public_key=signing_key("ES256"))
    ep.register_client("rsa", public_key=signing_key("RS256"))
    ep.register_client("hs", secret=SECRET, auth_method="client_secret_jwt")
    ep.register_client("basic", secret=SECRET)
    ep.register_client("scoped", secret=SECRET, allowed_scopes=["read"])
    return ep


def _es(ep: TokenEndpoint, **overrides: Any) -> dict[str, str]:
    return assertion_form(
        pyjwt_assertion(signing_key("ES256"), claims("es", ep.issuer, **overrides))
    )


def _grant(**extra: str) -> dict[str, str]:
    return {"grant_type": "client_credentials", **extra}


def _public_pem(algorithm: str) -> bytes:
    private = signing_key(algorithm).key
    assert not isinstance(private, bytes)
    return private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


REFUSALS: dict[str, tuple[Callable[[TokenEndpoint], Request], int, str, str]] = {
    "wrong key": (
        lambda ep: (
            assertion_form(
                pyjwt_assertion(jwtmint.generate_key("ES256"), claims("es", ep.issuer))
            ),
            {},
        ),
        401, "invalid_client", "signature",
    ),
    "wrong basic secret": (
        lambda ep: (_grant(), basic("basic", OTHER_SECRET)), 401, "invalid_client", "secret"
    ),
    "wrong client_secret_jwt secret": (
        lambda ep: (
            assertion_form(
                jwt.encode(claims("hs", ep.issuer), OTHER_SECRET, algorithm="HS256")
            ),
            {},
        ),
        401, "invalid_client", "signature",
    ),
    "unknown client": (
        lambda ep: (_grant(), basic("nobody", SECRET)), 401, "invalid_client", "unknown client"
    ),
    "post for a basic client": (
        lambda ep: (_grant(client_id="basic", client_secret=SECRET), {}),
        401, "invalid_client", "registered for client_secret_basic",
    ),
    "RS256 for a client_secret_jwt client": (
        lambda ep: (
            assertion_form(pyjwt_assertion(signing_key("RS256"), claims("hs", ep.issuer))),
            {},
        ),
        401, "invalid_client", "registered for client_secret_jwt",
    ),
    "aud is the token URL": (
        lambda ep: (_es(ep, aud=ep.token_url), {}), 401, "invalid_client", "aud"
    ),
    "aud missing": (lambda ep: (_es(ep, aud=DROP), {}), 401, "invalid_client", "aud"),
    "expired": (
        lambda ep: (_es(ep, iat=int(time.time()) - 120, exp=int(time.time()) - 60), {}),
        401, "invalid_client", "expired",
    ),
    "exp missing": (lambda ep: (_es(ep, exp=DROP), {}), 401, "invalid_client", "exp"),
    "issued in the future": (
        lambda ep: (_es(ep, iat=int(time.time()) + 60, exp=int(time.time()) + 90), {}),
        401, "invalid_client", "iat",
    ),
    "not yet valid": (
        lambda ep: (_es(ep, nbf=int(time.time()) + 30), {}), 401, "invalid_client", "nbf"
    ),
    "lifetime too long": (
        lambda ep: (_es(ep, exp=int(time.time()) + 3600), {}), 401, "invalid_client", "lifetime"
    ),
    "lifetime too long without iat": (
        lambda ep: (_es(ep, iat=DROP, exp=int(time.time()) + 3600), {}),
        401, "invalid_client", "lifetime",
    ),
    "jti missing": (lambda ep: (_es(ep, jti=DROP), {}), 401, "invalid_client", "jti"),
    "iss differs from sub": (lambda ep: (_es(ep, iss="rsa"), {}), 401, "invalid_client", "iss"),
    "client_id differs from sub": (
        lambda ep: ({**_es(ep), "client_id": "rsa"}, {}), 401, "invalid_client", "client_id"
    ),
    "alg none": (
        lambda ep: (
            assertion_form(hand_made({"alg": "none"}, claims("es", ep.issuer), None)), {}
        ),
        401, "invalid_client", "alg none",
    ),
    "HS256 keyed with the public key of a private_key_jwt client": (
        lambda ep: (
            assertion_form(
                hand_made({"alg": "HS256"}, claims("rsa", ep.issuer), _public_pem("RS256"))
            ),
            {},
        ),
        401, "invalid_client", "registered for private_key_jwt",
    ),
    "garbled assertion": (
        lambda ep: (assertion_form("not.a.jws"), {}), 401, "invalid_client", "malformed"
    ),
    "wrong client_assertion_type": (
        lambda ep: ({**_es(ep), "client_assertion_type": "urn:example:saml"}, {}),
        401, "invalid_client", "client_assertion_type",
    ),
    "no client authentication": (
        lambda ep: (_grant(), {}), 401, "invalid_client", "authentication is required"
    ),
    "two authentication methods": (
        lambda ep: (_es(ep), basic("basic", SECRET)), 400, "invalid_request", "more than one"
    ),
    "grant_type missing": (
        lambda ep: ({}, basic("basic", SECRET)), 400, "invalid_request", "grant_type"
    ),
    "wrong grant_type": (
        lambda ep: ({"grant_type": "password"}, basic("basic", SECRET)),
        400, "unsupported_grant_type", "client_credentials",
    ),
    "repeated parameter": (
        lambda ep: ([*_grant(scope="a").items(), ("scope", "b")], basic("basic", SECRET)),
        400, "invalid_request", "repeated",
    ),
    "scope not allowed": (
        lambda ep: (_grant(scope="read admin"), basic("scoped", SECRET)),
        400, "invalid_scope", "admin",
    ),
    "malformed scope": (
        lambda ep: (_grant(scope='read "x"'), basic("basic", SECRET)),
        400, "invalid_scope", "scope",
    ),
    "relative resource": (
        lambda ep: (_grant(resource="/api"), basic("basic", SECRET)),
        400, "invalid_target", "absolute",
    ),
    "resource with fragment": (
        lambda ep: (_grant(resource="https://api.example/#x"), basic("basic", SECRET)),
        400, "invalid_target", "fragment",
    ),
}  # fmt: skip


@pytest.mark.parametrize("case", REFUSALS)
async def test_refusals(clients: TokenEndpoint, session: aiohttp.ClientSession, case: str) -> None:
    ep = clients
    build, status, error, fragment = REFUSALS[case]
    form, headers = build(ep)
    reply = await post(session, ep.token_url, form, headers)

    assert reply.status == status, reply.text
    assert reply.json["error"] == error
    assert fragment in reply.json["error_description"]
    assert reply.headers["Cache-Control"] == "no-store"
    if status == 401:
        assert reply.headers["WWW-Authenticate"] == 'Basic realm="jwtmint-testing"'
    assert ep.requests[-1].outcome == error


async def test_token_url_audience_is_accepted_with_the_flag(session: aiohttp.ClientSession) -> None:
    key = signing_key("ES256")
    async with TokenEndpoint(accept_token_endpoint_audience=True) as ep:
        ep.register_client("es", public_key=key)
        for audience in (ep.token_url, ep.issuer):
            form = assertion_form(pyjwt_assertion(key, claims("es", audience)))
            assert (await post(session, ep.token_url, form)).status == 200


async def test_replayed_jti_is_refused(ep: TokenEndpoint, session: aiohttp.ClientSession) -> None:
    key = signing_key("EdDSA")
    ep.register_client("svc", public_key=key)
    assertion = jwtmint.AssertionSigner(key, "svc", ep.issuer).mint()
    first = await post(session, ep.token_url, assertion_form(assertion))
    second = await post(session, ep.token_url, assertion_form(assertion))
    assert first.status == 200
    assert second.status == 401
    assert "replay" in second.json["error_description"]
    assert ep.requests[0].jti == ep.requests[1].jti is not None


async def test_require_typ(session: aiohttp.ClientSession) -> None:
    key = signing_key("ES256")
    async with TokenEndpoint(require_typ=True) as ep:
        ep.register_client("es", public_key=key)
        reply = await post(
            session, ep.token_url, assertion_form(pyjwt_assertion(key, claims("es", ep.issuer)))
        )
        assert reply.status == 401
        assert "typ" in reply.json["error_description"]


async def test_time_checks_use_the_injected_clock(session: aiohttp.ClientSession) -> None:
    key = signing_key("ES256")
    clock = FakeClock(1_800_000_000)
    async with TokenEndpoint(clock=clock, leeway=5) as ep:
        ep.register_client("es", public_key=key)
        payload = claims("es", ep.issuer, now=clock.now)  # exp = now + 60
        clock.now += 64  # inside the leeway
        assert (
            await post(session, ep.token_url, assertion_form(pyjwt_assertion(key, payload)))
        ).status == 200
        clock.now += 1
        payload["jti"] = uuid.uuid4().hex
        reply = await post(session, ep.token_url, assertion_form(pyjwt_assertion(key, payload)))
        assert reply.json["error_description"] == "client assertion expired"


async def test_body_must_be_form_encoded(ep: TokenEndpoint, session: aiohttp.ClientSession) -> None:
    ep.register_client("basic", secret=SECRET)
    async with session.post(
        ep.token_url, json={"grant_type": "client_credentials"}, headers=basic("basic", SECRET)
    ) as response:
        assert response.status == 400
        assert (await response.json())["error"] == "invalid_request"
    reply = await get(session, ep.token_url)
    assert reply.status == 405
    assert [r.outcome for r in ep.requests] == ["invalid_request", "invalid_request"]


# ---------------------------------------------------------------------------- faults


def _basic_client(ep: TokenEndpoint) -> Callable[[aiohttp.ClientSession], Awaitable[Reply]]:
    ep.register_client("basic", secret=SECRET)

    async def request(session: aiohttp.ClientSession) -> Reply:
        return await post(session, ep.token_url, _grant(), basic("basic", SECRET))

    return request


async def test_fault_status_and_retry_after(
    ep: TokenEndpoint, session: aiohttp.ClientSession
) -> None:
    request = _basic_client(ep)
    ep.fail_next(status=503, headers={"Retry-After": "1"})
    faulted, normal = await request(session), await request(session)
    assert faulted.status == 503
    assert faulted.headers["Retry-After"] == "1"
    assert faulted.json == {"error": "temporarily_unavailable"}
    assert normal.status == 200
    assert [r.outcome for r in ep.requests] == ["fault", "issued"]
    assert ep.requests[0].client_id == "basic"


async def test_fail_next_is_fifo_then_normal(
    ep: TokenEndpoint, session: aiohttp.ClientSession
) -> None:
    request = _basic_client(ep)
    ep.fail_next(2, Fault(status=500))
    ep.fail_next(1, Fault(status=500), status=429, body={"error": "slow_down"})
    replies = [await request(session) for _ in range(4)]
    assert [r.status for r in replies] == [500, 500, 429, 200]
    assert replies[2].json == {"error": "slow_down"}
    assert [r.status for r in ep.requests] == [500, 500, 429, 200]


async def test_set_fault_until_cleared(ep: TokenEndpoint, session: aiohttp.ClientSession) -> None:
    request = _basic_client(ep)
    ep.set_fault(Fault(status=502, body="upstream down"))
    for _ in range(3):
        reply = await request(session)
        assert (reply.status, reply.text) == (502, "upstream down")
    ep.set_fault(None)
    assert (await request(session)).status == 200
    assert ep.request_count("basic") == 4
    assert ep.request_count() == 4


async def test_fault_delay_times_the_client_out(session: aiohttp.ClientSession) -> None:
    async with TokenEndpoint() as ep:
        request = _basic_client(ep)
        ep.fail_next(delay=30)
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(request(session), 0.3)
        assert ep.requests[0].outcome == "fault"
        assert (await request(session)).status == 200

        # a delayed answer still pending does not hold up close(): it is sent at once
        ep.fail_next(delay=30)
        pending = asyncio.ensure_future(request(session))
        while ep.request_count() < 3:
            await asyncio.sleep(0.01)
        started = time.monotonic()
        await ep.close()
        assert time.monotonic() - started < 1.5
        assert (await pending).status == 503


async def test_fault_garbage(ep: TokenEndpoint, session: aiohttp.ClientSession) -> None:
    request = _basic_client(ep)
    ep.fail_next(garbage=True)
    reply = await request(session)
    assert reply.status == 200
    assert reply.headers["Content-Type"].startswith("text/html")
    with pytest.raises(json.JSONDecodeError):
        _ = reply.json


async def test_fault_drop(ep: TokenEndpoint, session: aiohttp.ClientSession) -> None:
    request = _basic_client(ep)
    ep.fail_next(drop=True)
    with pytest.raises(aiohttp.ServerDisconnectedError):
        await request(session)
    assert (await request(session)).status == 200
    assert [r.outcome for r in ep.requests] == ["fault", "issued"]


def test_fault_checks_its_fields() -> None:
    with pytest.raises(ConfigurationError):
        Fault(status=99)
    with pytest.raises(ConfigurationError):
        Fault(delay=-1)
    with pytest.raises(ConfigurationError):
        Fault(body=[1, 2])  # type: ignore[arg-type]


# ---------------------------------------------------------------------------- discovery


@pytest.mark.parametrize(
    "path", ["/.well-known/openid-configuration", "/.well-known/oauth-authorization-server"]
)
async def test_discovery(ep: TokenEndpoint, session: aiohttp.ClientSession, path: str) -> None:
    metadata = (await get(session, ep.url + path)).json
    assert metadata["issuer"] == ep.issuer == ep.url
    assert metadata["token_endpoint"] == ep.token_url == ep.url + "/token"
    assert metadata["grant_types_supported"] == ["client_credentials"]
    assert set(metadata["token_endpoint_auth_methods_supported"]) == {
        "client_secret_basic", "client_secret_post", "client_secret_jwt", "private_key_jwt", "none"
    }  # fmt: skip
    assert {"RS256", "PS256", "ES256", "ES512", "EdDSA", "HS256"} <= set(
        metadata["token_endpoint_auth_signing_alg_values_supported"]
    )
    assert "none" not in metadata["token_endpoint_auth_signing_alg_values_supported"]

    ep.metadata_overrides.update({"issuer": "https://evil.example", "grant_types_supported": None})
    lying = (await get(session, ep.url + path)).json
    assert lying["issuer"] == "https://evil.example"
    assert "grant_types_supported" not in lying
    assert lying["token_endpoint"] == ep.token_url


async def test_discovery_off(session: aiohttp.ClientSession) -> None:
    async with TokenEndpoint(discovery=False) as ep:
        for path in (
            "/.well-known/openid-configuration",
            "/.well-known/oauth-authorization-server",
        ):
            assert (await get(session, ep.url + path)).status == 404


# ---------------------------------------------------------------------------- /api


async def _token(
    ep: TokenEndpoint, session: aiohttp.ClientSession, scope: str | None = None
) -> str:
    ep.register_client("basic", secret=SECRET)
    form = _grant(scope=scope) if scope else _grant()
    reply = await post(session, ep.token_url, form, basic("basic", SECRET))
    token: str = reply.json["access_token"]
    return token


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_api_with_a_valid_token(ep: TokenEndpoint, session: aiohttp.ClientSession) -> None:
    token = await _token(ep, session, "read")
    reply = await get(session, ep.url + "/api/orders/7", _bearer(token))
    assert reply.status == 200
    assert reply.json == {"client_id": "basic", "scope": "read", "path": "orders/7"}
    async with session.delete(ep.url + "/api/orders/7", headers=_bearer(token)) as response:
        assert response.status == 200
    assert ep.api_requests == [("orders/7", 200), ("orders/7", 200)]


async def test_api_refuses_revoked_and_unknown_tokens(
    ep: TokenEndpoint, session: aiohttp.ClientSession
) -> None:
    first, second = await _token(ep, session), await _token(ep, session)
    ep.revoke(first)
    ep.revoke("never issued")
    for token in (first, "never issued"):
        reply = await get(session, ep.url + "/api/x", _bearer(token))
        assert reply.status == 401
        assert 'error="invalid_token"' in reply.headers["WWW-Authenticate"]
    assert ep.token_info(first) is None
    assert (await get(session, ep.url + "/api/x", _bearer(second))).status == 200
    ep.revoke_all()
    assert (await get(session, ep.url + "/api/x", _bearer(second))).status == 401
    assert [status for _, status in ep.api_requests] == [401, 401, 200, 401]


async def test_api_without_a_token(ep: TokenEndpoint, session: aiohttp.ClientSession) -> None:
    for headers in (None, basic("basic", SECRET)):
        reply = await get(session, ep.url + "/api/x", headers)
        assert reply.status == 401
        # RFC 6750 §3.1: no error code when no bearer token was sent
        assert reply.headers["WWW-Authenticate"] == 'Bearer realm="jwtmint-testing"'


async def test_tokens_expire_by_the_injected_clock(session: aiohttp.ClientSession) -> None:
    clock = FakeClock()
    async with TokenEndpoint(clock=clock, token_lifetime=60) as ep:
        token = await _token(ep, session)
        info = ep.token_info(token)
        assert info is not None
        assert info["expires_at"] == clock.now + 60
        clock.now += 59
        assert (await get(session, ep.url + "/api/x", _bearer(token))).status == 200
        clock.now += 1
        assert (await get(session, ep.url + "/api/x", _bearer(token))).status == 401
        assert ep.token_info(token) is None


async def test_token_lifetime_none_omits_expires_in(session: aiohttp.ClientSession) -> None:
    clock = FakeClock()
    async with TokenEndpoint(clock=clock, token_lifetime=None) as ep:
        ep.register_client("basic", secret=SECRET)
        reply = await post(session, ep.token_url, _grant(), basic("basic", SECRET))
        assert "expires_in" not in reply.json
        clock.now += 10 * 365 * 86400
        info = ep.token_info(reply.json["access_token"])
        assert info is not None
        assert info["expires_at"] is None


# ---------------------------------------------------------------------------- load, lifecycle


async def test_a_thousand_concurrent_requests() -> None:
    async with TokenEndpoint() as ep:
        ep.register_client("basic", secret=SECRET)
        connector = aiohttp.TCPConnector(limit=0)  # really 1,000 connections at once
        async with aiohttp.ClientSession(connector=connector) as session:
            replies = await asyncio.gather(
                *(
                    post(session, ep.token_url, _grant(), basic("basic", SECRET))
                    for _ in range(1000)
                )
            )
        assert [r.status for r in replies] == [200] * 1000
        assert len({r.json["access_token"] for r in replies}) == 1000
        assert ep.request_count("basic") == 1000


async def test_lifecycle() -> None:
    ep = TokenEndpoint()
    with pytest.raises(RuntimeError):
        _ = ep.url
    async with ep:
        assert ep.url.startswith("http://127.0.0.1:")
        assert not ep.url.endswith("/")
        with pytest.raises(RuntimeError):
            await ep.start()
    await ep.close()  # idempotent
    with pytest.raises(RuntimeError):
        async with ep:
            pass
    async with aiohttp.ClientSession() as session:
        with pytest.raises(aiohttp.ClientConnectionError):
            await get(session, ep.url + "/.well-known/openid-configuration")


async def test_repr_hides_secrets(ep: TokenEndpoint, session: aiohttp.ClientSession) -> None:
    ep.register_client("post", secret=SECRET, auth_method="client_secret_post")
    ep.register_client("hs", secret=SECRET, auth_method="client_secret_jwt")
    assert repr(ep) == f"TokenEndpoint(url={ep.url!r}, clients=2)"
    form = _grant(client_id="post", client_secret=SECRET)
    await post(session, ep.token_url, form)
    hs = jwtmint.AssertionSigner(jwtmint.load_key(SECRET), "hs", ep.issuer).mint()
    await post(session, ep.token_url, assertion_form(hs))
    token = ep.requests[0]
    assert [r.outcome for r in ep.requests] == ["issued", "issued"]
    for text in (repr(ep), repr(ep._clients), *map(repr, ep.requests)):
        assert SECRET not in text
        assert hs not in text
        assert hs.rsplit(".", 1)[1] not in text
    assert not hasattr(token, "client_secret")


def test_registration_is_checked() -> None:
    ep = TokenEndpoint()
    with pytest.raises(ConfigurationError, match="public_key"):
        ep.register_client("a", auth_method="private_key_jwt")
    with pytest.raises(ConfigurationError, match="secret"):
        ep.register_client("a", secret=SECRET, auth_method="private_key_jwt")
    with pytest.raises(ConfigurationError, match="auth_method"):
        ep.register_client("a", secret=SECRET, auth_method="tls_client_auth")
    with pytest.raises(ConfigurationError, match="auth_method"):
        ep.register_client("a", secret=SECRET, public_key=signing_key("ES256"))
    with pytest.raises(ConfigurationError):
        ep.register_client("a", secret=SECRET, allowed_scopes="read write")
    with pytest.raises(ConfigurationError, match="single scope token"):
        ep.register_client("a", secret=SECRET, allowed_scopes=["bad\x01"])
    with pytest.raises(ConfigurationError):
        ep.register_client("a", public_key={"kty": "oct", "k": "c2VjcmV0"})
    with pytest.raises(ConfigurationError):
        ep.register_client("a", public_key=SECRET)
    assert repr(ep) == "TokenEndpoint(url=None, clients=0)"


# ---------------------------------------------------------------------------- malformed input


def jws_text(header: str, payload: str, alg: str = "HS256", key: bytes | None = None) -> str:
    """A compact JWS from raw JSON text (so it can hold what json.dumps would not write)."""
    signing_input = f"{b64url(header.encode())}.{b64url(payload.encode())}"
    digest = {"HS256": hashlib.sha256, "HS384": hashlib.sha384, "HS512": hashlib.sha512}[alg]
    signature = hmac.new(key, signing_input.encode(), digest).digest() if key else b"\0" * 32
    return f"{signing_input}.{b64url(signature)}"


def _basic_header(credentials: bytes) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(credentials).decode("ascii")}


MALFORMED_BASIC = {
    "bad percent-encoding in the secret": _basic_header(b"basic:%ff"),
    "bad percent-encoding in the client id": _basic_header(b"%C3%28:secret"),
    "not UTF-8 after base64": _basic_header(b"\xffbasic:secret"),
    "no colon": _basic_header(b"basic"),
    "not base64": {"Authorization": "Basic !!!"},
    "not ASCII": {"Authorization": "Basic é"},
}


@pytest.mark.parametrize("case", MALFORMED_BASIC)
async def test_malformed_basic_credentials_are_invalid_client(
    ep: TokenEndpoint, session: aiohttp.ClientSession, case: str
) -> None:
    ep.register_client("basic", secret=SECRET)
    reply = await post(session, ep.token_url, _grant(), MALFORMED_BASIC[case])
    assert reply.status == 401, reply.text
    assert reply.json["error"] == "invalid_client"
    assert "malformed Basic credentials" in reply.json["error_description"]
    assert reply.headers["WWW-Authenticate"] == 'Basic realm="jwtmint-testing"'
    (record,) = ep.requests
    assert (record.outcome, record.status, record.client_id) == ("invalid_client", 401, None)
    assert record.auth_method == "client_secret_basic"


@pytest.mark.parametrize("case", MALFORMED_BASIC)
async def test_a_fault_is_answered_whatever_the_credentials(
    ep: TokenEndpoint, session: aiohttp.ClientSession, case: str
) -> None:
    ep.fail_next(status=503)
    reply = await post(session, ep.token_url, _grant(), MALFORMED_BASIC[case])
    assert reply.status == 503
    assert [(r.outcome, r.status) for r in ep.requests] == [("fault", 503)]


@pytest.mark.parametrize("claim", ["exp", "iat", "nbf"])
async def test_a_numeric_date_beyond_float_range_is_invalid_client(
    ep: TokenEndpoint, session: aiohttp.ClientSession, claim: str
) -> None:
    ep.register_client("hs", secret=SECRET, auth_method="client_secret_jwt")
    payload = claims("hs", ep.issuer, **{claim: 10**400})  # a JSON integer, not 1e400 (a float)
    assertion = jws_text('{"alg": "HS256"}', json.dumps(payload), key=SECRET.encode())
    reply = await post(session, ep.token_url, assertion_form(assertion))
    assert reply.status == 401, reply.text
    assert reply.json["error_description"] == f"client assertion {claim} is not a NumericDate"
    assert ep.requests[-1].outcome == "invalid_client"


@pytest.mark.parametrize(
    ("payload", "problem"),
    [
        # past CPython's int_max_str_digits
        ('{"sub": "hs", "exp": ' + "9" * 5000 + "}", "is not UTF-8 JSON"),
        # deeper than the recursion limit
        ('{"sub": "hs", "x": ' + "[" * 100_000 + "]" * 100_000 + "}", "is nested too deeply"),
        ('{"sub": "hs", "sub": "other"}', "duplicate member sub"),
        ('{"sub": "hs", "exp": NaN}', "NaN is not JSON"),
    ],
    ids=["5000-digit integer", "deeply nested", "duplicate member", "NaN"],
)
async def test_json_python_cannot_hold_is_a_malformed_assertion(
    ep: TokenEndpoint, session: aiohttp.ClientSession, payload: str, problem: str
) -> None:
    ep.register_client("hs", secret=SECRET, auth_method="client_secret_jwt")
    assertion = jws_text('{"alg": "HS256"}', payload, key=SECRET.encode())
    reply = await post(session, ep.token_url, assertion_form(assertion))
    assert reply.status == 401, reply.text
    assert reply.json["error_description"].startswith("malformed client assertion: ")
    assert reply.json["error_description"].endswith(problem)
    (record,) = ep.requests
    # nothing of an undecodable assertion is claimed: not even its method
    assert (record.outcome, record.auth_method, record.assertion_claims) == (
        "invalid_client", None, None
    )  # fmt: skip


async def test_a_body_over_the_size_limit_is_refused_and_recorded(
    ep: TokenEndpoint, session: aiohttp.ClientSession
) -> None:
    body = io.BytesIO(urlencode(_grant(padding="x" * 2_000_000)).encode())
    headers = {"Content-Type": FORM_TYPE}
    async with session.post(ep.token_url, data=body, headers=headers) as response:
        reply = Reply(response.status, response.headers, await response.text())
    assert reply.status == 413
    assert reply.json["error_description"] == "the request body exceeds 1048576 bytes"
    assert reply.json["error"] == "invalid_request"
    assert [(r.outcome, r.status) for r in ep.requests] == [("invalid_request", 413)]


async def test_an_endpoint_bug_is_a_recorded_server_error(
    ep: TokenEndpoint,
    session: aiohttp.ClientSession,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    from jwtmint.testing import _endpoint

    ep.register_client("basic", secret=SECRET)

    def broken(*args: Any) -> Any:
        raise RuntimeError("a bug")

    monkeypatch.setattr(ep, "_grant", broken)
    reply = await post(session, ep.token_url, _grant(), basic("basic", SECRET))
    assert (reply.status, reply.json) == (500, {"error": "server_error"})
    assert reply.headers["Cache-Control"] == "no-store"
    assert "a bug" in caplog.text
    # claimed_identity failing too (it never should) still leaves a record
    monkeypatch.setattr(_endpoint, "claimed_identity", broken)
    reply = await post(session, ep.token_url, _grant(), basic("basic", SECRET))
    assert reply.status == 500
    assert [(r.outcome, r.status, r.client_id) for r in ep.requests] == [
        ("server_error", 500, "basic"),
        ("server_error", 500, None),
    ]


# Two fuzz tests, each with its own endpoint: one sends random requests (methods, content
# types, bodies, form fields, Authorization headers), the other well-formed assertion requests
# whose JWTs are random or a valid one changed in a few places. No request carries a
# registered secret, and every assertion signed with the client_secret_jwt client's secret
# has the jti already used (or a bad one), so none may be granted: every answer must be an
# RFC 6749 §5.2 error, and recorded.
FUZZ_NOW = 1_800_000_000
FUZZ_SECRET = b"fuzz secret, long enough for HS512: " + b"s" * 40
REPLAYED_JTI = "already-used"
ISSUER_MARK = "@issuer"  # replaced by the endpoint's issuer when sent
OAUTH_ERRORS = {
    "invalid_request", "invalid_client", "invalid_grant", "unauthorized_client",
    "unsupported_grant_type", "invalid_scope", "invalid_target",  # RFC 8707 §2
}  # fmt: skip
FORM_TYPE = "application/x-www-form-urlencoded"
FUZZ_SETTINGS = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

_text = st.text(st.characters(blacklist_categories=["Cs"]), max_size=12)
_header_text = st.text(st.characters(blacklist_categories=["Cc", "Cs", "Zl", "Zp"]), max_size=24)
_json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(min_value=-(10**500), max_value=10**500)
    | st.floats()
    | _text,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_text, inner, max_size=3),
    max_leaves=6,
)
# JSON texts json.dumps would not write, or Python cannot hold
_json_documents = st.sampled_from(
    [
        "[]",
        '"a string"',
        "{",
        '{"alg": "HS256", "alg": "none"}',
        '{"alg": "HS256", "exp": NaN}',
        '{"alg": "HS256", "exp": 1' + "0" * 400 + "}",
        '{"alg": "HS256", "exp": ' + "9" * 5000 + "}",
        '{"alg": "HS256", "x": ' + "[" * 5000 + "]" * 5000 + "}",
    ]
)
_times = st.integers(FUZZ_NOW - 600, FUZZ_NOW + 600) | _json_values
_valid_claims: dict[str, Any] = {
    "iss": "fuzz-hs", "sub": "fuzz-hs", "aud": ISSUER_MARK, "jti": REPLAYED_JTI,
    "exp": FUZZ_NOW + 60, "iat": FUZZ_NOW, "nbf": FUZZ_NOW - 1,
}  # fmt: skip
_claim_values: dict[str, st.SearchStrategy[Any]] = {
    "aud": st.just([ISSUER_MARK, "https://evil.example"]) | st.just([]) | _json_values,
    "exp": _times,
    "iat": _times,
    # the spent jti, or a value that is no jti: a fresh string could make a valid assertion
    "jti": st.sampled_from([REPLAYED_JTI, ""])
    | _json_values.filter(lambda value: not isinstance(value, str)),
    "nbf": _times,
    "sub": st.sampled_from(["fuzz-basic", "fuzz-es", "nobody"]) | _json_values,
}
_header_values: dict[str, st.SearchStrategy[Any]] = {
    "alg": st.sampled_from(["HS384", "ES256", "none", "None"]) | _json_values,
    "typ": st.just("client-authentication+jwt") | _json_values,
    "crit": _json_values,
}


@st.composite
def _near(
    draw: st.DrawFn,
    valid: dict[str, Any],
    values: dict[str, st.SearchStrategy[Any]],
    changes: list[int],
) -> str:
    """``valid`` as JSON text, with a few (one of ``changes``) members changed or dropped."""
    document = dict(valid)
    for _ in range(draw(st.sampled_from(changes))):
        name = draw(st.sampled_from(sorted({*valid, *values})))
        if name in document and draw(st.integers(0, 3)) == 0:
            del document[name]
        else:
            document[name] = draw(values.get(name, _json_values))
    return json.dumps(document)


@dataclass(frozen=True)
class FuzzAssertion:
    """A JWS-shaped string to be, made once the issuer (for ``aud``) is known."""

    header: str
    payload: str
    alg: str | None  # HMAC-signed with FUZZ_SECRET, or else the random signature is used
    signature: bytes = b""

    def render(self, issuer: str) -> str:
        payload = self.payload.replace(ISSUER_MARK, issuer)
        if self.alg is not None:
            return jws_text(self.header, payload, self.alg, FUZZ_SECRET)
        encoded = (self.header.encode(), payload.encode(), self.signature)
        return ".".join(map(b64url, encoded))


FieldValue = str | FuzzAssertion


@st.composite
def _assertions(draw: st.DrawFn) -> FieldValue:
    flavour = draw(st.sampled_from(["signed"] * 6 + ["unsigned", "text"]))
    if flavour == "text":
        text: str = draw(_text | st.lists(_text, min_size=2, max_size=4).map(".".join))
        return text
    alg = draw(st.sampled_from(["HS256", "HS256", "HS384", "HS512"]))
    odd = draw(st.sampled_from(["neither"] * 4 + ["header", "payload"]))
    header = draw(
        _json_documents if odd == "header" else _near({"alg": alg}, _header_values, [0, 0, 0, 1])
    )
    payload = draw(
        _json_documents
        if odd == "payload"
        else _near(_valid_claims, _claim_values, [0, 1, 1, 1, 2, 3])
    )
    if flavour == "signed":
        return FuzzAssertion(header, payload, alg)
    return FuzzAssertion(header, payload, None, draw(st.binary(max_size=80)))


_field_names = st.sampled_from(
    ["grant_type", "client_id", "client_secret", "client_assertion", "client_assertion_type",
     "scope", "resource"]
) | _text  # fmt: skip
_field_values = (
    st.sampled_from(["client_credentials", JWT_BEARER, "fuzz-basic", "read", "https://a.example"])
    | _text
    | _assertions()
)
_authorizations = (
    st.none()
    | st.tuples(st.sampled_from(["fuzz-basic", "fuzz-hs"]) | _text, _text).map(
        lambda pair: "Basic " + base64.b64encode(":".join(pair).encode()).decode()
    )
    | st.binary(max_size=30).map(lambda raw: "Basic " + base64.b64encode(raw).decode())
    | _header_text.map(lambda text: "Basic " + text)
    | _header_text
)


@dataclass(frozen=True)
class FuzzRequest:
    method: str
    fields: list[tuple[str, FieldValue]] | None  # None: send raw_body
    headers: dict[str, str]
    raw_body: bytes = b""

    def body(self, issuer: str) -> bytes:
        if self.fields is None:
            return self.raw_body
        rendered = [
            (name, value.render(issuer) if isinstance(value, FuzzAssertion) else value)
            for name, value in self.fields
        ]
        return urlencode(rendered).encode()


@st.composite
def _any_requests(draw: st.DrawFn) -> FuzzRequest:
    fields: list[tuple[str, FieldValue]] = []
    if draw(st.integers(0, 3)):
        fields.append(("grant_type", "client_credentials"))
    fields += draw(st.lists(st.tuples(_field_names, _field_values), max_size=4))
    raw_body = b"" if draw(st.integers(0, 5)) else draw(st.binary(max_size=40))
    headers = {
        "Content-Type": draw(
            st.sampled_from([FORM_TYPE, FORM_TYPE, f"{FORM_TYPE}; charset=utf-8", "text/plain"])
        )
    }
    authorization = draw(_authorizations)
    if authorization is not None:
        headers["Authorization"] = authorization
    method = draw(st.sampled_from(["POST"] * 6 + ["GET", "PUT"]))
    return FuzzRequest(method, None if raw_body else fields, headers, raw_body)


@st.composite
def _assertion_requests(draw: st.DrawFn) -> FuzzRequest:
    fields: list[tuple[str, FieldValue]] = [
        ("grant_type", "client_credentials"),
        ("client_assertion_type", JWT_BEARER),
        ("client_assertion", draw(_assertions())),
    ]
    client_id = draw(st.sampled_from([None, None, None, "fuzz-hs"]) | _text)
    if client_id is not None:
        fields.append(("client_id", client_id))
    return FuzzRequest("POST", fields, {"Content-Type": FORM_TYPE})


@pytest.fixture
async def fuzz_ep(session: aiohttp.ClientSession) -> AsyncIterator[TokenEndpoint]:
    async with TokenEndpoint(clock=FakeClock(FUZZ_NOW)) as endpoint:
        endpoint.register_client("fuzz-hs", secret=FUZZ_SECRET, auth_method="client_secret_jwt")
        endpoint.register_client("fuzz-basic", secret=SECRET)
        endpoint.register_client("fuzz-es", public_key=signing_key("ES256"))
        # spend REPLAYED_JTI, so that no fuzzed assertion can be valid
        payload = claims("fuzz-hs", endpoint.issuer, now=FUZZ_NOW, jti=REPLAYED_JTI)
        assertion = jws_text('{"alg": "HS256"}', json.dumps(payload), key=FUZZ_SECRET)
        assert (await post(session, endpoint.token_url, assertion_form(assertion))).status == 200
        yield endpoint


async def _send_fuzzed(
    ep: TokenEndpoint, session: aiohttp.ClientSession, request: FuzzRequest
) -> None:
    before = len(ep.requests)
    async with session.request(
        request.method, ep.token_url, data=request.body(ep.issuer), headers=request.headers
    ) as response:
        status, text = response.status, await response.text()
    assert 400 <= status < 500, (status, text)
    document = json.loads(text)
    assert document["error"] in OAUTH_ERRORS, text
    assert len(ep.requests) == before + 1
    assert (ep.requests[-1].outcome, ep.requests[-1].status) == (document["error"], status)


@FUZZ_SETTINGS
@given(request=_any_requests())
async def test_fuzzed_requests_are_recorded_rfc6749_errors(
    fuzz_ep: TokenEndpoint, session: aiohttp.ClientSession, request: FuzzRequest
) -> None:
    await _send_fuzzed(fuzz_ep, session, request)


@FUZZ_SETTINGS
@given(request=_assertion_requests())
async def test_fuzzed_assertions_are_recorded_rfc6749_errors(
    fuzz_ep: TokenEndpoint, session: aiohttp.ClientSession, request: FuzzRequest
) -> None:
    await _send_fuzzed(fuzz_ep, session, request)


# ---------------------------------------------------------------------------- audience


async def test_an_aud_array_holding_the_issuer_is_accepted_by_default(
    ep: TokenEndpoint, session: aiohttp.ClientSession
) -> None:
    key = signing_key("ES256")
    ep.register_client("es", public_key=key)
    payload = claims("es", [ep.issuer, "https://evil.example"])  # RFC 7523 §3 (3) allows it
    reply = await post(session, ep.token_url, assertion_form(pyjwt_assertion(key, payload)))
    assert reply.status == 200, reply.text


async def test_strict_audience_takes_only_the_issuer_string(
    session: aiohttp.ClientSession,
) -> None:
    key = signing_key("ES256")
    async with TokenEndpoint(strict_audience=True) as ep:
        ep.register_client("es", public_key=key)
        for audience in ([ep.issuer, "https://evil.example"], [ep.issuer], ep.token_url):
            form = assertion_form(pyjwt_assertion(key, claims("es", audience)))
            reply = await post(session, ep.token_url, form)
            assert reply.status == 401, audience
            assert reply.json["error_description"] == (
                f"client assertion aud must be the single string {ep.issuer} (strict_audience)"
            )
        form = assertion_form(pyjwt_assertion(key, claims("es", ep.issuer)))
        assert (await post(session, ep.token_url, form)).status == 200


async def test_strict_audience_with_the_token_url_flag(session: aiohttp.ClientSession) -> None:
    key = signing_key("ES256")
    async with TokenEndpoint(strict_audience=True, accept_token_endpoint_audience=True) as ep:
        ep.register_client("es", public_key=key)
        for audience, status in (
            (ep.token_url, 200),
            (ep.issuer, 200),
            ([ep.token_url], 401),
            ([ep.issuer, ep.token_url], 401),
        ):
            form = assertion_form(pyjwt_assertion(key, claims("es", audience)))
            assert (await post(session, ep.token_url, form)).status == status, audience


# ---------------------------------------------------------------------------- key strength


@pytest.fixture(scope="module")
def rsa_1024() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=1024)


def test_rsa_keys_under_2048_bits_are_refused(rsa_1024: rsa.RSAPrivateKey) -> None:
    ep = TokenEndpoint()
    numbers = rsa_1024.public_key().public_numbers()
    weak_jwk = {
        "kty": "RSA",
        "alg": "RS256",
        "n": b64url(numbers.n.to_bytes(128, "big")),
        "e": b64url(numbers.e.to_bytes(3, "big")),
    }
    for weak in (rsa_1024, rsa_1024.public_key(), weak_jwk, {"keys": [weak_jwk]}):
        with pytest.raises(ConfigurationError, match=r"RSA key of 1024 bits.*at least 2048"):
            ep.register_client("weak", public_key=weak)
    assert repr(ep) == "TokenEndpoint(url=None, clients=0)"
    ep.register_client("strong", public_key=signing_key("RS256"))


@pytest.mark.parametrize(("alg", "size"), [("HS256", 32), ("HS384", 48), ("HS512", 64)])
async def test_client_secret_jwt_needs_a_secret_as_long_as_the_hash(
    ep: TokenEndpoint, session: aiohttp.ClientSession, alg: str, size: int
) -> None:
    ep.register_client("short", secret=b"k" * (size - 1), auth_method="client_secret_jwt")
    ep.register_client("enough", secret=b"k" * size, auth_method="client_secret_jwt")
    header = json.dumps({"alg": alg})
    short = jws_text(header, json.dumps(claims("short", ep.issuer)), alg, b"k" * (size - 1))
    reply = await post(session, ep.token_url, assertion_form(short))
    assert reply.status == 401
    assert reply.json["error_description"] == (
        f"the client secret is too short for {alg}: RFC 7518 3.2 needs at least {size} bytes"
    )
    enough = jws_text(header, json.dumps(claims("enough", ep.issuer)), alg, b"k" * size)
    assert (await post(session, ep.token_url, assertion_form(enough))).status == 200


async def test_short_secrets_still_serve_basic_and_post(
    ep: TokenEndpoint, session: aiohttp.ClientSession
) -> None:
    ep.register_client("basic", secret="abc")
    ep.register_client("post", secret="abc", auth_method="client_secret_post")
    assert (await post(session, ep.token_url, _grant(), basic("basic", "abc"))).status == 200
    form = _grant(client_id="post", client_secret="abc")
    assert (await post(session, ep.token_url, form)).status == 200


async def _raw_http(url: str, request: bytes) -> bytes:
    """Send bytes the aiohttp client would never send; the status line comes back."""
    host, port = url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    try:
        writer.write(request)
        await writer.drain()
        answer = await asyncio.wait_for(reader.read(4096), 5)
    finally:
        writer.close()
        await writer.wait_closed()
    return answer.split(b"\r\n", 1)[0]


async def test_undecodable_bodies_and_header_bytes_get_4xx_not_500() -> None:
    async with TokenEndpoint() as ep:
        broken_gzip = (
            b"POST /token HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
            b"Content-Type: application/x-www-form-urlencoded\r\n"
            b"Content-Encoding: gzip\r\nContent-Length: 5\r\n\r\nabcde"
        )
        assert await _raw_http(ep.url, broken_gzip) == b"HTTP/1.1 400 Bad Request"
        assert [(r.outcome, r.status) for r in ep.requests] == [("invalid_request", 400)]
        latin1_bearer = (
            b"GET /api/x HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
            b"Authorization: Bearer caf\xe9\r\nContent-Length: 0\r\n\r\n"
        )
        assert await _raw_http(ep.url, latin1_bearer) == b"HTTP/1.1 401 Unauthorized"
        assert ep.api_requests == [("x", 401)]
