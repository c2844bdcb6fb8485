"""Every JWS algorithm signs what cryptography's own verify (or Python's hmac) accepts.

The signer returns DER for ECDSA (the kernels convert it to R||S), so ECDSA signatures are
verified as DER here, and once more after a round trip through fixed-width R||S.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import hmac

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)

import jwtmint
from jwtmint import InvalidKeyError, SigningKey, UnsupportedAlgorithmError, get_algorithm
from jwtmint._algorithms import (
    ALGORITHMS,
    HMAC_ALGORITHMS,
    MIN_RSA_BITS,
    Algorithm,
    default_algorithm_for,
    hmac_sign,
    hmac_states,
)

from .conftest import ALL_ALGORITHMS, ed448_key, signing_key

MESSAGES = [
    b"",
    b"eyJhbGciOiJFUzI1NiJ9.eyJpc3MiOiJpbnZvaWNlIn0",
    bytes(range(256)) * 40,
]
_HASH_BY_BITS: dict[str, type[hashes.HashAlgorithm]] = {
    "256": hashes.SHA256,
    "384": hashes.SHA384,
    "512": hashes.SHA512,
}
_HASHLIB_BY_BITS = {"256": "sha256", "384": "sha384", "512": "sha512"}
_CURVE_ORDER = {
    "P-256": 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551,
    "P-384": int(
        "FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFC7634D81F4372DDF581A0DB248B0A77A"
        "ECEC196ACCC52973",
        16,
    ),
    "P-521": int(
        "01FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF"
        "A51868783BF2F966B7FCC0148F709A5D03BB5C9B8899C47AEBB6FB71E91386409",
        16,
    ),
}


@dataclasses.dataclass(frozen=True)
class RawKey:
    """A KeyLike that is not a SigningKey: check_key must stand on its own."""

    kty: str
    crv: str | None
    key: object


def key_for(name: str) -> SigningKey:
    """conftest's cached key for an algorithm; "Ed448" for the EdDSA key on Ed448."""
    return ed448_key() if name == "Ed448" else signing_key(name)


def alg_of(name: str) -> Algorithm:
    return get_algorithm("EdDSA" if name == "Ed448" else name)


def hash_of(name: str) -> hashes.HashAlgorithm:
    return _HASH_BY_BITS[name[2:]]()


@functools.cache
def weak_rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=1024)


# ----------------------------------------------------------------------------- the table


def test_the_table_holds_exactly_the_algorithms_we_sign_with() -> None:
    assert sorted(ALGORITHMS) == sorted(ALL_ALGORITHMS)
    assert {"HS256", "HS384", "HS512"} == HMAC_ALGORITHMS
    assert MIN_RSA_BITS == 2048
    assert jwtmint.ALGORITHMS is ALGORITHMS


def test_the_table_is_read_only() -> None:
    """A caller cannot add "none" back, or swap what a name signs with, for the process."""
    with pytest.raises(TypeError):
        jwtmint.ALGORITHMS["none"] = ALGORITHMS["HS256"]  # type: ignore[index]
    with pytest.raises(TypeError):
        del jwtmint.ALGORITHMS["ES256"]  # type: ignore[attr-defined]
    assert sorted(ALGORITHMS) == sorted(ALL_ALGORITHMS)


@pytest.mark.parametrize(
    ("name", "kty", "hash_size", "curve", "ec_size"),
    [
        ("RS256", "RSA", 32, None, 0),
        ("RS384", "RSA", 48, None, 0),
        ("RS512", "RSA", 64, None, 0),
        ("PS256", "RSA", 32, None, 0),
        ("PS384", "RSA", 48, None, 0),
        ("PS512", "RSA", 64, None, 0),
        ("ES256", "EC", 32, "P-256", 32),
        ("ES384", "EC", 48, "P-384", 48),
        ("ES512", "EC", 64, "P-521", 66),
        ("EdDSA", "OKP", 0, None, 0),
        ("HS256", "oct", 32, None, 0),
        ("HS384", "oct", 48, None, 0),
        ("HS512", "oct", 64, None, 0),
    ],
)
def test_algorithm_properties(
    name: str, kty: str, hash_size: int, curve: str | None, ec_size: int
) -> None:
    alg = get_algorithm(name)
    assert alg is ALGORITHMS[name]
    assert (alg.name, alg.kty, alg.hash_size, alg.curve, alg.ec_size) == (
        name,
        kty,
        hash_size,
        curve,
        ec_size,
    )


@pytest.mark.parametrize(
    ("kty", "crv", "expected"),
    [
        ("RSA", None, "RS256"),
        ("EC", "P-256", "ES256"),
        ("EC", "P-384", "ES384"),
        ("EC", "P-521", "ES512"),
        ("OKP", "Ed25519", "EdDSA"),
        ("OKP", "Ed448", "EdDSA"),
        ("oct", None, "HS256"),
    ],
)
def test_default_algorithm_for(kty: str, crv: str | None, expected: str) -> None:
    assert default_algorithm_for(kty, crv) == expected


# ----------------------------------------------------------------------------- get_algorithm


@pytest.mark.parametrize("name", ["none", "None", "NONE", "nOnE"])
def test_none_is_refused(name: str) -> None:
    with pytest.raises(UnsupportedAlgorithmError, match=r"'none' makes unsigned tokens.*ES256"):
        get_algorithm(name)
    assert name not in ALGORITHMS


@pytest.mark.parametrize("name", ["hs256", "Rs256", "eddsa", "ES256K", "HS1", "RSA1_5", " RS256"])
def test_names_are_case_sensitive_and_closed(name: str) -> None:
    with pytest.raises(UnsupportedAlgorithmError, match=r"unknown algorithm .*choose one of"):
        get_algorithm(name)


@pytest.mark.parametrize("name", [None, 256, b"RS256", ("RS256",)])
def test_non_str_names(name: object) -> None:
    with pytest.raises(UnsupportedAlgorithmError, match=r"unknown algorithm"):
        get_algorithm(name)


# ----------------------------------------------------------------------------- signatures


def _verify(name: str, key: SigningKey, message: bytes, signature: bytes) -> None:
    """Verify with cryptography (or hmac) directly; raises InvalidSignature when wrong."""
    family = name[:2]
    obj = key.key
    if family == "HS":
        assert isinstance(obj, bytes)
        expected = hmac.new(obj, message, _HASHLIB_BY_BITS[name[2:]]).digest()
        if not hmac.compare_digest(signature, expected):
            raise InvalidSignature
    elif family == "RS":
        assert isinstance(obj, rsa.RSAPrivateKey)
        obj.public_key().verify(signature, message, padding.PKCS1v15(), hash_of(name))
    elif family == "PS":
        assert isinstance(obj, rsa.RSAPrivateKey)
        # RFC 7518 §3.5: the salt is as long as the hash; verify with exactly that length
        pss = padding.PSS(mgf=padding.MGF1(hash_of(name)), salt_length=hash_of(name).digest_size)
        obj.public_key().verify(signature, message, pss, hash_of(name))
    elif family == "ES":
        assert isinstance(obj, ec.EllipticCurvePrivateKey)
        obj.public_key().verify(signature, message, ec.ECDSA(hash_of(name)))
    else:
        assert isinstance(obj, ed25519.Ed25519PrivateKey | ed448.Ed448PrivateKey)
        obj.public_key().verify(signature, message)


SIGNING_CASES = [*ALL_ALGORITHMS, "Ed448"]


@pytest.mark.parametrize("name", SIGNING_CASES)
def test_signatures_verify_independently(name: str) -> None:
    key = key_for(name)
    sign = alg_of(name).signer(key)
    for message in MESSAGES:
        signature = sign(message)
        _verify(name, key, message, signature)
        with pytest.raises(InvalidSignature):
            _verify(name, key, message + b".", signature)
        with pytest.raises(InvalidSignature):
            _verify(name, key, message, bytes([signature[0] ^ 1]) + signature[1:])


@pytest.mark.parametrize("name", ["RS256", "RS384", "RS512"])
def test_rsa_pkcs1v15_equals_cryptography(name: str) -> None:
    key = key_for(name)
    obj = key.key
    assert isinstance(obj, rsa.RSAPrivateKey)
    signature = get_algorithm(name).signer(key)(MESSAGES[1])
    assert len(signature) == obj.key_size // 8
    assert signature == obj.sign(MESSAGES[1], padding.PKCS1v15(), hash_of(name))


@pytest.mark.parametrize("name", ["PS256", "PS384", "PS512"])
def test_rsa_pss_salt_is_the_hash_length_and_random(name: str) -> None:
    key = key_for(name)
    obj = key.key
    assert isinstance(obj, rsa.RSAPrivateKey)
    sign = get_algorithm(name).signer(key)
    first, second = sign(MESSAGES[1]), sign(MESSAGES[1])
    assert first != second  # a fresh salt each time
    for salt_length in (0, hash_of(name).digest_size - 1, hash_of(name).digest_size + 1):
        pss = padding.PSS(mgf=padding.MGF1(hash_of(name)), salt_length=salt_length)
        with pytest.raises(InvalidSignature):
            obj.public_key().verify(first, MESSAGES[1], pss, hash_of(name))


@pytest.mark.parametrize("name", ["ES256", "ES384", "ES512"])
def test_ecdsa_der_and_its_fixed_width_r_s(name: str) -> None:
    key = key_for(name)
    obj = key.key
    assert isinstance(obj, ec.EllipticCurvePrivateKey)
    alg = get_algorithm(name)
    assert key.crv is not None
    order = _CURVE_ORDER[key.crv]
    sign = alg.signer(key)
    for message in MESSAGES:
        der = sign(message)
        r, s = decode_dss_signature(der)  # DER, as the docstring says
        assert 0 < r < order and 0 < s < order
        raw = r.to_bytes(alg.ec_size, "big") + s.to_bytes(alg.ec_size, "big")
        assert len(raw) == {"ES256": 64, "ES384": 96, "ES512": 132}[name]
        back = encode_dss_signature(
            int.from_bytes(raw[: alg.ec_size], "big"), int.from_bytes(raw[alg.ec_size :], "big")
        )
        assert back == der
        obj.public_key().verify(back, message, ec.ECDSA(hash_of(name)))
    # the curve's hash, not another one
    with pytest.raises(InvalidSignature):
        other = hashes.SHA512() if name != "ES512" else hashes.SHA256()
        obj.public_key().verify(sign(MESSAGES[1]), MESSAGES[1], ec.ECDSA(other))


@pytest.mark.parametrize("name", ["EdDSA", "Ed448"])
def test_eddsa_is_deterministic_and_the_right_size(name: str) -> None:
    key = key_for(name)
    obj = key.key
    assert isinstance(obj, ed25519.Ed25519PrivateKey | ed448.Ed448PrivateKey)
    signature = alg_of(name).signer(key)(MESSAGES[1])
    assert signature == obj.sign(MESSAGES[1])
    assert len(signature) == (64 if name == "EdDSA" else 114)
    assert key.crv == ("Ed25519" if name == "EdDSA" else "Ed448")


@pytest.mark.parametrize("name", ["HS256", "HS384", "HS512"])
def test_hmac_equals_pythons_hmac(name: str) -> None:
    key = key_for(name)
    assert isinstance(key.key, bytes)
    sign = get_algorithm(name).signer(key)
    for message in MESSAGES:
        expected = hmac.new(key.key, message, _HASHLIB_BY_BITS[name[2:]]).digest()
        signature = sign(message)
        assert hmac.compare_digest(signature, expected)
        assert len(signature) == get_algorithm(name).hash_size
    assert sign(b"a") != sign(b"b")


def test_hmac_equals_rfc2104_built_from_hashlib() -> None:
    """HMAC (RFC 2104) spelled out with hashlib: independent of the hmac module."""
    secret = bytes(range(32))
    key = SigningKey(secret, "oct", None, "HS256", None)
    message = b"what do ya want for nothing?"
    inner = hashlib.sha256(bytes(b ^ 0x36 for b in secret.ljust(64, b"\0")) + message).digest()
    outer = hashlib.sha256(bytes(b ^ 0x5C for b in secret.ljust(64, b"\0")) + inner).digest()
    assert get_algorithm("HS256").signer(key)(message) == outer


def test_signers_are_bound_to_their_key() -> None:
    """Two keys of one algorithm sign differently; a signer keeps signing with its own key."""
    first = jwtmint.generate_key("ES256")
    second = jwtmint.generate_key("ES256")
    sign_first = get_algorithm("ES256").signer(first)
    sign_second = get_algorithm("ES256").signer(second)
    for _ in range(3):
        signature = sign_first(MESSAGES[1])
        _verify("ES256", first, MESSAGES[1], signature)
        with pytest.raises(InvalidSignature):
            _verify("ES256", second, MESSAGES[1], signature)
        _verify("ES256", second, MESSAGES[1], sign_second(MESSAGES[1]))


@pytest.mark.parametrize("name", ["PS256", "PS512", "RS384"])
def test_one_rsa_key_signs_with_every_rsa_algorithm(name: str) -> None:
    key = signing_key("RS256").with_options(algorithm=name)
    signature = get_algorithm(name).signer(key)(MESSAGES[2])
    _verify(name, key, MESSAGES[2], signature)


# ----------------------------------------------------------------------------- check_key


#: One key of each kind the matrix below tries against every algorithm.
KEY_KINDS = ["RS256", "ES256", "ES384", "ES512", "EdDSA", "Ed448", "HS512"]


def _fits(alg: Algorithm, key: SigningKey) -> bool:
    if alg.kty != key.kty or (alg.curve is not None and alg.curve != key.crv):
        return False
    return not isinstance(key.key, bytes) or len(key.key) >= alg.hash_size


@pytest.mark.parametrize("name", ALL_ALGORITHMS)
@pytest.mark.parametrize("kind", KEY_KINDS)
def test_check_key_matrix(name: str, kind: str) -> None:
    alg = get_algorithm(name)
    key = key_for(kind)
    if _fits(alg, key):
        alg.check_key(key)
        assert callable(alg.signer(key))
        return
    with pytest.raises(InvalidKeyError, match=rf"^{name} needs "):
        alg.check_key(key)
    with pytest.raises(InvalidKeyError, match=rf"^{name} needs "):
        alg.signer(key)


def test_check_key_names_the_default_for_the_key() -> None:
    with pytest.raises(InvalidKeyError, match=r"an EC key.*its default is EdDSA"):
        get_algorithm("ES256").check_key(key_for("EdDSA"))
    with pytest.raises(InvalidKeyError, match=r"a secret, but the key is an RSA key.*RS256"):
        get_algorithm("HS256").check_key(key_for("RS256"))
    with pytest.raises(InvalidKeyError, match=r"on P-521, but the key is on P-256; use ES256"):
        get_algorithm("ES512").check_key(key_for("ES256"))


@pytest.mark.parametrize(("name", "size"), [("HS256", 32), ("HS384", 48), ("HS512", 64)])
def test_check_key_short_secrets(name: str, size: int) -> None:
    alg = get_algorithm(name)
    alg.check_key(RawKey("oct", None, bytes(size)))
    for short in (size - 1, 16, 1, 0):
        with pytest.raises(
            InvalidKeyError, match=rf"at least {size} bytes .*has {short}; .*token_bytes\({size}\)"
        ):
            alg.check_key(RawKey("oct", None, bytes(short)))


@pytest.mark.parametrize("name", ["RS256", "PS256", "RS512"])
def test_check_key_small_rsa(name: str) -> None:
    """The size is checked for any KeyLike, not only for keys that came through load_key."""
    weak = RawKey("RSA", None, weak_rsa_key())
    with pytest.raises(InvalidKeyError, match=r"at least 2048 bits.*has 1024"):
        get_algorithm(name).check_key(weak)
    with pytest.raises(InvalidKeyError, match=r"at least 2048 bits"):
        get_algorithm(name).signer(weak)
    strong = key_for("RS256")
    get_algorithm(name).check_key(RawKey("RSA", None, strong.key))


def test_check_key_unknown_kty() -> None:
    with pytest.raises(InvalidKeyError, match=r"ES256 needs an EC key, but the key is DSA"):
        get_algorithm("ES256").check_key(RawKey("DSA", None, object()))


@pytest.mark.parametrize("hash_name", ["sha256", "sha384", "sha512"])
@pytest.mark.parametrize("key_size", [0, 1, 32, 64, 127, 128, 129, 300])
def test_hmac_sign_equals_stdlib_hmac_for_any_key_size(hash_name: str, key_size: int) -> None:
    # key sizes around the block sizes (64 for SHA-256, 128 for SHA-384/512): longer keys
    # are hashed first (RFC 2104 §2), shorter ones padded
    secret = bytes(range(256))[:key_size] + b"\xff" * max(0, key_size - 256)
    inner, outer = hmac_states(secret, hash_name)
    for message in (b"", b"abc", bytes(range(256)) * 5):
        expected = hmac.new(secret, message, hash_name).digest()
        assert hmac_sign(inner, outer, message) == expected
    # the primed states are copied, never consumed: a second call gives the same MAC
    assert hmac_sign(inner, outer, b"abc") == hmac.new(secret, b"abc", hash_name).digest()


def test_hmac_sign_rfc4231_test_case_2() -> None:
    inner, outer = hmac_states(b"Jefe", "sha256")
    mac = hmac_sign(inner, outer, b"what do ya want for nothing?")
    assert mac.hex() == "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
