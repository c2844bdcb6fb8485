"""``jwtmint.encode`` against PyJWT's ``jwt.encode``, byte for byte, on both kernels."""

from __future__ import annotations

import base64
import copy
import json
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from types import MappingProxyType, ModuleType
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

import jwtmint
from jwtmint import _jws
from tests.conftest import KeptEcKey, signing_key, verification_key


def hypothesis_settings(max_examples: int) -> settings:
    # The kernel fixture is function-scoped but never changes between examples;
    # no deadline: a slow machine must not fail a correctness test.
    return settings(
        max_examples=max_examples,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture],
    )


SECRET = "a-shared-secret-that-is-long-enough-for-hs256"
#: nesting beyond every CPython's JSON parser (3.13's goes deeper than a few thousand)
DEEP = 100_000
PAYLOAD: dict[str, Any] = {
    "sub": "1234567890",
    "name": "Jöhn Doe",
    "admin": True,
    "iat": 1516239022,
}


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def segments(token: str) -> list[str]:
    return token.split(".")


def private_pem(key: Any, fmt: serialization.PrivateFormat) -> bytes:
    return key.private_bytes(  # type: ignore[no-any-return]
        serialization.Encoding.PEM, fmt, serialization.NoEncryption()
    )


def public_pem(key: Any) -> bytes:
    return key.public_key().public_bytes(  # type: ignore[no-any-return]
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


# --------------------------------------------------------------------------- strategies

json_leaves = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(min_value=2**63, max_value=2**200),
    st.integers(min_value=-(2**200), max_value=-(2**63) - 1),
    st.floats(),  # NaN and infinities too: PyJWT writes them as json does
    st.sampled_from([1e16, 1e-7, -0.0, 0.0, 1e22, 123456789.0, 0.1, 5e-324]),
    st.text(),
    st.text(alphabet=st.characters(max_codepoint=0x7F)),  # control characters and DEL
)
json_values = st.recursive(
    json_leaves,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)
payloads = st.dictionaries(st.text(max_size=10), json_values, max_size=6).filter(
    lambda payload: isinstance(payload.get("iss", ""), str)
)


@st.composite
def header_sets(draw: st.DrawFn) -> dict[str, Any] | None:
    if draw(st.booleans()):
        return None
    headers: dict[str, Any] = {}
    if draw(st.booleans()):
        headers["kid"] = draw(st.text(max_size=20))
    # crit has its own rules (we refuse a malformed one that PyJWT signs and then cannot
    # decode): tests/test_key_safety.py covers it
    names = st.text(max_size=8).filter(
        lambda name: name not in {"alg", "kid", "typ", "b64", "crit"}
    )
    headers.update(draw(st.dictionaries(names, json_values, max_size=3)))
    typ = draw(st.sampled_from(["absent", "none", "empty", "text"]))
    if typ == "none":
        headers["typ"] = None
    elif typ == "empty":
        headers["typ"] = ""
    elif typ == "text":
        headers["typ"] = draw(st.text(min_size=1, max_size=20))
    return headers


def same_as_pyjwt(
    payload: dict[str, Any],
    ours_key: Any,
    pyjwt_key: Any,
    algorithm: str,
    headers: dict[str, Any] | None = None,
    sort_headers: bool = True,
    json_encoder: type[json.JSONEncoder] | None = None,
) -> str:
    ours = jwtmint.encode(
        payload,
        ours_key,
        algorithm=algorithm,
        headers=headers,
        json_encoder=json_encoder,
        sort_headers=sort_headers,
    )
    theirs = jwt.encode(
        payload,
        pyjwt_key,
        algorithm=algorithm,
        headers=headers,
        json_encoder=json_encoder,
        sort_headers=sort_headers,
    )
    assert isinstance(ours, str)
    assert ours == theirs
    return ours


# --------------------------------------------------------------------------- byte parity


@hypothesis_settings(150)
@given(
    payload=payloads,
    headers=header_sets(),
    sort_headers=st.booleans(),
    secret=st.one_of(st.binary(min_size=32, max_size=80), st.text(min_size=32, max_size=60)),
)
@example(payload=PAYLOAD, headers=None, sort_headers=True, secret=SECRET)
@example(payload=PAYLOAD, headers=None, sort_headers=True, secret=SECRET.encode())
@example(payload={"s": "\x7f"}, headers={"x": "\x7f\x00"}, sort_headers=True, secret=SECRET)
@example(payload={}, headers={"typ": None, "kid": ""}, sort_headers=False, secret=SECRET)
@example(payload=PAYLOAD, headers=None, sort_headers=True, secret="{" + SECRET + "}")
@example(payload=PAYLOAD, headers=None, sort_headers=True, secret='{"kty":"oct","k":"' + SECRET)
@example(payload=PAYLOAD, headers=None, sort_headers=True, secret="ü" * 16)
def test_hs256_matches_pyjwt(
    kernel: ModuleType,
    payload: dict[str, Any],
    headers: dict[str, Any] | None,
    sort_headers: bool,
    secret: str | bytes,
) -> None:
    same_as_pyjwt(payload, secret, secret, "HS256", headers, sort_headers)


def _rsa_key_forms() -> dict[str, tuple[Any, Any]]:
    """(what we are given, what PyJWT is given) for one RSA key."""
    key = signing_key("RS256")
    obj = key.key
    pkcs8 = private_pem(obj, serialization.PrivateFormat.PKCS8)
    pkcs1 = private_pem(obj, serialization.PrivateFormat.TraditionalOpenSSL)
    return {
        "pem-str": (pkcs8.decode(), pkcs8.decode()),
        "pem-bytes": (pkcs8, pkcs8),
        "pkcs1-pem": (pkcs1, pkcs1),
        "object": (obj, obj),
        "signing-key": (key, obj),
    }


RSA_FORMS = ["pem-str", "pem-bytes", "pkcs1-pem", "object", "signing-key"]


@pytest.mark.parametrize("form", RSA_FORMS)
@hypothesis_settings(12)
@given(payload=payloads, headers=header_sets(), sort_headers=st.booleans())
@example(payload=PAYLOAD, headers={"kid": "rsa-1"}, sort_headers=True)
def test_rs256_matches_pyjwt(
    kernel: ModuleType,
    form: str,
    payload: dict[str, Any],
    headers: dict[str, Any] | None,
    sort_headers: bool,
) -> None:
    ours, theirs = _rsa_key_forms()[form]
    token = same_as_pyjwt(payload, ours, theirs, "RS256", headers, sort_headers)
    # the signature only: random payloads hold random exp/nbf/aud values
    jwt.PyJWS().decode(token, verification_key(signing_key("RS256")), algorithms=["RS256"])


@pytest.mark.parametrize("algorithm", ["RS384", "RS512"])
def test_other_rsa_algorithms_match_pyjwt(kernel: ModuleType, algorithm: str) -> None:
    key = signing_key(algorithm).key
    same_as_pyjwt(PAYLOAD, key, key, algorithm, {"kid": "k"})


@pytest.mark.parametrize("form", ["object", "pem", "signing-key"])
@hypothesis_settings(40)
@given(payload=payloads, headers=header_sets(), sort_headers=st.booleans())
def test_eddsa_matches_pyjwt(
    kernel: ModuleType,
    form: str,
    payload: dict[str, Any],
    headers: dict[str, Any] | None,
    sort_headers: bool,
) -> None:
    key = signing_key("EdDSA")
    obj = key.key
    ours: Any = {
        "object": obj,
        "pem": private_pem(obj, serialization.PrivateFormat.PKCS8).decode(),
        "signing-key": key,
    }[form]
    same_as_pyjwt(payload, ours, obj, "EdDSA", headers, sort_headers)


@pytest.mark.parametrize("algorithm", ["HS256", "HS384", "HS512"])
def test_every_hmac_algorithm_matches_pyjwt(kernel: ModuleType, algorithm: str) -> None:
    secret = signing_key(algorithm).key
    same_as_pyjwt(PAYLOAD, secret, secret, algorithm)
    same_as_pyjwt(PAYLOAD, signing_key(algorithm), secret, algorithm)


def test_sort_headers_false_keeps_the_callers_order(kernel: ModuleType) -> None:
    headers = {"zz": 1, "kid": "k", "aa": 2, "typ": "at+jwt"}
    sorted_token = same_as_pyjwt(PAYLOAD, SECRET, SECRET, "HS256", headers, sort_headers=True)
    token = same_as_pyjwt(PAYLOAD, SECRET, SECRET, "HS256", headers, sort_headers=False)
    assert sorted_token != token
    assert list(jwt.get_unverified_header(token)) == ["typ", "alg", "zz", "kid", "aa"]
    assert list(jwt.get_unverified_header(sorted_token)) == ["aa", "alg", "kid", "typ", "zz"]


#: claims whose JSON orjson writes as json does: encode's common call, in the kernel
ASCII_CLAIMS: dict[str, Any] = {"iss": "c", "sub": "c", "aud": "https://idp", "jti": "j", "n": 1}


def test_each_distinct_header_is_written_for_itself(kernel: ModuleType) -> None:
    variants: list[dict[str, Any] | None] = [
        None,
        {},
        {"kid": "a"},
        {"kid": "b"},
        {"kid": "a", "cty": "x"},
        {"cty": "x", "kid": "a"},  # the same items in another order
        {"typ": ""},
        {"typ": "at+jwt"},
        {"alg": "HS512", "kid": "a"},
        {"b64": "true"},
        {"kid": "a", "n": 1},  # not all str: the general path
    ]
    for _ in range(2):  # the second round finds the first round's encoded headers
        for sort_headers in (True, False):
            for headers in variants:
                same_as_pyjwt(ASCII_CLAIMS, SECRET * 2, SECRET * 2, "HS256", headers, sort_headers)


def test_a_refused_header_is_refused_every_time_and_before_the_key(kernel: ModuleType) -> None:
    for _ in range(2):
        with pytest.raises(jwtmint.InvalidHeaderError):
            jwtmint.encode(ASCII_CLAIMS, SECRET, headers={"kid": "a", "crit": "exp"})
        with pytest.raises(jwtmint.InvalidHeaderError):  # the header's error, not the key's
            jwtmint.encode(ASCII_CLAIMS, "short", headers={"kid": "a", "crit": "exp"})
    with pytest.raises(jwtmint.InvalidKeyError):
        jwtmint.encode(ASCII_CLAIMS, "short", headers={"kid": "a"})
    with pytest.raises(jwtmint.InvalidPayloadError):  # the claims' error before the others
        jwtmint.encode({"iss": 1}, "short", algorithm="XX", headers={"crit": "exp"})


def test_a_headers_dict_changed_by_another_thread_never_mixes_two_headers(
    kernel: ModuleType,
) -> None:
    import sys
    import threading

    shared = {"kid": "k0"}
    stop = threading.Event()

    def rotate() -> None:
        flip = 0
        while not stop.is_set():
            flip ^= 1
            shared["kid"] = f"k{flip}"

    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads as often as the interpreter can
    rotator = threading.Thread(target=rotate)
    rotator.start()
    kept: list[tuple[tuple[Any, ...], bytes]] = []
    try:
        for _ in range(300):
            _jws._prepared.clear()  # every call encodes its header afresh
            token = jwtmint.encode(ASCII_CLAIMS, SECRET, headers=shared)
            assert jwt.get_unverified_header(token)["kid"] in ("k0", "k1")
            kept += ((slot, entry[1]) for slot, entry in _jws._prepared.items())
    finally:
        stop.set()
        rotator.join(timeout=10)
        sys.setswitchinterval(interval)
    # each encoded header kept is the header of the items it is kept under
    for slot, segment in kept:
        header = json.loads(base64.urlsafe_b64decode(segment + b"=" * (-len(segment) % 4)))
        assert header["kid"] == dict(zip(slot[4::2], slot[5::2], strict=True))["kid"], slot
    for kid in ("k0", "k1"):
        token = jwtmint.encode(ASCII_CLAIMS, SECRET, headers={"kid": kid})
        assert jwt.get_unverified_header(token)["kid"] == kid


def test_a_datetime_that_cannot_convert_is_the_first_error(kernel: ModuleType) -> None:
    far = datetime(9999, 12, 31, 23, tzinfo=timezone(timedelta(hours=-5)))
    for algorithm, key in (("XX999", SECRET), ("HS256", "short"), ("HS256", SECRET)):
        with pytest.raises(jwtmint.InvalidClaimsError, match="exp claim") as caught:
            jwtmint.encode({"iss": "c", "exp": far}, key, algorithm=algorithm)
        assert isinstance(caught.value.__cause__, OverflowError)  # utctimetuple()'s, chained


def _circular() -> dict[str, Any]:
    loop: dict[str, Any] = {}
    loop["self"] = loop
    return loop


def _deep_claims(levels: int) -> dict[str, Any]:
    value: Any = 1
    for _ in range(levels):
        value = {"x": value}
    return {"deep": value}


@pytest.mark.parametrize(
    ("claims", "headers", "error"),
    [
        ({"roles": {"a", "b"}}, None, jwtmint.InvalidPayloadError),  # also a TypeError
        ({"loop": _circular()}, None, jwtmint.InvalidClaimsError),
        (_deep_claims(100_000), None, jwtmint.InvalidClaimsError),
        (ASCII_CLAIMS, {"kid": "k", 1: "one"}, jwtmint.InvalidHeaderError),
        (ASCII_CLAIMS, {"kid": "k", "x5c": {b"bytes"}}, jwtmint.InvalidHeaderError),
        (ASCII_CLAIMS, [("kid", "k")], jwtmint.InvalidHeaderError),
    ],
    ids=["set", "circular", "deep", "mixed-header-names", "header-set", "header-list"],
)
def test_claims_and_headers_json_cannot_write_are_jwtmints_errors(
    kernel: ModuleType, claims: Any, headers: Any, error: type[Exception]
) -> None:
    with pytest.raises(error):
        jwtmint.encode(claims, SECRET, headers=headers)


def test_a_json_encoder_instance_is_refused_clearly(kernel: ModuleType) -> None:
    with pytest.raises(jwtmint.InvalidPayloadError, match="must be a class"):
        jwtmint.encode(ASCII_CLAIMS, SECRET, json_encoder=json.JSONEncoder())  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "misplaced", [SECRET, b"a-bytes-secret-of-some-length", 12345, "Tr0ub4dor3pass", "hunter2"]
)
def test_a_key_passed_as_the_algorithm_is_not_shown(kernel: ModuleType, misplaced: Any) -> None:
    with pytest.raises(jwtmint.UnsupportedAlgorithmError) as caught:
        jwtmint.encode(ASCII_CLAIMS, "HS256", algorithm=misplaced)
    assert str(misplaced) not in str(caught.value)
    assert "not shown" in str(caught.value)


@pytest.mark.parametrize("name", ["XX999", "RS257", "ES256K", "HS256K", "Ed448"])
def test_an_unknown_name_that_looks_like_an_algorithm_is_shown(
    kernel: ModuleType, name: str
) -> None:
    with pytest.raises(jwtmint.UnsupportedAlgorithmError, match=repr(name)):
        jwtmint.encode(ASCII_CLAIMS, SECRET * 2, algorithm=name)


@pytest.mark.parametrize("typ", [None, "", "JWT", "at+jwt", "dpop+jwt"])
def test_typ_header(kernel: ModuleType, typ: str | None) -> None:
    token = same_as_pyjwt(PAYLOAD, SECRET, SECRET, "HS256", {"typ": typ})
    header = jwt.get_unverified_header(token)
    if typ:
        assert header["typ"] == typ
    else:
        assert "typ" not in header


class _ExtendedEncoder(json.JSONEncoder):
    def default(self, o: Any) -> Any:
        if isinstance(o, Decimal):
            return str(o)
        if isinstance(o, uuid.UUID):
            return o.hex
        if isinstance(o, set):
            return sorted(o)
        return super().default(o)


@pytest.mark.parametrize("sort_headers", [True, False])
def test_json_encoder_is_used_like_pyjwt(kernel: ModuleType, sort_headers: bool) -> None:
    request_id = uuid.UUID("12345678-1234-5678-1234-567812345678")
    payload = {"amount": Decimal("12.30"), "id": request_id, "roles": {"b", "a"}, "n": 1.5}
    headers = {"kid": "k1", "trace": request_id}
    token = same_as_pyjwt(
        payload, SECRET, SECRET, "HS256", headers, sort_headers, json_encoder=_ExtendedEncoder
    )
    claims = jwt.decode(token, SECRET, algorithms=["HS256"])
    assert claims == {"amount": "12.30", "id": request_id.hex, "roles": ["a", "b"], "n": 1.5}
    assert jwt.get_unverified_header(token)["trace"] == request_id.hex
    with pytest.raises(TypeError):
        jwtmint.encode(payload, SECRET)


def test_datetime_time_claims_are_converted_like_pyjwt(kernel: ModuleType) -> None:
    aware = datetime(2030, 1, 2, 3, 4, 5, 678_900, tzinfo=timezone.utc)
    plus5 = datetime(2030, 1, 2, 8, 4, 5, tzinfo=timezone(timedelta(hours=5)))
    naive = datetime(2029, 12, 31, 23, 59, 59)
    payload = {"exp": aware, "nbf": plus5, "iat": naive, "other": 1}
    token = same_as_pyjwt(payload, SECRET, SECRET, "HS256")
    claims = json.loads(base64.urlsafe_b64decode(segments(token)[1] + "=="))
    assert claims == {
        "exp": int(aware.timestamp()),
        "nbf": int(aware.timestamp()),  # the same instant, microseconds dropped
        "iat": int(naive.replace(tzinfo=timezone.utc).timestamp()),
        "other": 1,
    }


def test_payload_and_headers_are_not_mutated(kernel: ModuleType) -> None:
    expiry = datetime(2030, 1, 1, tzinfo=timezone.utc)
    payload: dict[str, Any] = {"exp": expiry, "nested": {"a": [1, 2]}, "iss": "me"}
    headers: dict[str, Any] = {"kid": "k", "b64": True, "typ": None}
    before_payload, before_headers = copy.deepcopy(payload), copy.deepcopy(headers)
    token = same_as_pyjwt(payload, SECRET, SECRET, "HS256", headers)
    assert payload == before_payload
    assert payload["exp"] is expiry
    assert headers == before_headers
    assert jwt.get_unverified_header(token) == {"alg": "HS256", "kid": "k"}


def test_default_algorithm_is_hs256(kernel: ModuleType) -> None:
    token = jwtmint.encode(PAYLOAD, SECRET)
    assert token == jwt.encode(PAYLOAD, SECRET)
    assert jwt.get_unverified_header(token) == {"alg": "HS256", "typ": "JWT"}
    assert jwtmint.encode(PAYLOAD, SECRET.encode(), headers={"kid": "x"}) == jwt.encode(
        PAYLOAD, SECRET.encode(), headers={"kid": "x"}
    )


def test_a_signing_key_brings_its_algorithm(kernel: ModuleType) -> None:
    key = signing_key("ES384")
    for token in (jwtmint.encode(PAYLOAD, key), jwtmint.encode(PAYLOAD, key, algorithm=None)):
        assert jwt.get_unverified_header(token)["alg"] == "ES384"
        assert jwt.decode(token, verification_key(key), algorithms=["ES384"]) == PAYLOAD


def test_headers_alg_wins_over_the_algorithm_argument(kernel: ModuleType) -> None:
    secret = signing_key("HS512").key
    assert isinstance(secret, bytes)
    token = same_as_pyjwt(PAYLOAD, secret, secret, "HS256", {"alg": "HS512"})
    assert jwt.get_unverified_header(token)["alg"] == "HS512"
    jwt.decode(token, secret, algorithms=["HS512"])

    rsa_key = signing_key("RS256")
    token = jwtmint.encode(PAYLOAD, rsa_key, algorithm="RS256", headers={"alg": "PS256"})
    assert jwt.get_unverified_header(token)["alg"] == "PS256"
    jwt.decode(token, verification_key(rsa_key), algorithms=["PS256"])


def test_a_mapping_that_is_not_a_dict_is_accepted(kernel: ModuleType) -> None:
    token = jwtmint.encode(MappingProxyType(PAYLOAD), SECRET)
    assert token == jwt.encode(dict(PAYLOAD), SECRET)


@pytest.mark.parametrize("algorithm", ["ES256", "ES384", "ES512", "PS256", "PS384", "PS512"])
def test_randomised_algorithms_verify_and_match_pyjwt_segments(
    kernel: ModuleType, algorithm: str
) -> None:
    key = signing_key(algorithm)
    payload = {**PAYLOAD, "big": 2**80, "f": 1e-7, "u": "😀"}
    headers = {"kid": key.kid, "x": [1, None]}
    ours = jwtmint.encode(payload, key.key, algorithm=algorithm, headers=headers)
    theirs = jwt.encode(payload, key.key, algorithm=algorithm, headers=headers)
    assert segments(ours)[:2] == segments(theirs)[:2]
    assert len(ours) == len(theirs)
    assert jwt.decode(ours, verification_key(key), algorithms=[algorithm]) == payload
    pem = private_pem(key.key, serialization.PrivateFormat.PKCS8).decode()
    assert segments(jwtmint.encode(payload, pem, algorithm, headers))[:2] == segments(ours)[:2]


# --------------------------------------------------------------------------- errors


@pytest.mark.parametrize("payload", [[("sub", "x")], "sub=x", None, b"{}", 5], ids=repr)
def test_non_mapping_payload_is_refused(kernel: ModuleType, payload: Any) -> None:
    with pytest.raises(jwtmint.InvalidPayloadError) as info:
        jwtmint.encode(payload, SECRET)
    assert isinstance(info.value, TypeError)
    assert isinstance(info.value, jwtmint.JwtMintError)


@pytest.mark.parametrize("issuer", [1, None, ["me"], b"me", {"a": 1}], ids=repr)
def test_non_str_issuer_is_refused(kernel: ModuleType, issuer: Any) -> None:
    with pytest.raises(jwtmint.InvalidPayloadError):
        jwtmint.encode({"iss": issuer}, SECRET)


@pytest.mark.parametrize("algorithm", ["none", "None", "NONE", None], ids=repr)
def test_none_algorithm_is_refused(kernel: ModuleType, algorithm: str | None) -> None:
    with pytest.raises(jwtmint.UnsupportedAlgorithmError):
        jwtmint.encode(PAYLOAD, SECRET, algorithm=algorithm)
    with pytest.raises(jwtmint.UnsupportedAlgorithmError):
        jwtmint.encode(PAYLOAD, SECRET, headers={"alg": algorithm or "none"})


@pytest.mark.parametrize("algorithm", ["HS1024", "hs256", "RS1", "ES256K", "Ed25519X", ""])
def test_unknown_algorithm_is_refused(kernel: ModuleType, algorithm: str) -> None:
    with pytest.raises(jwtmint.UnsupportedAlgorithmError):
        jwtmint.encode(PAYLOAD, SECRET, algorithm=algorithm)


@pytest.mark.parametrize(
    ("algorithm", "secret"),
    [
        ("HS256", b"short"),
        ("HS256", "x" * 31),
        ("HS256", b"\x00" * 31),
        ("HS256", ""),
        ("HS256", b""),
        ("HS384", "y" * 47),
        ("HS512", b"z" * 63),
    ],
    ids=repr,
)
def test_short_hmac_secret_is_refused(kernel: ModuleType, algorithm: str, secret: Any) -> None:
    # PyJWT only warns (InsecureKeyLengthWarning); we refuse on purpose (RFC 7518 §3.2).
    with pytest.raises(jwtmint.InvalidKeyError):
        jwtmint.encode(PAYLOAD, secret, algorithm=algorithm)


def _public_key_texts() -> dict[str, str | bytes]:
    rsa_obj = signing_key("RS256").key
    ec_obj = signing_key("ES256").key
    ed_obj = signing_key("EdDSA").key
    ssh = ed_obj.public_key().public_bytes(  # type: ignore[union-attr]
        serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH
    )
    return {
        "rsa-public-pem-str": public_pem(rsa_obj).decode(),
        "rsa-public-pem-bytes": public_pem(rsa_obj),
        "ec-public-pem": public_pem(ec_obj).decode(),
        "ssh-public-key": ssh.decode(),
        "rsa-private-pem": private_pem(rsa_obj, serialization.PrivateFormat.PKCS8).decode(),
    }


_JWK_IN_ARRAY = '[{"kty": "oct", "k": "' + "a" * 40 + '"}]'


@pytest.mark.parametrize(
    "secret",
    [
        "\ufeff" + _JWK_IN_ARRAY,
        b"\xef\xbb\xbf" + _JWK_IN_ARRAY.encode(),
        _JWK_IN_ARRAY.encode("utf-16"),
        _JWK_IN_ARRAY.encode("utf-32-le"),
        '[{"kty": 1}, ' + "1" * 5000 + ', "' + "a" * 40 + '"]',
        '{"a":' * DEEP + "1" + "}" * DEEP,  # an object nested beyond the parser
        "[" * DEEP + '"kty": "' + "a" * 40,
        "[" * DEEP + '"k\\u0074y": "' + "a" * 40,  # the name escaped
        ("[" * DEEP + "a" * 40).encode("utf-16-le"),
    ],
    ids=[
        "bom",
        "bom-bytes",
        "utf-16",
        "utf-32",
        "long-integer",
        "deep-object",
        "deep-kty",
        "deep-escaped-kty",
        "deep-utf-16",
    ],
)
def test_a_jwk_however_encoded_is_refused_as_a_secret(kernel: ModuleType, secret: Any) -> None:
    # as PyJWT reads a key: json.loads on the bytes (BOMs, UTF-16/32, integers left unread)
    with pytest.raises(jwtmint.InvalidKeyError, match="looks like a key"):
        jwtmint.encode(PAYLOAD, secret, algorithm="HS256")


@pytest.mark.parametrize("space", [b"\x0b", b"\x0c"])
def test_a_jwk_after_whitespace_json_does_not_skip_is_still_a_jwk(
    kernel: ModuleType, space: bytes
) -> None:
    with pytest.raises(jwtmint.InvalidKeyError, match="looks like a key"):
        jwtmint.encode(PAYLOAD, space + _JWK_IN_ARRAY.encode(), algorithm="HS256")


def test_json_nested_beyond_the_parser_is_a_key_error(kernel: ModuleType) -> None:
    with pytest.raises(jwtmint.InvalidKeyError):
        jwtmint.load_key(b'{"a":' * 100_000)
    with pytest.raises(jwtmint.InvalidKeyError):
        jwtmint.encode(PAYLOAD, '{"a":' * 100_000, algorithm="RS256")


def test_json_nested_beyond_the_parser_is_never_a_secret(kernel: ModuleType) -> None:
    secret = "[" * DEEP + "a" * 40  # PyJWT signs with it (no "kty" in sight); jwtmint is strict
    assert jwt.encode(PAYLOAD, secret)
    with pytest.raises(jwtmint.InvalidKeyError, match="looks like a key"):
        jwtmint.encode(PAYLOAD, secret)


@pytest.mark.parametrize(
    "name",
    [
        "rsa-public-pem-str",
        "rsa-public-pem-bytes",
        "ec-public-pem",
        "ssh-public-key",
        "rsa-private-pem",
    ],
)
def test_hmac_with_a_pem_key_is_refused(kernel: ModuleType, name: str) -> None:
    # The algorithm-confusion trap: a public key used as an HMAC secret.
    key = _public_key_texts()[name]
    with pytest.raises(jwtmint.InvalidKeyError):
        jwtmint.encode(PAYLOAD, key, algorithm="HS256")
    with pytest.raises(jwt.InvalidKeyError):
        jwt.encode(PAYLOAD, key, algorithm="HS256")


@pytest.mark.parametrize("kid", [1, None, b"k", ["k"], {"k": 1}], ids=repr)
def test_non_str_kid_is_refused(kernel: ModuleType, kid: Any) -> None:
    with pytest.raises(jwtmint.InvalidHeaderError):
        jwtmint.encode(PAYLOAD, SECRET, headers={"kid": kid})


def test_unencoded_payload_is_refused(kernel: ModuleType) -> None:
    with pytest.raises(jwtmint.InvalidHeaderError):
        jwtmint.encode(PAYLOAD, SECRET, headers={"b64": False})


def test_key_that_does_not_fit_the_algorithm_is_refused(kernel: ModuleType) -> None:
    with pytest.raises(jwtmint.InvalidKeyError):
        jwtmint.encode(PAYLOAD, signing_key("ES256").key, algorithm="RS256")
    with pytest.raises(jwtmint.InvalidKeyError):
        jwtmint.encode(PAYLOAD, signing_key("ES256").key, algorithm="ES512")


# --------------------------------------------------------------------------- key caching


def _counting(monkeypatch: pytest.MonkeyPatch) -> list[object]:
    calls: list[object] = []
    real: Callable[..., jwtmint.SigningKey] = jwtmint.load_key

    def counting_load_key(source: Any, **options: Any) -> jwtmint.SigningKey:
        calls.append(source)
        return real(source, **options)

    monkeypatch.setattr("jwtmint._jws.load_key", counting_load_key)
    return calls


def test_a_pem_passed_repeatedly_is_parsed_once(
    kernel: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    private = ec.generate_private_key(ec.SECP256R1())
    pem = private_pem(private, serialization.PrivateFormat.PKCS8).decode()
    calls = _counting(monkeypatch)
    before = _jws._cached_signer.cache_info()
    for i in range(5):
        same_text = "".join(list(pem))  # an equal str, not the same object
        token = jwtmint.encode({"i": i}, same_text, algorithm="ES256")
        assert jwt.decode(token, private.public_key(), algorithms=["ES256"]) == {"i": i}
    after = _jws._cached_signer.cache_info()
    assert after.misses - before.misses == 1  # the later calls find it prepared
    assert len(calls) == 1


def test_an_unhashable_jwk_dict_still_works(
    kernel: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    private = ed25519.Ed25519PrivateKey.generate()
    raw = private.private_bytes(
        serialization.Encoding.Raw,
        serialization.PrivateFormat.Raw,
        serialization.NoEncryption(),
    )
    public = private.public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw
    )
    jwk = {"kty": "OKP", "crv": "Ed25519", "d": b64(raw), "x": b64(public)}
    calls = _counting(monkeypatch)
    for _ in range(2):
        assert same_as_pyjwt(PAYLOAD, jwk, private, "EdDSA")
    assert len(calls) == 2  # not cached, but loaded every time

    secret = signing_key("HS256").key
    assert isinstance(secret, bytes)
    oct_jwk = {"kty": "oct", "k": b64(secret)}
    assert jwtmint.encode(PAYLOAD, oct_jwk) == jwt.encode(PAYLOAD, secret)


def test_a_bytearray_secret_is_parsed_once_by_value(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = _counting_secrets(monkeypatch)
    secret = bytearray(b"a bytearray secret of 32+ bytes!!")
    tokens = {jwtmint.encode({"i": 1}, secret) for _ in range(3)}
    assert len(tokens) == 1 and len(calls) == 1
    secret[0:1] = b"A"  # mutable: the next call signs with what it holds now
    assert jwtmint.encode({"i": 1}, secret) not in tokens and len(calls) == 2


def test_each_key_object_signs_for_itself_however_many_come_and_go(kernel: ModuleType) -> None:
    # prepared calls are kept by the key object's identity, 256 at most: more keys than that,
    # each dropped after use (so an id could come back), each token verifies with its own key
    for i in range(300):
        private = ed25519.Ed25519PrivateKey.generate()
        token = jwtmint.encode({"i": i}, private, algorithm="EdDSA", headers={"kid": f"k{i % 7}"})
        public = private.public_key()
        _jws._by_identity.clear()  # the signer cache lets go of it: only what encode keeps
        del private  # the allocator hands its address to the next key, unless it is held
        assert jwt.decode(token, public, algorithms=["EdDSA"]) == {"i": i}
        assert jwt.get_unverified_header(token)["kid"] == f"k{i % 7}"


class _KeptEd25519Key(ed25519.Ed25519PrivateKey):
    """An Ed25519 key that signs but never exports itself."""

    def __init__(self, inner: ed25519.Ed25519PrivateKey) -> None:
        self._inner = inner

    def sign(self, data: bytes | bytearray | memoryview) -> bytes:
        return self._inner.sign(data)

    def public_key(self) -> ed25519.Ed25519PublicKey:
        return self._inner.public_key()

    def private_bytes(self, *args: Any, **kwargs: Any) -> bytes:
        raise NotImplementedError("this key never leaves its module")

    def private_bytes_raw(self) -> bytes:
        raise NotImplementedError("this key never leaves its module")

    def __copy__(self) -> _KeptEd25519Key:
        return self

    def __deepcopy__(self, memo: Any) -> _KeptEd25519Key:
        return self


@pytest.mark.parametrize("algorithm", ["ES256", "EdDSA"])
def test_a_key_object_of_another_class_signs_with_its_own_sign(
    kernel: ModuleType, algorithm: str
) -> None:
    # an HSM's key: it signs, but never exports its private value
    private: Any
    if algorithm == "ES256":
        private = ec.generate_private_key(ec.SECP256R1())
        kept: Any = KeptEcKey(private)
    else:
        private = ed25519.Ed25519PrivateKey.generate()
        kept = _KeptEd25519Key(private)
    token = jwtmint.encode(ASCII_CLAIMS, kept, algorithm=algorithm)
    claims = jwt.decode(token, private.public_key(), algorithms=[algorithm], audience="https://idp")
    assert claims == ASCII_CLAIMS


def _counting_secrets(monkeypatch: pytest.MonkeyPatch) -> list[object]:
    calls: list[object] = []
    real = jwtmint.load_secret

    def counting(secret: Any, algorithm: str) -> jwtmint.SigningKey:
        calls.append(secret)
        return real(secret, algorithm)

    monkeypatch.setattr("jwtmint._jws.load_secret", counting)
    _jws.clear_signer_cache()
    return calls
