"""Which cryptography private keys JWS can sign with, and their JWK ``kty`` and ``crv``.

RFC 7518 §6.1 (RSA, EC) and RFC 8037 §2 (OKP) name the key types; RFC 7518
§3.4 and RFC 8037 §3.1 restrict ECDSA to P-256/384/521 and EdDSA to Ed25519
and Ed448. Every loader, whatever the format, ends in :func:`kty_crv`.
"""

from __future__ import annotations

from typing import TypeAlias

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, rsa, x448, x25519

from ._curves import CURVES_BY_SEC_NAME
from .errors import InvalidKeyError

__all__ = [
    "NON_JWS_PRIVATE_KEY_TYPES",
    "PRIVATE_KEY_TYPES",
    "PrivateKey",
    "is_cryptographys_own",
    "kty_crv",
    "public_der",
]

PrivateKey: TypeAlias = (
    rsa.RSAPrivateKey
    | ec.EllipticCurvePrivateKey
    | ed25519.Ed25519PrivateKey
    | ed448.Ed448PrivateKey
)
PRIVATE_KEY_TYPES = (
    rsa.RSAPrivateKey,
    ec.EllipticCurvePrivateKey,
    ed25519.Ed25519PrivateKey,
    ed448.Ed448PrivateKey,
)
#: Private keys cryptography can hold but JWS cannot sign with: refused by name, not as
#: "cannot load a key from" an object the caller rightly thinks is a private key.
NON_JWS_PRIVATE_KEY_TYPES = (
    dsa.DSAPrivateKey,
    x25519.X25519PrivateKey,
    x448.X448PrivateKey,
)


def is_cryptographys_own(key: object) -> bool:
    """``key`` is of one of cryptography's own key classes (its Rust bindings), not a Python
    subclass of their interfaces: an HSM's or a KMS's key signs its own way, and may refuse
    to hand its private value over."""
    return type(key).__module__.startswith("cryptography.hazmat.bindings.")


def kty_crv(key: object) -> tuple[str, str | None]:
    """The JWK ``kty`` and ``crv`` of a key object or secret; refuses keys JWS cannot sign with."""
    if isinstance(key, bytes):
        return "oct", None
    if isinstance(key, rsa.RSAPrivateKey):
        return "RSA", None
    if isinstance(key, ec.EllipticCurvePrivateKey):
        curve = CURVES_BY_SEC_NAME.get(key.curve.name)
        if curve is None:
            raise InvalidKeyError(
                f"EC curve {key.curve.name} is not a JWS curve; use P-256, P-384 or P-521"
            )
        return "EC", curve.name
    if isinstance(key, ed25519.Ed25519PrivateKey):
        return "OKP", "Ed25519"
    if isinstance(key, ed448.Ed448PrivateKey):
        return "OKP", "Ed448"
    raise InvalidKeyError(
        f"{type(key).__name__} cannot sign JWTs; use an RSA, EC (P-256/384/521), "
        "Ed25519 or Ed448 private key"
    )


def public_der(key: PrivateKey) -> bytes:
    """The SubjectPublicKeyInfo DER of ``key``'s public half: what certificates hold."""
    return key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
