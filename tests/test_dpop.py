"""DPoP proofs (RFC 9449): headers, claims and signatures checked with PyJWT and cryptography,
the htu rule, refusals, RFC 7638 thumbprints, and C/pure kernel parity.

Every expected value (public JWK, thumbprint, ath, htu) is computed here independently;
nothing is checked against jwtmint's own decoder.
"""

from __future__ import annotations

import base64
import hashlib
import json
import math
import re
import time
from collections.abc import Callable
from types import ModuleType
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import jwtmint
from jwtmint import _dpop, _dpop_claims, _entropy, _pure
from jwtmint._dpop_claims import normalize_htu
from jwtmint.errors import ConfigurationError
from tests.conftest import FIXED_NOW, SPEEDUPS, counter_entropy, ed448_key, signing_key

fixture_ok = settings(
    deadline=None, max_examples=60, suppress_health_check=[HealthCheck.function_scoped_fixture]
)

#: (case id, algorithm) -> every key type DPoP signs with; "Ed448" is EdDSA on an Ed448 key
CASES = [
    "ES256", "ES384", "ES512",
    "PS256", "PS384", "PS512",
    "RS256", "RS384", "RS512",
    "EdDSA", "Ed448",
]  # fmt: skip
PRIVATE_MEMBERS = {"d", "p", "q", "dp", "dq", "qi", "k", "oth"}
URL = "https://api.example.com/resource"
TOKEN = "Kz~8mXK1EalYznwH-LC-1fBAo.4Ljp~zsPE_NeO.gxU"


def key_for(case: str) -> jwtmint.SigningKey:
    return ed448_key() if case == "Ed448" else signing_key(case)


def alg_of(case: str) -> str:
    return "EdDSA" if case == "Ed448" else case


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def segments(token: str) -> tuple[dict[str, Any], dict[str, Any], bytes, bytes]:
    """(header, claims, signing input, signature), parsed with the standard library."""
    header, claims, signature = token.split(".")
    return (
        json.loads(unb64(header)),
        json.loads(unb64(claims)),
        f"{header}.{claims}".encode(),
        unb64(signature),
    )


def uint(value: int, size: int | None = None) -> str:
    return b64(value.to_bytes(size or max(1, (value.bit_length() + 7) // 8), "big"))


def expected_jwk(key: Any) -> dict[str, str]:
    """The public JWK of a cryptography private key: RFC 7518 §6.2.1, §6.3.1; RFC 8037 §2."""
    if isinstance(key, rsa.RSAPrivateKey):
        numbers = key.public_key().public_numbers()
        return {"kty": "RSA", "n": uint(numbers.n), "e": uint(numbers.e)}
    if isinstance(key, ec.EllipticCurvePrivateKey):
        point = key.public_key().public_numbers()
        size = (key.curve.key_size + 7) // 8
        crv = {"secp256r1": "P-256", "secp384r1": "P-384", "secp521r1": "P-521"}[key.curve.name]
        return {"kty": "EC", "crv": crv, "x": uint(point.x, size), "y": uint(point.y, size)}
    raw = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    crv = "Ed25519" if isinstance(key, ed25519.Ed25519PrivateKey) else "Ed448"
    return {"kty": "OKP", "crv": crv, "x": b64(raw)}


def rfc7638(jwk: dict[str, str]) -> str:
    """RFC 7638 §3: the required members, sorted, no whitespace, SHA-256, base64url."""
    required = {
        "RSA": ("e", "kty", "n"),
        "EC": ("crv", "kty", "x", "y"),
        "OKP": ("crv", "kty", "x"),
    }
    members = {name: jwk[name] for name in required[jwk["kty"]]}
    text = json.dumps(members, sort_keys=True, separators=(",", ":"))
    return b64(hashlib.sha256(text.encode()).digest())


def verify_with_cryptography(token: str, alg: str) -> dict[str, Any]:
    """Checks the signature with a public key built here from the header's jwk."""
    header, claims, signing_input, signature = segments(token)
    jwk = header["jwk"]
    digest: dict[str, Callable[[], hashes.HashAlgorithm]] = {
        "256": hashes.SHA256,
        "384": hashes.SHA384,
        "512": hashes.SHA512,
    }
    if jwk["kty"] == "RSA":
        public = rsa.RSAPublicNumbers(
            int.from_bytes(unb64(jwk["e"]), "big"), int.from_bytes(unb64(jwk["n"]), "big")
        ).public_key()
        pad: padding.AsymmetricPadding = padding.PKCS1v15()
        if alg.startswith("PS"):
            pad = padding.PSS(padding.MGF1(digest[alg[2:]]()), digest[alg[2:]]().digest_size)
        public.verify(signature, signing_input, pad, digest[alg[2:]]())
    elif jwk["kty"] == "EC":
        curve = {"P-256": ec.SECP256R1(), "P-384": ec.SECP384R1(), "P-521": ec.SECP521R1()}
        x, y = (int.from_bytes(unb64(jwk[name]), "big") for name in ("x", "y"))
        ec_public = ec.EllipticCurvePublicNumbers(x, y, curve[jwk["crv"]]).public_key()
        half = len(signature) // 2
        der = encode_dss_signature(
            int.from_bytes(signature[:half], "big"), int.from_bytes(signature[half:], "big")
        )
        ec_public.verify(der, signing_input, ec.ECDSA(digest[alg[2:]]()))
    else:
        okp = ed25519.Ed25519PublicKey if jwk["crv"] == "Ed25519" else ed448.Ed448PublicKey
        okp.from_public_bytes(unb64(jwk["x"])).verify(signature, signing_input)
    return claims


def verify_with_pyjwt(token: str, alg: str) -> dict[str, Any]:
    """PyJWT with the embedded jwk, as a resource server checks a proof (RFC 9449 §4.3)."""
    header = jwt.get_unverified_header(token)
    claims: dict[str, Any] = jwt.decode(
        token,
        jwt.PyJWK(header["jwk"], algorithm=alg),
        algorithms=[alg],
        options={"require": ["jti", "iat"], "verify_aud": False},
    )
    return claims


# --------------------------------------------------------------------------- signer


@pytest.mark.parametrize("case", CASES)
def test_proof_verifies_with_pyjwt_and_cryptography(kernel: ModuleType, case: str) -> None:
    key, alg = key_for(case), alg_of(case)
    signer = jwtmint.DPoPSigner(key, algorithm=alg)
    assert signer.algorithm == alg
    token = signer.proof("POST", URL + "?q=1#top", access_token=TOKEN, nonce="n-1")
    header, claims, _, _ = segments(token)
    public = expected_jwk(key.key)
    assert header == {"typ": "dpop+jwt", "alg": alg, "jwk": public}
    assert list(header) == ["typ", "alg", "jwk"]
    assert not PRIVATE_MEMBERS & set(header["jwk"])
    assert verify_with_pyjwt(token, alg) == claims
    assert verify_with_cryptography(token, alg) == claims
    assert claims["htm"] == "POST" and claims["htu"] == URL
    assert claims["ath"] == b64(hashlib.sha256(TOKEN.encode("ascii")).digest())
    assert claims["nonce"] == "n-1"
    assert signer.public_jwk == public
    assert signer.thumbprint == rfc7638(header["jwk"]) == rfc7638(public)


@pytest.mark.parametrize("case", CASES)
def test_header_holds_no_private_value(case: str) -> None:
    key = key_for(case)
    token = jwtmint.DPoPSigner(key, algorithm=alg_of(case)).proof("GET", URL)
    header_text = unb64(token.split(".")[0]).decode()
    obj: Any = key.key
    private = obj.private_numbers() if hasattr(obj, "private_numbers") else None
    if isinstance(private, rsa.RSAPrivateNumbers):
        secrets = [private.d, private.p, private.q, private.dmp1, private.dmq1, private.iqmp]
        assert not [value for value in secrets if uint(value) in header_text]
    elif isinstance(private, ec.EllipticCurvePrivateNumbers):
        size = (obj.key_size + 7) // 8
        assert uint(private.private_value, size) not in header_text
    else:
        raw = obj.private_bytes(
            serialization.Encoding.Raw,
            serialization.PrivateFormat.Raw,
            serialization.NoEncryption(),
        )
        assert b64(raw) not in header_text
    assert not re.search(r'"(d|p|q|dp|dq|qi|k|oth)":', header_text)


def test_claims_in_a_fixed_order(kernel: ModuleType) -> None:
    signer = jwtmint.DPoPSigner(signing_key("EdDSA"))
    orders = {
        (None, None): ["jti", "htm", "htu", "iat"],
        (TOKEN, None): ["jti", "htm", "htu", "iat", "ath"],
        (None, "n"): ["jti", "htm", "htu", "iat", "nonce"],
        (TOKEN, "n"): ["jti", "htm", "htu", "iat", "ath", "nonce"],
    }
    for (token, nonce), order in orders.items():
        claims = segments(signer.proof("GET", URL, access_token=token, nonce=nonce))[1]
        assert list(claims) == order


def test_header_segment_is_the_same_for_every_proof(kernel: ModuleType) -> None:
    signer = jwtmint.DPoPSigner(signing_key("ES256"))
    headers = {signer.proof("GET", URL).split(".")[0] for _ in range(5)}
    assert len(headers) == 1


def test_every_proof_has_a_new_128_bit_jti(kernel: ModuleType) -> None:
    signer = jwtmint.DPoPSigner(signing_key("EdDSA"))
    assert signer._entropy is _entropy.default_entropy  # the assertions' source
    jtis = [segments(signer.proof("GET", URL))[1]["jti"] for _ in range(500)]
    assert len(set(jtis)) == 500
    assert all(len(unb64(jti)) == 16 and re.fullmatch(r"[A-Za-z0-9_-]{22}", jti) for jti in jtis)


@pytest.mark.parametrize(("now", "iat"), [(FIXED_NOW + 0.99, FIXED_NOW), (-1.5, -2), (7, 7)])
def test_injected_clock_and_entropy(kernel: ModuleType, now: float, iat: int) -> None:
    draw = counter_entropy()
    signer = jwtmint.DPoPSigner(signing_key("EdDSA"), clock=lambda: now, entropy=draw)
    claims = verify_with_cryptography(signer.proof("GET", URL), "EdDSA")
    assert claims == {"jti": b64((1).to_bytes(16, "big")), "htm": "GET", "htu": URL, "iat": iat}
    assert type(claims["iat"]) is int


def test_ath_for_several_tokens(kernel: ModuleType) -> None:
    signer = jwtmint.DPoPSigner(signing_key("EdDSA"))
    tokens = [f"token-{n}" for n in range(20)] * 2  # more than the signer remembers
    for token in tokens:
        claims = segments(signer.proof("GET", URL, access_token=token))[1]
        assert claims["ath"] == b64(hashlib.sha256(token.encode()).digest())


def test_method_case_is_kept(kernel: ModuleType) -> None:
    signer = jwtmint.DPoPSigner(signing_key("EdDSA"))
    for method in ("get", "GET", "PATCH", "M-SEARCH", "x!#$%&'*+-.^_`|~9"):
        assert segments(signer.proof(method, URL))[1]["htm"] == method


def test_public_jwk_is_a_copy(kernel: ModuleType) -> None:
    signer = jwtmint.DPoPSigner(signing_key("ES256"))
    jwk = signer.public_jwk
    jwk["d"] = "leak"
    jwk["x"] = "changed"
    header = segments(signer.proof("GET", URL))[0]
    assert header["jwk"] == signer.public_jwk == expected_jwk(signing_key("ES256").key)


def test_repr_shows_no_key_material(kernel: ModuleType) -> None:
    key = signing_key("RS256")
    signer = jwtmint.DPoPSigner(key)
    text = repr(signer)
    assert signer.thumbprint in text and "RS256" in text
    assert isinstance(key.key, rsa.RSAPrivateKey)
    numbers = key.key.private_numbers()
    for value in (numbers.d, numbers.p, numbers.q):
        assert uint(value) not in text and str(value) not in text
    assert signer.public_jwk["n"] not in text


def test_the_rfc7638_example_thumbprint() -> None:
    # RFC 7638 §3.1's RSA key: the test's own computation and the one the signer uses agree
    example = {
        "kty": "RSA",
        "n": (
            "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1"
            "L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4"
            "QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbO"
            "pbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csF"
            "Cur-kEgU8awapJzKnqDKgw"
        ),
        "e": "AQAB",
        "alg": "RS256",
        "kid": "2011-04-29",
    }
    expected = "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
    assert rfc7638(example) == expected
    assert jwtmint.jwk_thumbprint(example) == expected


@pytest.mark.parametrize("case", ["ES256", "RS256", "EdDSA", "Ed448"])
def test_thumbprint_is_the_key_thumbprint(case: str) -> None:
    key = key_for(case)
    assert jwtmint.DPoPSigner(key).thumbprint == rfc7638(expected_jwk(key.key)) == key.thumbprint()


def test_algorithm_defaults_to_the_keys() -> None:
    assert jwtmint.DPoPSigner(signing_key("PS256")).algorithm == "PS256"
    assert jwtmint.DPoPSigner(signing_key("ES384")).algorithm == "ES384"
    assert jwtmint.DPoPSigner(signing_key("PS256"), algorithm="RS512").algorithm == "RS512"


def test_keys_load_from_any_source(kernel: ModuleType) -> None:
    key = signing_key("ES256")
    pem = key.key.private_bytes(  # type: ignore[union-attr]
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    for source in (key, key.key, pem, pem.decode()):
        signer = jwtmint.DPoPSigner(source)
        assert signer.thumbprint == key.thumbprint()
        verify_with_pyjwt(signer.proof("GET", URL), "ES256")


def test_signer_is_thread_safe(kernel: ModuleType) -> None:
    from concurrent.futures import ThreadPoolExecutor

    signer = jwtmint.DPoPSigner(signing_key("ES256"))

    def proof(n: int) -> str:
        return signer.proof("GET", f"{URL}/{n % 7}", access_token=f"t{n % 3}", nonce=f"n{n % 5}")

    with ThreadPoolExecutor(4) as pool:
        proofs = list(pool.map(proof, range(200)))
    for n, token in enumerate(proofs):
        claims = verify_with_cryptography(token, "ES256")
        assert claims["htu"] == f"{URL}/{n % 7}" and claims["nonce"] == f"n{n % 5}"
        assert claims["ath"] == b64(hashlib.sha256(f"t{n % 3}".encode()).digest())
    assert len({segments(token)[1]["jti"] for token in proofs}) == 200


# --------------------------------------------------------------------------- refusals


@pytest.mark.parametrize(
    "source",
    [
        b"a 32-byte secret for HMAC signing!",
        "a 32-byte secret for HMAC signing!",
        {"kty": "oct", "k": b64(b"k" * 32)},
        "HS256-generated",
    ],
)
def test_hmac_keys_are_refused(kernel: ModuleType, source: Any) -> None:
    if source == "HS256-generated":
        source = jwtmint.generate_key("HS256")
    with pytest.raises(jwtmint.InvalidKeyError, match="DPoP needs an asymmetric key"):
        jwtmint.DPoPSigner(source)
    with pytest.raises(jwtmint.InvalidKeyError, match="asymmetric"):
        jwtmint.dpop_proof(source, "GET", URL)


@pytest.mark.parametrize("algorithm", ["HS256", "HS512"])
def test_mac_algorithms_are_refused(algorithm: str) -> None:
    with pytest.raises(jwtmint.UnsupportedAlgorithmError, match="asymmetric"):
        jwtmint.DPoPSigner(signing_key("ES256"), algorithm=algorithm)


@pytest.mark.parametrize("algorithm", ["none", "None", "ES256K", "ES384"])
def test_unknown_or_unfit_algorithms_are_refused(algorithm: str) -> None:
    with pytest.raises((jwtmint.UnsupportedAlgorithmError, jwtmint.InvalidKeyError)):
        jwtmint.DPoPSigner(signing_key("ES256"), algorithm=algorithm)


@pytest.mark.parametrize(
    "url",
    [
        "/resource",
        "//api.example.com/resource",
        "api.example.com/resource",
        "",
        "ftp://files.example.com/x",
        "wss://api.example.com/x",
        "urn:example:thing",
        "https:/api.example.com/x",
        "https:api.example.com",
        "https://user:hunter2@api.example.com/x",
        "https://@api.example.com/x",
        "https:///x",
        "https://:443/x",
        "https://api.example.com:99999/x",
        "https://api.example.com:8o/x",
        "https://api.example.com:1:2/x",
        "https://[::1/x",
        "https://[not-ipv6]/x",
        "https://[fe80::1%25eth0]/x",
        "https://[::1]x/y",
        "https://api.example.com/a b",
        "https://api.example.com/caf\u00e9",
        'https://api.example.com/"x"',
        "https://api.example.com/a\\b",
        "https://api.example.com/100%",
        "https://api.example.com/%zz",
        " https://api.example.com/",
        "https://api.example.com/\n",
        "https://api.example.com/x?q=a b",
        "https://api.example.com/x?q=%",
        "https://api.example.com/x#caf\u00e9",
        "https://api.example.com/x%?q",
        "?q=1",
        "#top",
    ],
)
def test_bad_urls_are_refused(kernel: ModuleType, url: str) -> None:
    signer = jwtmint.DPoPSigner(signing_key("EdDSA"))
    with pytest.raises(jwtmint.InvalidClaimsError) as raised:
        signer.proof("GET", url)
    assert "hunter2" not in str(raised.value)


def test_refusal_messages_say_what_to_do() -> None:
    def message(url: str) -> str:
        with pytest.raises(jwtmint.InvalidClaimsError) as raised:
            normalize_htu(url)
        return str(raised.value)

    assert "absolute URL" in message("/x")
    assert "'ftp'" in message("ftp://h/x")
    assert "userinfo" in message("https://u:p@h/x")
    assert "percent-encode" in message("https://h/a b")


@pytest.mark.parametrize("method", ["", "GET ", "G\u00c9T", 'GE"T', "GE\\T", "GET\n", "a/b", "(x)"])
def test_bad_methods_are_refused(kernel: ModuleType, method: str) -> None:
    signer = jwtmint.DPoPSigner(signing_key("EdDSA"))
    with pytest.raises(jwtmint.InvalidClaimsError, match="RFC 9110"):
        signer.proof(method, URL)


@pytest.mark.parametrize("nonce", ["", "a b", 'a"b', "a\\b", "caf\u00e9", "a\tb", "a\x7f"])
def test_bad_nonces_are_refused(kernel: ModuleType, nonce: str) -> None:
    signer = jwtmint.DPoPSigner(signing_key("EdDSA"))
    with pytest.raises(jwtmint.InvalidClaimsError, match="NQCHAR"):
        signer.proof("GET", URL, nonce=nonce)


def test_every_nqchar_nonce_is_accepted(kernel: ModuleType) -> None:
    nonce = "".join(chr(c) for c in range(0x21, 0x7F) if chr(c) not in '"\\')
    signer = jwtmint.DPoPSigner(signing_key("EdDSA"))
    assert verify_with_pyjwt(signer.proof("GET", URL, nonce=nonce), "EdDSA")["nonce"] == nonce


@pytest.mark.parametrize("token", ["", "t\u00f6ken"])
def test_bad_access_tokens_are_refused_without_quoting_them(kernel: ModuleType, token: str) -> None:
    signer = jwtmint.DPoPSigner(signing_key("EdDSA"))
    with pytest.raises(jwtmint.InvalidClaimsError) as raised:
        signer.proof("GET", URL, access_token=token)
    assert not token or token not in str(raised.value)


@pytest.mark.parametrize(
    ("method", "url", "token", "nonce"),
    [
        (b"GET", URL, None, None),
        ("GET", URL.encode(), None, None),
        ("GET", URL, b"t", None),
        # unhashable: refused as values, not by the caches (TypeError: unhashable type)
        (["GET"], URL, None, None),
        ("GET", [URL], None, None),
        ("GET", URL, ["t"], None),
        ("GET", URL, None, ["n"]),
        ("GET", URL, None, {"n": 1}),
    ],
)
def test_values_of_the_wrong_type_are_refused(
    kernel: ModuleType, method: Any, url: Any, token: Any, nonce: Any
) -> None:
    signer = jwtmint.DPoPSigner(signing_key("EdDSA"))
    with pytest.raises(jwtmint.InvalidClaimsError, match="must be a str"):
        signer.proof(method, url, access_token=token, nonce=nonce)
    with pytest.raises(jwtmint.InvalidClaimsError, match="must be a str"):
        signer.proof("GET", URL, nonce=b"n")  # type: ignore[arg-type]


# --------------------------------------------------------------------------- one-offs


def test_dpop_proof_one_off(kernel: ModuleType) -> None:
    key = signing_key("PS256")
    token = jwtmint.dpop_proof(key, "DELETE", URL, access_token=TOKEN, algorithm="PS384")
    claims = verify_with_pyjwt(token, "PS384")
    assert claims["htm"] == "DELETE" and "ath" in claims and "nonce" not in claims
    assert segments(token)[0]["alg"] == "PS384"


def test_dpop_proof_remembers_signers_for_key_objects_and_text(kernel: ModuleType) -> None:
    key = signing_key("ES256")
    assert _dpop._one_off_signer(key, None) is _dpop._one_off_signer(key, None)
    assert _dpop._one_off_signer(key.key, None) is _dpop._one_off_signer(key.key, None)
    assert _dpop._one_off_signer(key, None) is not _dpop._one_off_signer(key, "ES256")
    pem = key.key.private_bytes(  # type: ignore[union-attr]
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    copy = bytes(bytearray(pem))  # equal bytes, another object
    assert copy is not pem
    assert _dpop._one_off_signer(pem, None) is _dpop._one_off_signer(copy, None)
    jwk = {**expected_jwk(key.key), "d": uint(key.key.private_numbers().private_value, 32)}  # type: ignore[union-attr]
    assert _dpop._one_off_signer(jwk, None) is not _dpop._one_off_signer(jwk, None)
    signer = _dpop._one_off_signer(key, None)
    assert signer._kernel is kernel


def test_dpop_proof_one_offs_make_no_precomputed_pairs(kernel: ModuleType) -> None:
    key = jwtmint.generate_key("ES256")
    verify_with_pyjwt(jwtmint.dpop_proof(key, "GET", URL), "ES256")
    signer = _dpop._one_off_signer(key, None)
    assert signer.precomputed is None  # a proof per request keeps its own DPoPSigner
    kept = jwtmint.DPoPSigner(key)
    assert (kept.precomputed is None) == (kernel is _pure)  # the C kernel keeps pairs


# --------------------------------------------------------------------------- htu


@pytest.mark.parametrize(
    ("url", "htu"),
    [
        (URL, URL),
        (URL + "?x=1&y=2#frag", URL),
        (URL + "?", URL),
        (URL + "#", URL),
        (URL + "#a?b", URL),
        ("HTTPS://API.Example.COM/Resource/ID", "https://api.example.com/Resource/ID"),
        ("hTTp://Example.com/x", "http://example.com/x"),
        ("https://api.example.com:443/x", "https://api.example.com/x"),
        ("http://api.example.com:80/x", "http://api.example.com/x"),
        ("http://api.example.com:443/x", "http://api.example.com:443/x"),
        ("https://api.example.com:80/x", "https://api.example.com:80/x"),
        ("https://api.example.com:8443/x", "https://api.example.com:8443/x"),
        ("https://api.example.com:08443/x", "https://api.example.com:8443/x"),
        ("https://api.example.com:00443/x", "https://api.example.com/x"),
        ("https://api.example.com:/x", "https://api.example.com/x"),
        ("https://api.example.com:0/x", "https://api.example.com:0/x"),
        ("https://api.example.com", "https://api.example.com/"),
        ("https://api.example.com:443", "https://api.example.com/"),
        ("https://api.example.com?x=1", "https://api.example.com/"),
        ("https://api.example.com#f", "https://api.example.com/"),
        ("https://[2001:DB8::1]:8443/x", "https://[2001:db8::1]:8443/x"),
        ("https://[::1]/", "https://[::1]/"),
        ("https://[::1]:443", "https://[::1]/"),
        ("http://[::FFFF:127.0.0.1]:80?q", "http://[::ffff:127.0.0.1]/"),
        ("https://127.0.0.1:8080/token", "https://127.0.0.1:8080/token"),
        ("https://api.example.com/a%2Fb/%7e%7E?q=%20", "https://api.example.com/a%2Fb/%7e%7E"),
        ("https://API.Ex%4Dmple.com/", "https://api.ex%4Dmple.com/"),
        ("https://api.example.com/a/../b/./c", "https://api.example.com/a/../b/./c"),
        ("https://api.example.com//x//", "https://api.example.com//x//"),
        ("https://api.example.com/p;v=1/q@r:s", "https://api.example.com/p;v=1/q@r:s"),
        ("https://xn--caf-dma.example/", "https://xn--caf-dma.example/"),
        ("https://api.example.com/x?next=https://u:p@evil/", "https://api.example.com/x"),
    ],
)
def test_htu_normalisation(kernel: ModuleType, url: str, htu: str) -> None:
    assert normalize_htu(url) == htu
    signer = jwtmint.DPoPSigner(signing_key("EdDSA"))
    assert verify_with_cryptography(signer.proof("GET", url), "EdDSA")["htu"] == htu


TCHAR = "!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
PCHAR = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~!$&'()*+,;=:@"
percent = st.from_regex(r"%[0-9A-Fa-f]{2}", fullmatch=True)
segment = st.lists(st.one_of(st.sampled_from(PCHAR), percent), max_size=8).map("".join)
rest = st.lists(st.one_of(st.sampled_from(PCHAR + "/?"), percent), max_size=12).map("".join)
hosts = st.one_of(
    st.from_regex(
        r"[A-Za-z0-9]([A-Za-z0-9-]{0,12}[A-Za-z0-9])?(\.[A-Za-z0-9-]{1,8}){0,3}", fullmatch=True
    ),
    st.ip_addresses(v=4).map(str),
    st.ip_addresses(v=6).map(lambda address: f"[{address}]"),
    st.ip_addresses(v=6).map(lambda address: f"[{address.exploded.upper()}]"),
)


@fixture_ok
@given(
    method=st.text(alphabet=TCHAR, min_size=1, max_size=12),
    scheme=st.sampled_from(["http", "https", "HTTP", "Https", "hTTpS"]),
    host=hosts,
    port=st.one_of(st.none(), st.just(""), st.integers(0, 65535), st.sampled_from([80, 443])),
    path=st.lists(segment, max_size=5).map(lambda parts: "".join("/" + p for p in parts)),
    query=st.one_of(st.none(), rest),
    fragment=st.one_of(st.none(), rest),
)
def test_any_method_and_url(
    kernel: ModuleType,
    method: str,
    scheme: str,
    host: str,
    port: int | str | None,
    path: str,
    query: str | None,
    fragment: str | None,
) -> None:
    url = f"{scheme}://{host}"
    if port is not None:
        url += f":{port}"
    url += path
    if query is not None:
        url += "?" + query
    if fragment is not None:
        url += "#" + fragment
    default = {"http": 80, "https": 443}[scheme.lower()]
    shown_port = f":{port}" if port not in (None, "", default) else ""
    htu = f"{scheme.lower()}://{host.lower()}{shown_port}{path or '/'}"
    signer = jwtmint.DPoPSigner(signing_key("EdDSA"))
    token = signer.proof(method, url, access_token=TOKEN)
    claims = verify_with_pyjwt(token, "EdDSA")
    assert claims == verify_with_cryptography(token, "EdDSA")
    assert claims["htm"] == method
    assert claims["htu"] == htu == normalize_htu(url)


def test_the_htu_cache_keeps_no_query_or_fragment() -> None:
    # one entry per scheme, host and path: a query that differs per request (and may carry
    # credentials) neither misses the cache nor stays in it
    cached = _dpop_claims._htu_target_json
    cached.cache_clear()
    for i in range(100):
        htu = _dpop_claims.htu_json(f"{URL}?page={i}&api_key=SECRET-{i}#frag-{i}")
        assert htu == b'"%s"' % URL.encode()
    info = cached.cache_info()
    assert (info.misses, info.hits, info.currsize) == (1, 99, 1)
    cached.cache_clear()


# --------------------------------------------------------------------------- kernels


def reference_input(
    header: bytes,
    jti: bytes,
    htm: bytes,
    htu: bytes,
    iat: int,
    ath: bytes | None,
    nonce: bytes | None,
) -> bytes:
    claims = b'{"jti":"' + b64(jti).encode() + b'","htm":' + htm + b',"htu":' + htu
    claims += b',"iat":' + str(iat).encode()
    if ath is not None:
        claims += b',"ath":"' + b64(ath).encode() + b'"'
    if nonce is not None:
        claims += b',"nonce":' + nonce
    return header + b"." + b64(claims + b"}").encode()


@fixture_ok
@given(
    header=st.binary(max_size=40),
    jti=st.binary(max_size=40),
    htm=st.binary(max_size=20),
    htu=st.binary(max_size=300),
    iat=st.integers(-(2**63), 2**63 - 1),
    ath=st.one_of(st.none(), st.binary(max_size=64)),
    nonce=st.one_of(st.none(), st.binary(max_size=100)),
)
def test_dpop_signing_input_splices_the_claims(
    kernel: ModuleType,
    header: bytes,
    jti: bytes,
    htm: bytes,
    htu: bytes,
    iat: int,
    ath: bytes | None,
    nonce: bytes | None,
) -> None:
    expected = reference_input(header, jti, htm, htu, iat, ath, nonce)
    assert kernel.dpop_signing_input(header, jti, htm, htu, iat, ath, nonce) == expected
    mac = hashlib.sha256
    proof = kernel.dpop_proof(b"h", jti, htm, htu, iat, ath, nonce, lambda d: mac(d).digest(), 0)
    signing_input = reference_input(b"h", jti, htm, htu, iat, ath, nonce)
    assert proof == f"{signing_input.decode()}.{b64(mac(signing_input).digest())}"


def test_kernel_refusals(kernel: ModuleType) -> None:
    with pytest.raises(OverflowError):
        kernel.dpop_signing_input(b"h", b"j", b'"m"', b'"u"', 2**63, None, None)
    with pytest.raises(TypeError):
        kernel.dpop_signing_input(b"h", b"j", b'"m"', b'"u"', 1, "ath", None)
    with pytest.raises(TypeError, match="sign"):
        kernel.dpop_proof(b"h", b"j", b'"m"', b'"u"', 1, None, None, lambda d: "sig", 0)
    with pytest.raises(UnicodeDecodeError):
        kernel.dpop_proof(b"h\xff", b"j", b'"m"', b'"u"', 1, None, None, lambda d: b"s", 0)
    with pytest.raises(UnicodeDecodeError):
        kernel.dpop_prover(b"h\xff", time_now, bytes, bytes, 0, *[str.encode] * 4)

    def prover(clock: Any = time_now, entropy: Any = lambda: b"j", of: Any = str.encode) -> Any:
        return kernel.dpop_prover(b"h", clock, entropy, lambda d: b"s", 0, of, of, of, of)

    assert prover()("GET", "u", None, None).startswith("h.")
    with pytest.raises(TypeError, match="entropy"):
        prover(entropy=lambda: "jti")("GET", "u", None, None)
    with pytest.raises(TypeError, match="claim functions"):
        prover(of=str)("GET", "u", None, None)
    with pytest.raises(OverflowError):
        prover(clock=lambda: 1e30)("GET", "u", None, None)
    with pytest.raises(OverflowError):
        prover(clock=lambda: 2**64)("GET", "u", None, None)
    with pytest.raises(ValueError):
        prover(clock=lambda: math.nan)("GET", "u", None, None)


def time_now() -> float:
    return FIXED_NOW + 0.5


@pytest.mark.skipif(SPEEDUPS is None, reason="C extension not built")
@pytest.mark.parametrize("case", ["EdDSA", "Ed448", "RS256", "RS512", "ES256", "PS256"])
def test_c_and_pure_proofs_are_byte_identical(case: str) -> None:
    key, alg = key_for(case), alg_of(case)
    signers = [
        jwtmint.DPoPSigner(key, clock=time_now, entropy=counter_entropy(), _kernel=module)
        for module in (SPEEDUPS, _pure)
    ]
    calls = [
        ("GET", URL, None, None),
        ("post", "HTTPS://API.example.com:443?x#y", TOKEN, None),
        ("PUT", "http://[::1]:8080/a%2fb", None, "nonce-1"),
        ("DELETE", URL, TOKEN, "!#$%&'()*+,-./:;<=>?@[]^_`{|}~"),
    ]
    for method, url, token, nonce in calls:
        c, py = (s.proof(method, url, access_token=token, nonce=nonce) for s in signers)
        if alg.startswith(("ES", "PS")):  # randomised signatures: the same signed bytes
            assert c.rpartition(".")[0] == py.rpartition(".")[0]
            assert verify_with_cryptography(c, alg) == verify_with_cryptography(py, alg)
        else:
            assert c == py
        assert verify_with_cryptography(c, alg)["iat"] == FIXED_NOW


def test_es256_proofs_are_signed_from_precomputed_pairs(kernel: ModuleType) -> None:
    signer = jwtmint.DPoPSigner(signing_key("ES256"), precompute=32, _kernel=kernel)
    store = signer.precomputed
    if kernel.IMPLEMENTATION == "py":
        assert store is None  # the pure twin has no OpenSSL: every proof signs whole
        return
    assert store is not None
    deadline = time.monotonic() + 10
    while store.available < 32:  # made at once by the refill thread
        assert time.monotonic() < deadline, "the refill thread never filled the store"
        time.sleep(0.005)
    proofs = [signer.proof("GET", URL, access_token=TOKEN) for _ in range(20)]
    assert store.precomputed == 20 and store.direct == 0
    r_values = set()
    for proof in proofs:
        assert verify_with_pyjwt(proof, "ES256")["htu"] == URL
        r_values.add(base64.urlsafe_b64decode(proof.rpartition(".")[2] + "==")[:32])
    assert len(r_values) == 20  # each pair signed once


@pytest.mark.parametrize("precompute", [0, None])
def test_precomputation_is_off_for_zero_and_for_other_algorithms(precompute: int | None) -> None:
    assert jwtmint.DPoPSigner(signing_key("ES256"), precompute=0).precomputed is None
    assert jwtmint.DPoPSigner(signing_key("EdDSA"), precompute=precompute).precomputed is None
    assert jwtmint.DPoPSigner(signing_key("PS256"), precompute=precompute).precomputed is None


@pytest.mark.parametrize("bad", [-1, 1.5, "8", True])
def test_precompute_must_be_a_count(bad: Any) -> None:
    with pytest.raises(ConfigurationError, match="precompute"):
        jwtmint.DPoPSigner(signing_key("ES256"), precompute=bad)
