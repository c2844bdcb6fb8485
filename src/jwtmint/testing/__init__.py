"""A loopback OAuth 2.0 authorization server for tests and demos.

:class:`TokenEndpoint` runs an aiohttp server on 127.0.0.1 that behaves like a
strict authorization server's token endpoint for the client credentials grant
(RFC 6749 §4.4): it verifies client authentication for real (RFC 6749 §2.3,
RFC 7523 §3) with its own JWS code, issues opaque bearer tokens, publishes
RFC 8414 metadata, guards a protected resource, records every request
(:class:`RecordedRequest`, :class:`RecordedResourceRequest`) and answers with a
:class:`Fault` when told to. It checks DPoP proofs (RFC 9449) with the same
independent code, issues DPoP-bound tokens, requires and rotates server nonces when
asked, and keeps each proof it saw as a :class:`RecordedProof`.

::

    key = jwtmint.generate_key("ES256")
    async with TokenEndpoint() as ep:
        ep.register_client("invoice", public_key=key)      # registers key.public_jwk()
        signer = jwtmint.AssertionSigner(key, "invoice", ep.issuer)
        ...  # POST grant_type=client_credentials with signer.client_assertion() to ep.token_url

:class:`RedisServer` and :class:`RedisClusterServers` start throwaway
``redis-server`` processes on loopback ports, for tests of a
:class:`~jwtmint.tokens.RedisTokenCache`.
"""

from __future__ import annotations

from ._endpoint import TokenEndpoint
from ._model import Fault, RecordedProof, RecordedRequest, RecordedResourceRequest
from ._redis import RedisClusterServers, RedisServer, redis_server_available

__all__ = [
    "Fault",
    "RecordedProof",
    "RecordedRequest",
    "RecordedResourceRequest",
    "RedisClusterServers",
    "RedisServer",
    "TokenEndpoint",
    "redis_server_available",
]
