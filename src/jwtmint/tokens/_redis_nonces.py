"""DPoP nonces shared by a fleet through the Redis cache's channel (RFC 9449 §8, §9).

When one instance is challenged for a nonce, it announces the nonce on the
channel the cache already uses for its invalidations, and every other
instance starts sending it at once, instead of each meeting the challenge on
its own. Announcements are sealed like cached tokens when the cache has
encryption keys, so that nobody else who can publish on Redis can plant
nonces; one older than the nonce an instance holds is ignored.
"""

from __future__ import annotations

from collections.abc import Callable

import orjson

from .._b64 import b64url_decode, b64url_encode
from ._dpop import DPoPNonces
from ._redis_format import EntryCodec

__all__ = ["NONCE", "SharedNonces"]

#: the kind of a nonce announcement on the cache's channel
NONCE = "n"
#: the associated data of a sealed announcement: it opens as nothing else
_CONTEXT = b"jwtmint-dpop-nonce-v1"
#: a server key is "as:" + an origin, or an origin: longer ones are not ours
_MAX_SERVER = 300


class SharedNonces:
    """The DPoP nonce stores of the managers on one cache, and their announcements.

    ``publish(message)`` sends a channel message (the cache bounds and counts
    it); ``instance`` starts every message, as for the cache's own.
    """

    __slots__ = ("_codec", "_instance", "_publish", "stores")

    def __init__(self, codec: EntryCodec, instance: str, publish: Callable[[str], None]) -> None:
        self._codec = codec
        self._instance = instance
        self._publish = publish
        self.stores: list[DPoPNonces] = []

    def attach(self, nonces: DPoPNonces) -> None:
        self.stores.append(nonces)
        nonces.publish = self.announce

    def announce(self, server: str, nonce: str, learned_at: float) -> None:
        """Give ``server``'s nonce to this process's other managers and to the fleet."""
        for store in self.stores:
            store.learn(server, nonce, learned_at=learned_at)
        sealed = self._codec.seal(orjson.dumps([server, nonce, learned_at]), _CONTEXT)
        self._publish(f"{self._instance} {b64url_encode(sealed).decode('ascii')} {NONCE}")

    def received(self, blob: str) -> None:
        """An announcement from another instance: learned if it opens and makes sense."""
        try:
            document = self._codec.open(b64url_decode(blob), _CONTEXT)
            server, nonce, learned_at = orjson.loads(document) if document else (None,) * 3
        except (ValueError, TypeError):  # not base64url, not JSON, not three items
            return
        if (
            isinstance(server, str)
            and len(server) <= _MAX_SERVER
            and isinstance(nonce, str)
            and isinstance(learned_at, int | float)
            and not isinstance(learned_at, bool)
        ):
            for store in self.stores:
                store.learn(server, nonce, learned_at=float(learned_at))
