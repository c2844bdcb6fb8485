"""The one answer to "what is this key input?": :func:`sniff` classifies bytes by format.

``load_key`` dispatches on the answer, and the HMAC secret guard refuses
every :data:`KEY_MATERIAL` format as a secret: an HMAC secret that is
really a public key (or any key or JWK) is the algorithm-confusion trap of
RFC 8725 §2.1 and §3.1, where whoever holds the public key can sign.
Classification never needs a password; parsing, with one, is ``_keyparse``'s.
"""

from __future__ import annotations

import enum
import json
import re
from collections.abc import Mapping

from cryptography import x509
from cryptography.exceptions import InternalError, UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization

__all__ = [
    "KEY_MATERIAL",
    "OPENSSH_PRIVATE_PEM_LABEL",
    "PEM_BLOCK",
    "PRIVATE_PEM_LABELS",
    "KeyFormat",
    "classify_json",
    "sniff",
]


class KeyFormat(enum.Enum):
    """What key input holds, as far as format goes (whether it loads is the parser's call)."""

    #: A JSON object with "kty", the one member every JWK has (RFC 7517 §4.1).
    JWK = "JWK"
    #: A JSON object with a "keys" array (RFC 7517 §5), or any JSON with a JWK deeper down.
    JWK_SET = "JWK Set"
    #: Opens like a JSON object but holds no JWK: JSON without "kty", or not JSON at all.
    JSON_NOT_JWK = "JSON without a JWK"
    #: PEM with a complete private-key block (RFC 7468 §10, §11; PKCS#1, SEC1, OpenSSH).
    PEM_PRIVATE = "PEM private key"
    #: PEM without one: public keys, certificates, cut-off blocks. Nothing that signs.
    PEM_PUBLIC = "PEM public key or certificate"
    #: An OpenSSH public key line (RFC 4253 §6.6), or a private key's bare binary body.
    OPENSSH = "OpenSSH key"
    #: DER of a private key (PKCS#8, encrypted or not, PKCS#1, SEC1).
    DER_PRIVATE = "DER private key"
    #: DER of a public key (SubjectPublicKeyInfo, PKCS#1) or an X.509 certificate.
    DER_PUBLIC = "DER public key or certificate"
    #: A PKCS#12 bundle (RFC 7292 §4): version 3, then PKCS#7 data or signed data.
    PKCS12 = "PKCS#12 bundle"
    #: One ASN.1 SEQUENCE spanning the input that no key parser takes: corrupt, or random
    #: bytes that happen to look so (about 1 in 65,536 secrets), hence no key material.
    DER_UNKNOWN = "unrecognised DER"
    #: None of the above: an HMAC secret, or a format jwtmint does not read.
    RAW = "raw bytes"


#: Formats that are keys whatever else they might be: never an HMAC secret.
KEY_MATERIAL = frozenset(
    {
        KeyFormat.JWK,
        KeyFormat.JWK_SET,
        KeyFormat.PEM_PRIVATE,
        KeyFormat.PEM_PUBLIC,
        KeyFormat.OPENSSH,
        KeyFormat.DER_PRIVATE,
        KeyFormat.DER_PUBLIC,
        KeyFormat.PKCS12,
    }
)

_FOUR_DASH_ARMOUR = re.compile(rb"----[- ]BEGIN [A-Z0-9 ]+[- ]----")
PEM_BLOCK = re.compile(rb"-----BEGIN ([A-Z0-9 ]+)-----\r?\n.*?-----END \1-----", re.DOTALL)
PRIVATE_PEM_LABELS = frozenset(
    {b"PRIVATE KEY", b"RSA PRIVATE KEY", b"EC PRIVATE KEY", b"ENCRYPTED PRIVATE KEY"}
)
OPENSSH_PRIVATE_PEM_LABEL = b"OPENSSH PRIVATE KEY"

_OPENSSH_PREFIXES = (
    b"ssh-ed25519",
    b"ssh-rsa",
    b"ssh-dss",
    b"ecdsa-sha2-nistp256",
    b"ecdsa-sha2-nistp384",
    b"ecdsa-sha2-nistp521",
    # what is inside -----BEGIN OPENSSH PRIVATE KEY----- once the armour is taken off
    b"openssh-key-v1",
)

# RFC 7292 §4 PFX: SEQUENCE { INTEGER 3, ContentInfo SEQUENCE { OID 1.2.840.113549.1.7.1
# (data) or .2 (signedData), ... } }: the INTEGER and the OID without the OID's last byte
_PFX_VERSION = b"\x02\x01\x03"
_PKCS7_OID_PREFIX = b"\x06\x09\x2a\x86\x48\x86\xf7\x0d\x01\x07"


def sniff(data: bytes) -> KeyFormat:
    """The format of key input ``data`` (str input is passed as its UTF-8 bytes)."""
    stripped = data.strip()
    if stripped[:1] in (b"{", b"[") or data[:1] in _JSON_ENCODING_LEADS or b"\0" in data[:4]:
        found = _sniff_json(data)
        if found is not None:
            return found
    if b"-----BEGIN " in data:
        labels = {match.group(1) for match in PEM_BLOCK.finditer(data)}
        if labels & PRIVATE_PEM_LABELS or OPENSSH_PRIVATE_PEM_LABEL in labels:
            return KeyFormat.PEM_PRIVATE
        return KeyFormat.PEM_PUBLIC
    if _FOUR_DASH_ARMOUR.search(data):
        # RFC 4716 SSH2 keys ("---- BEGIN SSH2 PUBLIC KEY ----") and 4-dash PEM look-alikes:
        # key material all the same (PyJWT refuses them as HMAC secrets too)
        return KeyFormat.PEM_PUBLIC
    if stripped[:1] == b"{":
        return KeyFormat.JSON_NOT_JWK
    if stripped.startswith(_OPENSSH_PREFIXES):
        return KeyFormat.OPENSSH
    # DER is binary: judged on the bytes as given, since strip() would eat a final
    # 0x20/0x0a/... byte of the encoding and hide it
    if _spans_one_sequence(data):
        return _sniff_der(data)
    return KeyFormat.RAW


#: first bytes of the BOMs json.loads reads from bytes (UTF-8, UTF-16, UTF-32); UTF-16 and
#: -32 without one have a zero byte in the first four
_JSON_ENCODING_LEADS = frozenset((b"\xef", b"\xff", b"\xfe"))


def _sniff_json(data: bytes) -> KeyFormat | None:
    """JWK or JWK_SET when ``data`` is JSON holding one, read as PyJWT reads a key it is given
    (``json.loads`` on the bytes: the encoding by BOM or zero bytes, integers of any length
    left unread), so that nothing PyJWT takes for a JWK passes for a secret here."""
    for text in dict.fromkeys((data, data.strip())):  # also past \v and \f (not JSON's)
        try:
            value = json.loads(text, parse_int=_any_int)
        except RecursionError:
            return KeyFormat.JWK  # nested beyond the parser: never taken for a secret
        except ValueError:  # also UnicodeDecodeError
            continue
        return classify_json(value)
    return None


def _any_int(_digits: str) -> int:
    return 0


def classify_json(value: object) -> KeyFormat | None:
    """JWK, JWK_SET or None (no JWK) for a parsed JSON value or a mapping given as a key."""
    if isinstance(value, Mapping):
        if "kty" in value:
            return KeyFormat.JWK
        if isinstance(value.get("keys"), list):
            return KeyFormat.JWK_SET
    pending = [value]
    while pending:  # a JWK anywhere inside (an array of JWKs, a document embedding a JWKS)
        item = pending.pop()
        if isinstance(item, Mapping):
            if "kty" in item:
                return KeyFormat.JWK_SET
            pending.extend(item.values())
        elif isinstance(item, list):
            pending.extend(item)
    return None


def _sniff_der(data: bytes) -> KeyFormat:
    if _is_pfx(data):
        return KeyFormat.PKCS12
    try:
        # the loader parses again, validated; telling the kind apart needs no RSA checks
        serialization.load_der_private_key(data, None, unsafe_skip_rsa_key_validation=True)
    except (TypeError, InternalError):
        # encrypted, or a private-key structure whose contents OpenSSL refuses (an X448 OID
        # around a 32-byte key): still a private key, which the parser then refuses by name
        return KeyFormat.DER_PRIVATE
    except (ValueError, UnsupportedAlgorithm):
        pass
    else:
        return KeyFormat.DER_PRIVATE
    for loader in (serialization.load_der_public_key, x509.load_der_x509_certificate):
        try:
            loader(data)
        except (TypeError, ValueError, UnsupportedAlgorithm, InternalError):
            continue
        return KeyFormat.DER_PUBLIC
    return KeyFormat.DER_UNKNOWN


def _spans_one_sequence(data: bytes) -> bool:
    """An ASN.1 SEQUENCE whose length covers exactly the whole input (X.690 §8.1)."""
    if len(data) < 4 or data[0] != 0x30:
        return False
    header = _tag_and_length(data, 0)
    if header is None:
        return False
    size, length = header
    # BER indefinite length, as some PKCS#12 exporters write, has no length to compare
    return length is None or size + length == len(data)


def _is_pfx(data: bytes) -> bool:
    outer = _tag_and_length(data, 0)
    if outer is None or data[outer[0] : outer[0] + 3] != _PFX_VERSION:
        return False
    content_info = outer[0] + 3
    inner = _tag_and_length(data, content_info)
    if inner is None or data[content_info] != 0x30:
        return False
    oid = content_info + inner[0]
    end = oid + len(_PKCS7_OID_PREFIX)
    return data[oid:end] == _PKCS7_OID_PREFIX and data[end : end + 1] in (b"\x01", b"\x02")


def _tag_and_length(data: bytes, pos: int) -> tuple[int, int | None] | None:
    """Header size and content length (None: indefinite) of the element at ``pos``.

    X.690 §8.1.3; None when the header is cut off or longer than any key needs.
    """
    if len(data) < pos + 2:
        return None
    first = data[pos + 1]
    if first < 0x80:
        return 2, first
    if first == 0x80:
        return 2, None
    count = first & 0x7F
    if count > 4 or len(data) < pos + 2 + count:
        return None
    return 2 + count, int.from_bytes(data[pos + 2 : pos + 2 + count], "big")
