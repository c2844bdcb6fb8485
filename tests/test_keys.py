"""load_key from every source, kid and public JWKs against independent code, and refusals.

Real keys throughout: cryptography builds and serialises them, jwcrypto, joserfc and PyJWT
check what jwtmint derives from them. One RSA 2048 key serves the whole module (conftest's
cached RS256 key); EC and EdDSA keys are cheap and made per name once.
"""

from __future__ import annotations

import base64
import copy
import dataclasses
import datetime
import functools
import hashlib
import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jwt as pyjwt
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import NameOID
from joserfc import jwk as joserfc_jwk
from jwcrypto import jwk as jwcrypto_jwk
from jwcrypto import jws as jwcrypto_jws

import jwtmint
from jwtmint import InvalidKeyError, SigningKey, UnsupportedAlgorithmError, load_key
from jwtmint._jwk import jwk_thumbprint
from jwtmint._keytypes import PrivateKey

from .conftest import ALL_ALGORITHMS, signing_key

# ----------------------------------------------------------------------------- key material

EXPECTED_ALG = {
    "RSA": "RS256",
    "P-256": "ES256",
    "P-384": "ES384",
    "P-521": "ES512",
    "Ed25519": "EdDSA",
    "Ed448": "EdDSA",
}
KEY_NAMES = list(EXPECTED_ALG)
EC_NAMES = ["P-256", "P-384", "P-521"]
#: Keys with a traditional (PKCS#1 / SEC1) serialisation.
TRADITIONAL_NAMES = ["RSA", *EC_NAMES]
#: Keys OpenSSH can hold (it has no Ed448).
OPENSSH_NAMES = ["RSA", *EC_NAMES, "Ed25519"]
_CURVES: dict[str, ec.EllipticCurve] = {
    "P-256": ec.SECP256R1(),
    "P-384": ec.SECP384R1(),
    "P-521": ec.SECP521R1(),
}
PRIVATE_JWK_MEMBERS = {"d", "p", "q", "dp", "dq", "qi", "oth", "k"}

#: RFC 7638 §3.1: the example RSA public key and its SHA-256 thumbprint.
RFC7638_JWK = {
    "kty": "RSA",
    "n": (
        "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_B"
        "JECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FD"
        "W2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vM"
        "QFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw"
    ),
    "e": "AQAB",
    "alg": "RS256",
    "kid": "2011-04-29",
}
RFC7638_THUMBPRINT = "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"

SECRET = b"\x00\x01jwtmint-test-secret\xfe\xff-0123456789abcdef"  # 40 bytes, not UTF-8
TEXT_SECRET = "correct horse battery staple, but longer"  # 40 characters


def rsa_key() -> rsa.RSAPrivateKey:
    key = signing_key("RS256").key
    assert isinstance(key, rsa.RSAPrivateKey)
    return key


@functools.cache
def private_key(name: str) -> PrivateKey:
    """One key per name for the module; RSA is conftest's cached 2048-bit key."""
    if name == "RSA":
        return rsa_key()
    if name in _CURVES:
        return ec.generate_private_key(_CURVES[name])
    if name == "Ed25519":
        return ed25519.Ed25519PrivateKey.generate()
    assert name == "Ed448"
    return ed448.Ed448PrivateKey.generate()


@functools.cache
def weak_rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=1024)


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def pkcs8_der(key: PrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def pem(
    key: PrivateKey,
    fmt: serialization.PrivateFormat = serialization.PrivateFormat.PKCS8,
    password: bytes | None = None,
) -> bytes:
    encryption: serialization.KeySerializationEncryption = (
        serialization.BestAvailableEncryption(password)
        if password is not None
        else serialization.NoEncryption()
    )
    return key.private_bytes(serialization.Encoding.PEM, fmt, encryption)


def public_pem(key: PrivateKey) -> bytes:
    return key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def spki_der(key: PrivateKey) -> bytes:
    return key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def private_jwk(key: PrivateKey) -> dict[str, Any]:
    """The private JWK as jwcrypto writes it: an independent serialisation to load."""
    exported: dict[str, Any] = jwcrypto_jwk.JWK.from_pyca(key).export_private(as_dict=True)
    return exported


def assert_same_key(loaded: SigningKey, original: PrivateKey) -> None:
    assert not isinstance(loaded.key, bytes)
    assert pkcs8_der(loaded.key) == pkcs8_der(original)


def certificate(
    key: PrivateKey,
    common_name: str = "invoice client",
    issuer_key: PrivateKey | None = None,
    issuer_name: str | None = None,
) -> x509.Certificate:
    """A certificate for ``key``: self-signed, or issued by ``issuer_key``."""
    signer = issuer_key if issuer_key is not None else key
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    issuer = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer_name or common_name)])
    not_before = datetime.datetime(2025, 1, 1, tzinfo=datetime.timezone.utc)
    hash_algorithm = (
        None
        if isinstance(signer, ed25519.Ed25519PrivateKey | ed448.Ed448PrivateKey)
        else hashes.SHA256()
    )
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_before + datetime.timedelta(days=3650))
        .sign(signer, hash_algorithm)
    )


def cert_pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def x5t_s256(cert: x509.Certificate) -> str:
    return b64url(hashlib.sha256(cert.public_bytes(serialization.Encoding.DER)).digest())


def compact_jws(key: SigningKey, payload: dict[str, Any]) -> str:
    """A compact JWS built here (not by jwtmint._jws) with the key's signer and R||S for ECDSA."""
    header = {"alg": key.algorithm, "kid": key.kid}
    signing_input = b64url(json.dumps(header).encode()) + "." + b64url(json.dumps(payload).encode())
    signature = jwtmint.get_algorithm(key.algorithm).signer(key)(signing_input.encode())
    if isinstance(key.key, ec.EllipticCurvePrivateKey):
        width = (key.key.curve.key_size + 7) // 8
        r, s = decode_dss_signature(signature)
        signature = r.to_bytes(width, "big") + s.to_bytes(width, "big")
    return signing_input + "." + b64url(signature)


# ----------------------------------------------------------------------------- PEM


@pytest.mark.parametrize("name", KEY_NAMES)
def test_pem_pkcs8(name: str) -> None:
    original = private_key(name)
    data = pem(original)
    assert data.startswith(b"-----BEGIN PRIVATE KEY-----")
    for source in (data, data.decode("ascii")):
        loaded = load_key(source)
        assert_same_key(loaded, original)
        assert loaded.algorithm == EXPECTED_ALG[name]
        assert loaded.x5t_s256 is None


@pytest.mark.parametrize("name", TRADITIONAL_NAMES)
def test_pem_traditional_pkcs1_and_sec1(name: str) -> None:
    original = private_key(name)
    data = pem(original, serialization.PrivateFormat.TraditionalOpenSSL)
    label = b"RSA PRIVATE KEY" if name == "RSA" else b"EC PRIVATE KEY"
    assert data.startswith(b"-----BEGIN " + label + b"-----")
    loaded = load_key(data)
    assert_same_key(loaded, original)
    assert loaded.algorithm == EXPECTED_ALG[name]


def _ssh_string(data: bytes) -> bytes:
    return len(data).to_bytes(4, "big") + data


def test_openssh_ecdsa_with_a_compressed_point_is_an_invalid_key_error() -> None:
    # found by the fuzz run: cryptography's OpenSSH loader raised NotImplementedError
    key = ec.generate_private_key(ec.SECP256R1())
    point = key.public_key().public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.CompressedPoint
    )
    public = _ssh_string(b"ecdsa-sha2-nistp256") + _ssh_string(b"nistp256") + _ssh_string(point)
    scalar = key.private_numbers().private_value.to_bytes(33, "big")
    private = bytes(8) + public + _ssh_string(scalar) + _ssh_string(b"comment")
    private += bytes(range(1, 1 + -len(private) % 8))
    blob = b"openssh-key-v1\0" + _ssh_string(b"none") * 2 + _ssh_string(b"")
    blob += (1).to_bytes(4, "big") + _ssh_string(public) + _ssh_string(private)
    pem = (
        b"-----BEGIN OPENSSH PRIVATE KEY-----\n"
        + base64.encodebytes(blob)
        + b"-----END OPENSSH PRIVATE KEY-----\n"
    )
    with pytest.raises(InvalidKeyError, match="compressed point"):
        jwtmint.load_key(pem)


@pytest.mark.parametrize("name", OPENSSH_NAMES)
def test_pem_openssh(name: str) -> None:
    original = private_key(name)
    data = pem(original, serialization.PrivateFormat.OpenSSH)
    assert data.startswith(b"-----BEGIN OPENSSH PRIVATE KEY-----")
    loaded = load_key(data.decode("ascii"))
    assert_same_key(loaded, original)
    assert loaded.algorithm == EXPECTED_ALG[name]


@pytest.mark.parametrize("password", ["s3cret pässword", "s3cret pässword".encode()])
def test_encrypted_pkcs8_pem_with_str_or_bytes_password(password: str | bytes) -> None:
    original = private_key("P-384")
    data = pem(original, password="s3cret pässword".encode())
    assert data.startswith(b"-----BEGIN ENCRYPTED PRIVATE KEY-----")
    assert_same_key(load_key(data, password=password), original)


def test_encrypted_traditional_pem() -> None:
    original = private_key("RSA")
    data = pem(original, serialization.PrivateFormat.TraditionalOpenSSL, b"pw")
    assert b"Proc-Type: 4,ENCRYPTED" in data
    assert_same_key(load_key(data, password="pw"), original)


def test_pem_surrounded_by_text_and_whitespace() -> None:
    original = private_key("P-256")
    data = b"# client key for invoice\n\n" + pem(original) + b"\n\n"
    assert_same_key(load_key(data), original)


# ----------------------------------------------------------------------------- DER


@pytest.mark.parametrize("name", KEY_NAMES)
def test_der_pkcs8(name: str) -> None:
    original = private_key(name)
    loaded = load_key(pkcs8_der(original))
    assert_same_key(loaded, original)
    assert loaded.algorithm == EXPECTED_ALG[name]


@pytest.mark.parametrize("name", TRADITIONAL_NAMES)
def test_der_traditional_pkcs1_and_sec1(name: str) -> None:
    original = private_key(name)
    data = original.private_bytes(
        serialization.Encoding.DER,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )
    assert data != pkcs8_der(original)
    assert_same_key(load_key(data), original)


@pytest.mark.parametrize("password", ["pw", b"pw"])
def test_der_encrypted_pkcs8(password: str | bytes) -> None:
    original = private_key("Ed25519")
    data = original.private_bytes(
        serialization.Encoding.DER,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"pw"),
    )
    assert_same_key(load_key(data, password=password), original)


def test_der_as_bytearray_and_memoryview() -> None:
    original = private_key("P-256")
    data = pkcs8_der(original)
    assert_same_key(load_key(bytearray(data)), original)
    assert_same_key(load_key(memoryview(data)), original)


# ----------------------------------------------------------------------------- JWK


@pytest.mark.parametrize("name", KEY_NAMES)
def test_private_jwk_as_dict_json_text_and_bytes(name: str) -> None:
    original = private_key(name)
    jwk = private_jwk(original)
    text = json.dumps(jwk)
    for source in (jwk, text, text.encode()):
        loaded = load_key(source)
        assert_same_key(loaded, original)
        assert loaded.algorithm == EXPECTED_ALG[name]
        assert loaded.kid == jwcrypto_jwk.JWK.from_pyca(original.public_key()).thumbprint()


def test_jwk_kid_and_alg_members_are_honoured() -> None:
    jwk = {**private_jwk(private_key("RSA")), "kid": "invoice-2026", "alg": "PS384"}
    loaded = load_key(jwk)
    assert (loaded.kid, loaded.algorithm) == ("invoice-2026", "PS384")
    assert load_key(json.dumps(jwk)).kid == "invoice-2026"


def test_explicit_kid_and_algorithm_win_over_jwk_members() -> None:
    jwk = {**private_jwk(private_key("RSA")), "kid": "from-jwk", "alg": "PS384"}
    loaded = load_key(jwk, kid="from-caller", algorithm="RS512")
    assert (loaded.kid, loaded.algorithm) == ("from-caller", "RS512")


def test_jwk_alg_is_checked_against_the_key() -> None:
    jwk = {**private_jwk(private_key("P-256")), "alg": "ES384"}
    with pytest.raises(InvalidKeyError, match=r"ES384 needs an EC key on P-384.*P-256"):
        load_key(jwk)


def test_rsa_jwk_with_only_n_e_d_loads() -> None:
    original = private_key("RSA")
    full = private_jwk(original)
    minimal = {name: full[name] for name in ("kty", "n", "e", "d")}
    loaded = load_key(minimal)
    assert_same_key(loaded, original)
    assert loaded.kid == load_key(full).kid


def test_loading_a_jwk_leaves_the_callers_dict_alone() -> None:
    jwk = {**private_jwk(private_key("P-521")), "kid": "k1", "alg": "ES512"}
    before = copy.deepcopy(jwk)
    load_key(jwk, kid="other")
    assert jwk == before


@pytest.mark.parametrize(
    ("algorithm", "size"), [(None, 32), ("HS256", 32), ("HS384", 48), ("HS512", 64)]
)
def test_oct_jwk(algorithm: str | None, size: int) -> None:
    secret = bytes(range(size))
    jwk = {"kty": "oct", "k": b64url(secret), "kid": "shared-1"}
    if algorithm is not None:
        jwk["alg"] = algorithm
    for source in (jwk, json.dumps(jwk)):
        loaded = load_key(source)
        assert loaded.key == secret
        assert (loaded.kty, loaded.kid) == ("oct", "shared-1")
        assert loaded.algorithm == (algorithm or "HS256")


# ----------------------------------------------------------------------------- PKCS#12 and certs


@pytest.mark.parametrize("name", ["RSA", "P-256", "Ed25519"])
@pytest.mark.parametrize("password", [None, "p12 password"])
def test_pkcs12_bundle(name: str, password: str | None) -> None:
    original = private_key(name)
    cert = certificate(original)
    encryption: serialization.KeySerializationEncryption = (
        serialization.BestAvailableEncryption(password.encode())
        if password is not None
        else serialization.NoEncryption()
    )
    bundle = pkcs12.serialize_key_and_certificates(b"invoice", original, cert, None, encryption)
    loaded = load_key(bundle, password=password)
    assert_same_key(loaded, original)
    assert loaded.algorithm == EXPECTED_ALG[name]
    assert loaded.x5t_s256 == x5t_s256(cert)
    assert loaded.x5t_s256 == b64url(cert.fingerprint(hashes.SHA256()))


def test_pkcs12_wrong_or_missing_password() -> None:
    original = private_key("P-256")
    bundle = pkcs12.serialize_key_and_certificates(
        b"invoice",
        original,
        certificate(original),
        None,
        serialization.BestAvailableEncryption(b"right"),
    )
    for password in ("wrong", None):
        with pytest.raises(InvalidKeyError, match=r"PKCS#12.*password"):
            load_key(bundle, password=password)


def test_pkcs12_without_a_key() -> None:
    cert = certificate(private_key("P-256"))
    bundle = pkcs12.serialize_key_and_certificates(
        b"only a cert", None, cert, None, serialization.NoEncryption()
    )
    with pytest.raises(InvalidKeyError, match="holds no private key"):
        load_key(bundle)


@pytest.mark.parametrize("cert_first", [False, True])
def test_pem_with_key_and_its_certificate(cert_first: bool) -> None:
    original = private_key("P-384")
    cert = certificate(original)
    parts = [pem(original), cert_pem(cert)]
    data = b"".join(reversed(parts) if cert_first else parts)
    loaded = load_key(data)
    assert_same_key(loaded, original)
    assert loaded.x5t_s256 == x5t_s256(cert)


def test_full_chain_pem_names_the_leaf_certificate() -> None:
    """The x5t#S256 is the leaf's, whichever position the leaf has among its issuers."""
    original = private_key("P-256")
    ca_key = private_key("P-384")
    ca = certificate(ca_key, "test CA")
    leaf = certificate(original, "invoice", issuer_key=ca_key, issuer_name="test CA")
    for chain in ([leaf, ca], [ca, leaf]):
        data = pem(original) + b"".join(cert_pem(c) for c in chain)
        assert load_key(data).x5t_s256 == x5t_s256(leaf)


def test_pem_whose_certificate_belongs_to_another_key() -> None:
    data = pem(private_key("P-256")) + cert_pem(certificate(private_key("P-384")))
    with pytest.raises(InvalidKeyError, match=r"certificate.*belongs to its private key"):
        load_key(data)


def test_pem_with_a_corrupt_certificate() -> None:
    cert = cert_pem(certificate(private_key("P-256"))).replace(b"MII", b"MIX", 1)
    with pytest.raises(InvalidKeyError, match=r"CERTIFICATE.*corrupt"):
        load_key(pem(private_key("P-256")) + cert)


# ----------------------------------------------------------------------------- objects, paths


@pytest.mark.parametrize("name", KEY_NAMES)
def test_cryptography_private_key_objects(name: str) -> None:
    original = private_key(name)
    loaded = load_key(original)
    assert loaded.key is original
    assert loaded.algorithm == EXPECTED_ALG[name]
    assert loaded.kty == {"RSA": "RSA", "Ed25519": "OKP", "Ed448": "OKP"}.get(name, "EC")
    assert loaded.crv == (None if name == "RSA" else name)


def test_path_to_pem_der_jwk_and_pkcs12_files(tmp_path: Path) -> None:
    original = private_key("P-256")
    files = {
        "client.pem": pem(original),
        "client.der": pkcs8_der(original),
        "client.jwk": json.dumps(private_jwk(original)).encode(),
        "client.p12": pkcs12.serialize_key_and_certificates(
            b"c", original, certificate(original), None, serialization.NoEncryption()
        ),
    }
    for filename, content in files.items():
        path = tmp_path / filename
        path.write_bytes(content)
        assert_same_key(load_key(path), original)


def test_path_to_encrypted_pem(tmp_path: Path) -> None:
    path = tmp_path / "client.pem"
    path.write_bytes(pem(private_key("RSA"), password=b"pw"))
    loaded = load_key(path, password="pw", kid="file-key")
    assert_same_key(loaded, private_key("RSA"))
    assert loaded.kid == "file-key"


def test_path_to_a_broken_jwk_file_is_an_error_not_a_secret(tmp_path: Path) -> None:
    path = tmp_path / "client.jwk"
    path.write_text('{"kty": "EC", "crv": "P-256", ' + "x" * 40)
    with pytest.raises(InvalidKeyError, match="JWK but is not JSON"):
        load_key(path)


# ----------------------------------------------------------------------------- secrets


def test_secret_bytes_and_str() -> None:
    loaded = load_key(SECRET)
    assert (loaded.key, loaded.kty, loaded.crv, loaded.algorithm) == (SECRET, "oct", None, "HS256")
    text = load_key(TEXT_SECRET)
    assert text.key == TEXT_SECRET.encode("utf-8")
    assert load_key(bytearray(SECRET)).key == SECRET


@pytest.mark.parametrize(
    "secret",
    [
        b"{" + SECRET,
        b'{"not": "a JWK, a secret that is JSON"}',
        b'{"kty": "oct", "k": "unclosed-and-long-enough',
    ],
)
def test_secret_bytes_starting_with_a_brace_stay_secrets(secret: bytes) -> None:
    """Only a JSON object with "kty" is a JWK; other bytes are the secret, as in PyJWT."""
    for algorithm in (None, "HS256"):
        loaded = load_key(secret, algorithm=algorithm)
        assert (loaded.kty, loaded.key) == ("oct", secret)


@pytest.mark.parametrize(("algorithm", "size"), [("HS256", 32), ("HS384", 48), ("HS512", 64)])
def test_secret_of_exactly_the_hash_size_loads(algorithm: str, size: int) -> None:
    secret = bytes(range(1, size + 1))
    loaded = load_key(secret, algorithm=algorithm)
    assert (loaded.key, loaded.algorithm) == (secret, algorithm)


# ----------------------------------------------------------------------------- SigningKey in


def test_signing_key_passes_through_unchanged() -> None:
    key = signing_key("ES256")
    assert load_key(key) is key


def test_signing_key_with_overrides_is_a_checked_copy() -> None:
    key = load_key(private_key("RSA"))
    copied = load_key(key, kid="rotated", algorithm="PS512")
    assert copied is not key
    assert (copied.kid, copied.algorithm) == ("rotated", "PS512")
    assert (key.kid, key.algorithm) == (key.thumbprint(), "RS256")
    assert copied.key is key.key
    with pytest.raises(InvalidKeyError, match="ES256 needs an EC key"):
        load_key(key, algorithm="ES256")


def test_signing_key_is_frozen() -> None:
    key = signing_key("ES256")
    with pytest.raises(dataclasses.FrozenInstanceError):
        key.algorithm = "HS256"  # type: ignore[misc]


def test_signing_key_fields_must_describe_the_key() -> None:
    """Built directly, a SigningKey cannot claim another type or curve than its key."""
    p384 = private_key("P-384")
    with pytest.raises(InvalidKeyError, match="do not describe the key"):
        SigningKey(p384, "EC", "P-256", "ES256", None)
    with pytest.raises(InvalidKeyError, match="do not describe the key"):
        SigningKey(private_key("P-256"), "RSA", None, "RS256", None)
    with pytest.raises(InvalidKeyError, match="do not describe the key"):
        SigningKey(SECRET, "RSA", None, "RS256", None)
    assert SigningKey(p384, "EC", "P-384", "ES384", "k").kid == "k"


@pytest.mark.parametrize(
    "algorithm",
    ALL_ALGORITHMS,
)
def test_generate_key(algorithm: str) -> None:
    key = signing_key(algorithm)  # conftest generates it with jwtmint.generate_key
    assert key.algorithm == algorithm
    assert jwtmint.get_algorithm(algorithm).kty == key.kty
    if key.kty == "oct":
        assert isinstance(key.key, bytes)
        assert len(key.key) == jwtmint.get_algorithm(algorithm).hash_size
        assert key.kid is None
    else:
        assert key.kid == key.thumbprint()


def test_generate_key_takes_a_kid() -> None:
    assert jwtmint.generate_key("HS256", kid="k").kid == "k"
    assert jwtmint.generate_key("ES384", kid="k").kid == "k"


# ----------------------------------------------------------------------------- inference


@pytest.mark.parametrize("name", KEY_NAMES)
def test_algorithm_inferred_from_the_key(name: str) -> None:
    assert load_key(private_key(name)).algorithm == EXPECTED_ALG[name]


def test_algorithm_inferred_for_a_secret() -> None:
    assert load_key(SECRET).algorithm == "HS256"
    assert load_key(bytes(64)).algorithm == "HS256"  # the hash, not the length, decides


# ----------------------------------------------------------------------------- kid, thumbprints


def test_rfc7638_example_thumbprint() -> None:
    assert jwk_thumbprint(RFC7638_JWK) == RFC7638_THUMBPRINT
    # members are chosen, sorted and serialised by the function, not taken as given
    reordered = {"e": RFC7638_JWK["e"], "n": RFC7638_JWK["n"], "kty": "RSA", "use": "sig"}
    assert jwk_thumbprint(reordered) == RFC7638_THUMBPRINT


@pytest.mark.parametrize(
    "jwk",
    [{}, {"kty": "oct", "k": "c2VjcmV0"}, {"kty": "RSA", "e": "AQAB"}, {"kty": "EC", "crv": 1}, []],
)
def test_a_thumbprint_of_no_public_jwk_is_an_invalid_key_error(jwk: Any) -> None:
    with pytest.raises(jwtmint.InvalidKeyError, match="RFC 7638"):
        jwtmint.jwk_thumbprint(jwk)


def test_rfc7638_example_matches_jwcrypto() -> None:
    independent = jwcrypto_jwk.JWK(**RFC7638_JWK).thumbprint()
    assert independent == RFC7638_THUMBPRINT


@pytest.mark.parametrize("name", KEY_NAMES)
def test_default_kid_is_the_rfc7638_thumbprint(name: str) -> None:
    original = private_key(name)
    loaded = load_key(original)
    by_jwcrypto = jwcrypto_jwk.JWK.from_pyca(original.public_key()).thumbprint()
    by_joserfc = joserfc_jwk.import_key(private_jwk(original)).thumbprint()
    assert loaded.kid == by_jwcrypto == by_joserfc
    assert loaded.thumbprint() == loaded.kid
    assert jwk_thumbprint(loaded.public_jwk()) == loaded.kid


def test_thumbprint_keeps_leading_zero_bytes_of_ec_coordinates() -> None:
    """RFC 7518 §6.2.1.2: x and y have the full coordinate width, leading zeros included."""
    for _ in range(5000):  # about 1 in 128 keys has a zero top byte in x or y
        key = ec.generate_private_key(ec.SECP256R1())
        numbers = key.public_key().public_numbers()
        if numbers.x < 1 << 248 or numbers.y < 1 << 248:
            break
    else:
        pytest.fail("no P-256 key with a short coordinate in 5000 tries")
    loaded = load_key(key)
    jwk = loaded.public_jwk()
    assert len(base64.urlsafe_b64decode(jwk["x"] + "==")) == 32
    assert len(base64.urlsafe_b64decode(jwk["y"] + "==")) == 32
    assert loaded.kid == jwcrypto_jwk.JWK.from_pyca(key.public_key()).thumbprint()


def test_hmac_key_has_no_kid_unless_given() -> None:
    assert load_key(SECRET).kid is None
    assert load_key(SECRET, kid="shared-2026").kid == "shared-2026"
    with pytest.raises(InvalidKeyError, match=r"no thumbprint.*kid="):
        load_key(SECRET).thumbprint()


def test_explicit_kid_replaces_the_thumbprint() -> None:
    assert load_key(private_key("Ed25519"), kid="ed-1").kid == "ed-1"


@pytest.mark.parametrize("kid", ["", 42, b"kid"])
def test_kid_must_be_a_non_empty_string(kid: Any) -> None:
    with pytest.raises(InvalidKeyError, match="kid must be a non-empty string"):
        load_key(private_key("P-256"), kid=kid)
    with pytest.raises(InvalidKeyError, match="kid must be a non-empty string"):
        load_key({**private_jwk(private_key("P-256")), "kid": kid})


# ----------------------------------------------------------------------------- public JWK


@pytest.mark.parametrize("name", KEY_NAMES)
def test_public_jwk_has_no_private_members(name: str) -> None:
    original = private_key(name)
    loaded = load_key(original)
    jwk = loaded.public_jwk()
    assert not PRIVATE_JWK_MEMBERS & set(jwk)
    assert (jwk["kid"], jwk["alg"], jwk["use"]) == (loaded.kid, loaded.algorithm, "sig")
    independent = jwcrypto_jwk.JWK.from_pyca(original.public_key()).export_public(as_dict=True)
    assert independent.pop("kid", jwk["kid"]) == jwk["kid"]  # jwcrypto adds the thumbprint
    assert {k: v for k, v in jwk.items() if k not in ("kid", "alg", "use")} == independent


def test_public_jwk_rsa_exponent() -> None:
    assert load_key(private_key("RSA")).public_jwk()["e"] == "AQAB"


@pytest.mark.parametrize("name", KEY_NAMES)
def test_public_jwk_verifies_with_jwcrypto(name: str) -> None:
    loaded = load_key(private_key(name))
    token = compact_jws(loaded, {"sub": "invoice"})
    verifier = jwcrypto_jws.JWS()
    verifier.deserialize(token)
    verifier.verify(jwcrypto_jwk.JWK(**loaded.public_jwk()), alg=loaded.algorithm)
    assert json.loads(verifier.payload) == {"sub": "invoice"}
    tampered = token[: token.rindex(".") - 2] + "xx" + token[token.rindex(".") :]
    verifier = jwcrypto_jws.JWS()
    verifier.deserialize(tampered)
    with pytest.raises(jwcrypto_jws.InvalidJWSSignature):
        verifier.verify(jwcrypto_jwk.JWK(**loaded.public_jwk()), alg=loaded.algorithm)


@pytest.mark.parametrize("name", KEY_NAMES)
def test_public_jwk_verifies_with_pyjwt(name: str) -> None:
    loaded = load_key(private_key(name))
    token = compact_jws(loaded, {"sub": "invoice"})
    public = pyjwt.PyJWK(loaded.public_jwk())
    assert public.key_id == loaded.kid
    claims = pyjwt.decode(token, public.key, algorithms=[loaded.algorithm])
    assert claims == {"sub": "invoice"}


def test_public_jwk_of_an_hmac_key_is_refused() -> None:
    with pytest.raises(InvalidKeyError, match="no public part"):
        load_key(SECRET).public_jwk()


# ----------------------------------------------------------------------------- no secrets shown


def _b64_variants(data: bytes) -> list[str]:
    return [
        base64.b64encode(data).decode().rstrip("="),
        base64.urlsafe_b64encode(data).decode().rstrip("="),
    ]


@pytest.mark.parametrize("name", KEY_NAMES)
def test_repr_and_str_show_no_private_material(name: str) -> None:
    original = private_key(name)
    loaded = load_key(pem(original))
    pem_lines = pem(original).decode().splitlines()[1:-1]
    jwk = private_jwk(original)
    forbidden = [line for line in pem_lines if len(line) > 16]
    forbidden += [jwk[m] for m in PRIVATE_JWK_MEMBERS & set(jwk)]
    forbidden += _b64_variants(pkcs8_der(original))[:1]
    if isinstance(original, rsa.RSAPrivateKey):
        forbidden.append(str(original.private_numbers().d))
    elif isinstance(original, ec.EllipticCurvePrivateKey):
        forbidden.append(str(original.private_numbers().private_value))
        forbidden.append(format(original.private_numbers().private_value, "x"))
    else:
        raw = original.private_bytes(
            serialization.Encoding.Raw,
            serialization.PrivateFormat.Raw,
            serialization.NoEncryption(),
        )
        forbidden += [raw.hex(), *_b64_variants(raw)]
    public_fp = hashlib.sha256(spki_der(original)).hexdigest()[:12]
    for shown in (repr(loaded), str(loaded), f"{loaded}", repr([loaded])):
        assert not [secret for secret in forbidden if secret in shown]
        assert f"fingerprint='{public_fp}'" in shown
    assert loaded.fingerprint == public_fp


@pytest.mark.parametrize("secret", [SECRET, TEXT_SECRET.encode()])
def test_repr_and_str_of_a_secret_show_no_secret(secret: bytes) -> None:
    loaded = load_key(secret)
    forbidden = [repr(secret), secret.hex(), *_b64_variants(secret), secret.decode("latin-1")]
    forbidden += [secret.decode("latin-1")[i : i + 8] for i in range(0, len(secret) - 8, 4)]
    for shown in (repr(loaded), str(loaded)):
        assert not [part for part in forbidden if part in shown]
        assert re.search(r"fingerprint='[0-9a-f]{12}'", shown)
        assert loaded.fingerprint in shown
    assert load_key(secret).fingerprint == loaded.fingerprint
    assert load_key(secret[::-1]).fingerprint != loaded.fingerprint


def test_errors_do_not_echo_the_secret() -> None:
    secret = b"tOo-Short-secret-for-hs512-but-fine-for-hs256"
    with pytest.raises(InvalidKeyError) as caught:
        load_key(secret, algorithm="HS512")
    assert secret.decode() not in str(caught.value)
    assert secret.decode()[:12] not in str(caught.value)


# ----------------------------------------------------------------------------- refusals: alg


@functools.cache
def _none_sites() -> dict[str, Callable[[str], object]]:
    ec_key = private_key("P-256")
    return {
        "get_algorithm": jwtmint.get_algorithm,
        "load_key(secret)": lambda alg: load_key(SECRET, algorithm=alg),
        "load_key(object)": lambda alg: load_key(ec_key, algorithm=alg),
        "load_key(pem)": lambda alg: load_key(pem(ec_key), algorithm=alg),
        "load_key(jwk)": lambda alg: load_key(private_jwk(ec_key), algorithm=alg),
        "jwk alg member": lambda alg: load_key({**private_jwk(ec_key), "alg": alg}),
        "oct jwk alg member": lambda alg: load_key({"kty": "oct", "k": b64url(SECRET), "alg": alg}),
        "load_key(SigningKey)": lambda alg: load_key(load_key(ec_key), algorithm=alg),
        "with_options": lambda alg: load_key(ec_key).with_options(algorithm=alg),
        "generate_key": jwtmint.generate_key,
        "SigningKey()": lambda alg: SigningKey(SECRET, "oct", None, alg, None),
    }


@pytest.mark.parametrize("site", list(_none_sites()))
@pytest.mark.parametrize("alg", ["none", "None", "NONE"])
def test_alg_none_is_refused_everywhere(site: str, alg: str) -> None:
    with pytest.raises(UnsupportedAlgorithmError, match=r"'none'.*refused"):
        _none_sites()[site](alg)


@pytest.mark.parametrize("alg", ["HS1024", "rs256", "ES256K", "RSA-OAEP", ""])
def test_unknown_algorithm_names(alg: str) -> None:
    with pytest.raises(UnsupportedAlgorithmError, match=r"unknown algorithm.*ES256"):
        load_key(SECRET, algorithm=alg)
    with pytest.raises(UnsupportedAlgorithmError, match="unknown algorithm"):
        load_key(private_key("P-256"), algorithm=alg)


@pytest.mark.parametrize("alg", [256, b"HS256", ["HS256"]])
def test_non_str_algorithm(alg: Any) -> None:
    with pytest.raises(UnsupportedAlgorithmError, match="unknown algorithm"):
        load_key(SECRET, algorithm=alg)
    with pytest.raises(UnsupportedAlgorithmError, match="unknown algorithm"):
        jwtmint.get_algorithm(alg)


# ----------------------------------------------------------------------------- refusals: fit


@pytest.mark.parametrize(
    ("name", "algorithm", "message"),
    [
        ("P-384", "ES256", r"ES256 needs an EC key on P-256, but the key is on P-384; use ES384"),
        ("P-256", "ES512", r"ES512 needs an EC key on P-521.*use ES256"),
        ("P-256", "RS256", r"RS256 needs an RSA key, but the key is an EC key.*ES256"),
        ("P-256", "PS256", r"PS256 needs an RSA key"),
        ("RSA", "EdDSA", r"EdDSA needs an Ed25519/Ed448 key, but the key is an RSA key.*RS256"),
        ("RSA", "ES256", r"ES256 needs an EC key, but the key is an RSA key"),
        ("Ed25519", "ES256", r"ES256 needs an EC key"),
        ("Ed448", "RS256", r"RS256 needs an RSA key.*EdDSA"),
        ("P-256", "HS256", r"HS256 needs a secret, but the key is an EC key"),
    ],
)
def test_algorithm_must_fit_the_key(name: str, algorithm: str, message: str) -> None:
    with pytest.raises(InvalidKeyError, match=message):
        load_key(private_key(name), algorithm=algorithm)
    with pytest.raises(InvalidKeyError, match=message):
        load_key(private_key(name)).with_options(algorithm=algorithm)
    if not algorithm.startswith("HS"):  # HS* with a PEM is the confusion trap, tested below
        with pytest.raises(InvalidKeyError, match=message):
            load_key(pem(private_key(name)), algorithm=algorithm)


@pytest.mark.parametrize("algorithm", ["RS256", "ES256", "EdDSA"])
def test_asymmetric_algorithm_with_a_secret(algorithm: str) -> None:
    with pytest.raises(InvalidKeyError, match=f"{algorithm} needs a private key"):
        load_key(SECRET, algorithm=algorithm)


def _ssh_public(key: PrivateKey) -> bytes:
    return key.public_key().public_bytes(
        serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH
    )


@functools.cache
def _confusion_sources() -> dict[str, bytes | str]:
    """Key material that must never become an HMAC secret, as bytes and (where text) str."""
    rsa_private = private_key("RSA")
    cert = certificate(private_key("P-256"))
    sources: dict[str, bytes | str] = {
        "PEM public key": public_pem(rsa_private),
        "PEM PKCS#1 public key": rsa_private.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.PKCS1
        ),
        "indented PEM public key": b"\n  " + public_pem(private_key("P-256")) + b"  \n",
        "SSH RSA public key": _ssh_public(rsa_private),
        "SSH Ed25519 public key": _ssh_public(private_key("Ed25519")),
        "SSH ECDSA public key": _ssh_public(private_key("P-384")),
        "certificate PEM": cert_pem(cert),
        "DER public key": spki_der(rsa_private),
        "DER PKCS#1 public key": rsa_private.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.PKCS1
        ),
        "DER certificate": cert.public_bytes(serialization.Encoding.DER),
        "PEM private key": pem(private_key("P-256")),
        "DER private key": pkcs8_der(private_key("P-256")),
        "DER encrypted private key": private_key("P-256").private_bytes(
            serialization.Encoding.DER,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(b"pw"),
        ),
    }
    for name, data in list(sources.items()):
        if not name.startswith("DER"):
            assert isinstance(data, bytes)
            sources[name + " (str)"] = data.decode("ascii")
    return sources


@pytest.mark.parametrize("source", list(_confusion_sources()))
@pytest.mark.parametrize("algorithm", ["HS256", "HS512"])
def test_hmac_with_key_material_is_the_algorithm_confusion_trap(
    source: str, algorithm: str
) -> None:
    with pytest.raises(InvalidKeyError, match=r"not an HMAC secret.*algorithm-confusion"):
        load_key(_confusion_sources()[source], algorithm=algorithm)


@pytest.mark.parametrize("source", ["PEM public key", "certificate PEM", "DER public key"])
def test_public_key_material_without_an_algorithm_cannot_sign(source: str) -> None:
    with pytest.raises(InvalidKeyError, match="signing needs the private key"):
        load_key(_confusion_sources()[source])


def test_ssh_public_key_without_an_algorithm_cannot_sign() -> None:
    with pytest.raises(InvalidKeyError, match="SSH public key cannot sign"):
        load_key(_confusion_sources()["SSH RSA public key (str)"])


def test_public_jwk_with_hmac_is_refused() -> None:
    public = load_key(private_key("RSA")).public_jwk()
    for source in (public, json.dumps(public), json.dumps(public).encode()):
        with pytest.raises(InvalidKeyError, match="no private member 'd'"):
            load_key(source, algorithm="HS256")


# ----------------------------------------------------------------------------- refusals: weak


@functools.cache
def _weak_rsa_sources() -> dict[str, Any]:
    weak = weak_rsa_key()
    return {
        "object": weak,
        "PKCS#8 PEM": pem(weak),
        "PKCS#1 PEM": pem(weak, serialization.PrivateFormat.TraditionalOpenSSL),
        "DER": pkcs8_der(weak),
        "JWK": private_jwk(weak),
    }


@pytest.mark.parametrize("source", list(_weak_rsa_sources()))
def test_rsa_under_2048_bits_is_refused(source: str) -> None:
    with pytest.raises(InvalidKeyError, match=r"at least 2048 bits.*RFC 7518.*has 1024"):
        load_key(_weak_rsa_sources()[source])
    with pytest.raises(InvalidKeyError, match="at least 2048 bits"):
        load_key(_weak_rsa_sources()[source], algorithm="PS256")


def test_rsa_under_2048_bits_cannot_be_built_directly() -> None:
    with pytest.raises(InvalidKeyError, match="at least 2048 bits"):
        SigningKey(weak_rsa_key(), "RSA", None, "RS256", None)


@pytest.mark.parametrize(("algorithm", "size"), [("HS256", 32), ("HS384", 48), ("HS512", 64)])
def test_hmac_secret_shorter_than_the_hash_is_refused(algorithm: str, size: int) -> None:
    short = bytes(range(1, size))  # one byte short
    with pytest.raises(
        InvalidKeyError, match=rf"at least {size} bytes.*RFC 7518 §3\.2.*{size - 1}"
    ):
        load_key(short, algorithm=algorithm)
    with pytest.raises(InvalidKeyError, match=rf"{algorithm} needs a secret of at least {size}"):
        SigningKey(short, "oct", None, algorithm, None)
    with pytest.raises(InvalidKeyError, match=rf"{algorithm} needs a secret of at least {size}"):
        load_key({"kty": "oct", "k": b64url(short), "alg": algorithm})


def test_short_secret_without_an_algorithm_is_refused_for_hs256() -> None:
    with pytest.raises(InvalidKeyError, match="HS256 needs a secret of at least 32 bytes"):
        load_key("a 31-byte password-like secret")


def test_short_secret_cannot_be_upgraded_to_a_longer_hash() -> None:
    key = load_key(bytes(range(32)))
    with pytest.raises(InvalidKeyError, match="HS384 needs a secret of at least 48 bytes"):
        key.with_options(algorithm="HS384")


@pytest.mark.parametrize("empty", [b"", ""])
def test_empty_secret(empty: str | bytes) -> None:
    with pytest.raises(InvalidKeyError, match="empty"):
        load_key(empty)
    with pytest.raises(InvalidKeyError, match="empty"):
        load_key(empty, algorithm="HS256")


# ----------------------------------------------------------------------------- refusals: corrupt


def _mangled_pems() -> dict[str, bytes]:
    data = pem(private_key("P-256")).decode()
    lines = data.splitlines(keepends=True)
    body = lines[1]
    return {
        "bad base64": "".join([lines[0], body[:10] + "*!*" + body[13:], *lines[2:]]).encode(),
        "missing line": "".join([lines[0], *lines[2:]]).encode(),
        "changed structure": "".join([lines[0], "AAAA" + body[4:], *lines[2:]]).encode(),
    }


@pytest.mark.parametrize("how", list(_mangled_pems()))
def test_corrupt_pem(how: str) -> None:
    data = _mangled_pems()[how]
    with pytest.raises(InvalidKeyError, match=r"could not parse the private key.*corrupt"):
        load_key(data)


def test_truncated_pem_has_no_complete_block() -> None:
    data = pem(private_key("P-256"))
    with pytest.raises(InvalidKeyError, match="no complete PEM block"):
        load_key(data[: len(data) // 2])


def test_corrupt_der() -> None:
    der = bytearray(pkcs8_der(private_key("P-256")))
    der[4:12] = b"\xff" * 8
    with pytest.raises(InvalidKeyError, match="neither a private key nor a PKCS#12 bundle"):
        load_key(bytes(der))


@pytest.mark.parametrize("fmt", ["PKCS8", "TraditionalOpenSSL"])
def test_encrypted_pem_with_the_wrong_password(fmt: str) -> None:
    data = pem(private_key("RSA"), getattr(serialization.PrivateFormat, fmt), b"right")
    with pytest.raises(InvalidKeyError, match="password is wrong") as caught:
        load_key(data, password="hunter2")
    assert "hunter2" not in str(caught.value)


def test_encrypted_der_with_the_wrong_password() -> None:
    data = private_key("P-256").private_bytes(
        serialization.Encoding.DER,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"right"),
    )
    with pytest.raises(InvalidKeyError, match="password is wrong"):
        load_key(data, password=b"wrong")


def test_encrypted_pem_without_a_password() -> None:
    for fmt in (serialization.PrivateFormat.PKCS8, serialization.PrivateFormat.TraditionalOpenSSL):
        with pytest.raises(InvalidKeyError, match="encrypted: pass password="):
            load_key(pem(private_key("P-256"), fmt, b"pw"))
    der = private_key("P-256").private_bytes(
        serialization.Encoding.DER,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"pw"),
    )
    with pytest.raises(InvalidKeyError, match="encrypted: pass password="):
        load_key(der)


@pytest.mark.parametrize("fmt", ["PKCS8", "TraditionalOpenSSL", "OpenSSH", "DER"])
def test_password_for_an_unencrypted_key(fmt: str) -> None:
    key = private_key("P-256")
    data = pkcs8_der(key) if fmt == "DER" else pem(key, getattr(serialization.PrivateFormat, fmt))
    with pytest.raises(InvalidKeyError, match="not encrypted; drop password="):
        load_key(data, password="pw")


# ----------------------------------------------------------------------------- refusals: JWK


@pytest.mark.parametrize("name", KEY_NAMES)
def test_public_jwk_cannot_sign(name: str) -> None:
    public = load_key(private_key(name)).public_jwk()
    with pytest.raises(InvalidKeyError, match=r"no private member 'd'.*public key"):
        load_key(public)


def test_ec_jwk_whose_x_y_do_not_match_d() -> None:
    jwk = private_jwk(private_key("P-256"))
    other = private_jwk(ec.generate_private_key(ec.SECP256R1()))
    for members in (("x", "y"), ("x",), ("y",)):
        mixed = {**jwk, **{m: other[m] for m in members}}
        with pytest.raises(InvalidKeyError, match="x and y do not match its private value d"):
            load_key(mixed)


def test_okp_jwk_whose_x_does_not_match_d() -> None:
    jwk = private_jwk(private_key("Ed25519"))
    other = private_jwk(ed25519.Ed25519PrivateKey.generate())
    with pytest.raises(InvalidKeyError, match="x does not match its private value d"):
        load_key({**jwk, "x": other["x"]})


def test_rsa_jwk_with_inconsistent_members() -> None:
    jwk = private_jwk(private_key("RSA"))
    broken = {**jwk, "dp": jwk["dq"]}
    with pytest.raises(InvalidKeyError, match="malformed or inconsistent"):
        load_key(broken)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"kty": "DSA"}, "unknown JWK kty 'DSA'"),
        ({"crv": "secp256k1"}, "EC curve 'secp256k1' is not supported"),
        ({"d": "AAAA"}, "malformed or inconsistent"),  # zero is no private scalar
        ({"d": "ünïcode"}, "malformed or inconsistent"),
    ],
)
def test_malformed_ec_jwk(change: dict[str, str], message: str) -> None:
    with pytest.raises(InvalidKeyError, match=message):
        load_key({**private_jwk(private_key("P-256")), **change})


def test_jwk_missing_a_member() -> None:
    jwk = private_jwk(private_key("P-384"))
    del jwk["y"]
    with pytest.raises(InvalidKeyError, match="lacks the member 'y'"):
        load_key(jwk)


def test_okp_jwk_on_a_key_agreement_curve() -> None:
    jwk = {**private_jwk(private_key("Ed25519")), "crv": "X25519"}
    with pytest.raises(InvalidKeyError, match="OKP curve 'X25519' cannot sign"):
        load_key(jwk)


def test_jwk_text_that_is_not_json() -> None:
    with pytest.raises(InvalidKeyError, match="starts like a JWK but is not JSON"):
        load_key('{"kty": "EC", ')


# ----------------------------------------------------------------------------- refusals: types


@functools.cache
def _secp256k1_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256K1())


def test_unsupported_ec_curve() -> None:
    key = _secp256k1_key()
    for source in (key, pem(key), pkcs8_der(key)):
        with pytest.raises(InvalidKeyError, match=r"secp256k1 is not a JWS curve.*P-256"):
            load_key(source)


def test_dsa_key_object() -> None:
    key = dsa.generate_private_key(key_size=1024)
    dsa_pem = pem(key)  # type: ignore[arg-type]
    with_cert = dsa_pem + cert_pem(certificate(private_key("P-256")))
    for source in (key, dsa_pem, pkcs8_der(key), with_cert):  # type: ignore[arg-type]
        with pytest.raises(InvalidKeyError, match=r"DSAPrivateKey cannot sign JWTs.*Ed25519"):
            load_key(source)  # type: ignore[arg-type]


@pytest.mark.parametrize("source", [42, 4.2, None, ["key"], object()])
def test_unsupported_source_type(source: Any) -> None:
    with pytest.raises(InvalidKeyError, match=f"cannot load a key from {type(source).__name__}"):
        load_key(source)


def test_missing_file_is_an_os_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        load_key(tmp_path / "absent.pem")


# ----------------------------------------------------------------------------- error classes


@pytest.mark.parametrize("error", [InvalidKeyError, UnsupportedAlgorithmError])
def test_error_classes(error: type[Exception]) -> None:
    assert issubclass(error, jwtmint.JwtMintError)
    assert issubclass(error, ValueError)
    assert not issubclass(InvalidKeyError, UnsupportedAlgorithmError)
    assert not issubclass(UnsupportedAlgorithmError, InvalidKeyError)


def test_raised_errors_are_caught_as_value_error_and_root() -> None:
    with pytest.raises(ValueError):
        load_key(b"")
    with pytest.raises(jwtmint.JwtMintError):
        load_key(SECRET, algorithm="none")
