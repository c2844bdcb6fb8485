"""The values a test sees: :class:`Fault`, :class:`RecordedRequest`, and the OAuth error."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..errors import ConfigurationError

__all__ = ["AUTH_METHODS", "Fault", "OAuthError", "RecordedRequest"]

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
    connection, the fault's status); ``at`` the endpoint's clock.
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
