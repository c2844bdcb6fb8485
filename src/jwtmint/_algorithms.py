"""JWS signing algorithms (RFC 7518 §3, RFC 8037 §3.1): a name to a sign function.

Each :class:`Algorithm` knows which keys it accepts and builds, once per key,
a ``sign(signing_input) -> bytes`` callable with every cryptography object it
needs already made, so that minting does no lookups. ``none`` does not exist
here: asking for it raises :class:`UnsupportedAlgorithmError`.
"""

from __future__ import annotations

import functools
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType, ModuleType
from typing import Protocol

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, padding, rsa

from . import _kernels
from ._curves import CURVES
from ._keytypes import is_cryptographys_own
from ._pure_signers import _hmac_sign as hmac_sign
from ._pure_signers import _hmac_states as hmac_states
from .errors import InvalidKeyError, UnsupportedAlgorithmError

__all__ = [
    "ALGORITHMS",
    "HMAC_ALGORITHMS",
    "MIN_RSA_BITS",
    "Algorithm",
    "SignFunction",
    "get_algorithm",
    "hmac_sign",
    "hmac_states",
]

SignFunction = Callable[[bytes], bytes]

#: Smallest RSA modulus we sign with (RFC 7518 §3.3 requires 2048 bits).
MIN_RSA_BITS = 2048


class KeyLike(Protocol):
    """What an algorithm needs to know of a loaded key (``jwtmint.SigningKey``)."""

    @property
    def kty(self) -> str: ...
    @property
    def crv(self) -> str | None: ...
    @property
    def key(self) -> object: ...


_HASHES: dict[str, type[hashes.HashAlgorithm]] = {
    "256": hashes.SHA256,
    "384": hashes.SHA384,
    "512": hashes.SHA512,
}


@dataclass(frozen=True)
class Algorithm:
    """One JWS ``alg`` value: the key type it needs and how it signs."""

    name: str
    kty: str
    #: Digest size in bytes of the hash (RSA, ECDSA, HMAC); 0 for EdDSA.
    hash_size: int
    #: Required curve for ECDSA ("P-256", ...); None otherwise.
    curve: str | None = None
    #: Width of R and S for ECDSA: signatures are converted from DER to R||S.
    ec_size: int = 0

    def check_key(self, key: KeyLike) -> None:
        """Raise InvalidKeyError unless ``key`` may sign with this algorithm."""
        if key.kty != self.kty:
            raise InvalidKeyError(
                f"{self.name} needs {_KTY_WORDS[self.kty]}, but the key is "
                f"{_KTY_WORDS.get(key.kty, key.kty)}; load a matching key{_choose_hint(key)}"
            )
        if self.curve is not None and key.crv != self.curve:
            raise InvalidKeyError(
                f"{self.name} needs an EC key on {self.curve}, but the key is on {key.crv}; "
                f"use {_curve_algorithm(key.crv)} for this key"
            )
        if self.kty == "RSA":
            # checked here, not only in load_key: SigningKey can be built directly, and
            # every signer passes through this gate
            bits = getattr(key.key, "key_size", 0)
            if bits < MIN_RSA_BITS:
                raise InvalidKeyError(
                    f"RSA keys must have at least {MIN_RSA_BITS} bits (RFC 7518 §3.3); "
                    f"this one has {bits}: generate a new 2048 or 3072-bit key"
                )
        if self.kty == "oct":
            secret = key.key
            assert isinstance(secret, bytes)
            if len(secret) < self.hash_size:
                raise InvalidKeyError(
                    f"{self.name} needs a secret of at least {self.hash_size} bytes "
                    f"(RFC 7518 §3.2), this one has {len(secret)}; generate one with "
                    f"secrets.token_bytes({self.hash_size})"
                )

    def signer(self, key: KeyLike, *, _kernel: ModuleType | None = None) -> SignFunction:
        """A sign(signing_input) -> signature callable bound to ``key``.

        ``_kernel`` is the kernel module whose C signers to use (the process's
        by default); the benchmarks pass the pure twin to time it alone.
        """
        self.check_key(key)
        kernel = _kernels.kernel if _kernel is None else _kernel
        obj = key.key
        bits = self.name[2:]
        family = self.name[:2]
        if family == "HS":
            assert isinstance(obj, bytes)
            hmac_sign: SignFunction = kernel.hmac_signer(obj, "sha" + bits)
            return hmac_sign
        if family == "RS":
            assert isinstance(obj, rsa.RSAPrivateKey)
            return functools.partial(
                obj.sign, padding=padding.PKCS1v15(), algorithm=_HASHES[bits]()
            )
        if family == "PS":
            assert isinstance(obj, rsa.RSAPrivateKey)
            pss = padding.PSS(mgf=padding.MGF1(_HASHES[bits]()), salt_length=self.hash_size)
            return functools.partial(obj.sign, padding=pss, algorithm=_HASHES[bits]())
        if family == "ES":
            assert isinstance(obj, ec.EllipticCurvePrivateKey)
            if bits == "256" and is_cryptographys_own(obj):
                # P-256 on OpenSSL directly when the extension has it: cryptography holds
                # the GIL for part of each ECDSA call, so threads scale poorly on it. Only
                # P-256: the system OpenSSL the extension links may be older than
                # cryptography's own, and slower on P-384 and P-521 (README, Performance)
                sec1 = obj.private_bytes(
                    serialization.Encoding.DER,
                    serialization.PrivateFormat.TraditionalOpenSSL,
                    serialization.NoEncryption(),
                )
                direct: SignFunction | None = kernel.ecdsa_signer(sec1, 256)
                if direct is not None:
                    return direct
            return functools.partial(obj.sign, signature_algorithm=ec.ECDSA(_HASHES[bits]()))
        assert isinstance(obj, ed25519.Ed25519PrivateKey | ed448.Ed448PrivateKey)
        # a key of another class (an HSM's) signs with its own sign(), and may not export
        if (
            isinstance(obj, ed25519.Ed25519PrivateKey)
            and is_cryptographys_own(obj)
            and ed25519_backend() == "libsodium"
        ):
            return _sodium_ed25519_signer(obj, kernel)
        return obj.sign


def ed25519_backend() -> str:
    """ "libsodium" when PyNaCl is installed (faster), else "cryptography".

    ``JWTMINT_ED25519_BACKEND=cryptography`` forces cryptography. Both give the
    same bytes: Ed25519 signatures are deterministic (RFC 8032 §5.1.6).
    """
    if os.environ.get("JWTMINT_ED25519_BACKEND", "").lower() == "cryptography":
        return "cryptography"
    return "libsodium" if _sodium_crypto_sign() is not None else "cryptography"


@functools.cache
def _sodium_crypto_sign() -> Callable[[bytes, bytes], bytes] | None:
    try:
        from nacl.bindings import crypto_sign
    except ImportError:
        return None
    return crypto_sign


def _sodium_ed25519_signer(key: ed25519.Ed25519PrivateKey, kernel: ModuleType) -> SignFunction:
    """Ed25519 through libsodium (PyNaCl), faster than cryptography's (README, Performance)."""
    from nacl.bindings import crypto_sign_seed_keypair

    seed = key.private_bytes(
        serialization.Encoding.Raw,
        serialization.PrivateFormat.Raw,
        serialization.NoEncryption(),
    )
    _public, secret = crypto_sign_seed_keypair(seed)
    # PyNaCl's cffi module itself, reached by the kernel: the public crypto_sign wrapper
    # does more work under the GIL per call (a second buffer, a result check, copying the
    # message back), which held back mint_many's scaling over threads
    direct: SignFunction | None = kernel.sodium_signer(secret)
    if direct is not None:
        return direct
    crypto_sign = _sodium_crypto_sign()  # a PyNaCl without nacl._sodium: same bytes
    assert crypto_sign is not None

    def sign(data: bytes) -> bytes:
        # crypto_sign returns signature || message (the "combined" mode PyNaCl binds)
        return crypto_sign(data, secret)[:64]

    return sign


_KTY_WORDS = {
    "RSA": "an RSA key",
    "EC": "an EC key",
    "OKP": "an Ed25519/Ed448 key",
    "oct": "a secret",
}


def _curve_algorithm(crv: str | None) -> str:
    curve = CURVES.get(crv or "")
    return curve.algorithm if curve is not None else "another algorithm"


def _choose_hint(key: KeyLike) -> str:
    try:
        default = default_algorithm_for(key.kty, key.crv)
    except KeyError:  # a KeyLike of a kind JWS cannot sign with: there is no default to name
        return ""
    return f" or choose an algorithm for this key (its default is {default})"


def default_algorithm_for(kty: str, crv: str | None) -> str:
    """The algorithm a key signs with when none is named (RSA -> RS256, P-256 -> ES256, ...)."""
    if kty == "EC":
        return CURVES[crv or ""].algorithm  # KeyError for a curve JWS cannot sign on
    return {"RSA": "RS256", "OKP": "EdDSA", "oct": "HS256"}[kty]


def _build() -> Mapping[str, Algorithm]:
    by_algorithm = {curve.algorithm: curve for curve in CURVES.values()}
    table: dict[str, Algorithm] = {}
    for bits in ("256", "384", "512"):
        size = int(bits) // 8  # the hash's: ES512 hashes 64 bytes, though P-521 R and S take 66
        curve = by_algorithm["ES" + bits]
        table["RS" + bits] = Algorithm("RS" + bits, "RSA", size)
        table["PS" + bits] = Algorithm("PS" + bits, "RSA", size)
        table["ES" + bits] = Algorithm("ES" + bits, "EC", size, curve.name, curve.size)
        table["HS" + bits] = Algorithm("HS" + bits, "oct", size)
    table["EdDSA"] = Algorithm("EdDSA", "OKP", 0)
    # read-only: a caller adding or replacing an entry would change what every signer
    # in the process accepts (an "alg" of their own, or "none" back in the table)
    return MappingProxyType(table)


ALGORITHMS: Mapping[str, Algorithm] = _build()
HMAC_ALGORITHMS = frozenset(name for name in ALGORITHMS if name.startswith("HS"))


def get_algorithm(name: object) -> Algorithm:
    """The algorithm called ``name`` (case-sensitive, RFC 7515 §4.1.1)."""
    if isinstance(name, str):
        found = ALGORITHMS.get(name)
        if found is not None:
            return found
        if name.lower() == "none":
            raise UnsupportedAlgorithmError(
                "alg 'none' makes unsigned tokens and is refused; "
                "choose a signing algorithm such as ES256 or RS256"
            )
    raise UnsupportedAlgorithmError(
        f"unknown algorithm {_shown(name)}; choose one of {', '.join(sorted(ALGORITHMS))}"
    )


#: what an algorithm name looks like (RFC 7518 §3.1 and its registry): shown in errors
_LOOKS_LIKE_AN_ALGORITHM = re.compile(r"[A-Za-z]{2}\d{3}[A-Za-z]?|EdDSA|Ed25519|Ed448|none", re.I)


def _shown(name: object) -> str:
    """An algorithm name as an error message may show it: one that looks like an algorithm
    as it is, anything else by type and length (a key or a secret passed where the
    algorithm belongs must not reach a log)."""
    if isinstance(name, str) and _LOOKS_LIKE_AN_ALGORITHM.fullmatch(name):
        return repr(name)
    size = f" of length {len(name)}" if isinstance(name, str | bytes) else ""
    return f"(a {type(name).__name__}{size}, not shown)"
