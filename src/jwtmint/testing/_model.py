"""The values a test sees: :class:`Fault`, the request records, and the OAuth error."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..errors import ConfigurationError

__all__ = [
    "AUTH_METHODS",
    "Fault",
    "OAuthError",
    "RecordedProof",
    "RecordedRequest",
    "RecordedResourceRequest",
]

#: RFC 7591 §2 / OpenID Connect Core §9 names of the client authentication methods.
AUTH_METHODS = (
    "client_secret_basic",
    "client_secret_post",
    "client_secret_jwt",
    "private_key_jwt",
    "none",
)

# RFC 6749 §5.2: error_description is limited to %x20-21 / %x23-5B / %x5D-7E
_NOT_DESCRIPTION_CHARS = re.compile(r"[^\x20-\x21\x23-\x5b\x5d-\x7e]")


@dataclass(frozen=True)
class Fault:
    """What the endpoint answers instead of processing a token request.

    ``status`` and ``body`` make the response: a dict body is sent as JSON, a
    ``str`` or ``bytes`` body as it is (``text/plain`` unless ``headers`` set a
    ``Content-Type``), and no body means an RFC 6749 §5.2 error document:
    ``temporarily_unavailable`` for 5xx and 429, ``invalid_client`` for 401,
    ``invalid_request`` for other 4xx, and an empty body otherwise.
    ``headers`` are added to the response (``{"Retry-After": "1"}``, RFC 9110
    §10.2.3). ``delay`` seconds pass before anything is answered (to provoke
    client timeouts; closing the endpoint cuts the wait short). ``garbage``
    answers 200 with an HTML page instead of JSON, as a misconfigured proxy
    would; ``drop`` closes the connection without any HTTP response.
    """

    status: int = 503
    body: bytes | str | dict[str, Any] | None = None
    headers: Mapping[str, str] | None = None
    delay: float = 0.0
    garbage: bool = False
    drop: bool = False

    def __post_init__(self) -> None:
        if isinstance(self.status, bool) or not isinstance(self.status, int):
            raise ConfigurationError("Fault.status must be an int")
        if not 200 <= self.status <= 599:
            raise ConfigurationError("Fault.status must be a final HTTP status (200-599)")
        if not isinstance(self.body, bytes | str | dict | type(None)):
            raise ConfigurationError("Fault.body must be bytes, str, a dict (sent as JSON) or None")
        if not (isinstance(self.delay, int | float) and math.isfinite(self.delay)):
            raise ConfigurationError("Fault.delay must be a finite number of seconds")
        if self.delay < 0:
            raise ConfigurationError("Fault.delay cannot be negative")


@dataclass(frozen=True)
class RecordedProof:
    """The DPoP proof a request carried (RFC 9449 §4.2), decoded as sent, whether or not accepted.

    ``header`` and ``claims`` are None when the proof is no compact JWS with JSON parts.
    The values of private JWK members are never kept: ``header["jwk"]`` holds the public
    members only, and ``private_jwk_members`` names what was left out (a proof should have
    none). ``jkt`` is the RFC 7638 thumbprint of that public JWK, when it has one.
    ``header_count`` is how many ``DPoP`` header fields the request had (RFC 9449 §4.3: one);
    the first is the one decoded.
    """

    header: dict[str, Any] | None
    claims: dict[str, Any] | None
    jkt: str | None = None
    private_jwk_members: tuple[str, ...] = ()
    header_count: int = 1

    def _claim(self, name: str) -> Any:
        return None if self.claims is None else self.claims.get(name)

    @property
    def jti(self) -> Any:
        """The ``jti`` claim as sent (None when absent)."""
        return self._claim("jti")

    @property
    def htm(self) -> Any:
        """The ``htm`` claim: the HTTP method the proof is for."""
        return self._claim("htm")

    @property
    def htu(self) -> Any:
        """The ``htu`` claim: the URL the proof is for, as the client wrote it."""
        return self._claim("htu")

    @property
    def iat(self) -> Any:
        """The ``iat`` claim as sent."""
        return self._claim("iat")

    @property
    def nonce(self) -> Any:
        """The ``nonce`` claim (a server's ``DPoP-Nonce``), None when absent."""
        return self._claim("nonce")

    @property
    def ath(self) -> Any:
        """The ``ath`` claim (hash of the access token), None when absent."""
        return self._claim("ath")


@dataclass(frozen=True)
class RecordedRequest:
    """One request that reached the token endpoint, as the test sees it afterwards.

    Everything is taken from the request as sent, so for a refused request
    ``client_id``, ``jti`` and the assertion members are what the client
    claimed, not what was verified. ``parameters`` holds every form field but
    the client authentication ones (RFC 6749 §2.3) and ``grant_type``,
    ``scope`` and ``resource``. No secret and no raw assertion is kept:
    ``client_secret`` is never recorded, the assertion only as its decoded
    header and claims. ``outcome`` is ``"issued"``, ``"fault"``, the RFC 6749
    §5.2 error code, or ``"server_error"`` when a bug in the endpoint made it
    answer 500; ``status`` the HTTP status answered (for a dropped
    connection, the fault's status); ``at`` the endpoint's clock. ``dpop`` is the
    request's DPoP proof, decoded (None without a ``DPoP`` header).
    """

    client_id: str | None
    auth_method: str | None
    grant_type: str | None
    scope: str | None
    resource: tuple[str, ...]
    parameters: dict[str, list[str]]
    jti: str | None
    assertion_claims: dict[str, Any] | None
    assertion_header: dict[str, Any] | None
    outcome: str
    at: float
    status: int
    dpop: RecordedProof | None = None


@dataclass(frozen=True)
class RecordedResourceRequest:
    """One call to the protected resource (``/api/...``), as the test sees it afterwards.

    ``path`` is what follows ``/api/``; ``scheme`` the ``Authorization`` scheme as sent
    (``Bearer``, ``DPoP``, another, or None without the header); ``error`` the RFC 6750 §3.1
    or RFC 9449 §7.1 code of a refusal (``invalid_token``, ``invalid_dpop_proof``,
    ``use_dpop_nonce``; None when accepted or when no credentials came); ``dpop`` the DPoP
    proof sent; ``at`` the endpoint's clock. The access token itself is not kept.
    """

    method: str
    path: str
    status: int
    scheme: str | None
    error: str | None
    at: float
    dpop: RecordedProof | None = None


class OAuthError(Exception):
    """An RFC 6749 §5.2 error response the endpoint sends."""

    def __init__(
        self,
        error: str,
        description: str,
        *,
        status: int = 400,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(f"{error}: {description}")
        self.error = error
        # descriptions quote client input (client ids); keep them inside the RFC's charset
        self.description = _NOT_DESCRIPTION_CHARS.sub("?", description)
        self.status = status
        self.headers = dict(headers or {})

    def document(self) -> dict[str, str]:
        """The JSON error document (RFC 6749 §5.2)."""
        return {"error": self.error, "error_description": self.description}
