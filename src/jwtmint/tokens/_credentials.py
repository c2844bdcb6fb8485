"""How a token request authenticates: assertions in Duende's order of precedence, or the secret."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from .._assertion import AssertionSigner, ClientAssertion
from ..errors import ConfigurationError
from ._client import CLIENT_SECRET_BASIC, CLIENT_SECRET_POST, NONE, ClientCredentialsClient

__all__ = ["ClientAssertionService", "TokenRequestParameters", "credentials"]


@dataclass(frozen=True, slots=True)
class TokenRequestParameters:
    """What a token request asks for, as a :class:`ClientAssertionService` sees it."""

    scope: str | None = None
    resource: tuple[str, ...] = ()
    parameters: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    force_renewal: bool = False

    def __repr__(self) -> str:
        # parameter values may be sensitive (a tenant, a user hint): names only, as CacheKey
        return (
            f"TokenRequestParameters(scope={self.scope!r}, resource={self.resource!r}, "
            f"parameters=[{','.join(self.parameters)}], force_renewal={self.force_renewal})"
        )


@runtime_checkable
class ClientAssertionService(Protocol):
    """Provides client assertions for named clients (Duende's IClientAssertionService).

    Return ``None`` to let the client's own signer or secret authenticate
    the request. It is asked once per HTTP attempt, retries included: return
    a fresh assertion (a new ``jti``) each time.
    """

    async def get_client_assertion(
        self, client_name: str, parameters: TokenRequestParameters
    ) -> ClientAssertion | None: ...


async def credentials(
    name: str,
    client: ClientCredentialsClient,
    signer: AssertionSigner | None,
    service: ClientAssertionService | None,
    parameters: TokenRequestParameters,
    passed: ClientAssertion | None,
) -> tuple[list[tuple[str, str]], dict[str, str]]:
    """Authentication fields and headers for one attempt, in Duende's order of precedence:
    an assertion passed to ``get_token``, the service's, the client's signer, the secret."""
    assertion = passed
    if assertion is None and service is not None:
        assertion = await service.get_client_assertion(name, parameters)
    if assertion is None and signer is not None:
        assertion = signer.client_assertion()
    if assertion is not None:
        # RFC 7523 §2.2; client_id is optional there but some servers want it
        return [
            ("client_id", client.client_id),
            ("client_assertion_type", assertion.type),
            ("client_assertion", assertion.value),
        ], {}
    method = client.auth_method
    if method == CLIENT_SECRET_BASIC:
        assert client.basic_authorization is not None
        return [], {"Authorization": client.basic_authorization}
    if method == CLIENT_SECRET_POST:
        secret = client.client_secret
        assert isinstance(secret, str)  # the client made it text
        return [("client_id", client.client_id), ("client_secret", secret)], {}
    if method == NONE:
        return [("client_id", client.client_id)], {}
    raise ConfigurationError(
        f"client {name!r} uses {method} without a private_key, and no assertion was passed "
        "or returned by the ClientAssertionService: pass one to "
        "get_token(client_assertion=...), or give the client a key"
    )
