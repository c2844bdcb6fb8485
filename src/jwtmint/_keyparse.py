"""Parsing PEM, DER and PKCS#12 key files into a private key and its certificate's x5t#S256.

:func:`parse_key_file` takes the format ``_keyformat.sniff`` found and a
password, and turns every cryptography error into an :class:`InvalidKeyError`
that says what to do. The x5t#S256 (RFC 7515 §4.1.8) is that of the
certificate belonging to the key, when the file holds one.
"""

from __future__ import annotations

from collections.abc import Callable

from cryptography import x509
from cryptography.exceptions import InternalError, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.serialization import pkcs12

from ._b64 import b64url_encode
from ._keyformat import (
    KEY_MATERIAL,
    OPENSSH_PRIVATE_PEM_LABEL,
    PEM_BLOCK,
    PRIVATE_PEM_LABELS,
    KeyFormat,
)
from ._keytypes import PRIVATE_KEY_TYPES, PrivateKey, kty_crv, public_der
from .errors import InvalidKeyError

__all__ = ["KEY_FILE_FORMATS", "parse_key_file"]

#: The formats :func:`parse_key_file` reads (or refuses with a reason): key material that
#: is not JSON, and DER no parser recognised, which may be a PKCS#12 layout sniff() missed.
KEY_FILE_FORMATS = (KEY_MATERIAL - {KeyFormat.JWK, KeyFormat.JWK_SET}) | {KeyFormat.DER_UNKNOWN}

#: A cryptography private-key loader with the data bound: called with the password.
_Loader = Callable[[bytes | None], object]


def parse_key_file(
    data: bytes, kind: KeyFormat, password: bytes | None
) -> tuple[PrivateKey, str | None]:
    """The private key in ``data`` (of format ``kind``) and its certificate's x5t#S256."""
    if kind in (KeyFormat.PEM_PRIVATE, KeyFormat.PEM_PUBLIC):
        return _from_pem(data, password)
    if kind is KeyFormat.OPENSSH:
        raise InvalidKeyError(
            "an SSH public key cannot sign; load the private key instead (the whole "
            "-----BEGIN OPENSSH PRIVATE KEY----- file)"
        )
    if kind is KeyFormat.DER_PRIVATE:
        key = _parse_private(lambda pw: serialization.load_der_private_key(data, pw), password)
        return key, None
    if kind is KeyFormat.DER_PUBLIC:
        raise InvalidKeyError(
            "the DER holds a public key or certificate; signing needs the private key"
        )
    return _from_pkcs12(data, password)  # PKCS#12, or DER_UNKNOWN given its chance


def _from_pem(data: bytes, password: bytes | None) -> tuple[PrivateKey, str | None]:
    """RFC 7468: the first private-key block, and the certificate among the rest that fits."""
    blocks: dict[bytes, bytes] = {}
    certs: list[bytes] = []
    for match in PEM_BLOCK.finditer(data):
        blocks.setdefault(match.group(1), match.group(0))
        if match.group(1) == b"CERTIFICATE":
            certs.append(match.group(0))
    private = next((blocks[label] for label in blocks if label in PRIVATE_PEM_LABELS), None)
    if private is None and OPENSSH_PRIVATE_PEM_LABEL in blocks:
        openssh = blocks[OPENSSH_PRIVATE_PEM_LABEL]
        key = _parse_private(lambda pw: serialization.load_ssh_private_key(openssh, pw), password)
        return key, None
    if private is None:
        found = ", ".join(label.decode() for label in blocks) or "no complete PEM block"
        raise InvalidKeyError(
            f"the PEM holds {found}, not a private key; signing needs the private key "
            "(a public key or certificate can only verify)"
        )
    pem_key = private  # bound for the lambda: mypy does not narrow closures
    key = _parse_private(lambda pw: serialization.load_pem_private_key(pem_key, pw), password)
    if not certs:
        return key, None
    # a full-chain PEM holds the leaf and its issuers in any order: x5t#S256 names the
    # certificate of this key, so find it rather than take the first or the last block
    public = public_der(key)
    leaf = next((c for c in map(_load_pem_cert, certs) if _cert_public_der(c) == public), None)
    if leaf is None:
        raise InvalidKeyError(
            "no certificate in the PEM belongs to its private key; bundle the key with "
            "its own certificate, or load the key alone"
        )
    return key, _cert_thumbprint(leaf)


def _from_pkcs12(data: bytes, password: bytes | None) -> tuple[PrivateKey, str | None]:
    """RFC 7292: the bundle's key, and its certificate's x5t#S256 (which must fit the key)."""
    try:
        bundle = pkcs12.load_pkcs12(data, password)
    except (ValueError, TypeError, UnsupportedAlgorithm):
        raise InvalidKeyError(
            "the DER data is neither a private key nor a PKCS#12 bundle, or the password "
            "is wrong; check the file and the password"
        ) from None
    if bundle.key is None:
        raise InvalidKeyError("the PKCS#12 bundle holds no private key")
    key = _signing_key(bundle.key)
    if bundle.cert is None:
        return key, None
    if public_der(key) != _cert_public_der(bundle.cert.certificate):
        raise InvalidKeyError("the PKCS#12 bundle's certificate does not belong to its key")
    return key, _cert_thumbprint(bundle.cert.certificate)


def _load_pem_cert(block: bytes) -> x509.Certificate:
    try:
        return x509.load_pem_x509_certificate(block)
    except ValueError:
        raise InvalidKeyError("a CERTIFICATE block in the PEM is corrupt") from None


def _cert_thumbprint(cert: x509.Certificate) -> str:
    return b64url_encode(cert.fingerprint(hashes.SHA256())).decode("ascii")


def _cert_public_der(cert: x509.Certificate) -> bytes:
    return cert.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def _signing_key(key: object) -> PrivateKey:
    # a key JWS cannot sign with (DSA, X25519, secp256k1, ...) says so by name, before
    # any certificate is compared with it
    kty_crv(key)
    assert isinstance(key, PRIVATE_KEY_TYPES)  # kty_crv refused every other type
    return key


def _parse_private(loader: _Loader, password: bytes | None) -> PrivateKey:
    """Run a cryptography private-key loader, turning its errors into InvalidKeyError."""
    try:
        key = loader(password)
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
    except NotImplementedError:
        # cryptography's OpenSSH loader refuses encodings it does not implement (an ECDSA
        # key whose public point is compressed) with NotImplementedError
        raise InvalidKeyError(
            "could not parse the private key: cryptography does not support this encoding of "
            "it (an OpenSSH ECDSA key with a compressed point?); convert it to PKCS#8 PEM"
        ) from None
    except InternalError:
        # OpenSSL refusing a well-formed structure's contents (an X448 OID around a 32-byte
        # key) comes out of cryptography as an "internal error" blaming other libraries
        raise InvalidKeyError(
            "could not parse the private key: OpenSSL refused its contents (a key that does "
            "not fit its own algorithm identifier)"
        ) from None
    return _signing_key(key)
