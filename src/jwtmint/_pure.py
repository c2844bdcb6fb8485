"""Hot-path kernels in pure Python: base64url, claims splicing, JWS assembly, DER -> R||S.

Used when the extension is not built, off CPython, or when
``JWTMINT_NO_EXTENSIONS`` is set (:mod:`jwtmint._kernels` decides).
``_speedups.pyx`` defines the same functions with the same signatures and
output; tests run both and compare their output byte for byte.
"""

from __future__ import annotations

import binascii
import math
import operator
from collections.abc import Callable
from typing import TYPE_CHECKING

from . import _json
from ._pure_pyjwt import path_counts, pyjwt_encoder
from ._pure_signers import ecdsa_precomputed, ecdsa_signer, hmac_signer, sodium_signer

if TYPE_CHECKING:  # not at run time: this module's public names are the kernel's only
    from typing import Any

__all__ = [
    "IMPLEMENTATION",
    "assertion_signing_input",
    "b64url_encode",
    "compact",
    "der_to_raw",
    "dpop_proof",
    "dpop_prover",
    "dpop_signing_input",
    "ecdsa_precomputed",
    "ecdsa_signer",
    "hmac_signer",
    "jws_plain",
    "mint",
    "minter",
    "path_counts",
    "pyjwt_encoder",
    "sodium_signer",
    "str_items",
]

IMPLEMENTATION = "py"
#: How HS256/384/512 are computed: hashlib objects primed with the key pads.
HMAC_BACKEND = "hashlib"


# bytes.translate with a 256-byte table is the cheapest pure-Python way from
# standard base64 to the URL-safe alphabet (RFC 4648 §5).
_URLSAFE = bytes.maketrans(b"+/", b"-_")


def b64url_encode(data: bytes) -> bytes:
    """Base64url without padding (RFC 7515 §2, RFC 4648 §5)."""
    return binascii.b2a_base64(data, newline=False).rstrip(b"=").translate(_URLSAFE)


def _read_der_int(der: bytes, pos: int, size: int) -> tuple[bytes, int]:
    if pos + 2 > len(der) or der[pos] != 0x02:
        raise ValueError("malformed ECDSA signature: expected an INTEGER")
    length = der[pos + 1]
    pos += 2
    if length & 0x80 or length == 0 or pos + length > len(der):
        raise ValueError("malformed ECDSA signature: bad INTEGER length")
    value = der[pos : pos + length]
    if value[0] & 0x80:
        raise ValueError("malformed ECDSA signature: negative INTEGER")
    if length > 1 and value[0] == 0 and not value[1] & 0x80:
        # DER (X.690 §8.3.2) allows one leading zero, only before a high bit.
        raise ValueError("malformed ECDSA signature: non-minimal INTEGER")
    value = value.lstrip(b"\x00")
    if len(value) > size:
        raise ValueError("malformed ECDSA signature: INTEGER longer than the curve order")
    return value.rjust(size, b"\x00"), pos + length


def der_to_raw(der: bytes, size: int) -> bytes:
    """ECDSA-Sig-Value (DER SEQUENCE of r, s) to fixed-width R||S (RFC 7518 §3.4)."""
    # the C twin's checks, so that both refuse the same inputs with the same class: exactly
    # bytes (not a subclass, bytearray or memoryview), and a size that is an integer
    if type(der) is not bytes:
        raise TypeError(f"der must be bytes, not {type(der).__name__}")
    size = operator.index(size)
    if not 0 < size <= 66:
        raise ValueError("ECDSA component size must be between 1 and 66 bytes")
    n = len(der)
    if n < 8 or der[0] != 0x30:
        raise ValueError("malformed ECDSA signature: expected a SEQUENCE")
    pos = 2
    length = der[1]
    if length == 0x81:
        length = der[2]
        pos = 3
        if length < 0x80:  # DER uses the short form below 128 (X.690 §10.1)
            raise ValueError("malformed ECDSA signature: non-minimal SEQUENCE length")
    elif length & 0x80:
        raise ValueError("malformed ECDSA signature: bad SEQUENCE length")
    if pos + length != n:
        raise ValueError("malformed ECDSA signature: SEQUENCE length mismatch")
    r, pos = _read_der_int(der, pos, size)
    s, pos = _read_der_int(der, pos, size)
    if pos != n:
        raise ValueError("malformed ECDSA signature: trailing bytes")
    return r + s


def assertion_signing_input(
    header_b64: bytes, prefix: bytes, jti: bytes, iat: int, exp: int, suffix: bytes
) -> bytes:
    """``header_b64 "." b64url(claims)``, the claims spliced into a template.

    The claims JSON is ``prefix + b64url(jti) + '","iat":' iat ',"nbf":' iat
    ',"exp":' exp + suffix``; ``prefix`` ends with ``"jti":"``.
    """
    claims = b'%s%s","iat":%d,"nbf":%d,"exp":%d%s' % (
        prefix,
        b64url_encode(jti),
        iat,
        iat,
        exp,
        suffix,
    )
    return header_b64 + b"." + b64url_encode(claims)


def compact(signing_input: bytes, signature: bytes, ec_size: int) -> str:
    """The compact JWS: signing input, ".", base64url signature (RFC 7515 §7.1).

    ``ec_size`` is the byte width of R and S for ECDSA (signature given as
    DER), or 0 when the signature is used as it is.
    """
    if ec_size:
        signature = der_to_raw(signature, ec_size)
    return (signing_input + b"." + b64url_encode(signature)).decode("ascii")


def jws_plain(
    claims: dict[str, Any], header_b64: bytes, sign: Callable[[bytes], bytes], ec_size: int
) -> str | None:
    """The compact JWS of ``claims`` written as ``json.dumps(claims, separators=(",", ":"))``
    under ``header_b64``, signed with ``sign``; or None, before signing anything, when that
    JSON is not orjson's: a value other than str, int, bool, None, list or dict (exact
    types), a key that is not a str, an integer beyond 64 bits, or non-ASCII or DEL output.
    """
    if type(claims) is not dict:
        raise TypeError(f"claims must be a dict, not {type(claims).__name__}")
    claims_json = _json.exact_orjson(claims)  # jwtmint's JSON module's own judgement
    if claims_json is None:
        return None
    header_b64.decode("ascii")
    signing_input = header_b64 + b"." + b64url_encode(claims_json)
    signature = sign(signing_input)
    if type(signature) is not bytes:
        raise TypeError("sign() must return bytes")
    return compact(signing_input, signature, ec_size)


def str_items(mapping: dict[Any, Any]) -> tuple[str, ...] | None:
    """``(k1, v1, k2, v2, ...)`` of a dict whose keys and values are all exactly ``str``
    (in its order), else None: a hashable stand-in for flat JOSE headers."""
    if type(mapping) is not dict:
        raise TypeError(f"mapping must be a dict, not {type(mapping).__name__}")
    out: list[str] = []
    for name, value in mapping.items():
        if type(name) is not str or type(value) is not str:
            return None
        out += (name, value)
    return tuple(out)


def mint(
    header_b64: bytes,
    prefix: bytes,
    suffix: bytes,
    jti: bytes,
    iat: int,
    exp: int,
    sign: Callable[[bytes], bytes],
    ec_size: int,
) -> str:
    """One whole assertion: splice the claims, sign, assemble."""
    signing_input = assertion_signing_input(header_b64, prefix, jti, iat, exp, suffix)
    signature = sign(signing_input)
    if type(signature) is not bytes:
        raise TypeError("sign() must return bytes")
    return compact(signing_input, signature, ec_size)


_INT64 = 2**63


def minter(
    header_b64: bytes,
    prefix: bytes,
    suffix: bytes,
    lifetime: int,
    clock: Callable[[], float],
    entropy: Callable[[], bytes],
    sign: Callable[[bytes], bytes],
    ec_size: int,
) -> Callable[[], str]:
    """A zero-argument ``mint``: now = floor(clock()), jti from entropy(), exp = now + lifetime.

    Everything per signer is bound once; each call is one ``mint``. The
    header must be ASCII (it is copied into the token as it is).
    """
    header_b64.decode("ascii")

    def mint_now() -> str:
        now = math.floor(clock())
        if not -_INT64 <= now <= _INT64 - 1 - lifetime:  # a 64-bit exp, as in _speedups
            raise OverflowError("clock() + lifetime does not fit in 64 bits")
        jti = entropy()
        if type(jti) is not bytes:
            raise TypeError("entropy() must return bytes")
        return mint(header_b64, prefix, suffix, jti, now, now + lifetime, sign, ec_size)

    return mint_now


def _check_iat(iat: int) -> None:
    if not -_INT64 <= iat < _INT64:  # _speedups takes a long long
        raise OverflowError("iat does not fit in 64 bits")


def dpop_signing_input(
    header_b64: bytes,
    jti: bytes,
    htm_json: bytes,
    htu_json: bytes,
    iat: int,
    ath: bytes | None,
    nonce_json: bytes | None,
) -> bytes:
    """``header_b64 "." b64url(claims)`` of a DPoP proof (RFC 9449 §4.2).

    The claims are ``{"jti":"<b64url(jti)>","htm":<htm_json>,"htu":<htu_json>,
    "iat":<iat>`` then ``,"ath":"<b64url(ath)>"`` when ``ath`` (the token's
    SHA-256) is given and ``,"nonce":<nonce_json>`` when given, then ``}``.
    The ``*_json`` values are JSON strings (quotes included), copied as they are.
    """
    _check_iat(iat)
    claims = b'{"jti":"%s","htm":%s,"htu":%s,"iat":%d' % (
        b64url_encode(jti),
        htm_json,
        htu_json,
        iat,
    )
    if ath is not None:
        claims += b',"ath":"%s"' % b64url_encode(ath)
    if nonce_json is not None:
        claims += b',"nonce":%s' % nonce_json
    return header_b64 + b"." + b64url_encode(claims + b"}")


def dpop_proof(
    header_b64: bytes,
    jti: bytes,
    htm_json: bytes,
    htu_json: bytes,
    iat: int,
    ath: bytes | None,
    nonce_json: bytes | None,
    sign: Callable[[bytes], bytes],
    ec_size: int,
) -> str:
    """One whole DPoP proof: the claims of ``dpop_signing_input``, signed and assembled."""
    header_b64.decode("ascii")  # copied into the proof as it is, as mint() checks
    signing_input = dpop_signing_input(header_b64, jti, htm_json, htu_json, iat, ath, nonce_json)
    signature = sign(signing_input)
    if type(signature) is not bytes:
        raise TypeError("sign() must return bytes")
    return compact(signing_input, signature, ec_size)


def _part(of: Callable[[str], bytes], value: str) -> bytes:
    part = of(value)
    if type(part) is not bytes:
        raise TypeError("the DPoP claim functions must return bytes")
    return part


def dpop_prover(
    header_b64: bytes,
    clock: Callable[[], float],
    entropy: Callable[[], bytes],
    sign: Callable[[bytes], bytes],
    ec_size: int,
    htm_of: Callable[[str], bytes],
    htu_of: Callable[[str], bytes],
    ath_of: Callable[[str], bytes],
    nonce_of: Callable[[str], bytes],
) -> Callable[[str, str, str | None, str | None], str]:
    """``prove(method, url, access_token, nonce)``: a whole DPoP proof in one call.

    Everything per signer is bound once: the header, clock, entropy, the
    signature, and the functions from the caller's values to the kernel's
    (``htm_of(method)`` and ``htu_of(url)`` return JSON strings,
    ``ath_of(token)`` the token's SHA-256, ``nonce_of(nonce)`` a JSON string;
    they validate, and may cache). ``iat`` = floor(clock()), ``jti`` = entropy().
    """
    header_b64.decode("ascii")

    def prove(method: str, url: str, access_token: str | None, nonce: str | None) -> str:
        htm = _part(htm_of, method)
        htu = _part(htu_of, url)
        ath = None if access_token is None else _part(ath_of, access_token)
        nonce_json = None if nonce is None else _part(nonce_of, nonce)
        now = math.floor(clock())
        _check_iat(now)  # before entropy(), as _speedups converts it to a long long
        jti = entropy()
        if type(jti) is not bytes:
            raise TypeError("entropy() must return bytes")
        return dpop_proof(header_b64, jti, htm, htu, now, ath, nonce_json, sign, ec_size)

    return prove
