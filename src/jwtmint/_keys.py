"""The signing-key model: :class:`SigningKey` and ``load_key`` from any source, once.

:func:`load_key` parses and validates a key up front and returns a
:class:`SigningKey`, so that nothing on the minting path parses anything.
Bytes and text go through one format sniffer (``_keyformat``), which also
guards HMAC secrets against key material. Asymmetric keys get ``kid`` = their
RFC 7638 JWK thumbprint unless one is given. Private material never appears
in ``repr`` or ``str``.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any, TypeAlias

from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from ._algorithms import (
    HMAC_ALGORITHMS,
    MIN_RSA_BITS,
    default_algorithm_for,
    get_algorithm,
)
from ._curves import CURVES
from ._jwk import jwk_from_json, jwk_thumbprint, key_from_jwk, public_members, read_jwk
from ._keyformat import KEY_MATERIAL, KeyFormat, sniff
from ._keyparse import KEY_FILE_FORMATS, parse_key_file
from ._keytypes import (
    NON_JWS_PRIVATE_KEY_TYPES,
    PRIVATE_KEY_TYPES,
    PrivateKey,
    kty_crv,
    public_der,
)
from .errors import InvalidKeyError

__all__ = [
    "KeySource",
    "PrivateKey",
    "SigningKey",
    "generate_key",
    "jwk_thumbprint",
    "load_key",
    "load_secret",
]

#: Everything load_key accepts.
KeySource: TypeAlias = (
    "SigningKey | PrivateKey | Mapping[str, Any] | str | bytes | bytearray | memoryview"
    " | os.PathLike[str]"
)

_FINGERPRINT_SALT = os.urandom(32)
#: longer str sources are key text, never a file name (PATH_MAX on Linux)
_MAX_PATH = 4096


@dataclass(frozen=True, eq=False)
class SigningKey:
    """A private key or secret, loaded and validated, ready to sign.

    ``key`` is the cryptography private-key object, or the secret as bytes
    for HMAC. ``algorithm`` is what the key signs with when no algorithm is
    named; ``kid`` goes into JOSE headers; ``x5t_s256`` is the base64url
    SHA-256 of the certificate when the key came with one (RFC 7515 §4.1.8).
    """

    key: PrivateKey | bytes = field(repr=False)
    kty: str
    crv: str | None
    algorithm: str
    kid: str | None
    x5t_s256: str | None = None

    def __post_init__(self) -> None:
        # SigningKey can be built directly: its kty and crv must describe the key it holds,
        # or check_key below would judge one key and the signer use another
        if (self.kty, self.crv) != kty_crv(self.key):
            raise InvalidKeyError(
                f"kty={self.kty!r}, crv={self.crv!r} do not describe the key given; "
                "build a SigningKey with load_key()"
            )
        get_algorithm(self.algorithm).check_key(self)

    def __repr__(self) -> str:
        parts = [f"kty={self.kty!r}"]
        if self.crv:
            parts.append(f"crv={self.crv!r}")
        if isinstance(self.key, rsa.RSAPrivateKey):
            parts.append(f"bits={self.key.key_size}")
        parts.append(f"alg={self.algorithm!r}")
        if self.kid is not None:
            parts.append(f"kid={self.kid!r}")
        parts.append(f"fingerprint={self.fingerprint!r}")
        return f"SigningKey({', '.join(parts)})"

    __str__ = __repr__

    @property
    def fingerprint(self) -> str:
        """12 hex digits identifying the key, safe to log.

        SHA-256 of the public key; for a secret, a keyed BLAKE2s with a
        per-process salt, so a logged fingerprint cannot confirm a guessed
        secret offline (it is stable only within one process).
        """
        if isinstance(self.key, bytes):
            return hashlib.blake2s(self.key, key=_FINGERPRINT_SALT, digest_size=6).hexdigest()
        return hashlib.sha256(public_der(self.key)).hexdigest()[:12]

    def with_options(self, *, kid: str | None = None, algorithm: str | None = None) -> SigningKey:
        """A copy with another ``kid`` or default ``algorithm`` (checked against the key)."""
        changes: dict[str, Any] = {}
        if kid is not None:
            changes["kid"] = _check_kid(kid)
        if algorithm is not None:
            changes["algorithm"] = algorithm
        return replace(self, **changes) if changes else self

    def public_jwk(self) -> dict[str, Any]:
        """The public JWK (RFC 7517 §4) with ``kid``, ``alg`` and ``use``: publish this."""
        if isinstance(self.key, bytes):
            raise InvalidKeyError(
                "an HMAC secret has no public part; share the secret with the server instead"
            )
        jwk = public_members(self.key)
        if self.kid is not None:
            jwk["kid"] = self.kid
        jwk["alg"] = self.algorithm
        jwk["use"] = "sig"
        return jwk

    def thumbprint(self) -> str:
        """The RFC 7638 §3 JWK thumbprint (SHA-256, base64url)."""
        if isinstance(self.key, bytes):
            raise InvalidKeyError("an HMAC secret has no thumbprint; pass kid= explicitly")
        return jwk_thumbprint(public_members(self.key))


def _check_kid(kid: object) -> str:
    if not isinstance(kid, str) or not kid:
        raise InvalidKeyError("kid must be a non-empty string")
    return kid


# --------------------------------------------------------------------------- loading


def load_key(
    source: KeySource,
    *,
    password: str | bytes | None = None,
    kid: str | None = None,
    algorithm: str | None = None,
) -> SigningKey:
    """Load a private key or HMAC secret once, for signing.

    ``source`` may be a :class:`SigningKey`; a cryptography private key; a
    private JWK (mapping or JSON text, RFC 7517 §4); PEM text or bytes
    (PKCS#1, PKCS#8, SEC1, OpenSSH, encrypted with ``password``); DER bytes
    (PKCS#8, PKCS#1, SEC1) or a PKCS#12 bundle (whose certificate gives
    ``x5t_s256``); a path to any of these files; or a secret (str or bytes)
    for HS256/384/512 (RFC 7518 §3.2).

    ``algorithm`` names what the key signs with by default and is checked
    against the key; without it, RSA -> RS256, P-256/384/521 ->
    ES256/384/512, Ed25519/Ed448 -> EdDSA, a secret -> HS256.
    """
    if algorithm is not None:
        get_algorithm(algorithm)  # unknown names and "none" fail before parsing
    if isinstance(source, SigningKey):
        return source.with_options(kid=kid, algorithm=algorithm)
    pw = _utf8(password) if isinstance(password, str) else password
    kid = _check_kid(kid) if kid is not None else None
    if isinstance(source, Mapping):
        return _from_jwk(source, kid, algorithm)
    if isinstance(source, PRIVATE_KEY_TYPES + NON_JWS_PRIVATE_KEY_TYPES):
        return _from_private_key(source, kid, algorithm)
    if isinstance(source, os.PathLike):
        with open(source, "rb") as handle:
            return _from_bytes(handle.read(), pw, kid, algorithm, text=True, secret_ok=False)
    if isinstance(source, str):
        _refuse_a_file_name(source, "pass pathlib.Path(...) to load the key from the file")
        # without a password, text may be a secret; a password means key material
        return _from_bytes(_utf8(source), pw, kid, algorithm, text=True, secret_ok=pw is None)
    if isinstance(source, bytes | bytearray | memoryview):
        data = bytes(source)
        return _from_bytes(data, pw, kid, algorithm, text=False, secret_ok=pw is None)
    raise InvalidKeyError(
        f"cannot load a key from {type(source).__name__}; pass PEM, DER, a JWK, a PKCS#12 "
        "bundle, a cryptography private key, a path, or a secret"
    )


def load_secret(secret: str | bytes, algorithm: str) -> SigningKey:
    """A raw HMAC secret as PyJWT takes it: the bytes themselves, never parsed as a JWK."""
    if isinstance(secret, str):
        _refuse_a_file_name(
            secret, "read it with pathlib.Path(...).read_bytes() if the file holds the secret"
        )
    data = _utf8(secret) if isinstance(secret, str) else secret
    return _from_secret(data, None, algorithm)


def generate_key(algorithm: str = "ES256", *, kid: str | None = None) -> SigningKey:
    """A fresh key for ``algorithm``: RSA 2048, its curve, Ed25519, or a random secret."""
    alg = get_algorithm(algorithm)
    new: PrivateKey | bytes
    if alg.kty == "RSA":
        new = rsa.generate_private_key(public_exponent=65537, key_size=MIN_RSA_BITS)
    elif alg.kty == "EC":
        new = ec.generate_private_key(CURVES[alg.curve or ""].new())
    elif alg.kty == "OKP":
        new = ed25519.Ed25519PrivateKey.generate()
    else:
        new = os.urandom(alg.hash_size)
        return _from_secret(new, kid, alg.name)
    return _from_private_key(new, kid, alg.name)


def _from_bytes(
    data: bytes,
    password: bytes | None,
    kid: str | None,
    algorithm: str | None,
    *,
    text: bool,
    secret_ok: bool,
) -> SigningKey:
    """Key material by its sniffed format; a secret only when ``secret_ok`` or HS* says so.

    ``text`` (str or a file) that opens like a JSON object is meant as a JWK: broken
    JSON there is an error. Bytes are how PyJWT-style callers pass secrets, so there
    only what holds a JWK is one, and other brace-led bytes stay secrets.
    """
    kind = sniff(data)
    if kind in (KeyFormat.JWK, KeyFormat.JWK_SET) or (text and kind is KeyFormat.JSON_NOT_JWK):
        return _from_jwk(jwk_from_json(data), kid, algorithm)
    if algorithm in HMAC_ALGORITHMS:
        return _from_secret(data, kid, algorithm)
    if kind in KEY_FILE_FORMATS:
        key, x5t = parse_key_file(data, kind, password)
        return _from_private_key(key, kid, algorithm, x5t)
    if algorithm is not None:
        raise InvalidKeyError(
            f"{algorithm} needs a private key, and these bytes are neither PEM, DER, "
            "PKCS#12 nor a JWK"
        )
    if not secret_ok:
        # a file or a password means the caller expects key material: unknown formats
        # (PuTTY, BER, ...) must not quietly become HMAC secrets
        raise InvalidKeyError(
            "these bytes are neither PEM, DER, PKCS#12 nor a JWK; if they are an HMAC "
            "secret, pass algorithm='HS256' (or HS384/HS512)"
        )
    return _from_secret(data, kid, algorithm)


def _from_jwk(jwk: object, kid: str | None, algorithm: str | None) -> SigningKey:
    members = read_jwk(jwk)
    if kid is None and members.get("kid") is not None:
        kid = _check_kid(members["kid"])
    if algorithm is None and members.get("alg") is not None:
        algorithm = str(members["alg"])
        get_algorithm(algorithm)
    key = key_from_jwk(members)
    if isinstance(key, bytes):
        return _from_secret(key, kid, algorithm)
    return _from_private_key(key, kid, algorithm)


def _from_private_key(
    key: PrivateKey, kid: str | None, algorithm: str | None, x5t_s256: str | None = None
) -> SigningKey:
    kty, crv = kty_crv(key)  # the RSA size is checked by the algorithm, in SigningKey
    alg = algorithm or default_algorithm_for(kty, crv)
    if kid is None:
        kid = jwk_thumbprint(public_members(key))
    return SigningKey(key, kty, crv, alg, kid, x5t_s256)


def _from_secret(secret: bytes, kid: str | None, algorithm: str | None) -> SigningKey:
    """An HMAC secret (RFC 7518 §3.2), unless it is key material (RFC 8725 §2.1, §3.1)."""
    if not secret:
        raise InvalidKeyError("the HMAC secret is empty; use at least 32 random bytes")
    if sniff(secret) in KEY_MATERIAL:
        raise InvalidKeyError(
            "this looks like a key, JWK(S), certificate or PEM, not an HMAC secret; using it "
            "as one is the algorithm-confusion trap: sign with the private key and "
            "RS/ES/EdDSA, or load an oct JWK with jwtmint.load_key"
        )
    return SigningKey(secret, "oct", None, algorithm or "HS256", kid)


def _refuse_a_file_name(text: str, advice: str) -> None:
    """A ``str`` is key text or a secret, never a path: one that names an existing file is
    a path passed by mistake, and would otherwise sign as an HMAC secret anyone can guess.
    The name is not repeated (it might, however unlikely, be someone's secret)."""
    if len(text) > _MAX_PATH or "\n" in text:
        return  # PEM and the like: text, not a name
    # isfile() is False for names the OS cannot take (a NUL, too long); ~/ as a shell would.
    # Not ~user: that asks the user database (LDAP, SSSD: the network) about a secret's text
    if os.path.isfile(text) or (text[:2] == "~/" and os.path.isfile(os.path.expanduser(text))):
        raise InvalidKeyError(
            f"this str names an existing file; {advice} (a str is key text or an HMAC "
            "secret, never a path)"
        )


def _utf8(text: str) -> bytes:
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:  # lone surrogates; the error's .object would be the key
        pass
    raise InvalidKeyError("the key text is not valid Unicode (it holds lone surrogates)")
