"""Ed25519 through libsodium (PyNaCl) and through cryptography: the same signatures."""

from __future__ import annotations

from types import ModuleType

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import jwtmint
from jwtmint import _kernels
from jwtmint._algorithms import ed25519_backend, get_algorithm

from .conftest import AUDIENCE, CLIENT_ID, FIXED_NOW, counter_entropy

nacl = pytest.importorskip("nacl.bindings", reason="PyNaCl is in the test extra")

KEY = jwtmint.load_key(ed25519.Ed25519PrivateKey.generate())


def _signer(backend: str, monkeypatch: pytest.MonkeyPatch) -> jwtmint._algorithms.SignFunction:
    monkeypatch.setenv("JWTMINT_ED25519_BACKEND", backend)
    return get_algorithm("EdDSA").signer(KEY)


def test_libsodium_is_chosen_when_installed_and_can_be_turned_off(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("JWTMINT_ED25519_BACKEND", raising=False)
    assert ed25519_backend() == "libsodium"
    monkeypatch.setenv("JWTMINT_ED25519_BACKEND", "cryptography")
    assert ed25519_backend() == "cryptography"
    # the cryptography backend is the key's own bound method
    assert get_algorithm("EdDSA").signer(KEY) == KEY.key.sign  # type: ignore[union-attr]


@settings(max_examples=200, deadline=None)
@given(message=st.binary(max_size=2048))
def test_both_backends_give_identical_signatures(message: bytes) -> None:
    with pytest.MonkeyPatch.context() as patch:
        sodium = _signer("libsodium", patch)
        openssl = _signer("cryptography", patch)
    signature = sodium(message)
    assert signature == openssl(message)
    assert isinstance(KEY.key, ed25519.Ed25519PrivateKey)
    KEY.key.public_key().verify(signature, message)  # cryptography's own verify


def test_ed448_keys_stay_on_cryptography(monkeypatch: pytest.MonkeyPatch) -> None:
    from cryptography.hazmat.primitives.asymmetric import ed448

    key = jwtmint.load_key(ed448.Ed448PrivateKey.generate())
    monkeypatch.delenv("JWTMINT_ED25519_BACKEND", raising=False)
    sign = get_algorithm("EdDSA").signer(key)
    assert isinstance(key.key, ed448.Ed448PrivateKey)
    key.key.public_key().verify(sign(b"abc"), b"abc")


def test_assertions_are_byte_identical_across_backends(
    kernel: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    def mint(chosen: str) -> str:
        monkeypatch.setenv("JWTMINT_ED25519_BACKEND", chosen)
        signer = jwtmint.AssertionSigner(
            KEY,
            CLIENT_ID,
            AUDIENCE,
            clock=lambda: float(FIXED_NOW),
            entropy=counter_entropy(),
        )
        return signer.mint()

    token = mint("libsodium")
    assert token == mint("cryptography")
    assert isinstance(KEY.key, ed25519.Ed25519PrivateKey)
    claims = jwt.decode(
        token,
        KEY.key.public_key(),
        algorithms=["EdDSA"],
        audience=AUDIENCE,
        issuer=CLIENT_ID,
        options={"verify_exp": False, "verify_iat": False, "verify_nbf": False},
    )
    assert claims["iat"] == FIXED_NOW


def test_mint_many_with_libsodium_gives_distinct_valid_tokens(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("JWTMINT_ED25519_BACKEND", raising=False)
    signer = jwtmint.AssertionSigner(KEY, CLIENT_ID, AUDIENCE)
    tokens = signer.mint_many(64)
    assert len(set(tokens)) == 64
    assert isinstance(KEY.key, ed25519.Ed25519PrivateKey)
    for token in tokens:
        jwt.decode(
            token, KEY.key.public_key(), algorithms=["EdDSA"], audience=AUDIENCE, issuer=CLIENT_ID
        )


def test_the_public_pynacl_binding_is_the_fallback_and_gives_the_same_bytes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import sys

    from jwtmint._algorithms import _sodium_ed25519_signer

    assert isinstance(KEY.key, ed25519.Ed25519PrivateKey)
    direct = _sodium_ed25519_signer(KEY.key, _kernels.kernel)
    monkeypatch.setitem(sys.modules, "nacl._sodium", None)  # import now raises ImportError
    public = _sodium_ed25519_signer(KEY.key, _kernels.kernel)
    assert getattr(public, "__name__", "") == "sign"  # the closure over the public binding
    assert getattr(direct, "__name__", "") != "sign"
    for message in (b"", b"abc", bytes(range(256)) * 4):
        assert direct(message) == public(message) == KEY.key.sign(message)


def _libsodium_secret() -> bytes:
    from cryptography.hazmat.primitives import serialization
    from nacl.bindings import crypto_sign_seed_keypair

    assert isinstance(KEY.key, ed25519.Ed25519PrivateKey)
    seed = KEY.key.private_bytes(
        serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
    )
    return bytes(crypto_sign_seed_keypair(seed)[1])


@settings(
    max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(message=st.binary(max_size=4096))
def test_the_kernels_sodium_signers_match_cryptography(kernel: ModuleType, message: bytes) -> None:
    sign = kernel.sodium_signer(_libsodium_secret())
    assert sign is not None
    assert isinstance(KEY.key, ed25519.Ed25519PrivateKey)
    assert sign(message) == KEY.key.sign(message)


def test_the_c_sodium_signer_keeps_its_key_to_itself() -> None:
    import pickle

    from .conftest import SPEEDUPS

    if SPEEDUPS is None:
        pytest.skip("C extension not built")
    secret = _libsodium_secret()
    sign = SPEEDUPS.sodium_signer(secret)
    assert secret.hex() not in repr(sign) and "Ed25519" in repr(sign)
    with pytest.raises(TypeError):
        pickle.dumps(sign)
    with pytest.raises(ValueError, match="64 bytes"):
        SPEEDUPS.sodium_signer(secret[:32])


@pytest.mark.parametrize(("algorithm", "bits"), [("ES256", 256), ("ES384", 384), ("ES512", 512)])
def test_the_c_ecdsa_signer_verifies_with_cryptography(algorithm: str, bits: int) -> None:
    import pickle

    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    from jwtmint import _pure

    from .conftest import SPEEDUPS, signing_key

    key = signing_key(algorithm)
    assert isinstance(key.key, ec.EllipticCurvePrivateKey)
    sec1 = key.key.private_bytes(
        serialization.Encoding.DER,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )
    assert _pure.ecdsa_signer(sec1, bits) is None  # the twin has no direct path
    if SPEEDUPS is None or SPEEDUPS.HMAC_BACKEND != "openssl":
        pytest.skip("the extension is not built against OpenSSL")
    sign = SPEEDUPS.ecdsa_signer(sec1, bits)
    assert sign is not None and getattr(sign, "releases_gil", False)
    hash_algorithm: hashes.HashAlgorithm = {
        256: hashes.SHA256(),
        384: hashes.SHA384(),
        512: hashes.SHA512(),
    }[bits]
    for message in (b"", b"abc", bytes(range(256)) * 3):
        key.key.public_key().verify(sign(message), message, ec.ECDSA(hash_algorithm))
    assert sign(b"abc") != sign(b"abc")  # a fresh nonce every time
    assert sec1.hex() not in repr(sign)
    with pytest.raises(TypeError):
        pickle.dumps(sign)
    with pytest.raises(ValueError, match="could not load"):
        SPEEDUPS.ecdsa_signer(b"\x30\x03\x02\x01\x01", bits)


def test_the_c_signers_refuse_wrong_curves_and_bare_construction() -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    from .conftest import SPEEDUPS

    if SPEEDUPS is None or SPEEDUPS.HMAC_BACKEND != "openssl":
        pytest.skip("the extension is not built against OpenSSL")
    for curve, bits in ((ec.SECP384R1(), 256), (ec.SECP256R1(), 384), (ec.SECP256K1(), 256)):
        der = ec.generate_private_key(curve).private_bytes(
            serialization.Encoding.DER,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        )
        with pytest.raises(ValueError, match="could not load"):
            SPEEDUPS.ecdsa_signer(der, bits)
    # the classes are reachable as type(signer): made bare, they refuse instead of crashing
    for cls in (SPEEDUPS._EcdsaSigner, SPEEDUPS._SodiumSigner):
        with pytest.raises(RuntimeError):
            cls()(b"x")
