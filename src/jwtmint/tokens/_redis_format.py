"""How a cache entry is laid out in Redis: key names, the value format and its AES-GCM seal.

Layout, version 1 (``prefix`` defaults to ``jwtmint:``)::

    {prefix}v1:{<id>}:token    the entry's value, expiring (PX) when the token does
    {prefix}v1:{<id>}:lock     the owner value of the instance requesting it (SET NX PX)
    {prefix}v1:invalidate      pub/sub channel: "<instance> <id> w" after a write,
                               "<instance> <id> r" after a lock is released

``<id>`` is 22 base64url characters of SHA-256 over the cache key (client,
identity, scope, resources, parameters, DPoP thumbprint): parameter values may
be sensitive, so the key names carry none of them. The braces are a Redis
Cluster hash tag: both keys of one entry live in one slot.

Value, version 1: ``JM1`` then ``P`` and the JSON document (plain), or ``S``,
an 8-byte key id (SHA-256 of the key, truncated), a 12-byte nonce and the
AES-256-GCM ciphertext of the JSON document with its tag (sealed). The
associated data is the canonical cache key, so a value copied into another
entry's slot does not open. JSON: ``{"access_token", "token_type",
"expires_at", "scope", "renew_at", "raw"}``.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from typing import Any

import orjson
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from .._b64 import b64url_encode
from ..errors import ConfigurationError
from ._cache import CacheEntry, CacheKey
from ._token import Token, header_safe

__all__ = ["EntryCodec", "canonical_key", "entry_id"]

MAGIC = b"JM1"
PLAIN = b"P"
SEALED = b"S"
_KEY_ID_SIZE = 8
_NONCE_SIZE = 12
_TAG_SIZE = 16


def canonical_key(key: CacheKey) -> bytes:
    """The cache key as canonical bytes: the input of its id and the seal's associated data."""
    return orjson.dumps(
        [
            "jwtmint-cache-v1",
            key.client,
            key.identity,
            key.scope,
            list(key.resource),
            [[name, list(values)] for name, values in key.parameters],
            key.dpop_jkt,
        ]
    )


def entry_id(key: CacheKey) -> str:
    """22 base64url characters (128 bits) naming the entry in Redis."""
    return b64url_encode(hashlib.sha256(canonical_key(key)).digest()[:16]).decode("ascii")


class EntryCodec:
    """Writes entries as bytes and reads them back; sealed when keys are given.

    ``keys`` are 32-byte AES keys: the first seals, any of them opens, so a
    new key can be put first while values sealed with the old one are still
    read until they expire. With keys, a plain value is refused (it could be
    a token written by anyone who can reach Redis).
    """

    __slots__ = ("_openers", "_sealer", "sealed")

    def __init__(self, keys: Sequence[bytes] | None) -> None:
        if keys is not None and (isinstance(keys, bytes | str) or not keys):
            raise ConfigurationError(
                "encryption_keys must be a non-empty list of 32-byte keys (the first seals)"
            )
        openers: dict[bytes, AESGCM] = {}
        for key in keys or ():
            if not isinstance(key, bytes) or len(key) != 32:
                raise ConfigurationError(
                    "each encryption key must be 32 random bytes (AES-256), e.g. os.urandom(32)"
                )
            openers[_key_id(key)] = AESGCM(key)
        self._openers = openers
        self._sealer = (_key_id(keys[0]), openers[_key_id(keys[0])]) if keys else None
        self.sealed = keys is not None

    def encode(self, key: CacheKey, entry: CacheEntry) -> bytes:
        token = entry.token
        document = orjson.dumps(
            {
                "access_token": token.access_token,
                "token_type": token.token_type,
                "expires_at": token.expires_at,
                "scope": token.scope,
                "renew_at": entry.renew_at,
                "raw": dict(token.raw),
            }
        )
        return self.seal(document, canonical_key(key))

    def decode(self, key: CacheKey, value: bytes) -> CacheEntry | None:
        """The entry, or ``None`` for anything that is not a value this codec would write
        for ``key`` (another format or version, a foreign key, a moved or altered value)."""
        document = self.open(value, canonical_key(key))
        return None if document is None else _entry(document)

    def seal(self, document: bytes, context: bytes) -> bytes:
        """``document`` as this codec stores it: sealed (AES-GCM, ``context`` as associated
        data, so it opens only where it was meant to be) when it has keys, else plain."""
        if self._sealer is None:
            return MAGIC + PLAIN + document
        key_id, aead = self._sealer
        nonce = os.urandom(_NONCE_SIZE)
        return MAGIC + SEALED + key_id + nonce + aead.encrypt(nonce, document, context)

    def open(self, value: bytes, context: bytes) -> bytes | None:
        """The document :meth:`seal` wrote for ``context``, or ``None`` (another format or
        version, a foreign key, moved or altered, or plain where keys are set)."""
        if value[:3] != MAGIC:
            return None
        kind, body = value[3:4], value[4:]
        if kind == SEALED:
            aead = self._openers.get(body[:_KEY_ID_SIZE])
            if aead is None or len(body) < _KEY_ID_SIZE + _NONCE_SIZE + _TAG_SIZE:
                return None
            nonce = body[_KEY_ID_SIZE : _KEY_ID_SIZE + _NONCE_SIZE]
            try:
                return aead.decrypt(nonce, body[_KEY_ID_SIZE + _NONCE_SIZE :], context)
            except (InvalidTag, ValueError):
                return None
        if kind == PLAIN and not self.sealed:
            return body
        return None


def _key_id(key: bytes) -> bytes:
    return hashlib.sha256(b"jwtmint-cache-key-id\x00" + key).digest()[:_KEY_ID_SIZE]


def _entry(document: bytes) -> CacheEntry | None:
    try:
        data: Any = orjson.loads(document)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(data, dict):
        return None
    access_token, token_type = data.get("access_token"), data.get("token_type")
    expires_at, renew_at = data.get("expires_at"), data.get("renew_at")
    scope, raw = data.get("scope"), data.get("raw")
    if not (
        isinstance(access_token, str)
        and access_token
        and isinstance(token_type, str)
        and token_type
        and isinstance(expires_at, int | float)
        and not isinstance(expires_at, bool)
        and isinstance(renew_at, int | float)
        and not isinstance(renew_at, bool)
        and (scope is None or isinstance(scope, str))
        and isinstance(raw, dict)
        and header_safe(access_token, token_type)  # it goes into Authorization headers
    ):
        return None
    return CacheEntry(Token(access_token, token_type, float(expires_at), scope, raw), renew_at)
