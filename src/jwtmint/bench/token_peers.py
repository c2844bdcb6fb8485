"""The two sides of ``jwtmint bench tokens``: the named clients, as jwtmint and as authlib.

A :class:`ClientSpec` is one client registered at the token endpoint, with
a client_secret_basic secret or its own ES256 key (private_key_jwt, a fresh
assertion per request). jwtmint configures it as a
:class:`~jwtmint.tokens.ClientCredentialsClient`; authlib as an
``AsyncOAuth2Client`` (imported when first used: authlib is a bench extra).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any

from .._keys import SigningKey, generate_key
from ..tokens import ClientCredentialsClient
from .adapters import import_peer, importing_quietly
from .settings import BASIC, PRIVATE_KEY_JWT
from .token_endpoint import EndpointProcess

__all__ = [
    "AUTHLIB",
    "CONNECTIONS",
    "FLOOR",
    "JWTMINT",
    "ClientSpec",
    "authlib_client",
    "authlib_modules",
    "jwtmint_client",
    "make_clients",
]

JWTMINT, AUTHLIB, FLOOR = "jwtmint", "authlib", "floor"
#: jwtmint's connection limit (the TokenManager default), and the shared httpx transport's
CONNECTIONS = 100


@dataclass(frozen=True)
class ClientSpec:
    """One named client: its id, and its secret or ES256 key (registered at the endpoint)."""

    client_id: str
    method: str
    secret: str | None = None
    key: SigningKey | None = None

    def registration(self) -> dict[str, Any]:
        """What the endpoint process registers: the client's public JWK, or its secret."""
        if self.key is not None:
            return {"client_id": self.client_id, "jwk": self.key.public_jwk()}
        return {"client_id": self.client_id, "secret": self.secret}


def make_clients(method: str, count: int) -> list[ClientSpec]:
    """``count`` clients of ``method``, each with a fresh secret or ES256 key."""
    prefix = "basic" if method == BASIC else "es256"
    if method == BASIC:
        return [
            ClientSpec(f"{prefix}-{i:05d}", method, secret=secrets.token_urlsafe(32))
            for i in range(count)
        ]
    return [
        ClientSpec(f"{prefix}-{i:05d}", method, key=generate_key("ES256")) for i in range(count)
    ]


def jwtmint_client(spec: ClientSpec, server: EndpointProcess) -> ClientCredentialsClient:
    """jwtmint's configuration of ``spec`` for a :class:`~jwtmint.tokens.TokenManager`."""
    if spec.key is not None:
        # the recommended setup: aud = issuer; the algorithm named, so no discovery request
        return ClientCredentialsClient(
            spec.client_id,
            token_endpoint=server.token_url,
            issuer=server.issuer,
            private_key=spec.key,
            signing_algorithm="ES256",
        )
    return ClientCredentialsClient(
        spec.client_id, token_endpoint=server.token_url, client_secret=spec.secret
    )


def authlib_modules() -> tuple[Any, Any, Any]:
    """httpx, AsyncOAuth2Client and PrivateKeyJWT, typed Any (authlib ships no types)."""
    with importing_quietly():  # authlib 1.9 deprecates httpx (for httpx2) on import
        client = import_peer("authlib.integrations.httpx_client").AsyncOAuth2Client
        private_key_jwt = import_peer("authlib.oauth2.rfc7523").PrivateKeyJWT
    return import_peer("httpx"), client, private_key_jwt


def authlib_client(spec: ClientSpec, server: EndpointProcess, **httpx_options: Any) -> Any:
    """An ``AsyncOAuth2Client`` for ``spec`` (client_credentials, secret or private_key_jwt)."""
    _, client_class, private_key_jwt = authlib_modules()
    if spec.key is not None:
        ec_key = import_peer("joserfc.jwk").ECKey.import_key(spec.key.key)
        client = client_class(
            spec.client_id,
            ec_key,
            token_endpoint_auth_method=PRIVATE_KEY_JWT,
            token_endpoint=server.token_url,
            grant_type="client_credentials",
            **httpx_options,
        )
        client.register_client_auth_method(private_key_jwt(server.token_url, alg="ES256"))
        return client
    return client_class(
        spec.client_id,
        spec.secret,
        token_endpoint=server.token_url,
        grant_type="client_credentials",
        **httpx_options,
    )
