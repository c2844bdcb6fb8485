"""jwtmint.testing.TokenEndpoint and DPoP (RFC 9449): proofs, bound tokens, nonces, /api.

Every proof here is built independently of jwtmint: PyJWT signs it with a cryptography
key and the public JWK PyJWT exports, or it is assembled by hand where PyJWT refuses the
broken token a test needs. Thumbprints are checked against jwcrypto's. Tests that judge
time inject a FakeClock into the endpoint.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import time
import uuid
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, quote_plus

import aiohttp
import jwt
import pytest
import yarl
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jwcrypto import jwk as jwcrypto_jwk
from jwt.algorithms import ECAlgorithm, OKPAlgorithm, RSAAlgorithm
from multidict import CIMultiDict

from jwtmint.errors import ConfigurationError
from jwtmint.testing import Fault, RecordedRequest, RecordedResourceRequest, TokenEndpoint
from jwtmint.testing._dpop import normalise_http_uri

SECRET = "a client secret: long enough for HS256 + odd chars"
JWT_BEARER = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
PrivateKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey
DROP = object()  # a claim override that removes the claim


class FakeClock:
    """Epoch seconds that move only when the test moves them."""

    def __init__(self, now: float | None = None) -> None:
        self.now = time.time() if now is None else now

    def __call__(self) -> float:
        return self.now


_KEYS: dict[str, PrivateKey] = {}


def key_for(name: str) -> PrivateKey:
    """One cryptography key per name per session (RSA generation is slow); a name is an
    algorithm, with an optional suffix for a second key (``ES256-other``)."""
    algorithm = name.partition("-")[0]
    if name not in _KEYS:
        if algorithm.startswith(("RS", "PS")):
            _KEYS[name] = rsa.generate_private_key(65537, 2048)
        elif algorithm == "EdDSA":
            _KEYS[name] = ed25519.Ed25519PrivateKey.generate()
        else:
            curve = {"ES256": ec.SECP256R1(), "ES384": ec.SECP384R1(), "ES512": ec.SECP521R1()}
            _KEYS[name] = ec.generate_private_key(curve[algorithm])
    return _KEYS[name]


def jwk_of(key: Any) -> dict[str, Any]:
    """PyJWT's JWK export of a key: public for a public key, with ``d`` for a private one."""
    if isinstance(key, ec.EllipticCurvePrivateKey | ec.EllipticCurvePublicKey):
        exported = ECAlgorithm.to_jwk(key, as_dict=True)
    elif isinstance(key, rsa.RSAPrivateKey | rsa.RSAPublicKey):
        exported = RSAAlgorithm.to_jwk(key, as_dict=True)
    else:
        exported = OKPAlgorithm.to_jwk(key, as_dict=True)
    return dict(exported)


def thumbprint(key: PrivateKey) -> str:
    """RFC 7638, by jwcrypto."""
    value: str = jwcrypto_jwk.JWK(**jwk_of(key.public_key())).thumbprint()
    return value


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def ath(access_token: str) -> str:
    return b64url(hashlib.sha256(access_token.encode("ascii")).digest())


def proof(
    key: PrivateKey,
    method: str,
    url: str,
    *,
    algorithm: str = "ES256",
    access_token: str | None = None,
    nonce: str | None = None,
    now: float | None = None,
    header: Mapping[str, Any] | None = None,
    signing_key: Any = None,
    **claim_overrides: Any,
) -> str:
    """A DPoP proof (RFC 9449 §4.2) made by PyJWT; an override of DROP removes that claim."""
    claims: dict[str, Any] = {
        "jti": uuid.uuid4().hex,
        "htm": method,
        "htu": url,
        "iat": int(time.time() if now is None else now),
    }
    if access_token is not None:
        claims["ath"] = ath(access_token)
    if nonce is not None:
        claims["nonce"] = nonce
    claims.update(claim_overrides)
    claims = {name: value for name, value in claims.items() if value is not DROP}
    headers = {"typ": "dpop+jwt", "jwk": jwk_of(key.public_key()), **(header or {})}
    signer = key if signing_key is None else signing_key
    return jwt.encode(claims, signer, algorithm=algorithm, headers=headers)


def hand_made(header: dict[str, Any], claims: dict[str, Any], signature: bytes = b"") -> str:
    parts = (json.dumps(header).encode(), json.dumps(claims).encode(), signature)
    return ".".join(b64url(part) for part in parts)


@dataclass
class Reply:
    status: int
    headers: CIMultiDict[str]
    text: str

    @property
    def json(self) -> dict[str, Any]:
        document: dict[str, Any] = json.loads(self.text)
        return document

    def challenges(self) -> list[str]:
        return self.headers.getall("WWW-Authenticate", [])


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as client:
        yield client


@pytest.fixture
async def ep() -> AsyncIterator[TokenEndpoint]:
    async with TokenEndpoint() as endpoint:
        endpoint.register_client("app", secret=SECRET)
        yield endpoint


def basic(client_id: str = "app", secret: str = SECRET) -> str:
    pair = f"{quote_plus(client_id)}:{quote_plus(secret)}".encode()
    return "Basic " + base64.b64encode(pair).decode("ascii")


async def send(
    session: aiohttp.ClientSession,
    method: str,
    url: str | yarl.URL,
    *,
    proofs: tuple[str, ...] = (),
    authorization: str | None = None,
    data: Mapping[str, str] | None = None,
) -> Reply:
    headers: CIMultiDict[str] = CIMultiDict()
    for value in proofs:
        headers.add("DPoP", value)
    if authorization is not None:
        headers["Authorization"] = authorization
    async with session.request(method, url, data=data, headers=headers) as response:
        return Reply(response.status, CIMultiDict(response.headers), await response.text())


async def token_request(
    session: aiohttp.ClientSession, ep: TokenEndpoint, *proofs: str, client: str = "app"
) -> Reply:
    form = {"grant_type": "client_credentials"}
    return await send(
        session, "POST", ep.token_url, proofs=proofs, authorization=basic(client), data=form
    )


async def dpop_token(
    session: aiohttp.ClientSession, ep: TokenEndpoint, key: PrivateKey, algorithm: str = "ES256"
) -> str:
    reply = await token_request(
        session, ep, proof(key, "POST", ep.token_url, algorithm=algorithm, nonce=ep.dpop_nonce)
    )
    assert reply.status == 200, reply.text
    assert reply.json["token_type"] == "DPoP"
    token: str = reply.json["access_token"]
    return token


# ---------------------------------------------------------------------------- token endpoint


@pytest.mark.parametrize("algorithm", ["ES256", "ES384", "ES512", "PS256", "RS256", "EdDSA"])
async def test_a_valid_proof_gets_a_token_bound_to_its_key(
    ep: TokenEndpoint, session: aiohttp.ClientSession, algorithm: str
) -> None:
    key = key_for(algorithm)
    sent = proof(key, "POST", ep.token_url, algorithm=algorithm)
    reply = await token_request(session, ep, sent)
    assert reply.status == 200, reply.text
    assert reply.json["token_type"] == "DPoP"
    assert reply.headers["Cache-Control"] == "no-store"
    assert "DPoP-Nonce" not in reply.headers  # nonces are off by default
    info = ep.token_info(reply.json["access_token"])
    assert info is not None
    assert info["token_type"] == "DPoP"
    assert info["cnf"] == {"jkt": thumbprint(key)}

    (record,) = ep.requests
    assert record.outcome == "issued"
    assert record.dpop is not None
    claims = jwt.decode(sent, options={"verify_signature": False})
    assert record.dpop.claims == claims
    assert (record.dpop.jti, record.dpop.htm, record.dpop.htu) == (
        claims["jti"], "POST", ep.token_url
    )  # fmt: skip
    assert (record.dpop.nonce, record.dpop.ath) == (None, None)
    assert record.dpop.jkt == thumbprint(key)
    assert record.dpop.private_jwk_members == ()
    assert record.dpop.header == jwt.get_unverified_header(sent)


async def test_without_a_proof_the_token_stays_bearer(
    ep: TokenEndpoint, session: aiohttp.ClientSession
) -> None:
    reply = await token_request(session, ep)
    assert reply.status == 200, reply.text
    assert reply.json["token_type"] == "Bearer"
    info = ep.token_info(reply.json["access_token"])
    assert info is not None
    assert info["token_type"] == "Bearer" and "cnf" not in info
    assert ep.requests[0].dpop is None


async def test_metadata_lists_the_dpop_algorithms(session: aiohttp.ClientSession) -> None:
    async with TokenEndpoint() as ep:
        metadata = (await send(session, "GET", ep.url + "/.well-known/openid-configuration")).json
        algorithms = metadata["dpop_signing_alg_values_supported"]
        assert {"ES256", "ES384", "ES512", "PS256", "RS256", "EdDSA"} <= set(algorithms)
        assert not {"none", "HS256", "HS384", "HS512"} & set(algorithms)
    async with TokenEndpoint(dpop_algorithms=["ES256"]) as ep:
        ep.register_client("app", secret=SECRET)
        metadata = (await send(session, "GET", ep.url + "/.well-known/openid-configuration")).json
        assert metadata["dpop_signing_alg_values_supported"] == ["ES256"]
        eddsa = proof(key_for("EdDSA"), "POST", ep.token_url, algorithm="EdDSA")
        reply = await token_request(session, ep, eddsa)
        assert (reply.status, reply.json["error"]) == (400, "invalid_dpop_proof")


@pytest.mark.parametrize(
    "options",
    [
        {"dpop_algorithms": ["HS256"]},
        {"dpop_algorithms": []},
        {"dpop_algorithms": "ES256"},
        {"dpop_max_age": 0},
        {"dpop_nonce_lifetime": 0},
    ],
)
def test_dpop_options_are_checked(options: dict[str, Any]) -> None:
    with pytest.raises(ConfigurationError):
        TokenEndpoint(**options)


def _refused_proof(case: str, ep: TokenEndpoint) -> tuple[str, ...]:
    """A request's DPoP header values that the token endpoint must refuse."""
    key, url = key_for("ES256"), ep.token_url
    now = time.time()
    if case == "typ JWT":
        return (proof(key, "POST", url, header={"typ": "JWT"}),)
    if case == "no typ":
        header = {"alg": "ES256", "jwk": jwk_of(key.public_key())}
        signing_input = hand_made(header, {"jti": "x", "htm": "POST", "htu": url, "iat": now})
        return (signing_input,)
    if case == "HS256":
        return (proof(key, "POST", url, algorithm="HS256", signing_key=b"k" * 32),)
    if case == "alg none":
        claims = {"jti": uuid.uuid4().hex, "htm": "POST", "htu": url, "iat": int(now)}
        header = {"alg": "none", "typ": "dpop+jwt", "jwk": jwk_of(key.public_key())}
        return (hand_made(header, claims),)
    if case == "private jwk member":
        return (proof(key, "POST", url, header={"jwk": jwk_of(key)}),)
    if case == "bad signature":
        return (proof(key, "POST", url, signing_key=key_for("ES256-other")),)
    if case == "alg does not fit the jwk":
        return (proof(key, "POST", url, header={"jwk": jwk_of(key_for("RS256").public_key())}),)
    if case == "no jwk":
        claims = {"jti": uuid.uuid4().hex, "htm": "POST", "htu": url, "iat": int(now)}
        return (jwt.encode(claims, key, algorithm="ES256", headers={"typ": "dpop+jwt"}),)
    if case == "crit":
        return (proof(key, "POST", url, header={"crit": ["exp"], "exp": 1}),)
    if case == "wrong htm":
        return (proof(key, "GET", url),)
    if case == "wrong htu path":
        return (proof(key, "POST", ep.url + "/token/x"),)
    if case == "wrong htu port":
        return (proof(key, "POST", url.replace("127.0.0.1:", "127.0.0.1:1")),)
    if case == "htu https":
        return (proof(key, "POST", url.replace("http://", "https://")),)
    if case == "no jti":
        return (proof(key, "POST", url, jti=DROP),)
    if case == "no iat":
        return (proof(key, "POST", url, iat=DROP),)
    if case == "iat stale":
        return (proof(key, "POST", url, now=now - 120),)
    if case == "iat in the future":
        return (proof(key, "POST", url, now=now + 60),)
    if case == "two DPoP headers":
        return (proof(key, "POST", url), proof(key, "POST", url))
    if case == "not a JWS":
        return ("not.a-jws",)
    raise AssertionError(case)


#: each case, and the words of the refusal that say it was refused for the right reason
REFUSED = {
    "typ JWT": "typ must be dpop+jwt",
    "no typ": "typ must be dpop+jwt",
    "HS256": "alg must be one of",
    "alg none": "alg must be one of",
    "private jwk member": "private key members (d)",
    "bad signature": "signature does not verify",
    "alg does not fit the jwk": "does not fit its jwk",
    "no jwk": "no jwk header",
    "crit": "crit",
    "wrong htm": "htm does not match",
    "wrong htu path": "htu does not match",
    "wrong htu port": "htu does not match",
    "htu https": "htu does not match",
    "no jti": "no jti",
    "no iat": "iat is missing",
    "iat stale": "iat is not within",
    "iat in the future": "iat is not within",
    "two DPoP headers": "exactly one DPoP header",
    "not a JWS": "malformed DPoP proof",
}


@pytest.mark.parametrize("case", REFUSED)
async def test_refused_proofs_are_invalid_dpop_proof(
    ep: TokenEndpoint, session: aiohttp.ClientSession, case: str
) -> None:
    proofs = _refused_proof(case, ep)
    reply = await token_request(session, ep, *proofs)
    assert (reply.status, reply.json["error"]) == (400, "invalid_dpop_proof"), reply.text
    assert REFUSED[case] in reply.json["error_description"]
    (record,) = ep.requests
    assert (record.outcome, record.status) == ("invalid_dpop_proof", 400)
    assert record.dpop is not None
    assert record.dpop.header_count == len(proofs)


async def test_a_private_jwk_member_is_refused_and_never_recorded(
    ep: TokenEndpoint, session: aiohttp.ClientSession
) -> None:
    key = key_for("ES256")
    private_jwk = jwk_of(key)
    reply = await token_request(
        session, ep, proof(key, "POST", ep.token_url, header={"jwk": private_jwk})
    )
    assert reply.json["error"] == "invalid_dpop_proof"
    assert "private" in reply.json["error_description"]
    record = ep.requests[0].dpop
    assert record is not None
    assert record.private_jwk_members == ("d",)
    assert record.header is not None and "d" not in record.header["jwk"]
    assert record.jkt == thumbprint(key)  # of the public members
    assert private_jwk["d"] not in repr(ep.requests)


async def test_htu_query_and_fragment_are_ignored_and_recorded_as_sent(
    ep: TokenEndpoint, session: aiohttp.ClientSession
) -> None:
    """RFC 9449 §4.3 (9): the comparison ignores query and fragment, after RFC 3986
    normalization; the record keeps the htu as sent, so a test can see a client that
    did not drop them (§4.2)."""
    key = key_for("ES256")
    port = ep.url.rpartition(":")[2]
    for htu in (
        ep.token_url + "?x=1#frag",
        f"HTTP://127.0.0.1:{port}/./%74oken",
        f"http://127.0.0.1:{port}/a/../token",
    ):
        reply = await token_request(session, ep, proof(key, "POST", htu))
        assert reply.status == 200, (htu, reply.text)
        assert ep.requests[-1].dpop is not None and ep.requests[-1].dpop.htu == htu


def test_uri_normalisation() -> None:
    same = [
        "http://Example.COM:80/a/b",
        "HTTP://example.com/a/./b",
        "http://example.com/a/c/../b?q=1#f",
        "http://example.com/%61/b",
    ]
    assert {normalise_http_uri(uri) for uri in same} == {"http://example.com/a/b"}
    assert normalise_http_uri("https://example.com:443") == "https://example.com/"
    assert normalise_http_uri("https://example.com:8443/%2f") == "https://example.com:8443/%2F"
    assert normalise_http_uri("http://[::1]:8080/x") == "http://[::1]:8080/x"
    for bad in ("ftp://example.com/", "/token", "http://user@example.com/", "http://h:99999/"):
        assert normalise_http_uri(bad) is None


async def test_a_replayed_jti_is_refused(ep: TokenEndpoint, session: aiohttp.ClientSession) -> None:
    key = key_for("ES256")
    sent = proof(key, "POST", ep.token_url)
    assert (await token_request(session, ep, sent)).status == 200
    again = await token_request(session, ep, sent)
    assert (again.status, again.json["error"]) == (400, "invalid_dpop_proof")
    assert "replay" in again.json["error_description"]
    jti = ep.requests[0].dpop.jti if ep.requests[0].dpop else None
    same_jti = await token_request(session, ep, proof(key, "POST", ep.token_url, jti=jti))
    assert same_jti.json["error"] == "invalid_dpop_proof"


async def test_the_iat_window_follows_the_injected_clock(session: aiohttp.ClientSession) -> None:
    clock = FakeClock(1_800_000_000)
    async with TokenEndpoint(clock=clock, dpop_max_age=30, leeway=2) as ep:
        ep.register_client("app", secret=SECRET)
        key, now = key_for("ES256"), clock.now
        for iat, status in ((now + 2, 200), (now + 3, 400), (now - 32, 200), (now - 33, 400)):
            reply = await token_request(session, ep, proof(key, "POST", ep.token_url, now=iat))
            assert reply.status == status, (iat - now, reply.text)


async def test_a_client_with_bound_tokens_needs_a_proof(
    ep: TokenEndpoint, session: aiohttp.ClientSession
) -> None:
    ep.register_client("bound", secret=SECRET, dpop_bound_access_tokens=True)
    reply = await token_request(session, ep, client="bound")
    # oidc-provider's answer to a dpop_bound_access_tokens client without a proof
    assert (reply.status, reply.json["error"]) == (400, "invalid_grant")
    assert "DPoP" in reply.json["error_description"]
    sent = proof(key_for("ES256"), "POST", ep.token_url)
    assert (await token_request(session, ep, sent, client="bound")).json["token_type"] == "DPoP"
    assert (await token_request(session, ep)).json["token_type"] == "Bearer"  # others


async def test_require_dpop_applies_to_every_client(session: aiohttp.ClientSession) -> None:
    async with TokenEndpoint(require_dpop=True) as ep:
        ep.register_client("app", secret=SECRET)
        assert (await token_request(session, ep)).json["error"] == "invalid_grant"
        sent = proof(key_for("EdDSA"), "POST", ep.token_url, algorithm="EdDSA")
        assert (await token_request(session, ep, sent)).json["token_type"] == "DPoP"


# ---------------------------------------------------------------------------- nonces


async def test_a_required_nonce_is_asked_for_then_accepted(session: aiohttp.ClientSession) -> None:
    async with TokenEndpoint(dpop_nonce=True) as ep:
        ep.register_client("app", secret=SECRET)
        key = key_for("ES256")
        first = await token_request(session, ep, proof(key, "POST", ep.token_url))
        assert (first.status, first.json["error"]) == (400, "use_dpop_nonce")
        nonce = first.headers["DPoP-Nonce"]
        assert nonce == ep.dpop_nonce
        retry = await token_request(session, ep, proof(key, "POST", ep.token_url, nonce=nonce))
        assert retry.status == 200 and retry.json["token_type"] == "DPoP"
        assert retry.headers["DPoP-Nonce"] == nonce
        wrong = await token_request(session, ep, proof(key, "POST", ep.token_url, nonce="old"))
        assert (wrong.json["error"], wrong.headers["DPoP-Nonce"]) == ("use_dpop_nonce", nonce)
        # every answer carries the nonce, a Bearer grant and an error included
        assert (await token_request(session, ep)).headers["DPoP-Nonce"] == nonce
        bad = await token_request(session, ep, client="nobody")
        assert (bad.status, bad.headers["DPoP-Nonce"]) == (401, nonce)
        # a fault is answered exactly as told
        ep.fail_next(fault=Fault(status=503))
        assert "DPoP-Nonce" not in (await token_request(session, ep)).headers
        recorded = [(r.outcome, r.dpop.nonce if r.dpop else None) for r in ep.requests[:3]]
        assert recorded == [
            ("use_dpop_nonce", None), ("issued", nonce), ("use_dpop_nonce", "old")
        ]  # fmt: skip
        jtis = [r.dpop.jti for r in ep.requests if r.dpop]
        assert len(jtis) == len(set(jtis)) == 3


async def test_a_rotated_nonce_is_picked_up_and_the_previous_stays_valid(
    session: aiohttp.ClientSession,
) -> None:
    async with TokenEndpoint(dpop_nonce=True) as ep:
        ep.register_client("app", secret=SECRET)
        key = key_for("ES256")
        first = ep.dpop_nonce
        assert first is not None
        second = ep.rotate_dpop_nonce()
        assert second == ep.dpop_nonce != first
        reply = await token_request(session, ep, proof(key, "POST", ep.token_url, nonce=first))
        assert reply.status == 200
        assert reply.headers["DPoP-Nonce"] == second  # the client should move on to it
        third = ep.rotate_dpop_nonce()
        stale = await token_request(session, ep, proof(key, "POST", ep.token_url, nonce=first))
        assert (stale.json["error"], stale.headers["DPoP-Nonce"]) == ("use_dpop_nonce", third)
        for nonce in (second, third):
            sent = proof(key, "POST", ep.token_url, nonce=nonce)
            assert (await token_request(session, ep, sent)).status == 200
        assert [r.dpop.nonce for r in ep.requests if r.dpop] == [first, first, second, third]


async def test_nonces_rotate_with_their_lifetime(session: aiohttp.ClientSession) -> None:
    clock = FakeClock()
    async with TokenEndpoint(clock=clock, dpop_nonce=True, dpop_nonce_lifetime=30) as ep:
        ep.register_client("app", secret=SECRET)
        key = key_for("ES256")
        first = ep.dpop_nonce
        clock.now += 29
        assert ep.dpop_nonce == first
        clock.now += 1
        second = ep.dpop_nonce
        assert second != first
        sent = proof(key, "POST", ep.token_url, nonce=first, now=clock.now)
        assert (await token_request(session, ep, sent)).status == 200
        clock.now += 30  # first is two lifetimes old now
        sent = proof(key, "POST", ep.token_url, nonce=first, now=clock.now)
        assert (await token_request(session, ep, sent)).json["error"] == "use_dpop_nonce"
        clock.now += 60  # a long quiet spell: neither old nonce survives it
        sent = proof(key, "POST", ep.token_url, nonce=ep.dpop_nonce, now=clock.now)
        assert (await token_request(session, ep, sent)).status == 200
        assert ep.dpop_nonce not in (first, second)


async def test_a_nonce_retry_needs_a_new_client_assertion(session: aiohttp.ClientSession) -> None:
    """Client authentication is checked before the proof (as oidc-provider does), so
    the assertion of a request refused with use_dpop_nonce is spent."""
    async with TokenEndpoint(dpop_nonce=True) as ep:
        client_key = key_for("ES384")
        ep.register_client("signer", public_key=client_key.public_key())
        dpop_key = key_for("ES256")

        def assertion() -> str:
            now = int(time.time())
            claims = {"iss": "signer", "sub": "signer", "aud": ep.issuer,
                      "jti": uuid.uuid4().hex, "iat": now, "exp": now + 60}  # fmt: skip
            return jwt.encode(claims, client_key, algorithm="ES384")

        async def request(client_assertion: str, nonce: str | None) -> Reply:
            form = {"grant_type": "client_credentials", "client_assertion_type": JWT_BEARER,
                    "client_assertion": client_assertion}  # fmt: skip
            sent = proof(dpop_key, "POST", ep.token_url, nonce=nonce)
            return await send(session, "POST", ep.token_url, proofs=(sent,), data=form)

        spent = assertion()
        challenge = await request(spent, None)
        assert challenge.json["error"] == "use_dpop_nonce"
        nonce = challenge.headers["DPoP-Nonce"]
        assert (await request(spent, nonce)).json["error"] == "invalid_client"
        assert (await request(assertion(), nonce)).json["token_type"] == "DPoP"


# ---------------------------------------------------------------------------- /api


async def test_the_resource_takes_a_dpop_token_with_its_proof(
    ep: TokenEndpoint, session: aiohttp.ClientSession
) -> None:
    key = key_for("PS256")
    token = await dpop_token(session, ep, key, "PS256")
    url = ep.url + "/api/orders/7"
    sent = proof(key, "DELETE", url, algorithm="PS256", access_token=token)
    reply = await send(session, "DELETE", url + "?force=1#x", proofs=(sent,),
                       authorization=f"DPoP {token}")  # fmt: skip
    assert reply.status == 200, reply.text
    assert reply.json == {"client_id": "app", "scope": None, "path": "orders/7"}
    (record,) = ep.resource_requests
    assert (record.method, record.path, record.status, record.scheme, record.error) == (
        "DELETE", "orders/7", 200, "DPoP", None
    )  # fmt: skip
    assert record.dpop is not None
    assert (record.dpop.htu, record.dpop.ath) == (url, ath(token))
    assert ep.api_requests == [("orders/7", 200)]


async def _refusal(
    session: aiohttp.ClientSession,
    ep: TokenEndpoint,
    token: str,
    proofs: tuple[str, ...],
    scheme: str = "DPoP",
) -> Reply:
    reply = await send(session, "GET", ep.url + "/api/x", proofs=proofs,
                       authorization=f"{scheme} {token}")  # fmt: skip
    assert reply.status == 401, reply.text
    return reply


async def test_resource_refusals(ep: TokenEndpoint, session: aiohttp.ClientSession) -> None:
    key, other = key_for("ES256"), key_for("EdDSA")
    token = await dpop_token(session, ep, key)
    url = ep.url + "/api/x"
    ok = access_token = token
    cases: list[tuple[tuple[str, ...], str, str, str]] = [
        ((proof(key, "GET", url, access_token="another"),), "DPoP", "invalid_dpop_proof", "ath"),
        ((proof(key, "GET", url),), "DPoP", "invalid_dpop_proof", "ath"),
        ((proof(key, "POST", url, access_token=ok),), "DPoP", "invalid_dpop_proof", "htm"),
        ((proof(key, "GET", url + "/y", access_token=ok),), "DPoP", "invalid_dpop_proof", "htu"),
        ((), "DPoP", "invalid_dpop_proof", "proof is required"),
        ((proof(other, "GET", url, algorithm="EdDSA", access_token=access_token),), "DPoP",
         "invalid_token", "bound to another key"),
        # RFC 9449 §7.2: a bound token is no bearer token, with or without a proof
        ((), "Bearer", "invalid_token", "DPoP-bound"),
        ((proof(key, "GET", url, access_token=ok),), "Bearer", "invalid_token", "DPoP-bound"),
    ]  # fmt: skip
    for proofs, scheme, error, words in cases:
        reply = await _refusal(session, ep, token, proofs, scheme)
        first, second = reply.challenges()
        assert reply.json["error"] == error
        assert words in reply.json["error_description"]
        used, offered = (first, second)
        assert used.startswith(f"{scheme} ") and f'error="{error}"' in used, reply.challenges()
        assert "error=" not in offered
        dpop_challenge = first if scheme == "DPoP" else second
        assert 'algs="RS256 RS384 RS512 PS256 PS384 PS512 ES256 ES384 ES512 EdDSA"' in (
            dpop_challenge
        )
    assert [r.error for r in ep.resource_requests] == [case[2] for case in cases]
    assert all(r.status == 401 for r in ep.resource_requests)


async def test_an_unbound_token_is_refused_with_the_dpop_scheme(
    ep: TokenEndpoint, session: aiohttp.ClientSession
) -> None:
    bearer = (await token_request(session, ep)).json["access_token"]
    url = ep.url + "/api/x"
    key = key_for("ES256")
    reply = await _refusal(session, ep, bearer, (proof(key, "GET", url, access_token=bearer),))
    assert reply.json["error"] == "invalid_token"
    ok = await send(session, "GET", url, authorization=f"Bearer {bearer}")
    assert ok.status == 200


async def test_resource_replay_and_unknown_token(
    ep: TokenEndpoint, session: aiohttp.ClientSession
) -> None:
    key = key_for("ES256")
    token = await dpop_token(session, ep, key)
    url = ep.url + "/api/x"
    sent = proof(key, "GET", url, access_token=token)
    assert (
        await send(session, "GET", url, proofs=(sent,), authorization=f"DPoP {token}")
    ).status == 200
    replay = await _refusal(session, ep, token, (sent,))
    assert replay.json["error"] == "invalid_dpop_proof"
    ep.revoke(token)
    gone = await _refusal(session, ep, token, (proof(key, "GET", url, access_token=token),))
    assert gone.json["error"] == "invalid_token"


async def test_no_credentials_get_both_challenges_without_an_error(
    ep: TokenEndpoint, session: aiohttp.ClientSession
) -> None:
    reply = await send(session, "GET", ep.url + "/api/x")
    assert reply.status == 401
    bearer, dpop = reply.challenges()
    assert bearer == 'Bearer realm="jwtmint-testing"'
    assert dpop.startswith('DPoP realm="jwtmint-testing", algs="') and "error" not in dpop
    assert ep.resource_requests[0].scheme is None and ep.resource_requests[0].error is None


async def test_resource_nonces(session: aiohttp.ClientSession) -> None:
    async with TokenEndpoint(dpop_nonce=True) as ep:
        ep.register_client("app", secret=SECRET)
        key = key_for("ES256")
        token = await dpop_token(session, ep, key)
        url = ep.url + "/api/x"
        challenge = await _refusal(
            session, ep, token, (proof(key, "GET", url, access_token=token),)
        )
        assert challenge.challenges()[0].startswith(
            'DPoP realm="jwtmint-testing", error="use_dpop_nonce"'
        )
        nonce = challenge.headers["DPoP-Nonce"]
        assert nonce == ep.resource_dpop_nonce != ep.dpop_nonce  # its own (RFC 9449 §9)
        retry = proof(key, "GET", url, access_token=token, nonce=nonce)
        reply = await send(session, "GET", url, proofs=(retry,), authorization=f"DPoP {token}")
        assert reply.status == 200 and reply.headers["DPoP-Nonce"] == nonce
        ep.rotate_dpop_nonce()
        rotated = ep.resource_dpop_nonce
        again = proof(key, "GET", url, access_token=token, nonce=nonce)  # the previous one
        reply = await send(session, "GET", url, proofs=(again,), authorization=f"DPoP {token}")
        assert reply.status == 200 and reply.headers["DPoP-Nonce"] == rotated
        records = ep.resource_requests
        assert [(r.error, r.dpop.nonce if r.dpop else None) for r in records] == [
            ("use_dpop_nonce", None), (None, nonce), (None, nonce)
        ]  # fmt: skip
        assert len({r.dpop.jti for r in records if r.dpop}) == 3


_segment = st.text(st.characters(blacklist_categories=["Cs"]), min_size=1, max_size=8)


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    method=st.sampled_from(["GET", "POST", "PUT", "PATCH", "DELETE"]),
    segments=st.lists(_segment, min_size=1, max_size=3),
    query=st.one_of(st.just(""), _segment.map(lambda text: "?q=" + quote(text))),
    lower_hex=st.booleans(),
)
async def test_any_method_and_path_with_a_matching_proof_is_accepted(
    ep: TokenEndpoint,
    session: aiohttp.ClientSession,
    method: str,
    segments: list[str],
    query: str,
    lower_hex: bool,
) -> None:
    """The htu is the URL without its query; written with lowercase percent-escapes
    it is the same URI (RFC 3986 §6.2.2.1)."""
    key = key_for("ES256")
    token = await dpop_token(session, ep, key)
    path = "/api/" + "/".join(quote(segment, safe="") for segment in segments)
    url = yarl.URL(ep.url + path + query, encoded=True)
    htu = ep.url + (
        re.sub("%[0-9A-F]{2}", lambda m: m.group().lower(), path) if lower_hex else path
    )
    sent = proof(key, method, htu, access_token=token)
    reply = await send(session, method, url, proofs=(sent,), authorization=f"DPoP {token}")
    assert reply.status == 200, (path, reply.text)
    assert ep.resource_requests[-1].dpop is not None
    assert ep.resource_requests[-1].dpop.htu == htu


# ---------------------------------------------------------------------------- fuzzing
# Proofs made of random parts, or a valid one with a few members replaced, at /token (nonces
# on) and at /api: every answer must be a DPoP refusal, recorded, never a 500. A valid proof
# is possible only through the ES256 key's own signature, which no fuzzed proof carries.

_text = st.text(st.characters(blacklist_categories=["Cs"]), max_size=10)
_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | _text
    | st.integers(min_value=-(10**400), max_value=10**400),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_text, inner, max_size=3),
    max_leaves=5,
)  # fmt: skip
_jwks = st.sampled_from(["public", "private", "rsa", "oct"]).map(
    lambda kind: {
        "public": jwk_of(key_for("ES256").public_key()),
        "private": jwk_of(key_for("ES256")),
        "rsa": jwk_of(key_for("RS256").public_key()),
        "oct": {"kty": "oct", "k": "c2VjcmV0"},
    }[kind]
)
_header_members = {
    "typ": st.just("dpop+jwt") | _json,
    "alg": st.sampled_from(["ES256", "RS256", "HS256", "none", "EdDSA"]) | _json,
    "jwk": _jwks | _json,
    "crit": _json,
}
_claim_members = {
    "jti": _json,
    "htm": st.sampled_from(["POST", "GET", "post"]) | _json,
    "htu": st.sampled_from(["@url", "@url?x#y", "http://127.0.0.1/token"]) | _json,
    "iat": st.sampled_from([0, 10**20, float("inf")]) | _json,
    "nonce": _json,
    "ath": _json,
}


@st.composite
def _fuzzed_proofs(draw: st.DrawFn) -> tuple[dict[str, Any], dict[str, Any], bytes]:
    header: dict[str, Any] = {"typ": "dpop+jwt", "alg": "ES256"}
    header["jwk"] = jwk_of(key_for("ES256").public_key())
    claims: dict[str, Any] = {"jti": uuid.uuid4().hex, "htm": "POST", "htu": "@url", "iat": 0}
    for target, members in ((header, _header_members), (claims, _claim_members)):
        for name in draw(st.lists(st.sampled_from(sorted(members)), max_size=3, unique=True)):
            if draw(st.booleans()):
                target[name] = draw(members[name])
            else:
                target.pop(name, None)
    signature = draw(st.binary(max_size=70) | st.just(b"\0" * 64))
    return header, claims, signature


def _render(value: Any, url: str) -> Any:
    if value == "@url":
        return url
    if isinstance(value, str) and value.startswith("@url"):
        return url + value[4:]
    return value


@pytest.fixture
async def fuzz_ep() -> AsyncIterator[TokenEndpoint]:
    async with TokenEndpoint(dpop_nonce=True) as endpoint:
        endpoint.register_client("app", secret=SECRET)
        yield endpoint


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(parts=_fuzzed_proofs(), at_resource=st.booleans())
async def test_fuzzed_proofs_are_refused_and_recorded(
    fuzz_ep: TokenEndpoint,
    session: aiohttp.ClientSession,
    parts: tuple[dict[str, Any], dict[str, Any], bytes],
    at_resource: bool,
) -> None:
    ep = fuzz_ep
    header, claims, signature = parts
    url = ep.url + "/api/x" if at_resource else ep.token_url
    claims = {name: _render(value, url) for name, value in claims.items()}
    sent = hand_made(header, claims, signature)  # NaN too: the endpoint must refuse it
    recorded: RecordedRequest | RecordedResourceRequest
    if at_resource:
        before = len(ep.resource_requests)
        reply = await send(session, "POST", url, proofs=(sent,), authorization="DPoP token")
        assert reply.status == 401, reply.text
        assert len(ep.resource_requests) == before + 1
        recorded = ep.resource_requests[-1]
        assert recorded.error == reply.json["error"]
    else:
        before = len(ep.requests)
        reply = await token_request(session, ep, sent)
        assert reply.status == 400, reply.text
        assert len(ep.requests) == before + 1
        assert ep.requests[-1].outcome == reply.json["error"]
        recorded = ep.requests[-1]
    assert reply.json["error"] in {"invalid_dpop_proof", "use_dpop_nonce"}, reply.text
    issued = ep.resource_dpop_nonce if at_resource else ep.dpop_nonce
    assert reply.headers["DPoP-Nonce"] == issued
    assert recorded.dpop is not None
    assert jwk_of(key_for("ES256"))["d"] not in repr(recorded)
