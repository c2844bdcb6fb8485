"""One format sniffer: what it calls each input, and that load_key and the HMAC guard agree.

The guard (``load_secret``, ``encode`` with HS*) and ``load_key`` both ask
``_keyformat.sniff``; these tests pin the answers for real key material and
check, on generated inputs, that what ``load_key`` would take as a secret is
exactly what the guard lets through.
"""

from __future__ import annotations

import datetime
import functools
import json
from collections.abc import Callable
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import NameOID
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from jwtmint import InvalidKeyError, SigningKey, load_key, load_secret
from jwtmint._keyformat import KEY_MATERIAL, KeyFormat, sniff

from .conftest import signing_key

Format = KeyFormat
_PKCS8 = serialization.PrivateFormat.PKCS8
_PEM = serialization.Encoding.PEM
_DER = serialization.Encoding.DER
_NONE = serialization.NoEncryption()


@functools.cache
def _ec_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


@functools.cache
def _certificate() -> x509.Certificate:
    key = _ec_key()
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "sniff")])
    start = datetime.datetime(2025, 1, 1, tzinfo=datetime.timezone.utc)
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(start)
        .not_valid_after(start + datetime.timedelta(days=30))
        .sign(key, hashes.SHA256())
    )


@functools.cache
def samples() -> dict[str, tuple[bytes, KeyFormat]]:
    """Real inputs of every format, with the format sniff() must name."""
    key = _ec_key()
    rsa_key = signing_key("RS256").key
    assert isinstance(rsa_key, rsa.RSAPrivateKey)
    public = key.public_key()
    pem = key.private_bytes(_PEM, _PKCS8, _NONE)
    cert = _certificate()
    jwk = signing_key("ES256").public_jwk()
    encrypted = serialization.BestAvailableEncryption(b"pw")
    corrupt_der = bytearray(key.private_bytes(_DER, _PKCS8, _NONE))
    corrupt_der[4:12] = b"\xff" * 8
    openssh_pem = key.private_bytes(_PEM, serialization.PrivateFormat.OpenSSH, _NONE)
    return {
        "PKCS#8 PEM": (pem, Format.PEM_PRIVATE),
        "SEC1 PEM": (
            key.private_bytes(_PEM, serialization.PrivateFormat.TraditionalOpenSSL, _NONE),
            Format.PEM_PRIVATE,
        ),
        "encrypted PEM": (key.private_bytes(_PEM, _PKCS8, encrypted), Format.PEM_PRIVATE),
        "OpenSSH PEM": (openssh_pem, Format.PEM_PRIVATE),
        "PEM with text around": (b"# key\n" + pem + b"\n", Format.PEM_PRIVATE),
        "public PEM": (
            public.public_bytes(_PEM, serialization.PublicFormat.SubjectPublicKeyInfo),
            Format.PEM_PUBLIC,
        ),
        "certificate PEM": (cert.public_bytes(_PEM), Format.PEM_PUBLIC),
        "cut-off PEM": (pem[: len(pem) // 2], Format.PEM_PUBLIC),
        "SSH public key": (
            public.public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH),
            Format.OPENSSH,
        ),
        "bare openssh-key-v1 body": (b"openssh-key-v1\x00" + b"\x00" * 40, Format.OPENSSH),
        "PKCS#8 DER": (key.private_bytes(_DER, _PKCS8, _NONE), Format.DER_PRIVATE),
        "PKCS#1 DER": (
            rsa_key.private_bytes(_DER, serialization.PrivateFormat.TraditionalOpenSSL, _NONE),
            Format.DER_PRIVATE,
        ),
        "encrypted DER": (key.private_bytes(_DER, _PKCS8, encrypted), Format.DER_PRIVATE),
        "SPKI DER": (
            public.public_bytes(_DER, serialization.PublicFormat.SubjectPublicKeyInfo),
            Format.DER_PUBLIC,
        ),
        "certificate DER": (cert.public_bytes(_DER), Format.DER_PUBLIC),
        "PKCS#12": (
            pkcs12.serialize_key_and_certificates(b"k", key, cert, None, _NONE),
            Format.PKCS12,
        ),
        "encrypted PKCS#12": (
            pkcs12.serialize_key_and_certificates(b"k", key, cert, None, encrypted),
            Format.PKCS12,
        ),
        "corrupt DER": (bytes(corrupt_der), Format.DER_UNKNOWN),
        "BER indefinite length": (b"\x30\x80" + b"\x01" * 40 + b"\x00\x00", Format.DER_UNKNOWN),
        "JWK": (json.dumps(jwk).encode(), Format.JWK),
        "indented JWK": (b"\n  " + json.dumps(jwk, indent=2).encode(), Format.JWK),
        "JWK Set": (json.dumps({"keys": [jwk]}).encode(), Format.JWK_SET),
        "empty JWK Set": (b'{"keys": []}', Format.JWK_SET),
        "array of JWKs": (json.dumps([jwk]).encode(), Format.JWK_SET),
        "document embedding a JWKS": (
            json.dumps({"issuer": "x", "jwks": {"keys": [jwk]}}).encode(),
            Format.JWK_SET,
        ),
        "JSON without kty": (b'{"keys": "not an array", "k": "v"}', Format.JSON_NOT_JWK),
        "broken JSON": (b'{"kty": "oct", "k": "unclosed', Format.JSON_NOT_JWK),
        "brace then binary": (b"{\xff\xfe" + b"s" * 40, Format.JSON_NOT_JWK),
        "JSON array without kty": (b'["a", "b"]', Format.RAW),
        "secret": (b"correct horse battery staple, but longer", Format.RAW),
        "empty": (b"", Format.RAW),
    }


@pytest.mark.parametrize("name", list(samples()))
def test_sniff_names_each_format(name: str) -> None:
    data, expected = samples()[name]
    assert sniff(data) is expected


@pytest.mark.parametrize(
    "name", [name for name, (_, kind) in samples().items() if kind in KEY_MATERIAL]
)
def test_every_key_material_format_is_refused_as_an_hmac_secret(name: str) -> None:
    data, _ = samples()[name]
    with pytest.raises(InvalidKeyError, match="algorithm-confusion"):
        load_secret(data, "HS256")
    if data.isascii():  # text formats, as a PyJWT-style str secret
        with pytest.raises(InvalidKeyError, match="algorithm-confusion"):
            load_secret(data.decode("ascii"), "HS256")
    if sniff(data) not in (KeyFormat.JWK, KeyFormat.JWK_SET):  # load_key reads those as JWK(S)
        with pytest.raises(InvalidKeyError, match="algorithm-confusion"):
            load_key(data, algorithm="HS256")


@pytest.mark.parametrize("source", [b'{"keys": []}', '{"keys": []}', {"keys": []}])
def test_a_jwk_set_is_named_whatever_its_type(source: bytes | str | dict[str, list[str]]) -> None:
    with pytest.raises(InvalidKeyError, match="this is a JWK Set"):
        load_key(source)


@pytest.mark.parametrize("source", ['{"kid": "k1", "d": "AAAA"}', {"kid": "k1", "d": "AAAA"}])
def test_json_without_kty_is_not_a_jwk(source: str | dict[str, str]) -> None:
    with pytest.raises(InvalidKeyError, match=r"not a JWK.*'kty'.*RFC 7517"):
        load_key(source)


def test_a_jwk_file_that_is_not_utf8_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "client.jwk"
    path.write_bytes(b'{"kty": "oct", "k": "\xff\xfe"}')
    with pytest.raises(InvalidKeyError, match=r"JWK but is not JSON.*UTF-8"):
        load_key(path)


def test_key_text_with_lone_surrogates_is_an_invalid_key() -> None:
    text = "\ud800" * 40
    with pytest.raises(InvalidKeyError, match="not valid Unicode"):
        load_key(text)
    with pytest.raises(InvalidKeyError, match="not valid Unicode"):
        load_secret(text, "HS256")


# ---------------------------------------------------------------- loader and guard agree

_PREFIXES = [b"", b"{", b"[", b" {", b"-----BEGIN ", b"ssh-ed25519 ", b"openssh-key-v1", b"0"]


@st.composite
def key_inputs(draw: st.DrawFn) -> bytes:
    """Random bytes, bytes that start like a format, DER-shaped bytes, or real key material."""
    choice = draw(st.sampled_from(["random", "prefixed", "der", "sample", "json"]))
    if choice == "sample":
        return samples()[draw(st.sampled_from(sorted(samples())))][0]
    if choice == "json":
        value = draw(
            st.recursive(
                st.none() | st.text(max_size=8) | st.integers(),
                lambda inner: (
                    st.lists(inner, max_size=3)
                    | st.dictionaries(st.sampled_from(["kty", "keys", "k", "x"]), inner, max_size=3)
                ),
                max_leaves=6,
            )
        )
        return json.dumps(value).encode() + b" " * 32
    body = draw(st.binary(min_size=0, max_size=80))
    if choice == "prefixed":
        return draw(st.sampled_from(_PREFIXES)) + body
    if choice == "der" and len(body) < 128:
        return b"\x30" + bytes([len(body)]) + body  # one SEQUENCE spanning the input
    return body


def _taken_as_secret(load: Callable[[], SigningKey]) -> bool:
    """Whether a loader call took the input as the HMAC secret itself."""
    try:
        key = load()
    except InvalidKeyError as exc:
        # the secret path was taken and only the secret's length or emptiness was refused
        return "needs a secret of at least" in str(exc) or "secret is empty" in str(exc)
    return key.kty == "oct"


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=key_inputs())
@example(data=samples()["PKCS#12"][0])
@example(data=samples()["bare openssh-key-v1 body"][0])
@example(data=samples()["empty JWK Set"][0])
@example(data=samples()["BER indefinite length"][0])
def test_load_key_and_the_hmac_guard_agree(data: bytes) -> None:
    """load_key takes bytes as a secret exactly when load_secret lets them through.

    The one exception, by design: DER-shaped bytes no parser takes. load_key, asked
    for a key, refuses them; as an explicit secret they pass, since about one random
    secret in 65,536 starts that way.
    """
    guard_lets_through = _taken_as_secret(lambda: load_secret(data, "HS256"))
    loader_takes_as_secret = _taken_as_secret(lambda: load_key(data))
    kind = sniff(data)
    if kind is KeyFormat.DER_UNKNOWN:
        assert guard_lets_through and not loader_takes_as_secret
        return
    if kind is KeyFormat.JWK:
        # an oct JWK is a secret, but its "k", never the JSON text: the guard refuses the text
        assert not guard_lets_through
        return
    assert guard_lets_through == loader_takes_as_secret
    assert guard_lets_through == (kind not in KEY_MATERIAL)
