"""``encode``: a drop-in for PyJWT's ``jwt.encode`` (RFC 7515 compact serialisation).

Same arguments, same defaults, and for the deterministic algorithms (HS*,
RS*, EdDSA) the same bytes. The differences are deliberate and safer:
``none`` is refused, and HMAC secrets shorter than the hash (which PyJWT only
warns about) and RSA keys under 2048 bits raise :class:`InvalidKeyError`.
A key given as PEM text or a secret is parsed once and cached by value.
"""

from __future__ import annotations

import functools
import json
from calendar import timegm
from collections.abc import Mapping
from datetime import datetime
from typing import Any, Final

from . import _kernels
from ._algorithms import Algorithm, SignFunction, get_algorithm
from ._headers import check_header_params
from ._json import dumps_pyjwt
from ._keys import KeySource, SigningKey, load_key, load_secret
from ._keytypes import PRIVATE_KEY_TYPES
from .errors import (
    InvalidClaimsError,
    InvalidHeaderError,
    InvalidPayloadError,
    JwtMintError,
)

__all__ = ["encode"]


class _Unset:
    def __repr__(self) -> str:
        return "<unset>"


_UNSET: Final = _Unset()
_TIME_CLAIMS = ("exp", "iat", "nbf")


@functools.lru_cache(maxsize=256, typed=True)  # typed: a str is never compared with bytes
def _cached_signer(key: Any, algorithm: str) -> tuple[SignFunction, int]:
    alg = get_algorithm(algorithm)
    if alg.kty == "oct" and isinstance(key, str | bytes):
        # PyJWT signs with the bytes of any str/bytes secret: never parse it as a key
        return alg.signer(load_secret(key, algorithm)), alg.ec_size
    return alg.signer(load_key(key, algorithm=algorithm)), alg.ec_size


#: Key objects, immutable, cached by identity (secrets and PEM text are cached by value in
#: _cached_signer). Paths are read every time (the file may be rotated); mappings are mutable.
_KEY_OBJECTS = (SigningKey, *PRIVATE_KEY_TYPES)

#: key objects by identity: hashing a cryptography key (it compares by value) costs more
#: than the lookup; each entry holds its key, so that id cannot be reused while cached
_by_identity: dict[tuple[int, str], tuple[Any, tuple[SignFunction, int]]] = {}


def clear_signer_cache() -> None:
    """Forget every cached signer (they bind the kernel of their day: tests swap kernels)."""
    _cached_signer.cache_clear()
    _by_identity.clear()
    _prepared.clear()


def _signer_for(key: KeySource, alg: Algorithm) -> tuple[SignFunction, int]:
    if isinstance(key, (str, bytes)):
        return _cached_signer(key, alg.name)
    slot = (id(key), alg.name)
    entry = _by_identity.get(slot)
    if entry is not None and entry[0] is key:
        return entry[1]
    if isinstance(key, bytearray | memoryview):
        return _cached_signer(bytes(key), alg.name)  # by value, as the bytes it holds now
    if not isinstance(key, _KEY_OBJECTS):
        return _cached_signer.__wrapped__(key, alg.name)
    signer = _cached_signer.__wrapped__(key, alg.name)
    if len(_by_identity) >= 256:
        _by_identity.clear()
    _by_identity[slot] = (key, signer)
    return signer


@functools.lru_cache(maxsize=64)
def _plain_header(kernel: Any, alg: str, sort_keys: bool) -> bytes:
    """The encoded header of a call without ``headers``: the same for every such call."""
    header = {"typ": "JWT", "alg": alg}
    return bytes(kernel.b64url_encode(dumps_pyjwt(header, None, sort_keys=sort_keys)))


def encode(
    payload: Mapping[str, Any],
    key: KeySource,
    algorithm: str | _Unset | None = _UNSET,
    headers: Mapping[str, Any] | None = None,
    json_encoder: type[json.JSONEncoder] | None = None,
    sort_headers: bool = True,
) -> str:
    """Sign ``payload`` as a compact JWS, like ``jwt.encode``.

    ``algorithm`` defaults to HS256 (or the key's own algorithm when ``key``
    is a :class:`SigningKey`); ``headers["alg"]`` wins over it. ``typ`` is
    "JWT" unless ``headers`` sets it (to None or "" to omit it). ``datetime``
    values of ``exp``, ``iat`` and ``nbf`` become epoch seconds. The payload
    is copied, never changed.
    """
    if not isinstance(payload, Mapping):
        raise InvalidPayloadError(
            f"payload must be a mapping of claims (a dict), got {type(payload).__name__}"
        )
    if headers is not None and type(headers) is not dict and not isinstance(headers, Mapping):
        raise InvalidHeaderError(
            f"headers must be a mapping of header parameters (a dict), got {type(headers).__name__}"
        )
    if json_encoder is not None and not isinstance(json_encoder, type):
        raise InvalidPayloadError(
            "json_encoder must be a class (a json.JSONEncoder subclass), got an instance of "
            f"{type(json_encoder).__name__}"
        )
    alg_name: Any
    if isinstance(algorithm, _Unset):
        alg_name = key.algorithm if isinstance(key, SigningKey) else "HS256"
    elif algorithm is None and isinstance(key, SigningKey):
        alg_name = key.algorithm
    else:
        alg_name = algorithm
    if headers and headers.get("alg"):
        alg_name = headers["alg"]
    return sign_jws(payload, key, alg_name, headers, json_encoder, sort_headers, own_errors=True)


def sign_jws(
    payload: Mapping[str, Any],
    key: KeySource,
    alg_name: Any,
    headers: Mapping[str, Any] | None,
    json_encoder: type[json.JSONEncoder] | None,
    sort_headers: bool,
    *,
    own_errors: bool = False,
) -> str:
    """``encode`` once the algorithm is chosen (``patch_pyjwt`` calls this directly).

    Claims or headers that JSON (or the time conversion) cannot write raise what ``json``
    and ``datetime`` raise, as PyJWT does, unless ``own_errors``: then jwtmint's
    :class:`InvalidClaimsError` / :class:`InvalidHeaderError`, the cause chained."""
    # the common call in C: plain JSON claims (no datetime), flat str headers, no encoder
    if (
        json_encoder is None
        and type(payload) is dict
        and type(payload.get("iss", "")) is str
        and type(alg_name) is str
        and type(sort_headers) is bool
    ):
        prepared = _prepared_call(key, alg_name, headers, sort_headers)
        if prepared is not None:
            _, header_b64, sign, ec_size = prepared
            token: str | None = _kernels.kernel.jws_plain(payload, header_b64, sign, ec_size)
            if token is not None:
                return token
            # claims the kernel declined: the same signer (a key read once, not twice)
            signer = (sign, ec_size)
            return _sign_general(
                payload, key, alg_name, headers, None, sort_headers, signer, own_errors
            )
    return _sign_general(
        payload, key, alg_name, headers, json_encoder, sort_headers, None, own_errors
    )


_Prepared = tuple[Any, bytes, SignFunction, int]

#: (key, encoded header, sign, ec_size) of calls by (key, algorithm, sort_headers, *header
#: items): a str/bytes key by value, a key object by identity (held, so its id stays its own)
_prepared: dict[tuple[Any, ...], _Prepared] = {}


def _prepared_call(key: Any, alg_name: str, headers: Any, sort_headers: bool) -> _Prepared | None:
    """The encoded header and the signer of a call without headers or with a flat ``dict`` of
    ``str`` (checked, encoded and loaded once per distinct key, algorithm and header); None for
    any other headers, or when a check refuses: the general path then raises, in its order
    (the claims' errors, such as a datetime that does not convert, before the others)."""
    items = () if not headers else _str_items(headers)
    if items is None:
        return None
    by_value = type(key) is str or type(key) is bytes
    # the key's type first: a str key is never compared with a bytes one (python -b warns)
    slot = (type(key), key if by_value else id(key), alg_name, sort_headers, *items)
    entry = _prepared.get(slot)
    if entry is not None and (by_value or entry[0] is key):
        return entry
    try:
        alg = get_algorithm(alg_name)
        header_b64 = _header_segment(alg_name, items, sort_headers)
        sign, ec_size = _signer_for(key, alg)
    except Exception:
        return None
    entry = (key, header_b64, sign, ec_size)
    if by_value or isinstance(key, _KEY_OBJECTS):  # paths and mappings are read every time
        if len(_prepared) >= 256:
            _prepared.clear()
        _prepared[slot] = entry
    return entry


def _str_items(headers: Any) -> tuple[str, ...] | None:
    return _kernels.kernel.str_items(headers) if type(headers) is dict else None


def _header_segment(alg_name: str, items: tuple[str, ...], sort_headers: bool) -> bytes:
    """The encoded header of a call whose headers are ``items`` (k1, v1, ...), checked: built
    from the items, not the caller's dict, which another thread may be changing."""
    if not items:
        return _plain_header(_kernels.kernel, alg_name, sort_headers)
    headers = dict(zip(items[::2], items[1::2], strict=True))
    check_header_params(headers)
    return _header_b64(alg_name, headers, None, sort_headers)


def _header_b64(
    alg_name: Any,
    headers: Mapping[str, Any],
    json_encoder: type[json.JSONEncoder] | None,
    sort_headers: bool,
) -> bytes:
    header: dict[str, Any] = {"typ": "JWT", "alg": alg_name}
    header.update(headers)
    if not header["typ"]:
        del header["typ"]
    header.pop("b64", None)
    return _kernels.kernel.b64url_encode(dumps_pyjwt(header, json_encoder, sort_keys=sort_headers))


def _sign_general(
    payload: Mapping[str, Any],
    key: KeySource,
    alg_name: Any,
    headers: Mapping[str, Any] | None,
    json_encoder: type[json.JSONEncoder] | None,
    sort_headers: bool,
    signer: tuple[SignFunction, int] | None = None,
    own_errors: bool = False,
) -> str:
    # never changed in place: copied when a datetime is converted (or it is no dict)
    claims = payload if type(payload) is dict else dict(payload)
    for name in _TIME_CLAIMS:
        value = claims.get(name)
        if isinstance(value, datetime):
            if claims is payload:
                claims = dict(payload)
            try:
                claims[name] = timegm(value.utctimetuple())
            except (OverflowError, ValueError) as exc:
                if not own_errors:
                    raise
                raise InvalidClaimsError(
                    f"the {name} claim's datetime has no time in seconds since the epoch in "
                    f"UTC ({exc}); give a datetime between the years 1 and 9999 in UTC"
                ) from exc
    if "iss" in claims and not isinstance(claims["iss"], str):
        raise InvalidPayloadError("the issuer claim (iss) must be a string")
    alg = get_algorithm(alg_name if alg_name is not None else "none")
    if headers:
        check_header_params(headers)
    # every refusal (the algorithm, the headers, the key) comes before any JSON is written,
    # and the claims before the header, as PyJWT writes them: a json_encoder runs once
    sign, ec_size = signer if signer is not None else _signer_for(key, alg)
    kernel = _kernels.kernel
    try:
        claims_json = dumps_pyjwt(claims, json_encoder)
    except (TypeError, ValueError, RecursionError) as exc:
        if not own_errors or isinstance(exc, JwtMintError):
            raise
        # a value of a type JSON has not is a TypeError (json's own class), the rest a value
        error = InvalidPayloadError if isinstance(exc, TypeError) else InvalidClaimsError
        raise error(
            f"the claims cannot be written as JSON ({exc}); give str, int, float, bool, None, "
            "list and dict values, or a json_encoder that writes the others"
        ) from exc
    claims_b64 = kernel.b64url_encode(claims_json)
    if headers or json_encoder is not None:
        try:
            header_b64 = _header_b64(alg_name, headers or {}, json_encoder, sort_headers)
        except (TypeError, ValueError, RecursionError) as exc:
            if not own_errors or isinstance(exc, JwtMintError):
                raise
            raise InvalidHeaderError(
                f"the headers cannot be written as JSON ({exc}); give str keys and JSON "
                "values, or a json_encoder that writes the others"
            ) from exc
    else:
        header_b64 = _plain_header(kernel, alg_name, bool(sort_headers))
    signing_input = header_b64 + b"." + claims_b64
    return kernel.compact(signing_input, sign(signing_input), ec_size)
