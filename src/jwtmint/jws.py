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
from collections.abc import Hashable, Mapping
from datetime import datetime
from typing import Any, Final, cast

from . import _kernels
from ._json import dumps_pyjwt
from .algorithms import Algorithm, SignFunction, get_algorithm
from .errors import InvalidHeaderError, InvalidPayloadError
from .keys import KeySource, SigningKey, load_key

__all__ = ["encode"]


class _Unset:
    def __repr__(self) -> str:
        return "<unset>"


_UNSET: Final = _Unset()
_TIME_CLAIMS = ("exp", "iat", "nbf")


@functools.lru_cache(maxsize=256)
def _cached_signer(key: Any, algorithm: str) -> tuple[SignFunction, int]:
    alg = get_algorithm(algorithm)
    return alg.signer(load_key(key, algorithm=algorithm)), alg.ec_size


def _signer_for(key: KeySource, alg: Algorithm) -> tuple[SignFunction, int]:
    try:
        return _cached_signer(cast(Hashable, key), alg.name)
    except TypeError as exc:  # an unhashable key object: load it every time
        if "unhashable" not in str(exc):
            raise
        return alg.signer(load_key(key, algorithm=alg.name)), alg.ec_size


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
    claims = dict(payload)
    for name in _TIME_CLAIMS:
        value = claims.get(name)
        if isinstance(value, datetime):
            claims[name] = timegm(value.utctimetuple())
    if "iss" in claims and not isinstance(claims["iss"], str):
        raise InvalidPayloadError("the issuer claim (iss) must be a string")

    alg_name: Any
    if isinstance(algorithm, _Unset):
        alg_name = key.algorithm if isinstance(key, SigningKey) else "HS256"
    elif algorithm is None and isinstance(key, SigningKey):
        alg_name = key.algorithm
    else:
        alg_name = algorithm
    if headers and headers.get("alg"):
        alg_name = headers["alg"]
    alg = get_algorithm(alg_name if alg_name is not None else "none")

    header: dict[str, Any] = {"typ": "JWT", "alg": alg_name}
    if headers:
        if "kid" in headers and not isinstance(headers["kid"], str):
            raise InvalidHeaderError("the kid header must be a string")
        if headers.get("b64") is False:
            raise InvalidHeaderError("unencoded payloads (b64=false, RFC 7797) are not supported")
        header.update(headers)
    if not header["typ"]:
        del header["typ"]
    header.pop("b64", None)

    if alg.kty == "oct" and isinstance(key, str):
        # PyJWT signs with the UTF-8 bytes of any str secret, even one that
        # starts with "{": never read it as JWK JSON the way load_key does.
        key = key.encode("utf-8")
    sign, ec_size = _signer_for(key, alg)
    kernel = _kernels.kernel
    signing_input = (
        kernel.b64url_encode(dumps_pyjwt(header, json_encoder, sort_keys=sort_headers))
        + b"."
        + kernel.b64url_encode(dumps_pyjwt(claims, json_encoder))
    )
    return kernel.compact(signing_input, sign(signing_input), ec_size)
