"""The exceptions jwtmint raises, all under one root.

::

    JwtMintError
    ├── InvalidKeyError             (also ValueError)
    ├── UnsupportedAlgorithmError   (also ValueError)
    ├── InvalidClaimsError          (also ValueError)
    ├── InvalidHeaderError          (also ValueError)
    ├── InvalidPayloadError         (also TypeError)
    ├── ConfigurationError          (also ValueError)
    ├── UnknownClientError          (also LookupError)
    ├── ClosedError                 (also RuntimeError)
    │   └── ManagerNotRunningError
    └── TokenRequestError
        └── TokenEndpointError
            ├── TokenEndpointTimeout    (also TimeoutError)
            ├── InvalidTokenResponseError
            └── DiscoveryError

Messages say what went wrong and what to do about it; they never carry key
material, secrets or tokens. What a server or a URL supplies (``error``,
``error_description``, URLs, issuers, content types, token types, aiohttp's
own words about a malformed answer) shows in messages and jwtmint's log lines
escaped to printable ASCII (``\\r``, ``\\n``, ``\\x1b``) and cut short, and a
URL never with its ``user:password@``. Attributes keep the values as received.
No exception jwtmint raises after an HTTP failure holds the underlying aiohttp
exception, not even as a suppressed ``__context__``: aiohttp's ``request_info``
keeps the request's headers, ``Authorization`` and ``DPoP`` included.
"""

from __future__ import annotations

from collections.abc import Iterable

__all__ = [
    "ClosedError",
    "ConfigurationError",
    "DiscoveryError",
    "InvalidClaimsError",
    "InvalidHeaderError",
    "InvalidKeyError",
    "InvalidPayloadError",
    "InvalidTokenResponseError",
    "JwtMintError",
    "ManagerNotRunningError",
    "TokenEndpointError",
    "TokenEndpointTimeout",
    "TokenRequestError",
    "UnknownClientError",
    "UnsupportedAlgorithmError",
]


class JwtMintError(Exception):
    """Raised for every error jwtmint detects; catch this to catch them all."""


class InvalidKeyError(JwtMintError, ValueError):
    """Raised when a key cannot be loaded, is too weak, or does not fit the algorithm."""


class UnsupportedAlgorithmError(JwtMintError, ValueError):
    """Raised when an algorithm name is unknown or refused (such as ``none``)."""


class InvalidClaimsError(JwtMintError, ValueError):
    """Raised when claims cannot be serialised or would override registered claims."""


class InvalidHeaderError(JwtMintError, ValueError):
    """Raised when JOSE header parameters are malformed or conflict with the signer."""


class InvalidPayloadError(JwtMintError, TypeError):
    """Raised when a payload given to ``encode`` is not a mapping of claims."""


class ConfigurationError(JwtMintError, ValueError):
    """Raised when a setting is invalid or inconsistent, wherever it is checked (clients,
    the token manager, caches, retry policies, the assertion pool), at construction."""


class UnknownClientError(JwtMintError, LookupError):
    """Raised when a token is asked for a client name the manager was not given."""

    def __init__(self, name: str, known: Iterable[str] = ()) -> None:
        self.name = name
        names = sorted(known)
        shown = ", ".join(repr(n) for n in names[:10]) + (" ..." if len(names) > 10 else "")
        super().__init__(
            f"no client named {name!r}; configure it in TokenManager(clients=...)"
            + (f" (known: {shown})" if names else "")
        )

    def __str__(self) -> str:
        # LookupError would be fine, but KeyError-style quoting of the message is not
        return str(self.args[0])


class ClosedError(JwtMintError, RuntimeError):
    """Raised when an object that was closed (an AssertionPool, a TokenManager) is used."""


class ManagerNotRunningError(ClosedError):
    """Raised when a TokenManager must make a request but is not started, or was closed
    (also to callers that were waiting on a request when it closed)."""


class TokenRequestError(JwtMintError):
    """Raised when the token endpoint refuses a token request (RFC 6749 §5.2).

    Branch on :attr:`error` (``invalid_client``, ``invalid_scope``, ...), not
    on :attr:`status`: servers answer ``invalid_client`` with 400 or 401.

    :attr:`error`, :attr:`error_description` and :attr:`error_uri` are the
    server's values exactly as received (up to the 1 MiB response cap; RFC 6749
    §5.2 asks for printable ASCII, a hostile or broken server may send CR, LF,
    ANSI escapes or megabytes): escape them before you log or display them
    yourself. The message, ``str(error)``, already shows them escaped and
    bounded.
    """

    def __init__(
        self,
        message: str,
        *,
        error: str | None = None,
        error_description: str | None = None,
        error_uri: str | None = None,
        status: int | None = None,
        client: str | None = None,
        attempts: int = 1,
    ) -> None:
        super().__init__(message)
        self.error = error
        self.error_description = error_description
        self.error_uri = error_uri
        self.status = status
        self.client = client
        self.attempts = attempts


class TokenEndpointError(TokenRequestError):
    """Raised when the token endpoint could not be reached or kept failing (network, 5xx, 429)
    after every retry within the deadline."""

    #: seconds the server asked to wait (``Retry-After``) in its last answer, if it did
    retry_after: float | None = None


class TokenEndpointTimeout(TokenEndpointError, TimeoutError):
    """Raised when the token endpoint did not answer within the request timeout or deadline."""


class InvalidTokenResponseError(TokenEndpointError):
    """Raised when the token endpoint answered something that is not an RFC 6749 response."""


class DiscoveryError(TokenEndpointError):
    """Raised when authorization server metadata (RFC 8414 / OpenID discovery) cannot be
    fetched or does not fit the issuer."""
