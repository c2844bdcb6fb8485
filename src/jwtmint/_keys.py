"""Loading signing keys once: PEM, DER, JWK, PKCS#12, cryptography objects, secrets.

:func:`load_key` parses and validates a key up front and returns a
:class:`SigningKey`, so that nothing on the minting path parses anything.
Asymmetric keys get ``kid`` = their RFC 7638 JWK thumbprint unless one is
given. Private material never appears in ``repr`` or ``str``.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any, TypeAlias

import orjson
from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import (
    dsa,
    ec,
    ed448,
    ed25519,
    rsa,
    x448,
    x25519,
)
from cryptography.hazmat.primitives.serialization import pkcs12

from ._algorithms import (
    HMAC_ALGORITHMS,
    MIN_RSA_BITS,
    default_algorithm_for,
    get_algorithm,
)
from ._b64 import b64url_decode, b64url_encode, b64url_uint, uint_from_b64url
from .errors import InvalidKeyError

__all__ = ["KeySource", "PrivateKey", "SigningKey", "generate_key", "load_key", "load_secret"]

PrivateKey: TypeAlias = (
    rsa.RSAPrivateKey
    | ec.EllipticCurvePrivateKey
    | ed25519.Ed25519PrivateKey
    | ed448.Ed448PrivateKey
)
_PRIVATE_KEY_TYPES = (
    rsa.RSAPrivateKey,
    ec.EllipticCurvePrivateKey,
    ed25519.Ed25519PrivateKey,
    ed448.Ed448PrivateKey,
)
#: Private keys cryptography can hold but JWS cannot sign with: refused by name, not as
#: "cannot load a key from" an object the caller rightly thinks is a private key.
_NON_JWS_PRIVATE_KEY_TYPES = (
    dsa.DSAPrivateKey,
    x25519.X25519PrivateKey,
    x448.X448PrivateKey,
)

#: Everything load_key accepts.
KeySource: TypeAlias = (
    "SigningKey | PrivateKey | Mapping[str, Any] | str | bytes | bytearray | memoryview"
    " | os.PathLike[str]"
)

_FINGERPRINT_SALT = os.urandom(32)

_CURVE_NAMES = {"secp256r1": "P-256", "secp384r1": "P-384", "secp521r1": "P-521"}
_CURVES: dict[str, ec.EllipticCurve] = {
    "P-256": ec.SECP256R1(),
    "P-384": ec.SECP384R1(),
    "P-521": ec.SECP521R1(),
}
_COORD_SIZE = {"P-256": 32, "P-384": 48, "P-521": 66}

_PEM_BLOCK = re.compile(rb"-----BEGIN ([A-Z0-9 ]+)-----\r?\n.*?-----END \1-----", re.DOTALL)
_PRIVATE_PEM_LABELS = {
    b"PRIVATE KEY",
    b"RSA PRIVATE KEY",
    b"EC PRIVATE KEY",
    b"ENCRYPTED PRIVATE KEY",
}
_SSH_PUBLIC_PREFIXES = (
    b"ssh-ed25519",
    b"ssh-rsa",
    b"ssh-dss",
    b"ecdsa-sha2-nistp256",
    b"ecdsa-sha2-nistp384",
    b"ecdsa-sha2-nistp521",
)


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
        if (self.kty, self.crv) != _kty_crv(self.key):
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
        return hashlib.sha256(_public_der(self.key)).hexdigest()[:12]

    def with_options(self, *, kid: str | None = None, algorithm: str | None = None) -> SigningKey:
        """A copy with another ``kid`` or default ``algorithm`` (checked against the key)."""
        changes: dict[str, Any] = {}
        if kid is not None:
            changes["kid"] = _check_kid(kid)
        if algorithm is not None:
            changes["algorithm"] = algorithm
        return replace(self, **changes) if changes else self

    def public_jwk(self) -> dict[str, Any]:
        """The public JWK (RFC 7517) with ``kid``, ``alg`` and ``use``: publish this."""
        if isinstance(self.key, bytes):
            raise InvalidKeyError(
                "an HMAC secret has no public part; share the secret with the server instead"
            )
        jwk = _public_members(self.key)
        if self.kid is not None:
            jwk["kid"] = self.kid
        jwk["alg"] = self.algorithm
        jwk["use"] = "sig"
        return jwk

    def thumbprint(self) -> str:
        """The RFC 7638 JWK thumbprint (SHA-256, base64url)."""
        if isinstance(self.key, bytes):
            raise InvalidKeyError("an HMAC secret has no thumbprint; pass kid= explicitly")
        return jwk_thumbprint(_public_members(self.key))


def jwk_thumbprint(public_jwk: Mapping[str, Any]) -> str:
    """RFC 7638 §3: SHA-256 of the required members, sorted, without whitespace."""
    required = {
        "RSA": ("e", "kty", "n"),
        "EC": ("crv", "kty", "x", "y"),
        "OKP": ("crv", "kty", "x"),
    }
    members = {name: public_jwk[name] for name in required[public_jwk["kty"]]}
    canonical = orjson.dumps(members, option=orjson.OPT_SORT_KEYS)
    return b64url_encode(hashlib.sha256(canonical).digest()).decode("ascii")


def _public_der(key: PrivateKey) -> bytes:
    return key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def _public_members(key: PrivateKey) -> dict[str, Any]:
    if isinstance(key, rsa.RSAPrivateKey):
        numbers = key.public_key().public_numbers()
        return {"kty": "RSA", "n": b64url_uint(numbers.n), "e": b64url_uint(numbers.e)}
    if isinstance(key, ec.EllipticCurvePrivateKey):
        crv = _CURVE_NAMES[key.curve.name]
        size = _COORD_SIZE[crv]
        point = key.public_key().public_numbers()
        return {
            "kty": "EC",
            "crv": crv,
            "x": b64url_uint(point.x, size),
            "y": b64url_uint(point.y, size),
        }
    raw = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    crv = "Ed25519" if isinstance(key, ed25519.Ed25519PrivateKey) else "Ed448"
    return {"kty": "OKP", "crv": crv, "x": b64url_encode(raw).decode("ascii")}


def _kty_crv(key: object) -> tuple[str, str | None]:
    """The JWK ``kty`` and ``crv`` of a key object or secret; refuses keys JWS cannot sign with."""
    if isinstance(key, bytes):
        return "oct", None
    if isinstance(key, rsa.RSAPrivateKey):
        return "RSA", None
    if isinstance(key, ec.EllipticCurvePrivateKey):
        crv = _CURVE_NAMES.get(key.curve.name)
        if crv is None:
            raise InvalidKeyError(
                f"EC curve {key.curve.name} is not a JWS curve; use P-256, P-384 or P-521"
            )
        return "EC", crv
    if isinstance(key, ed25519.Ed25519PrivateKey):
        return "OKP", "Ed25519"
    if isinstance(key, ed448.Ed448PrivateKey):
        return "OKP", "Ed448"
    raise InvalidKeyError(
        f"{type(key).__name__} cannot sign JWTs; use an RSA, EC (P-256/384/521), "
        "Ed25519 or Ed448 private key"
    )


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
    private JWK (mapping or JSON text); PEM text or bytes (PKCS#1, PKCS#8,
    SEC1, OpenSSH, encrypted with ``password``); DER bytes (PKCS#8, PKCS#1,
    SEC1) or a PKCS#12 bundle (whose certificate gives ``x5t_s256``); a path
    to any of these files; or a secret (str or bytes) for HS256/384/512.

    ``algorithm`` names what the key signs with by default and is checked
    against the key; without it, RSA -> RS256, P-256/384/521 ->
    ES256/384/512, Ed25519/Ed448 -> EdDSA, a secret -> HS256.
    """
    if algorithm is not None:
        get_algorithm(algorithm)  # unknown names and "none" fail before parsing
    if isinstance(source, SigningKey):
        return source.with_options(kid=kid, algorithm=algorithm)
    pw = password.encode("utf-8") if isinstance(password, str) else password
    kid = _check_kid(kid) if kid is not None else None
    # Without an HS* algorithm, only plain str/bytes without a password may be a secret.
    secret_ok = algorithm in HMAC_ALGORITHMS or (pw is None and not isinstance(source, os.PathLike))

    if isinstance(source, os.PathLike):
        with open(source, "rb") as handle:
            source = handle.read()
        # a file that starts like JSON is a JWK: parse it as text, so that a broken JWK file
        # is an error and never silently becomes an HMAC secret
        if source.lstrip().startswith(b"{"):
            source = source.decode("utf-8", errors="replace")
    if isinstance(source, Mapping):
        return _from_jwk(source, kid, algorithm)
    if isinstance(source, _PRIVATE_KEY_TYPES + _NON_JWS_PRIVATE_KEY_TYPES):
        return _from_private_key(source, kid, algorithm)
    if isinstance(source, str):
        return _from_text(source, pw, kid, algorithm, secret_ok)
    if isinstance(source, bytes | bytearray | memoryview):
        return _from_bytes(bytes(source), pw, kid, algorithm, secret_ok)
    raise InvalidKeyError(
        f"cannot load a key from {type(source).__name__}; pass PEM, DER, a JWK, a PKCS#12 "
        "bundle, a cryptography private key, a path, or a secret"
    )


def generate_key(algorithm: str = "ES256", *, kid: str | None = None) -> SigningKey:
    """A fresh key for ``algorithm``: RSA 2048, its curve, Ed25519, or a random secret."""
    alg = get_algorithm(algorithm)
    new: PrivateKey | bytes
    if alg.kty == "RSA":
        new = rsa.generate_private_key(public_exponent=65537, key_size=MIN_RSA_BITS)
    elif alg.kty == "EC":
        new = ec.generate_private_key(_CURVES[alg.curve or ""])
    elif alg.kty == "OKP":
        new = ed25519.Ed25519PrivateKey.generate()
    else:
        new = os.urandom(alg.hash_size)
        return _from_secret(new, kid, alg.name)
    return _from_private_key(new, kid, alg.name)


def _from_private_key(
    key: PrivateKey, kid: str | None, algorithm: str | None, x5t_s256: str | None = None
) -> SigningKey:
    kty, crv = _kty_crv(key)  # the RSA size is checked by the algorithm, in SigningKey
    alg = algorithm or default_algorithm_for(kty, crv)
    if kid is None:
        kid = jwk_thumbprint(_public_members(key))
    return SigningKey(key, kty, crv, alg, kid, x5t_s256)


def _looks_like_asymmetric(data: bytes) -> bool:
    """PEM blocks, SSH public keys and DER keys or certificates: never HMAC secrets."""
    stripped = data.strip()
    if b"-----BEGIN " in stripped or stripped.startswith(_SSH_PUBLIC_PREFIXES):
        return True
    # DER is binary: judged on the bytes as given, since strip() would eat a final
    # 0x20/0x0a/... byte of the encoding and hide it
    if not _looks_like_der(data):
        return False
    if _is_der_public_or_cert(data):
        return True
    try:
        serialization.load_der_private_key(data, None)
    except TypeError:  # encrypted: still a private key
        return True
    except (ValueError, UnsupportedAlgorithm):
        return False
    return True


def _is_der_public_or_cert(data: bytes) -> bool:
    for loader in (serialization.load_der_public_key, x509.load_der_x509_certificate):
        try:
            loader(data)
        except (TypeError, ValueError, UnsupportedAlgorithm):
            continue
        return True
    return False


def _from_secret(secret: bytes, kid: str | None, algorithm: str | None) -> SigningKey:
    if not secret:
        raise InvalidKeyError("the HMAC secret is empty; use at least 32 random bytes")
    if _looks_like_asymmetric(secret) or _holds_jwk(secret):
        raise InvalidKeyError(
            "this looks like a key, JWK(S), certificate or PEM, not an HMAC secret; using it "
            "as one is the algorithm-confusion trap: sign with the private key and "
            "RS/ES/EdDSA, or load an oct JWK with jwtmint.load_key"
        )
    return SigningKey(secret, "oct", None, algorithm or "HS256", kid)


def _holds_jwk(data: bytes) -> bool:
    """JSON with a "kty" member at any depth: a JWK or JWK Set, never raw secret bytes."""
    if data.lstrip()[:1] not in (b"{", b"["):
        return False
    try:
        value = json.loads(data)
    except ValueError:  # also UnicodeDecodeError
        return False
    pending = [value]
    while pending:
        item = pending.pop()
        if isinstance(item, dict):
            if "kty" in item:
                return True
            pending.extend(item.values())
        elif isinstance(item, list):
            pending.extend(item)
    return False


def load_secret(secret: str | bytes, algorithm: str) -> SigningKey:
    """A raw HMAC secret as PyJWT takes it: the bytes themselves, never parsed as a JWK."""
    data = secret.encode("utf-8") if isinstance(secret, str) else secret
    return _from_secret(data, None, algorithm)


def _from_text(
    text: str, password: bytes | None, kid: str | None, algorithm: str | None, secret_ok: bool
) -> SigningKey:
    stripped = text.strip()
    if stripped.startswith("{"):
        problem = None
        try:
            jwk = json.loads(stripped)
        except json.JSONDecodeError as exc:
            problem = exc.msg  # raised below, outside this block: the error's .doc is the key
        if problem is not None:
            raise InvalidKeyError(f"the key text starts like a JWK but is not JSON: {problem}")
        if isinstance(jwk, dict):
            return _from_jwk(jwk, kid, algorithm)
    return _from_bytes(text.encode("utf-8"), password, kid, algorithm, secret_ok)


def _from_bytes(
    data: bytes, password: bytes | None, kid: str | None, algorithm: str | None, secret_ok: bool
) -> SigningKey:
    jwk = _json_jwk(data)
    if jwk is not None:  # a JWK read from a file, before the secret fallback can take it
        return _from_jwk(jwk, kid, algorithm)
    if algorithm in HMAC_ALGORITHMS:
        return _from_secret(data, kid, algorithm)
    if b"-----BEGIN " in data:
        return _from_pem(data, password, kid, algorithm)
    if data.lstrip().startswith(b"openssh-key-v1") or data.strip().startswith(_SSH_PUBLIC_PREFIXES):
        raise InvalidKeyError("an SSH public key cannot sign; load the private key instead")
    if _looks_like_der(data):
        return _from_der(data, password, kid, algorithm)
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


def _json_jwk(data: bytes) -> dict[str, Any] | None:
    """The JWK in ``data`` (a JSON object with "kty"), or None.

    Lenient: secret bytes may start with "{" (PyJWT-compatible ``encode`` passes str
    secrets as bytes), so only what is unmistakably a JWK is read as one.
    """
    if not data.lstrip().startswith(b"{"):
        return None
    try:
        value = json.loads(data)
    except ValueError:  # also UnicodeDecodeError
        return None
    return value if isinstance(value, dict) and "kty" in value else None


def _looks_like_der(data: bytes) -> bool:
    """An ASN.1 SEQUENCE whose length covers exactly the whole input."""
    if len(data) < 4 or data[0] != 0x30:
        return False
    if data[1] == 0x80:  # BER indefinite length, as some PKCS#12 exporters write
        return True
    first = data[1]
    if first < 0x80:
        return first + 2 == len(data)
    count = first & 0x7F
    if count == 0 or count > 4 or len(data) < 2 + count:
        return False
    length = int.from_bytes(data[2 : 2 + count], "big")
    return length + 2 + count == len(data)


def _from_pem(
    data: bytes, password: bytes | None, kid: str | None, algorithm: str | None
) -> SigningKey:
    blocks: dict[bytes, bytes] = {}
    certs: list[bytes] = []
    for match in _PEM_BLOCK.finditer(data):
        blocks.setdefault(match.group(1), match.group(0))
        if match.group(1) == b"CERTIFICATE":
            certs.append(match.group(0))
    private = next((blocks[label] for label in blocks if label in _PRIVATE_PEM_LABELS), None)
    if private is None and b"OPENSSH PRIVATE KEY" in blocks:
        openssh = blocks[b"OPENSSH PRIVATE KEY"]
        key = _parse_private(lambda pw: serialization.load_ssh_private_key(openssh, pw), password)
        return _from_private_key(key, kid, algorithm)
    if private is None:
        found = ", ".join(label.decode() for label in blocks) or "no complete PEM block"
        raise InvalidKeyError(
            f"the PEM holds {found}, not a private key; signing needs the private key "
            "(a public key or certificate can only verify)"
        )
    pem_key = private  # bound for the lambda: mypy does not narrow closures
    key = _parse_private(lambda pw: serialization.load_pem_private_key(pem_key, pw), password)
    _kty_crv(key)  # a key JWS cannot sign with says so before any certificate is looked at
    x5t = None
    if certs:
        # a full-chain PEM holds the leaf and its issuers in any order: x5t#S256 names the
        # certificate of this key, so find it rather than take the first or the last block
        public = _public_der(key)
        leaf = next((c for c in map(_load_pem_cert, certs) if _cert_public_der(c) == public), None)
        if leaf is None:
            raise InvalidKeyError(
                "no certificate in the PEM belongs to its private key; bundle the key with "
                "its own certificate, or load the key alone"
            )
        x5t = _cert_thumbprint(leaf)
    return _from_private_key(key, kid, algorithm, x5t)


def _load_pem_cert(block: bytes) -> x509.Certificate:
    try:
        return x509.load_pem_x509_certificate(block)
    except ValueError:
        raise InvalidKeyError("a CERTIFICATE block in the PEM is corrupt") from None


def _from_der(
    data: bytes, password: bytes | None, kid: str | None, algorithm: str | None
) -> SigningKey:
    try:
        key = _parse_private(lambda pw: serialization.load_der_private_key(data, pw), password)
    except InvalidKeyError as exc:
        if isinstance(exc.__cause__, TypeError):  # a password problem: say so as it is
            raise
    else:
        # outside the try: a key that parsed but is refused (too small, wrong algorithm)
        # must say why, not fall through to "not a private key nor a PKCS#12 bundle"
        return _from_private_key(key, kid, algorithm)
    try:
        bundle = pkcs12.load_pkcs12(data, password)
    except (ValueError, TypeError, UnsupportedAlgorithm):
        if _is_der_public_or_cert(data):
            raise InvalidKeyError(
                "the DER holds a public key or certificate; signing needs the private key"
            ) from None
        raise InvalidKeyError(
            "the DER data is neither a private key nor a PKCS#12 bundle, or the password "
            "is wrong; check the file and the password"
        ) from None
    if bundle.key is None:
        raise InvalidKeyError("the PKCS#12 bundle holds no private key")
    x5t = None
    if bundle.cert is not None:
        if _public_der(bundle.key) != _cert_public_der(bundle.cert.certificate):  # type: ignore[arg-type]
            raise InvalidKeyError("the PKCS#12 bundle's certificate does not belong to its key")
        x5t = _cert_thumbprint(bundle.cert.certificate)
    return _from_private_key(bundle.key, kid, algorithm, x5t)  # type: ignore[arg-type]


def _cert_thumbprint(cert: x509.Certificate) -> str:
    return b64url_encode(cert.fingerprint(hashes.SHA256())).decode("ascii")


def _cert_public_der(cert: x509.Certificate) -> bytes:
    return cert.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def _parse_private(loader: Any, password: bytes | None) -> Any:
    """Run a cryptography private-key loader, turning its errors into InvalidKeyError."""
    try:
        return loader(password)
    except TypeError as exc:
        message = str(exc).lower()
        if "not encrypted" in message:
            raise InvalidKeyError(
                "a password was given but the key is not encrypted; drop password="
            ) from exc
        if "encrypted" in message or "password" in message:
            raise InvalidKeyError("the key is encrypted: pass password=") from exc
        raise InvalidKeyError(f"cannot load the key: {exc}") from exc
    except ValueError as exc:
        if password is not None:
            raise InvalidKeyError(
                "could not decrypt the key: the password is wrong, or the data is corrupt"
            ) from exc
        raise InvalidKeyError(
            "could not parse the private key: the data is corrupt or not a supported format"
        ) from exc
    except UnsupportedAlgorithm as exc:
        raise InvalidKeyError(f"unsupported key type: {exc}") from exc


def _from_jwk(jwk: Mapping[str, Any], kid: str | None, algorithm: str | None) -> SigningKey:
    if "kty" not in jwk and "keys" in jwk:
        raise InvalidKeyError("this is a JWK Set; pass one private key from its 'keys'")
    kty = jwk.get("kty")
    if kid is None and jwk.get("kid") is not None:
        kid = _check_kid(jwk["kid"])
    if algorithm is None and jwk.get("alg") is not None:
        algorithm = str(jwk["alg"])
        get_algorithm(algorithm)
    try:
        if kty == "oct":
            return _from_secret(b64url_decode(jwk["k"]), kid, algorithm)
        if "d" not in jwk:
            raise InvalidKeyError(
                "this JWK has no private member 'd': it is a public key and cannot sign"
            )
        key: PrivateKey
        if kty == "RSA":
            key = _rsa_from_jwk(jwk)
        elif kty == "EC":
            key = _ec_from_jwk(jwk)
        elif kty == "OKP":
            key = _okp_from_jwk(jwk)
        else:
            raise InvalidKeyError(f"unknown JWK kty {kty!r}; expected RSA, EC, OKP or oct")
    except KeyError as exc:
        raise InvalidKeyError(f"the JWK lacks the member {exc.args[0]!r}") from None
    except (ValueError, TypeError) as exc:
        if isinstance(exc, InvalidKeyError):
            raise
        # from None: the cause (a decode error) can carry the private member's text
        raise InvalidKeyError("the JWK's members are malformed or inconsistent") from None
    return _from_private_key(key, kid, algorithm)


def _rsa_from_jwk(jwk: Mapping[str, Any]) -> rsa.RSAPrivateKey:
    n, e, d = (uint_from_b64url(jwk[name]) for name in ("n", "e", "d"))
    if all(name in jwk for name in ("p", "q", "dp", "dq", "qi")):
        p, q, dp, dq, qi = (uint_from_b64url(jwk[name]) for name in ("p", "q", "dp", "dq", "qi"))
    else:
        p, q = rsa.rsa_recover_prime_factors(n, e, d)
        dp, dq, qi = rsa.rsa_crt_dmp1(d, p), rsa.rsa_crt_dmq1(d, q), rsa.rsa_crt_iqmp(p, q)
    public = rsa.RSAPublicNumbers(e, n)
    return rsa.RSAPrivateNumbers(p, q, d, dp, dq, qi, public).private_key()


def _ec_from_jwk(jwk: Mapping[str, Any]) -> ec.EllipticCurvePrivateKey:
    crv = jwk["crv"]
    if crv not in _CURVES:
        raise InvalidKeyError(f"EC curve {crv!r} is not supported; use P-256, P-384 or P-521")
    key = ec.derive_private_key(uint_from_b64url(jwk["d"]), _CURVES[crv])
    point = key.public_key().public_numbers()
    if (point.x, point.y) != (uint_from_b64url(jwk["x"]), uint_from_b64url(jwk["y"])):
        raise InvalidKeyError("the JWK's x and y do not match its private value d")
    return key


def _okp_from_jwk(jwk: Mapping[str, Any]) -> ed25519.Ed25519PrivateKey | ed448.Ed448PrivateKey:
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
