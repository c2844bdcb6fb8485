"""The byte protocol between jwtmint._batch and its signing workers (no pickle).

A frame is a 4-byte big-endian length and that many bytes. A request holds
the algorithm, the private key as PKCS#8 PEM and the messages; a reply holds
the signatures (kind ``S``) or an error text (kind ``E``). Every field is
length-prefixed bytes, so nothing in a frame is ever evaluated.
"""

from __future__ import annotations

import struct

__all__ = ["MAX_FRAME", "PROTOCOL", "decode_fields", "encode_fields", "frame_length"]

#: The first field of every request: a worker of another jwtmint version refuses it.
PROTOCOL = b"jwtmint-sign/1"

#: Largest frame either side accepts: a batch of a million 300-byte messages fits.
MAX_FRAME = 1 << 30

_U32 = struct.Struct("!I")


def encode_fields(fields: list[bytes]) -> bytes:
    """A frame of length-prefixed fields, itself length-prefixed."""
    body = b"".join(_U32.pack(len(field)) + field for field in fields)
    return _U32.pack(len(body)) + body


def frame_length(header: bytes) -> int:
    """The body length announced by a frame's 4-byte header; ValueError when too big."""
    length: int = _U32.unpack(header)[0]
    if length > MAX_FRAME:
        raise ValueError(f"frame of {length} bytes exceeds the {MAX_FRAME}-byte limit")
    return length


def decode_fields(body: bytes) -> list[bytes]:
    """The fields of a frame body; ValueError when they do not add up exactly."""
    fields = []
    view = memoryview(body)
    position = 0
    while position < len(view):
        if position + 4 > len(view):
            raise ValueError("truncated field length")
        (length,) = _U32.unpack_from(view, position)
        position += 4
        if position + length > len(view):
            raise ValueError("truncated field")
        fields.append(bytes(view[position : position + length]))
        position += length
    return fields
