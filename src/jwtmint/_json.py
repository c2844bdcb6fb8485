"""JSON for headers and claims: orjson where it gives the right bytes, json where it must.

Two needs. Our own tokens want compact UTF-8 JSON of plain JSON values,
refusing what JSON cannot carry (NaN, non-string keys) rather than changing
it. ``encode`` wants exactly the bytes PyJWT produces, which are
``json.dumps(obj, separators=(",", ":"))``: ASCII-escaped, Python's float
repr. orjson matches those bytes only for ASCII output without floats and
without DEL (which json escapes), so it is used exactly then, and ``json``
otherwise.
"""

from __future__ import annotations

import json
import math
from typing import Any

import orjson

from .errors import InvalidClaimsError

__all__ = ["dumps_claims", "dumps_pyjwt", "exact_orjson"]

_MAX_DEPTH = 200  # orjson refuses deeper nesting; json does not


def _orjson_exact(obj: Any, depth: int = 0) -> bool:
    """True when orjson's output for ``obj`` equals ``json.dumps`` (modulo non-ASCII)."""
    kind = type(obj)
    if kind is str or kind is int or kind is bool or obj is None:
        return True
    if depth > _MAX_DEPTH:
        return False
    if kind is dict:
        for key, value in obj.items():
            if type(key) is not str:
                return False
            # scalars inline: claims are mostly flat, and a call per value costs more
            inner = type(value)
            if inner is str or inner is int or inner is bool or value is None:
                continue
            if not _orjson_exact(value, depth + 1):
                return False
        return True
    if kind is list:
        return all(_orjson_exact(item, depth + 1) for item in obj)
    return False


def exact_orjson(obj: Any, sort_keys: bool = False) -> bytes | None:
    """orjson's bytes for ``obj`` when they are ``json.dumps(obj, separators=(",", ":"))``'s,
    else None (a value of another type, integers beyond 64 bits, lone surrogates, nesting
    beyond the bound, non-ASCII or DEL output)."""
    if not _orjson_exact(obj):
        return None
    try:
        out = orjson.dumps(obj, option=orjson.OPT_SORT_KEYS if sort_keys else 0)
    except orjson.JSONEncodeError:
        return None
    # json escapes DEL (0x7f) as \u007f; orjson leaves it raw.
    return out if out.isascii() and b"\x7f" not in out else None


def dumps_pyjwt(
    obj: Any, json_encoder: type[json.JSONEncoder] | None = None, sort_keys: bool = False
) -> bytes:
    """``json.dumps(obj, separators=(",", ":"), cls=json_encoder, sort_keys=...)`` as bytes."""
    if json_encoder is None:
        out = exact_orjson(obj, sort_keys)
        if out is not None:
            return out
    return json.dumps(obj, separators=(",", ":"), cls=json_encoder, sort_keys=sort_keys).encode()


def _check_plain(obj: Any, path: str, depth: int = 0) -> None:
    if depth > _MAX_DEPTH:
        raise InvalidClaimsError(f"claims nest deeper than {_MAX_DEPTH} levels at {path}")
    if obj is None or isinstance(obj, str | bool | int):
        return
    if isinstance(obj, float):
        if not math.isfinite(obj):
            raise InvalidClaimsError(
                f"{path} is {obj!r}, which JSON cannot carry; use a finite number"
            )
        return
    if isinstance(obj, dict):
        for key, value in obj.items():
            if not isinstance(key, str):
                raise InvalidClaimsError(f"claim names must be strings, got {key!r} in {path}")
            _check_plain(value, f"{path}.{key}", depth + 1)
        return
    if isinstance(obj, list | tuple):
        for index, item in enumerate(obj):
            _check_plain(item, f"{path}[{index}]", depth + 1)
        return
    raise InvalidClaimsError(
        f"{path} is a {type(obj).__name__}, which is not a JSON value; convert it first"
    )


def dumps_claims(obj: Any, what: str = "claims") -> bytes:
    """Compact UTF-8 JSON of plain JSON values; InvalidClaimsError for anything else."""
    _check_plain(obj, what)
    try:
        return orjson.dumps(obj)
    except orjson.JSONEncodeError:  # integers beyond 64 bits, subclasses orjson refuses
        text = json.dumps(obj, separators=(",", ":"), ensure_ascii=False)
    try:
        return text.encode()
    except UnicodeEncodeError:
        raise InvalidClaimsError(
            f"{what} holds a lone surrogate, which UTF-8 cannot carry; fix the string"
        ) from None
