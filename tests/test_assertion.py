"""AssertionSigner: every assertion verifies with PyJWT and jwcrypto, on both kernels."""

from __future__ import annotations

import base64
import dataclasses
import json
import math
import threading
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timezone
from decimal import Decimal
from types import ModuleType
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from jwcrypto import jwk as jwcrypto_jwk
from jwcrypto import jwt as jwcrypto_jwt
from jwt.types import Options

import jwtmint
from jwtmint import _kernels, _pure
from tests.conftest import (
    ALL_ALGORITHMS,
    AUDIENCE,
    CLIENT_ID,
    FIXED_NOW,
    SPEEDUPS,
    counter_entropy,
    ed448_key,
    signing_key,
    verification_key,
)

#: Every algorithm, plus EdDSA with an Ed448 key.
ALGORITHM_CASES = [*ALL_ALGORITHMS, "Ed448"]
TYP = "client-authentication+jwt"
FIXTURE_OK = [HealthCheck.function_scoped_fixture]  # the kernel never changes per example
NO_TIME_CHECKS: Options = {"verify_exp": False, "verify_nbf": False, "verify_iat": False}


def key_for(case: str) -> tuple[jwtmint.SigningKey, str]:
    """The key and the JWS alg for a case ("Ed448" signs as EdDSA)."""
    if case == "Ed448":
        return ed448_key(), "EdDSA"
    return signing_key(case), case


def now_clock() -> tuple[int, Callable[[], float]]:
    """A clock near the real time (so verifiers accept iat/nbf/exp) with a known value."""
    now = int(time.time())
    return now, lambda: now + 0.75


def b64decode(segment: str) -> bytes:
    return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))


def raw_claims(token: str) -> dict[str, Any]:
    """The payload read with the standard library, for bulk checks (no verification)."""
    claims: dict[str, Any] = json.loads(b64decode(token.split(".")[1]))
    return claims


def pyjwt_decode(
    token: str,
    key: jwtmint.SigningKey,
    alg: str,
    *,
    audience: str = AUDIENCE,
    check_time: bool = True,
) -> dict[str, Any]:
    claims: dict[str, Any] = jwt.decode(
        token,
        verification_key(key),
        algorithms=[alg],
        audience=audience,
        issuer=CLIENT_ID,
        options=None if check_time else NO_TIME_CHECKS,
    )
    return claims


def public_pem(key: jwtmint.SigningKey) -> bytes:
    assert not isinstance(key.key, bytes)
    return key.key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def jwcrypto_decode(token: str, key: jwtmint.SigningKey, alg: str) -> dict[str, Any]:
    """Verify with jwcrypto (signature, iss, sub, aud, presence of exp/iat/nbf/jti)."""
    if isinstance(key.key, bytes):
        k = base64.urlsafe_b64encode(key.key).rstrip(b"=").decode()
        verifier = jwcrypto_jwk.JWK(kty="oct", k=k)
    else:
        verifier = jwcrypto_jwk.JWK.from_pem(public_pem(key))
    parsed = jwcrypto_jwt.JWT(
        jwt=token,
        key=verifier,
        algs=[alg],
        expected_type="JWS",
        check_claims={
            "iss": CLIENT_ID,
            "sub": CLIENT_ID,
            "aud": AUDIENCE,
            "exp": None,
            "iat": None,
            "nbf": None,
            "jti": None,
        },
    )
    claims: dict[str, Any] = json.loads(parsed.claims)
    return claims


def check_jti(claims: dict[str, Any]) -> None:
    jti = claims["jti"]
    assert isinstance(jti, str)
    assert len(jti) == 22
    assert "=" not in jti
    assert len(b64decode(jti)) == 16


# --------------------------------------------------------------------------- interop


@pytest.mark.parametrize("case", ALGORITHM_CASES)
def test_assertion_verifies_with_pyjwt_and_jwcrypto(kernel: ModuleType, case: str) -> None:
    key, alg = key_for(case)
    now, clock = now_clock()
    signer = jwtmint.AssertionSigner(key, CLIENT_ID, AUDIENCE, clock=clock)
    token = signer.mint()
    assert isinstance(token, str)
    assert token.isascii()
    assert token.count(".") == 2

    claims = pyjwt_decode(token, key, alg)
    assert jwcrypto_decode(token, key, alg) == claims
    check_jti(claims)
    assert claims == {
        "iss": CLIENT_ID,
        "sub": CLIENT_ID,
        "aud": AUDIENCE,
        "jti": claims["jti"],
        "iat": now,
        "nbf": now,
        "exp": now + 60,
    }
    header = jwt.get_unverified_header(token)
    expected_header: dict[str, Any] = {"alg": alg, "typ": TYP}
    if key.kid is not None:
        expected_header["kid"] = key.kid
    assert header == expected_header
    assert ("kid" in header) == (not case.startswith("HS"))
    assert signer.algorithm == alg


@pytest.mark.parametrize("case", ["ES256", "EdDSA", "HS256"])
def test_tampered_assertion_fails_to_verify(kernel: ModuleType, case: str) -> None:
    key, alg = key_for(case)
    token = jwtmint.AssertionSigner(key, CLIENT_ID, AUDIENCE).mint()
    header, _, signature = token.split(".")
    forged = base64.urlsafe_b64encode(
        json.dumps({**raw_claims(token), "sub": "admin"}).encode()
    ).rstrip(b"=")
    with pytest.raises(jwt.InvalidSignatureError):
        pyjwt_decode(f"{header}.{forged.decode()}.{signature}", key, alg)


# --------------------------------------------------------------------------- header


def test_hmac_header_has_kid_only_when_given(kernel: ModuleType) -> None:
    secret = signing_key("HS256").key
    assert isinstance(secret, bytes)
    plain = jwtmint.AssertionSigner(secret, CLIENT_ID, AUDIENCE).mint()
    assert jwt.get_unverified_header(plain) == {"alg": "HS256", "typ": TYP}
    keyed = jwtmint.load_key(secret, kid="hmac-2024")
    token = jwtmint.AssertionSigner(keyed, CLIENT_ID, AUDIENCE).mint()
    assert jwt.get_unverified_header(token) == {"alg": "HS256", "kid": "hmac-2024", "typ": TYP}
    pyjwt_decode(token, keyed, "HS256")


def test_explicit_kid_replaces_the_thumbprint(kernel: ModuleType) -> None:
    key = jwtmint.load_key(signing_key("ES256"), kid="invoice-2024-01")
    token = jwtmint.AssertionSigner(key, CLIENT_ID, AUDIENCE).mint()
    assert jwt.get_unverified_header(token)["kid"] == "invoice-2024-01"
    pyjwt_decode(token, key, "ES256")


def test_headers_add_members(kernel: ModuleType) -> None:
    key = signing_key("ES256")
    extra = {"x5t#S256": "abc_-", "jku": "https://client.example.com/jwks", "n": [1, {"é": None}]}
    token = jwtmint.AssertionSigner(key, CLIENT_ID, AUDIENCE, headers=extra).mint()
    assert jwt.get_unverified_header(token) == {
        "alg": "ES256",
        "kid": key.kid,
        "typ": TYP,
        **extra,
    }
    pyjwt_decode(token, key, "ES256")


@pytest.mark.parametrize("name", ["alg", "kid", "typ"])
def test_headers_may_not_set_signer_members(kernel: ModuleType, name: str) -> None:
    with pytest.raises(jwtmint.InvalidHeaderError):
        jwtmint.AssertionSigner(signing_key("HS256"), CLIENT_ID, AUDIENCE, headers={name: "none"})


def test_typ_none_omits_typ_and_typ_can_be_changed(kernel: ModuleType) -> None:
    key = signing_key("EdDSA")
    token = jwtmint.AssertionSigner(key, CLIENT_ID, AUDIENCE, typ=None).mint()
    assert jwt.get_unverified_header(token) == {"alg": "EdDSA", "kid": key.kid}
    pyjwt_decode(token, key, "EdDSA")
    token = jwtmint.AssertionSigner(key, CLIENT_ID, AUDIENCE, typ="JWT").mint()
    assert jwt.get_unverified_header(token) == {"alg": "EdDSA", "kid": key.kid, "typ": "JWT"}


def test_algorithm_argument_names_the_alg(kernel: ModuleType) -> None:
    key = signing_key("RS256")
    signer = jwtmint.AssertionSigner(key, CLIENT_ID, AUDIENCE, algorithm="PS384")
    token = signer.mint()
    assert jwt.get_unverified_header(token)["alg"] == "PS384"
    pyjwt_decode(token, key, "PS384")
    with pytest.raises(jwt.InvalidAlgorithmError):
        pyjwt_decode(token, key, "RS256")


# --------------------------------------------------------------------------- claims


def test_claims_are_exactly_the_registered_ones_plus_extra(
    kernel: ModuleType, fixed_clock: Callable[[], float]
) -> None:
    key = signing_key("HS256")
    extra = {"scope": "invoice.read", "cnf": {"jkt": "abc"}, "n": [1, 2.5, True, None]}
    signer = jwtmint.AssertionSigner(
        key, CLIENT_ID, AUDIENCE, lifetime=300, extra_claims=extra, clock=fixed_clock
    )
    claims = pyjwt_decode(signer.mint(), key, "HS256", check_time=False)
    assert claims == {
        "iss": CLIENT_ID,
        "sub": CLIENT_ID,
        "aud": AUDIENCE,
        "jti": claims["jti"],
        "iat": FIXED_NOW,
        "nbf": FIXED_NOW,
        "exp": FIXED_NOW + 300,
        **extra,
    }
    # the claims start with the registered ones, in order
    assert list(claims)[:7] == ["iss", "sub", "aud", "jti", "iat", "nbf", "exp"]


def test_extra_claims_are_copied(kernel: ModuleType, fixed_clock: Callable[[], float]) -> None:
    key = signing_key("HS256")
    extra: dict[str, Any] = {"scope": "a"}
    signer = jwtmint.AssertionSigner(key, CLIENT_ID, AUDIENCE, extra_claims=extra)
    extra["scope"] = "changed"
    extra["iss"] = "evil"
    claims = pyjwt_decode(signer.mint(), key, "HS256")
    assert claims["scope"] == "a"
    assert claims["iss"] == CLIENT_ID


@pytest.mark.parametrize(
    "audience",
    [[AUDIENCE], [AUDIENCE, "https://idp.example.com/token"], (AUDIENCE, "other")],
    ids=["one", "two", "tuple"],
)
def test_audience_list(kernel: ModuleType, audience: list[str] | tuple[str, ...]) -> None:
    key = signing_key("ES256")
    signer = jwtmint.AssertionSigner(key, CLIENT_ID, audience)
    claims = pyjwt_decode(signer.mint(), key, "ES256")
    assert claims["aud"] == list(audience)
    assert signer.audience == list(audience)
    assert jwcrypto_decode(signer.mint(), key, "ES256")["aud"] == list(audience)


def test_unicode_client_id_and_audience(kernel: ModuleType) -> None:
    key = signing_key("HS256")
    client_id, audience = "客户-😀\"\\'", "https://idp.example.com/é?a=1&b=\x7f"
    signer = jwtmint.AssertionSigner(key, client_id, audience)
    claims = jwt.decode(
        signer.mint(), verification_key(key), algorithms=["HS256"], audience=audience
    )
    assert claims["iss"] == claims["sub"] == client_id
    assert claims["aud"] == audience


def test_jti_is_16_random_bytes_and_unique_over_100000_mints(kernel: ModuleType) -> None:
    key = signing_key("HS256")
    signer = jwtmint.AssertionSigner(key, CLIENT_ID, AUDIENCE)
    tokens = [signer.mint() for _ in range(100_000)]
    jtis = {raw_claims(token)["jti"] for token in tokens}
    assert len(jtis) == 100_000
    for token in tokens[:: 100_000 // 50]:
        check_jti(pyjwt_decode(token, key, "HS256"))


def test_jti_unique_over_100000_via_mint_many(kernel: ModuleType) -> None:
    key = signing_key("HS256")
    signer = jwtmint.AssertionSigner(key, CLIENT_ID, AUDIENCE)
    tokens = signer.mint_many(50_000) + signer.mint_many(50_000)
    assert len({raw_claims(token)["jti"] for token in tokens}) == 100_000
    for token in tokens[:: 100_000 // 50]:
        check_jti(pyjwt_decode(token, key, "HS256"))


def test_entropy_is_injectable(kernel: ModuleType, fixed_clock: Callable[[], float]) -> None:
    key = signing_key("HS256")
    signer = jwtmint.AssertionSigner(
        key, CLIENT_ID, AUDIENCE, clock=fixed_clock, entropy=counter_entropy()
    )
    jtis = [pyjwt_decode(signer.mint(), key, "HS256", check_time=False)["jti"] for _ in range(3)]
    assert [b64decode(jti) for jti in jtis] == [n.to_bytes(16, "big") for n in (1, 2, 3)]


# --------------------------------------------------------------------------- clock


def _times(*values: float) -> Callable[[], float]:
    it: Iterator[float] = iter(values)
    return lambda: next(it)


@pytest.mark.parametrize(
    ("now", "expected"),
    [
        (1_800_000_000.999, 1_800_000_000),
        (1_800_000_000, 1_800_000_000),
        (0.5, 0),
        (-0.5, -1),
        (-1_000.25, -1_001),
    ],
)
def test_clock_is_floored(kernel: ModuleType, now: float, expected: int) -> None:
    key = signing_key("HS256")
    signer = jwtmint.AssertionSigner(key, CLIENT_ID, AUDIENCE, lifetime=90, clock=lambda: now)
    for token in (signer.mint(), *signer.mint_many(3)):
        claims = pyjwt_decode(token, key, "HS256", check_time=False)
        assert (claims["iat"], claims["nbf"], claims["exp"]) == (expected, expected, expected + 90)
        assert claims["iat"] == math.floor(now)


def test_clock_is_read_on_every_mint(kernel: ModuleType) -> None:
    key = signing_key("ES256")
    signer = jwtmint.AssertionSigner(
        key, CLIENT_ID, AUDIENCE, lifetime=30, clock=_times(100.0, 200.5, 300.9, 400.0)
    )
    iats = [pyjwt_decode(signer.mint(), key, "ES256", check_time=False)["iat"] for _ in range(3)]
    assert iats == [100, 200, 300]
    batch = signer.mint_many(4)
    assert [pyjwt_decode(t, key, "ES256", check_time=False)["exp"] for t in batch] == [430] * 4


def test_expired_assertion_is_rejected_by_pyjwt(kernel: ModuleType) -> None:
    key = signing_key("HS256")
    signer = jwtmint.AssertionSigner(key, CLIENT_ID, AUDIENCE, lifetime=60, clock=lambda: 1000.0)
    with pytest.raises(jwt.ExpiredSignatureError):
        pyjwt_decode(signer.mint(), key, "HS256")


# --------------------------------------------------------------------------- refusals


@pytest.mark.parametrize("name", ["iss", "sub", "aud", "jti", "iat", "nbf", "exp"])
def test_extra_claims_may_not_override_registered_claims(kernel: ModuleType, name: str) -> None:
    assert name in jwtmint.REGISTERED_CLAIMS
    with pytest.raises(jwtmint.InvalidClaimsError, match=name):
        jwtmint.AssertionSigner(
            signing_key("HS256"), CLIENT_ID, AUDIENCE, extra_claims={"ok": 1, name: "x"}
        )


class _NotJson:
    pass


BAD_EXTRA: dict[str, dict[Any, Any]] = {
    "nan": {"x": math.nan},
    "inf": {"x": math.inf},
    "-inf": {"x": -math.inf},
    "nested-nan": {"x": [1, {"y": math.nan}]},
    "int-key": {1: "x"},
    "none-key": {None: "x"},
    "tuple-key": {("a",): "x"},
    "nested-int-key": {"x": {2: "y"}},
    "set": {"x": {1, 2}},
    "frozenset": {"x": frozenset({"a"})},
    "bytes": {"x": b"raw"},
    "object": {"x": _NotJson()},
    "decimal": {"x": Decimal("1.5")},
    "datetime": {"x": datetime(2030, 1, 1, tzinfo=timezone.utc)},
    "complex": {"x": 1j},
    "lone-surrogate": {"x": "\ud800"},
    "surrogate-key": {"\udfff": 1},
}


@pytest.mark.parametrize("extra", list(BAD_EXTRA.values()), ids=list(BAD_EXTRA))
def test_non_json_extra_claims_are_refused(kernel: ModuleType, extra: dict[Any, Any]) -> None:
    with pytest.raises(jwtmint.InvalidClaimsError):
        jwtmint.AssertionSigner(signing_key("HS256"), CLIENT_ID, AUDIENCE, extra_claims=extra)


@pytest.mark.parametrize("client_id", ["", None, 5, b"invoice", ["invoice"]], ids=repr)
def test_bad_client_id_is_refused(kernel: ModuleType, client_id: Any) -> None:
    with pytest.raises(jwtmint.InvalidClaimsError):
        jwtmint.AssertionSigner(signing_key("HS256"), client_id, AUDIENCE)


@pytest.mark.parametrize(
    "audience",
    ["", [], (), [""], [AUDIENCE, ""], [AUDIENCE, 5], None, 5, b"https://idp", {"a": "b"}],
    ids=repr,
)
def test_bad_audience_is_refused(kernel: ModuleType, audience: Any) -> None:
    with pytest.raises(jwtmint.InvalidClaimsError):
        jwtmint.AssertionSigner(signing_key("HS256"), CLIENT_ID, audience)


@pytest.mark.parametrize("lifetime", [0, -1, True, False, 1.5, 60.0, "60", None], ids=repr)
def test_bad_lifetime_is_refused(kernel: ModuleType, lifetime: Any) -> None:
    with pytest.raises(jwtmint.InvalidClaimsError):
        jwtmint.AssertionSigner(signing_key("HS256"), CLIENT_ID, AUDIENCE, lifetime=lifetime)


@pytest.mark.parametrize("algorithm", ["none", "HS1024", "ES256K"])
def test_bad_algorithm_is_refused(kernel: ModuleType, algorithm: str) -> None:
    with pytest.raises(jwtmint.UnsupportedAlgorithmError):
        jwtmint.AssertionSigner(signing_key("HS256"), CLIENT_ID, AUDIENCE, algorithm=algorithm)


def test_algorithm_that_does_not_fit_the_key_is_refused(kernel: ModuleType) -> None:
    with pytest.raises(jwtmint.InvalidKeyError):
        jwtmint.AssertionSigner(signing_key("ES256"), CLIENT_ID, AUDIENCE, algorithm="ES384")
    with pytest.raises(jwtmint.InvalidKeyError):
        jwtmint.AssertionSigner(signing_key("EdDSA"), CLIENT_ID, AUDIENCE, algorithm="RS256")


# --------------------------------------------------------------------------- ClientAssertion, repr


def test_client_assertion(kernel: ModuleType) -> None:
    key = signing_key("ES256")
    signer = jwtmint.AssertionSigner(key, CLIENT_ID, AUDIENCE)
    assertion = signer.client_assertion()
    assert isinstance(assertion, jwtmint.ClientAssertion)
    assert assertion.type == jwtmint.JWT_BEARER
    assert jwtmint.JWT_BEARER == "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
    check_jti(pyjwt_decode(assertion.value, key, "ES256"))
    jwcrypto_decode(assertion.value, key, "ES256")
    with pytest.raises(dataclasses.FrozenInstanceError):
        assertion.value = "forged"  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        assertion.type = "other"  # type: ignore[misc]
    text = repr(assertion) + str(assertion)
    assert assertion.value not in text
    for segment in assertion.value.split("."):
        assert segment not in text
    assert "jwt-bearer" in text
    assert signer.client_assertion().value != assertion.value


def test_signer_repr_shows_no_key_material(kernel: ModuleType) -> None:
    secret = signing_key("HS512").key
    assert isinstance(secret, bytes)
    text = repr(jwtmint.AssertionSigner(secret, CLIENT_ID, AUDIENCE)) + str(
        jwtmint.AssertionSigner(secret, CLIENT_ID, AUDIENCE)
    )
    assert CLIENT_ID in text
    for form in (
        repr(secret)[2:-1],
        secret.hex(),
        secret.hex().upper(),
        base64.b64encode(secret).decode().rstrip("="),
        base64.urlsafe_b64encode(secret).decode().rstrip("="),
    ):
        assert form not in text

    rsa_key = signing_key("RS256")
    assert isinstance(rsa_key.key, rsa.RSAPrivateKey)
    text = repr(jwtmint.AssertionSigner(rsa_key, CLIENT_ID, AUDIENCE))
    private = rsa_key.key.private_numbers()
    for number in (private.d, private.p, private.q):
        assert str(number)[:40] not in text
        assert format(number, "x")[:40] not in text
    assert "PRIVATE" not in text
    assert "RS256" in text


# --------------------------------------------------------------------------- mint_many


@pytest.mark.parametrize("case", ALGORITHM_CASES)
def test_mint_many_gives_distinct_valid_assertions(kernel: ModuleType, case: str) -> None:
    key, alg = key_for(case)
    signer = jwtmint.AssertionSigner(key, CLIENT_ID, AUDIENCE, extra_claims={"n": 1})
    n = 600 if case == "HS256" else 8
    tokens = signer.mint_many(n)
    assert len(tokens) == n
    assert len(set(tokens)) == n
    claims = [pyjwt_decode(token, key, alg) for token in tokens]
    assert len({c["jti"] for c in claims}) == n
    for c in claims:
        check_jti(c)
        assert c["n"] == 1
    assert jwcrypto_decode(tokens[-1], key, alg) == claims[-1]
    assert signer.mint_many(0) == []


@pytest.mark.parametrize("n", [-1, 1.0, True, "3", None], ids=repr)
def test_mint_many_refuses_bad_counts(kernel: ModuleType, n: Any) -> None:
    signer = jwtmint.AssertionSigner(signing_key("HS256"), CLIENT_ID, AUDIENCE)
    with pytest.raises(jwtmint.ConfigurationError) as info:
        signer.mint_many(n)
    assert isinstance(info.value, ValueError)  # callers that catch ValueError keep working


def test_signer_is_safe_to_share_between_threads(kernel: ModuleType) -> None:
    key = signing_key("HS256")
    signer = jwtmint.AssertionSigner(key, CLIENT_ID, AUDIENCE)
    threads, per_thread = 4, 2000
    barrier = threading.Barrier(threads)
    results: list[list[str]] = [[] for _ in range(threads)]
    errors: list[BaseException] = []

    def work(out: list[str]) -> None:
        try:
            barrier.wait(timeout=30)
            for _ in range(per_thread):
                out.append(signer.mint())
        except BaseException as exc:
            errors.append(exc)

    workers = [threading.Thread(target=work, args=(out,)) for out in results]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=60)
    assert not errors
    tokens = [token for out in results for token in out]
    assert len(tokens) == threads * per_thread
    jtis = {pyjwt_decode(token, key, "HS256")["jti"] for token in tokens}
    assert len(jtis) == threads * per_thread


# --------------------------------------------------------------------------- C vs Python


@pytest.mark.skipif(SPEEDUPS is None, reason="C extension not built")
@pytest.mark.parametrize("case", ALGORITHM_CASES)
def test_c_and_python_give_the_same_bytes(
    case: str, monkeypatch: pytest.MonkeyPatch, fixed_clock: Callable[[], float]
) -> None:
    key, alg = key_for(case)
    outputs: dict[str, list[str]] = {}
    for module in (SPEEDUPS, _pure):
        assert module is not None
        monkeypatch.setattr(_kernels, "kernel", module)
        signer = jwtmint.AssertionSigner(
            key,
            CLIENT_ID,
            [AUDIENCE, "https://idp.example.com/tøken"],
            lifetime=120,
            extra_claims={"scope": "a b", "big": 2**70, "f": 0.1, "u": "😀", "n": None},
            headers={"x5t#S256": "xyz"},
            clock=fixed_clock,
            entropy=counter_entropy(),
        )
        assert repr(signer).endswith(f"implementation={module.IMPLEMENTATION!r})")
        outputs[module.IMPLEMENTATION] = [signer.mint(), signer.mint(), *signer.mint_many(3)]
    c_tokens, py_tokens = outputs["c"], outputs["py"]
    deterministic = alg.startswith(("HS", "RS")) or alg == "EdDSA"
    for c_token, py_token in zip(c_tokens, py_tokens, strict=True):
        if deterministic:
            assert c_token == py_token
        else:
            assert c_token.rsplit(".", 1)[0] == py_token.rsplit(".", 1)[0]
            assert len(c_token) == len(py_token)
        for token in (c_token, py_token):
            pyjwt_decode(
                token, key, alg, audience="https://idp.example.com/tøken", check_time=False
            )
    # the counter entropy gave each kernel the same five jti values
    assert [raw_claims(t)["jti"] for t in c_tokens] == [raw_claims(t)["jti"] for t in py_tokens]
    assert len({raw_claims(t)["jti"] for t in c_tokens}) == 5


# --------------------------------------------------------------------------- Hypothesis


json_leaves = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(min_value=2**64, max_value=2**256),
    st.integers(min_value=-(2**256), max_value=-(2**63) - 1),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(),
)
json_values = st.recursive(
    json_leaves,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)
extra_claims_strategy = st.dictionaries(
    st.text(max_size=12).filter(lambda name: name not in jwtmint.REGISTERED_CLAIMS),
    json_values,
    max_size=6,
)


@pytest.mark.parametrize("case", ["HS256", "EdDSA"])
@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(extra=extra_claims_strategy)
@example(extra={"😀": "𝄞 astral \U0010ffff", "": ""})
@example(extra={"ctl": '\x00\x1f\x7f\u2028\u2029"\\/', "nested": [[[{"a": [{}]}]]]})
@example(extra={"big": 2**64, "neg": -(2**64) - 1, "huge": 10**60, "u64": 2**64 - 1})
@example(extra={"floats": [1e16, 1e-7, -0.0, 5e-324, 1.7976931348623157e308, 0.1]})
@example(extra={"b": [True, False, None], "i": [0, -1, 2**63 - 1, -(2**63)]})
def test_any_json_extra_claims_round_trip(
    kernel: ModuleType, case: str, extra: dict[str, Any]
) -> None:
    key, alg = key_for(case)
    signer = jwtmint.AssertionSigner(key, CLIENT_ID, AUDIENCE, extra_claims=extra)
    claims = pyjwt_decode(signer.mint(), key, alg)
    assert {name: claims[name] for name in claims if name not in jwtmint.REGISTERED_CLAIMS} == extra
    assert list(claims)[7:] == list(extra)
