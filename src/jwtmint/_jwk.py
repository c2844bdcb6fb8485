"""JWKs in and out: private JWKs to key objects, public JWK members, RFC 7638 thumbprints.

Import follows RFC 7517 §4 and RFC 7518 §6 (RSA, EC, oct) and RFC 8037 §2
(OKP); the public members written are exactly RFC 7638 §3.2's required ones,
so that the thumbprint of an exported JWK is the key's ``kid``. Nothing here
knows ``SigningKey``: a JWK becomes a cryptography key object or secret bytes.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

import orjson
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa

from ._b64 import b64url_decode, b64url_encode, b64url_uint, uint_from_b64url
from ._curves import CURVES, CURVES_BY_SEC_NAME
from ._keyformat import KeyFormat, classify_json
from ._keytypes import PrivateKey
from .errors import InvalidKeyError

__all__ = ["jwk_from_json", "jwk_thumbprint", "key_from_jwk", "public_members", "read_jwk"]

#: OpenSSL's OPENSSL_RSA_MAX_MODULUS_BITS: larger RSA keys cannot sign
MAX_RSA_BITS = 16384

#: RFC 7638 §3.2: the members a thumbprint hashes, already in sorted order.
_THUMBPRINT_MEMBERS = {
    "RSA": ("e", "kty", "n"),
    "EC": ("crv", "kty", "x", "y"),
    "OKP": ("crv", "kty", "x"),
}


def jwk_thumbprint(public_jwk: Mapping[str, Any]) -> str:
    """RFC 7638 §3: SHA-256 of the required members, sorted, without whitespace."""
    members: dict[str, Any] | None
    try:
        required = _THUMBPRINT_MEMBERS[public_jwk["kty"]]
        members = {name: public_jwk[name] for name in required}
    except (KeyError, TypeError):  # raised below, outside: the JWK is not in the message
        members = None
    if members is None or not all(isinstance(value, str) for value in members.values()):
        raise InvalidKeyError(
            "an RFC 7638 thumbprint needs a public JWK with kty RSA, EC or OKP and its "
            "required members as strings (RSA: e, n; EC: crv, x, y; OKP: crv, x)"
        )
    canonical = orjson.dumps(members, option=orjson.OPT_SORT_KEYS)
    return b64url_encode(hashlib.sha256(canonical).digest()).decode("ascii")


def public_members(key: PrivateKey) -> dict[str, Any]:
    """The public JWK members of ``key``: RFC 7518 §6.3.1, §6.2.1; RFC 8037 §2."""
    if isinstance(key, rsa.RSAPrivateKey):
        numbers = key.public_key().public_numbers()
        return {"kty": "RSA", "n": b64url_uint(numbers.n), "e": b64url_uint(numbers.e)}
    if isinstance(key, ec.EllipticCurvePrivateKey):
        curve = CURVES_BY_SEC_NAME[key.curve.name]
        point = key.public_key().public_numbers()
        return {
            "kty": "EC",
            "crv": curve.name,
            # full width, leading zeros kept (RFC 7518 §6.2.1.2), or the thumbprint differs
            "x": b64url_uint(point.x, curve.size),
            "y": b64url_uint(point.y, curve.size),
        }
    raw = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    crv = "Ed25519" if isinstance(key, ed25519.Ed25519PrivateKey) else "Ed448"
    return {"kty": "OKP", "crv": crv, "x": b64url_encode(raw).decode("ascii")}


def jwk_from_json(data: bytes) -> Mapping[str, Any]:
    """The JWK in JSON text ``data``; text that is not one JWK is an error, never a secret."""
    problem = None
    try:
        value = json.loads(data)
    except json.JSONDecodeError as exc:
        problem = exc.msg  # raised below, outside this block: the error's .doc is the key
    except ValueError:  # UnicodeDecodeError, whose .object is the key
        problem = "it is not UTF-8 (RFC 8259 §8.1)"
    except RecursionError:
        problem = "it nests deeper than the JSON parser goes"
    if problem is not None:
        raise InvalidKeyError(f"the key text starts like a JWK but is not JSON: {problem}")
    return read_jwk(value)


def read_jwk(value: object) -> Mapping[str, Any]:
    """``value`` as one JWK (RFC 7517 §4): a JWK Set or other JSON is refused by name."""
    kind = classify_json(value)
    if kind is KeyFormat.JWK_SET:
        raise InvalidKeyError("this is a JWK Set; pass one private key from its 'keys'")
    if kind is None:
        raise InvalidKeyError("this JSON is not a JWK: it has no 'kty' member (RFC 7517 §4.1)")
    assert isinstance(value, Mapping)  # classify_json calls only a mapping a JWK
    return value


def key_from_jwk(jwk: Mapping[str, Any]) -> PrivateKey | bytes:
    """The private key of a private JWK, or the secret of an oct JWK (RFC 7518 §6.4)."""
    kty = jwk["kty"]
    try:
        if kty == "oct":
            return b64url_decode(jwk["k"])
        if "d" not in jwk:
            raise InvalidKeyError(
                "this JWK has no private member 'd': it is a public key and cannot sign"
            )
        if kty == "RSA":
            return _rsa_from_jwk(jwk)
        if kty == "EC":
            return _ec_from_jwk(jwk)
        if kty == "OKP":
            return _okp_from_jwk(jwk)
        raise InvalidKeyError(f"unknown JWK kty {kty!r}; expected RSA, EC, OKP or oct")
    except KeyError as exc:
        raise InvalidKeyError(f"the JWK lacks the member {exc.args[0]!r}") from None
    except (ValueError, TypeError) as exc:
        if isinstance(exc, InvalidKeyError):
            raise
        # from None: the cause (a decode error) can carry the private member's text
        raise InvalidKeyError("the JWK's members are malformed or inconsistent") from None


def _rsa_from_jwk(jwk: Mapping[str, Any]) -> rsa.RSAPrivateKey:
    """RFC 7518 §6.3.2; without the CRT members (§6.3.2.2-6), the primes are recovered."""
    n, e, d = (uint_from_b64url(jwk[name]) for name in ("n", "e", "d"))
    if n.bit_length() > MAX_RSA_BITS:
        # before the prime recovery below, whose time grows with the cube of the size (a
        # 32768-bit n takes about a minute): OpenSSL refuses such moduli for signing anyway
        raise InvalidKeyError(
            f"the JWK's RSA modulus has {n.bit_length()} bits; at most {MAX_RSA_BITS} are "
            "supported (OpenSSL's limit for RSA operations)"
        )
    if all(name in jwk for name in ("p", "q", "dp", "dq", "qi")):
        p, q, dp, dq, qi = (uint_from_b64url(jwk[name]) for name in ("p", "q", "dp", "dq", "qi"))
    else:
        p, q = rsa.rsa_recover_prime_factors(n, e, d)
        dp, dq, qi = rsa.rsa_crt_dmp1(d, p), rsa.rsa_crt_dmq1(d, q), rsa.rsa_crt_iqmp(p, q)
    public = rsa.RSAPublicNumbers(e, n)
    return rsa.RSAPrivateNumbers(p, q, d, dp, dq, qi, public).private_key()


def _ec_from_jwk(jwk: Mapping[str, Any]) -> ec.EllipticCurvePrivateKey:
    """RFC 7518 §6.2.2: the key is derived from d; x and y must be its public point."""
    curve = CURVES.get(jwk["crv"])
    if curve is None:
        raise InvalidKeyError(
            f"EC curve {jwk['crv']!r} is not supported; use P-256, P-384 or P-521"
        )
    key = ec.derive_private_key(uint_from_b64url(jwk["d"]), curve.new())
    point = key.public_key().public_numbers()
    if (point.x, point.y) != (uint_from_b64url(jwk["x"]), uint_from_b64url(jwk["y"])):
        raise InvalidKeyError("the JWK's x and y do not match its private value d")
    return key


def _okp_from_jwk(jwk: Mapping[str, Any]) -> ed25519.Ed25519PrivateKey | ed448.Ed448PrivateKey:
    """RFC 8037 §2: Ed25519 and Ed448 only (X25519 and X448 agree keys, they do not sign)."""
    crv = jwk["crv"]
    d = b64url_decode(jwk["d"])
    key: ed25519.Ed25519PrivateKey | ed448.Ed448PrivateKey
    if crv == "Ed25519":
        key = ed25519.Ed25519PrivateKey.from_private_bytes(d)
    elif crv == "Ed448":
        key = ed448.Ed448PrivateKey.from_private_bytes(d)
    else:
        raise InvalidKeyError(f"OKP curve {crv!r} cannot sign JWS; use Ed25519 or Ed448")
    public = key.public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw
    )
    if "x" in jwk and b64url_decode(jwk["x"]) != public:
        raise InvalidKeyError("the JWK's x does not match its private value d")
    return key
