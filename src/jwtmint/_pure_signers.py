"""The pure-Python twin's signers: HMAC from primed hashlib states, and the slots where the
extension signs Ed25519 with libsodium and ECDSA with OpenSSL directly (None here: the
callers use cryptography instead).

``_speedups.pyx`` defines the same functions; :mod:`jwtmint._pure` re-exports these.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Callable
from typing import Protocol

__all__ = ["PrecomputedEcdsa", "ecdsa_precomputed", "ecdsa_signer", "hmac_signer", "sodium_signer"]

#: HMAC's key pads (RFC 2104) as translation tables: the key XORed in one bytes.translate
_IPAD = bytes(byte ^ 0x36 for byte in range(256))
_OPAD = bytes(byte ^ 0x5C for byte in range(256))


class _HashState(Protocol):
    """A hashlib object: what ``hmac_sign`` copies and feeds."""

    def copy(self) -> _HashState: ...
    def update(self, data: bytes, /) -> None: ...
    def digest(self) -> bytes: ...


def _hmac_sign(inner: _HashState, outer: _HashState, data: bytes) -> bytes:
    """HMAC (RFC 2104) of ``data`` from hash states already fed the key XOR ipad / opad.

    Copying two primed states skips the key schedule that ``hmac.digest``
    redoes on every call (two compression blocks and an EVP setup), work that
    a short signing input would otherwise pay for on every MAC.
    """
    inner_hash = inner.copy()
    inner_hash.update(data)
    outer_hash = outer.copy()
    outer_hash.update(inner_hash.digest())
    return outer_hash.digest()


def _hmac_states(secret: bytes, hash_name: str) -> tuple[_HashState, _HashState]:
    """Hash states primed with the key XOR ipad and XOR opad (RFC 2104 §2)."""
    block = hashlib.new(hash_name).block_size
    if len(secret) > block:
        secret = hashlib.new(hash_name, secret).digest()
    padded = secret.ljust(block, b"\0")
    return hashlib.new(hash_name, padded.translate(_IPAD)), hashlib.new(
        hash_name, padded.translate(_OPAD)
    )


def hmac_signer(secret: bytes, hash_name: str) -> Callable[[bytes], bytes]:
    """A ``sign(data) -> MAC`` callable for HMAC with ``hash_name`` (sha256/384/512) and ``secret``.

    Each call continues from hash states already fed the key XOR ipad and
    XOR opad (RFC 2104 §2), so the key schedule is not redone per MAC.
    """
    inner, outer = _hmac_states(secret, hash_name)
    return functools.partial(_hmac_sign, inner, outer)


def sodium_signer(secret: bytes) -> Callable[[bytes], bytes] | None:
    """Ed25519 signing with libsodium from PyNaCl's cffi module, or None without it.

    ``secret`` is libsodium's 64-byte secret key (seed || public key). Each
    call is one ``crypto_sign``, with the GIL released while it signs.
    """
    try:
        from nacl._sodium import ffi, lib  # type: ignore[import-not-found]
    except ImportError:
        return None
    if len(secret) != 64:
        raise ValueError("an Ed25519 secret key for libsodium has 64 bytes")
    new, buffer, c_sign, null = ffi.new, ffi.buffer, lib.crypto_sign, ffi.NULL

    def sign_direct(data: bytes) -> bytes:
        signed = new("unsigned char[]", len(data) + 64)
        if c_sign(signed, null, data, len(data), secret) != 0:
            raise RuntimeError("libsodium crypto_sign failed")
        return buffer(signed, 64)[:]  # type: ignore[no-any-return]

    return sign_direct


def ecdsa_signer(sec1_der: bytes, bits: int) -> Callable[[bytes], bytes] | None:
    """An ECDSA ``sign(data) -> DER`` callable on OpenSSL directly, or None where there is none.

    ``sec1_der`` is the private key as SEC1 DER; ``bits`` is the hash size
    (256, 384, 512). None when this build has no such path (it needs the
    compiled extension and OpenSSL): the caller signs through cryptography.
    """
    return None


class PrecomputedEcdsa(Protocol):
    """What ``ecdsa_precomputed`` returns in the compiled kernel (``_EcdsaPrecomputed``)."""

    #: Called with the signer when its store falls below ``low_water``.
    on_low: Callable[[PrecomputedEcdsa], object] | None
    releases_gil: bool

    def __call__(self, data: bytes, /) -> bytes: ...
    def sign_many(self, inputs: list[bytes], /) -> list[bytes]: ...
    def fill(self, n: int = -1, /) -> int: ...
    def clear(self) -> int: ...
    def close(self) -> int: ...
    @property
    def closed(self) -> bool: ...
    @property
    def depth(self) -> int: ...
    @property
    def low_water(self) -> int: ...
    @property
    def available(self) -> int: ...
    @property
    def precomputed(self) -> int: ...
    @property
    def direct(self) -> int: ...
    @property
    def made(self) -> int: ...
    @property
    def discarded(self) -> int: ...


def ecdsa_precomputed(
    sec1_der: bytes, bits: int, depth: int, low_water: int
) -> PrecomputedEcdsa | None:
    """An ECDSA signer with a store of precomputed (k^-1, r) pairs, or None where there is none.

    Called like ``ecdsa_signer``'s (``sign(data) -> DER``, same output). The
    store holds up to ``depth`` pairs and starts empty: ``fill()`` it, or set
    ``on_low`` to a refiller's wake, called when fewer than ``low_water`` remain.
    None where this build has no such path (it needs the compiled extension
    and OpenSSL; the nonce arithmetic stays in OpenSSL's constant-time code):
    the caller signs through cryptography.
    """
    return None
