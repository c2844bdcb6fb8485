"""Base64url helpers for cold paths (key loading, JWKs); the hot path uses the kernels."""

from __future__ import annotations

import base64

from ._pure import b64url_encode

__all__ = ["b64url_decode", "b64url_encode", "b64url_uint", "uint_from_b64url"]


def b64url_decode(text: str | bytes) -> bytes:
    """Base64url without padding to bytes; raises ValueError when malformed."""
    data = text.encode("ascii") if isinstance(text, str) else text
    return base64.urlsafe_b64decode(data + b"=" * (-len(data) % 4))


def b64url_uint(value: int, size: int | None = None) -> str:
    """An unsigned integer as base64url of its big-endian bytes (RFC 7518 §2, Base64urlUInt)."""
    length = size if size is not None else max(1, (value.bit_length() + 7) // 8)
    return b64url_encode(value.to_bytes(length, "big")).decode("ascii")


def uint_from_b64url(text: str) -> int:
    return int.from_bytes(b64url_decode(text), "big")
