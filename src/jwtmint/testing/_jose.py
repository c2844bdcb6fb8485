"""An independent JWS verifier for client assertions and DPoP proofs (RFC 7515, 7517, 7518, 7638).

This module deliberately shares no code with jwtmint's minting side (no
``jwtmint._b64``, ``_json``, ``algorithms`` or ``keys``): the test endpoint
exists to check what jwtmint mints, and a verifier built from the same parts
would repeat the minter's mistakes instead of catching them.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeAlias

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

__all__ = [
    "ASYMMETRIC_ALGORITHMS",
    "HMAC_ALGORITHMS",
    "HMAC_MIN_KEY_BYTES",
    "MIN_RSA_BITS",
    "PRIVATE_JWK_MEMBERS",
    "SUPPORTED_ALGORITHMS",
    "JoseError",
    "ParsedJws",
    "VerificationKey",
    "b64url_encode",
    "embedded_jwk",
    "jwk_thumbprint",
    "parse_compact",
    "verification_keys",
    "verify_hmac",
]

PublicKey: TypeAlias = (
    rsa.RSAPublicKey | ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey | ed448.Ed448PublicKey
)
_PRIVATE_TYPES = (
    rsa.RSAPrivateKey,
    ec.EllipticCurvePrivateKey,
    ed25519.Ed25519PrivateKey,
    ed448.Ed448PrivateKey,
)
_PUBLIC_TYPES = (
    rsa.RSAPublicKey,
    ec.EllipticCurvePublicKey,
    ed25519.Ed25519PublicKey,
    ed448.Ed448PublicKey,
)

_HASHES: dict[str, Callable[[], hashes.HashAlgorithm]] = {
    "256": hashes.SHA256,
    "384": hashes.SHA384,
    "512": hashes.SHA512,
}
_HMAC_DIGESTS = {"HS256": hashlib.sha256, "HS384": hashlib.sha384, "HS512": hashlib.sha512}

#: RFC 7518 §3.1 signature algorithms this verifier checks, asymmetric ones first.
ASYMMETRIC_ALGORITHMS = (
    "RS256", "RS384", "RS512",
    "PS256", "PS384", "PS512",
    "ES256", "ES384", "ES512",
    "EdDSA",
)  # fmt: skip
HMAC_ALGORITHMS = tuple(_HMAC_DIGESTS)
#: RFC 7518 §3.2: an HMAC key at least as long as the hash output.
HMAC_MIN_KEY_BYTES = {alg: digest().digest_size for alg, digest in _HMAC_DIGESTS.items()}
#: RFC 7518 §3.3 and §3.5: RSA keys of 2048 bits or more.
MIN_RSA_BITS = 2048
SUPPORTED_ALGORITHMS = ASYMMETRIC_ALGORITHMS + HMAC_ALGORITHMS

_RSA_ALGORITHMS = frozenset(a for a in ASYMMETRIC_ALGORITHMS if a[:2] in ("RS", "PS"))
# RFC 7518 §3.4: each ES algorithm names its curve, so the hash can never be mixed with another
_EC_ALGORITHMS = {"secp256r1": "ES256", "secp384r1": "ES384", "secp521r1": "ES512"}
_JWK_CURVES: dict[str, ec.EllipticCurve] = {
    "P-256": ec.SECP256R1(),
    "P-384": ec.SECP384R1(),
    "P-521": ec.SECP521R1(),
}
_B64URL = re.compile(r"[A-Za-z0-9_-]*")
#: RFC 7518 §6.2.2, §6.3.2 and §6.4.1, RFC 8037 §2: members only a private (or secret) JWK has.
PRIVATE_JWK_MEMBERS = frozenset({"d", "p", "q", "dp", "dq", "qi", "oth", "k"})
# RFC 7638 §3.2 and RFC 8037 §2: the required members a thumbprint hashes, in sorted order
_THUMBPRINT_MEMBERS = {
    "RSA": ("e", "kty", "n"),
    "EC": ("crv", "kty", "x", "y"),
    "OKP": ("crv", "kty", "x"),
}


class JoseError(ValueError):
    """A JWS or JWK that cannot be parsed, or a key that cannot verify JWS signatures."""


def b64url_decode(text: str) -> bytes:
    """RFC 7515 §2 base64url without padding; anything else is refused."""
    if not _B64URL.fullmatch(text) or len(text) % 4 == 1:
        raise JoseError("not base64url without padding")
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def b64url_encode(data: bytes) -> str:
    """RFC 7515 §2 base64url without padding."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unique_members(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    # RFC 7515 §5.2 lets a parser keep the last duplicate; refusing is the safer reading
    result: dict[str, Any] = {}
    for name, value in pairs:
        if name in result:
            raise JoseError(f"duplicate member {name}")
        result[name] = value
    return result


def _refuse_constant(name: str) -> Any:
    raise JoseError(f"{name} is not JSON")


def _json_object(data: bytes, what: str) -> dict[str, Any]:
    try:
        value = json.loads(
            data.decode("utf-8"),
            object_pairs_hook=_unique_members,
            parse_constant=_refuse_constant,
        )
    except JoseError:  # a duplicate member or a constant, refused by the hooks above
        raise
    except ValueError as exc:
        # JSONDecodeError, UnicodeDecodeError, and an integer longer than CPython converts
        # (sys.get_int_max_str_digits()): all ValueErrors
        raise JoseError(f"the {what} is not UTF-8 JSON") from exc
    except RecursionError as exc:
        raise JoseError(f"the {what} is nested too deeply") from exc
    if not isinstance(value, dict):
        raise JoseError(f"the {what} is not a JSON object")
    return value


@dataclass(frozen=True)
class ParsedJws:
    """A compact JWS split and decoded, not yet verified (RFC 7515 §7.1)."""

    header: dict[str, Any]
    claims: dict[str, Any]
    signing_input: bytes = field(repr=False)
    signature: bytes = field(repr=False)


def parse_compact(token: str) -> ParsedJws:
    """Split and decode a compact JWS whose payload is a JSON claims set (RFC 7519 §7.2)."""
    parts = token.split(".")
    if len(parts) != 3:
        raise JoseError("not a compact JWS (three dot-separated parts)")
    header = _json_object(b64url_decode(parts[0]), "JOSE header")
    claims = _json_object(b64url_decode(parts[1]), "claims set")
    signature = b64url_decode(parts[2])
    return ParsedJws(header, claims, f"{parts[0]}.{parts[1]}".encode("ascii"), signature)


def verify_hmac(alg: str, secret: bytes, signing_input: bytes, signature: bytes) -> bool:
    """RFC 7518 §3.2, compared in constant time."""
    expected = hmac.new(secret, signing_input, _HMAC_DIGESTS[alg]).digest()
    return hmac.compare_digest(expected, signature)


@dataclass(frozen=True)
class VerificationKey:
    """A public key and the JWS algorithms it may verify (narrowed by a JWK's ``alg``)."""

    key: PublicKey = field(repr=False)
    algorithms: frozenset[str]
    kid: str | None = None

    def verify(self, alg: str, signing_input: bytes, signature: bytes) -> bool:
        """True when ``signature`` is this key's ``alg`` signature of ``signing_input``."""
        if alg not in self.algorithms:
            return False
        try:
            self._verify(alg, signing_input, signature)
        except InvalidSignature:
            return False
        return True

    def _verify(self, alg: str, signing_input: bytes, signature: bytes) -> None:
        key = self.key
        if isinstance(key, ed25519.Ed25519PublicKey | ed448.Ed448PublicKey):
            key.verify(signature, signing_input)
            return
        digest = _HASHES[alg[2:]]()
        if isinstance(key, rsa.RSAPublicKey):
            pad: padding.AsymmetricPadding = (
                padding.PKCS1v15()
                if alg.startswith("RS")
                # RFC 7518 §3.5: MGF1 with the same hash, salt as long as the hash output
                else padding.PSS(mgf=padding.MGF1(digest), salt_length=digest.digest_size)
            )
            key.verify(signature, signing_input, pad, digest)
            return
        # RFC 7518 §3.4: JWS carries R || S, each as wide as the curve order, not DER
        size = (key.curve.key_size + 7) // 8
        if len(signature) != 2 * size:
            raise InvalidSignature
        r = int.from_bytes(signature[:size], "big")
        s = int.from_bytes(signature[size:], "big")
        key.verify(encode_dss_signature(r, s), signing_input, ec.ECDSA(digest))


def verification_keys(source: object) -> tuple[VerificationKey, ...]:
    """Keys to register for ``private_key_jwt``, from whatever a test has at hand.

    Accepts a jwtmint ``SigningKey`` (through its ``public_jwk()``, so nothing of
    jwtmint's own parsing is trusted), a cryptography public or private key, a
    public JWK (RFC 7517 §4), a JWK Set (RFC 7517 §5) or a list of any of these.
    """
    if isinstance(source, _PUBLIC_TYPES):
        return (_from_public_key(source),)
    if isinstance(source, _PRIVATE_TYPES):
        return (_from_public_key(source.public_key()),)
    public_jwk = getattr(source, "public_jwk", None)
    if callable(public_jwk):
        return verification_keys(public_jwk())
    if isinstance(source, Mapping):
        if "keys" in source:
            return _from_many(source["keys"])
        return (_from_jwk(source),)
    if isinstance(source, list | tuple):
        return _from_many(source)
    raise TypeError(
        f"cannot register a {type(source).__name__} as a public key; pass a jwtmint SigningKey, "
        "a cryptography key, a public JWK or a JWK Set"
    )


def _from_many(sources: Iterable[object]) -> tuple[VerificationKey, ...]:
    keys = tuple(key for item in sources for key in verification_keys(item))
    if not keys:
        raise JoseError("no keys given")
    return keys


def _from_public_key(key: PublicKey, kid: str | None = None) -> VerificationKey:
    if isinstance(key, rsa.RSAPublicKey):
        if key.key_size < MIN_RSA_BITS:
            raise JoseError(
                f"RSA key of {key.key_size} bits refused: RFC 7518 3.3 requires keys of "
                f"at least {MIN_RSA_BITS} bits"
            )
        return VerificationKey(key, _RSA_ALGORITHMS, kid)
    if isinstance(key, ec.EllipticCurvePublicKey):
        alg = _EC_ALGORITHMS.get(key.curve.name)
        if alg is None:
            raise JoseError(f"curve {key.curve.name} has no JWS algorithm")
        return VerificationKey(key, frozenset({alg}), kid)
    return VerificationKey(key, frozenset({"EdDSA"}), kid)


def _from_jwk(jwk: Mapping[str, Any]) -> VerificationKey:
    """RFC 7517 §4 / RFC 7518 §6: public members only; private members are ignored."""
    kid = jwk.get("kid")
    if kid is not None and not isinstance(kid, str):
        raise JoseError("JWK kid must be a string")
    if jwk.get("use", "sig") != "sig":
        raise JoseError("JWK use is not sig")
    key = _from_public_key(_jwk_public_key(jwk), kid)
    alg = jwk.get("alg")
    if alg is None:
        return key
    # RFC 7517 §4.4: a JWK that names its algorithm is good for that one only
    if alg not in key.algorithms:
        raise JoseError(f"JWK alg {alg} does not fit its key")
    return VerificationKey(key.key, frozenset({alg}), kid)


def _jwk_public_key(jwk: Mapping[str, Any]) -> PublicKey:
    kty = jwk.get("kty")
    try:
        if kty == "RSA":
            return rsa.RSAPublicNumbers(_jwk_uint(jwk, "e"), _jwk_uint(jwk, "n")).public_key()
        if kty == "EC":
            curve = _JWK_CURVES[jwk["crv"]]
            size = (curve.key_size + 7) // 8
            x, y = _jwk_bytes(jwk, "x"), _jwk_bytes(jwk, "y")
            if len(x) != size or len(y) != size:  # RFC 7518 §6.2.1.2: full-width coordinates
                raise JoseError("EC JWK coordinates have the wrong length")
            numbers = ec.EllipticCurvePublicNumbers(
                int.from_bytes(x, "big"), int.from_bytes(y, "big"), curve
            )
            return numbers.public_key()
        if kty == "OKP":
            x = _jwk_bytes(jwk, "x")
            if jwk["crv"] == "Ed25519":
                return ed25519.Ed25519PublicKey.from_public_bytes(x)
            if jwk["crv"] == "Ed448":
                return ed448.Ed448PublicKey.from_public_bytes(x)
            raise JoseError("OKP JWK crv must be Ed25519 or Ed448")
    except JoseError:
        raise
    except (KeyError, TypeError, ValueError) as exc:
        raise JoseError(f"malformed {kty} JWK") from exc
    if kty == "oct":
        raise JoseError("a symmetric JWK is a secret; register it with secret=")
    raise JoseError(f"unsupported JWK kty {kty!r}")


def _jwk_bytes(jwk: Mapping[str, Any], name: str) -> bytes:
    value = jwk[name]
    if not isinstance(value, str):
        raise JoseError(f"JWK member {name} is not a string")
    return b64url_decode(value)


def _jwk_uint(jwk: Mapping[str, Any], name: str) -> int:
    return int.from_bytes(_jwk_bytes(jwk, name), "big")


def embedded_jwk(jwk: object) -> tuple[VerificationKey, str]:
    """The public key a JWS carries in its ``jwk`` header, and its RFC 7638 thumbprint.

    RFC 7515 §4.1.3 and RFC 9449 §4.2. A JWK holding any private member is refused, not
    stripped: a signer that puts its private key in a header has leaked it (RFC 9449
    §4.3, check 7).
    """
    if jwk is None:
        raise JoseError("there is no jwk header")
    if not isinstance(jwk, Mapping):
        raise JoseError("the jwk header is not a JSON object")
    private = sorted(PRIVATE_JWK_MEMBERS.intersection(jwk))
    if private:
        raise JoseError(f"the jwk holds private key members ({', '.join(private)})")
    return _from_jwk(jwk), jwk_thumbprint(jwk)


def jwk_thumbprint(jwk: Mapping[str, Any]) -> str:
    """RFC 7638 §3: base64url SHA-256 of the required members as sorted, compact JSON."""
    kty = jwk.get("kty")
    members = _THUMBPRINT_MEMBERS.get(kty) if isinstance(kty, str) else None
    if members is None:
        raise JoseError(f"no thumbprint for JWK kty {jwk.get('kty')!r}")
    values = {name: jwk.get(name) for name in members}
    if not all(isinstance(value, str) for value in values.values()):
        raise JoseError("a JWK member the thumbprint needs is missing or not a string")
    # members arrive in sorted order already; RFC 7638 §3.3 hashes the UTF-8 bytes
    text = json.dumps(values, separators=(",", ":"), ensure_ascii=False)
    return b64url_encode(hashlib.sha256(text.encode("utf-8")).digest())
