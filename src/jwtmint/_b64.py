"""Base64url helpers for cold paths (key loading, JWKs); the hot path uses the kernels."""

from __future__ import annotations

import base64
import re

from ._pure import b64url_encode

__all__ = ["b64url_decode", "b64url_encode", "b64url_uint", "uint_from_b64url"]


_B64URL = re.compile(rb"[A-Za-z0-9_-]*")


def b64url_decode(text: str | bytes) -> bytes:
    """Base64url (RFC 4648 §5) to bytes, strictly: any other character is an error.

    The ValueError raised never carries the input, which may be a private key.
    """
    if isinstance(text, str):
        if not text.isascii():
            raise ValueError("not base64url: non-ASCII characters")
        text = text.encode("ascii")
    elif not isinstance(text, bytes | bytearray | memoryview):
        # bytes(n) of an int would allocate n zero bytes: a JWK member {"d": 10**11} asked
        # for 100 GB before this check
        raise TypeError(f"base64url text must be str or bytes, not {type(text).__name__}")
    data = bytes(text).rstrip(b"=")
    if not _B64URL.fullmatch(data) or len(data) % 4 == 1:
        raise ValueError("not base64url (RFC 4648 §5)")
    return base64.urlsafe_b64decode(data + b"=" * (-len(data) % 4))


def b64url_uint(value: int, size: int | None = None) -> str:
    """An unsigned integer as base64url of its big-endian bytes (RFC 7518 §2, Base64urlUInt)."""
    length = size if size is not None else max(1, (value.bit_length() + 7) // 8)
    return b64url_encode(value.to_bytes(length, "big")).decode("ascii")


def uint_from_b64url(text: str) -> int:
    return int.from_bytes(b64url_decode(text), "big")
