"""The extension's chunk signers (``sign_many``): one GIL-free section per chunk of a batch.

``jwtmint._batch`` hands each thread a chunk; the extension's ECDSA (P-256 on
OpenSSL) and Ed25519 (libsodium) signers sign it whole without the GIL. Their
signatures are checked with cryptography, independent of the kernel; Ed25519
is deterministic, so the chunk's signatures equal the one-at-a-time ones.
The pure twin has no such signers (``ecdsa_signer`` and ``sodium_signer``
return None there): batches of it sign one message at a time, as before.
"""

from __future__ import annotations

from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from hypothesis import given, settings
from hypothesis import strategies as st

import jwtmint
from jwtmint import _batch, _kernels

from .conftest import AUDIENCE, CLIENT_ID, signing_key, verify_assertion

speedups = _kernels.load_speedups()
pytestmark = pytest.mark.skipif(speedups is None, reason="the compiled extension is not built")

MESSAGES = [b"", b"a", b"header.payload" * 50, bytes(range(256)) * 8]


def _ecdsa() -> tuple[Any, ec.EllipticCurvePublicKey]:
    key = signing_key("ES256")
    signer = jwtmint.get_algorithm("ES256").signer(key)
    if not hasattr(signer, "sign_many"):
        pytest.skip("this build signs P-256 through cryptography (no OpenSSL headers)")
    assert isinstance(key.key, ec.EllipticCurvePrivateKey)
    return signer, key.key.public_key()


def _ed25519() -> tuple[Any, ed25519.Ed25519PublicKey]:
    key = signing_key("EdDSA")
    signer = jwtmint.get_algorithm("EdDSA").signer(key)
    if not hasattr(signer, "sign_many"):
        pytest.skip("Ed25519 signs through cryptography here (PyNaCl not installed)")
    assert isinstance(key.key, ed25519.Ed25519PrivateKey)
    return signer, key.key.public_key()


def test_ecdsa_chunk_signatures_verify_in_order() -> None:
    signer, public = _ecdsa()
    signatures = signer.sign_many(MESSAGES)
    assert len(signatures) == len(MESSAGES)
    for message, signature in zip(MESSAGES, signatures, strict=True):
        public.verify(signature, message, ec.ECDSA(hashes.SHA256()))
    assert len(set(signatures)) == len(signatures)  # a fresh nonce for each


def test_ed25519_chunk_equals_one_at_a_time() -> None:
    signer, public = _ed25519()
    signatures = signer.sign_many(MESSAGES)
    assert signatures == [signer(message) for message in MESSAGES]
    for message, signature in zip(MESSAGES, signatures, strict=True):
        public.verify(signature, message)


@pytest.mark.parametrize("make", [_ecdsa, _ed25519])
def test_chunks_take_bytes_only_and_may_be_empty(make: Any) -> None:
    signer, _ = make()
    assert signer.sign_many([]) == []
    assert signer.sign_many(()) == []
    with pytest.raises(TypeError, match="sign_many signs bytes, got str"):
        signer.sign_many([b"ok", "text"])
    with pytest.raises(TypeError, match="got bytearray"):
        signer.sign_many([bytearray(b"x")])


@settings(max_examples=60, deadline=None)
@given(st.lists(st.binary(max_size=3000), max_size=12))
def test_any_chunk_verifies(messages: list[bytes]) -> None:
    ecdsa, ec_public = _ecdsa()
    for message, signature in zip(messages, ecdsa.sign_many(messages), strict=True):
        ec_public.verify(signature, message, ec.ECDSA(hashes.SHA256()))
    sodium, ed_public = _ed25519()
    for message, signature in zip(messages, sodium.sign_many(messages), strict=True):
        ed_public.verify(signature, message)


@pytest.mark.parametrize("algorithm", ["ES256", "EdDSA"])
def test_mint_many_signs_through_chunks(algorithm: str) -> None:
    key = signing_key(algorithm)
    signer = jwtmint.AssertionSigner(key, CLIENT_ID, AUDIENCE, precompute=0)
    count = 8 * _batch.cpu_count() + 3  # an uneven split
    tokens = signer.mint_many(count)
    assert len(set(tokens)) == count
    for token in tokens:
        verify_assertion(token, key, algorithm)


class _Sections:
    """A chunk signer that records the sections it is given, and refuses single signatures."""

    releases_gil = True

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.sections: list[int] = []

    def __call__(self, data: bytes) -> bytes:
        raise AssertionError("a chunk signer was asked for one signature at a time")

    def sign_many(self, inputs: list[bytes]) -> list[bytes]:
        self.sections.append(len(inputs))
        signatures: list[bytes] = self.inner.sign_many(inputs)
        return signatures


def test_batches_are_signed_in_sections_of_the_chunk_signer() -> None:
    signer, public = _ecdsa()
    sections = _Sections(signer)
    inputs = [b"message %d" % i for i in range(3 * _batch.SECTION + 5)]
    signatures = _batch.sign_batch(signing_key("ES256"), "ES256", sections, inputs)
    for message, signature in zip(inputs, signatures, strict=True):
        public.verify(signature, message, ec.ECDSA(hashes.SHA256()))
    assert sum(sections.sections) == len(inputs)
    assert max(sections.sections) <= _batch.SECTION and len(sections.sections) >= 4


def test_a_precomputed_signer_signs_a_chunk_from_its_pairs() -> None:
    from .test_precompute import _store

    store = _store(depth=8)
    assert store.fill() == 8
    signatures = store.sign_many([b"a", b"b", b"c"])
    assert len(signatures) == 3 and store.precomputed == 3 and store.available == 5
