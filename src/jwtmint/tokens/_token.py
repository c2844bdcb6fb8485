"""Access tokens and the parsing of token responses (RFC 6749 §5.1, §5.2)."""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import orjson

from .._display import shown
from ..errors import InvalidTokenResponseError, TokenRequestError

__all__ = ["Token", "header_safe", "parse_error_response", "parse_token_response"]

#: Token responses are a few hundred bytes; anything this large is not one.
MAX_RESPONSE_BYTES = 1 << 20
#: the bounds put on a server's ``expires_in`` (seconds). Below the floor a token would be
#: expired, or nearly, when the caller gets it, and every call would request another; 5 s is
#: less than any real server issues, and a token is renewed at half that at the earliest.
MIN_LIFETIME = 5.0
#: Above the ceiling a token would never be renewed (and a shared tier's expiry could
#: overflow). A day is the longest common default (Auth0's); a longer-lived token is renewed
#: once a day, which costs nothing, and a lifetime sent in milliseconds by mistake is not kept
#: for weeks.
MAX_LIFETIME = 86_400.0


@dataclass(frozen=True, slots=True)
class Token:
    """An access token from a token endpoint (RFC 6749 §5.1).

    ``expires_at`` is epoch seconds: the server's own notion of expiry is
    wall-clock time, and a shared cache needs a value that means the same in
    every process. The server's ``expires_in`` is taken between
    :data:`MIN_LIFETIME` (5 s) and :data:`MAX_LIFETIME` (a day). ``raw`` is
    the whole response. The token itself never shows in ``repr``: a short
    fingerprint does.
    """

    access_token: str = field(repr=False)
    token_type: str
    expires_at: float
    scope: str | None = None
    raw: Mapping[str, Any] = field(
        default_factory=lambda: MappingProxyType({}), repr=False, compare=False, hash=False
    )
    #: the ``Authorization`` header value: ``Bearer <token>`` (RFC 6750 §2.1), ``DPoP <token>``
    authorization: str = field(init=False, repr=False, compare=False, hash=False)

    def __post_init__(self) -> None:
        if not isinstance(self.raw, MappingProxyType):
            object.__setattr__(self, "raw", MappingProxyType(dict(self.raw)))
        # token_type is case-insensitive (RFC 6749 §7.1) but resource servers compare the
        # scheme: send the registered spelling
        scheme = _SCHEMES.get(self.token_type.lower(), self.token_type)
        object.__setattr__(self, "authorization", f"{scheme} {self.access_token}")

    def __reduce__(self) -> tuple[type[Token], tuple[Any, ...]]:
        # raw is a read-only proxy, which pickle and deepcopy refuse: a shared cache
        # tier stores tokens, so rebuild from a plain dict
        return (
            Token,
            (self.access_token, self.token_type, self.expires_at, self.scope, dict(self.raw)),
        )

    @property
    def fingerprint(self) -> str:
        """12 hex digits of SHA-256 of the token: enough to match log lines, safe to log."""
        return hashlib.sha256(self.access_token.encode()).hexdigest()[:12]

    def __repr__(self) -> str:
        # the type and scope are the server's: escaped and bounded, like every server value
        scope = None if self.scope is None else shown(self.scope, quote=True)
        return (
            f"Token(token_type={shown(self.token_type, 40, quote=True)}, "
            f"expires_at={self.expires_at!r}, scope={scope}, fingerprint={self.fingerprint!r})"
        )

    __str__ = __repr__


_SCHEMES = {"bearer": "Bearer", "dpop": "DPoP"}
_VSCHARS = frozenset(map(chr, range(0x20, 0x7F)))
_TYPE_CHARS = frozenset(map(chr, range(0x21, 0x7F)))


def _json_object(body: bytes) -> dict[str, Any] | None:
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    return data if isinstance(data, dict) else None


def _describe_body(body: bytes, content_type: str | None) -> str:
    kind = shown(content_type, 100) if content_type else "no content type"
    return f"{len(body)} bytes of {kind}"


def parse_token_response(
    body: bytes,
    *,
    status: int,
    content_type: str | None,
    now: float,
    requested_scope: str | None,
    default_lifetime: float,
    client: str,
) -> Token:
    """A :class:`Token` from a 200 response, or :class:`InvalidTokenResponseError`."""
    data = _json_object(body)
    if data is None:
        raise InvalidTokenResponseError(
            f"token endpoint answered {status} for client {client!r} with "
            f"{_describe_body(body, content_type)}, not a JSON object (RFC 6749 §5.1); "
            "check the token endpoint URL",
            status=status,
            client=client,
        )
    access_token = data.get("access_token")
    token_type = data.get("token_type")
    if not isinstance(access_token, str) or not access_token:
        raise _invalid(client, status, "has no access_token string")
    if not isinstance(token_type, str) or not token_type:
        raise _invalid(client, status, "has no token_type string")
    # RFC 6749 A.12 / A.13: printable ASCII; a CR or LF would otherwise be cached and break
    # (or inject into) every Authorization header built from it
    if not header_safe(access_token, token_type):
        raise _invalid(client, status, "has characters a header cannot carry")
    lifetime = _lifetime(data.get("expires_in", None), default_lifetime, client, status)
    scope = data.get("scope", requested_scope)
    if scope is not None and not isinstance(scope, str):
        raise _invalid(client, status, "has a scope that is not a string")
    return Token(access_token, token_type, now + lifetime, scope, data)


def header_safe(access_token: str, token_type: str) -> bool:
    """Whether both can go into an ``Authorization`` header as they are (RFC 6749 A.12, A.13)."""
    return _VSCHARS.issuperset(access_token) and _TYPE_CHARS.issuperset(token_type)


def _lifetime(value: object, default: float, client: str, status: int) -> float:
    if value is None:
        return default
    # some servers send the number as a string; bool is an int subclass and never a lifetime
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            raise _invalid(client, status, "has an expires_in that is not a number") from None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _invalid(client, status, "has an expires_in that is not a number")
    if not math.isfinite(value) or value <= 0:
        raise _invalid(client, status, f"has expires_in={value!r}; it must be positive")
    return min(MAX_LIFETIME, max(MIN_LIFETIME, float(value)))


def _invalid(client: str, status: int, what: str) -> InvalidTokenResponseError:
    return InvalidTokenResponseError(
        f"the token response for client {client!r} {what} (RFC 6749 §5.1)",
        status=status,
        client=client,
    )


def parse_error_response(
    body: bytes, *, status: int, content_type: str | None, client: str
) -> TokenRequestError | None:
    """The RFC 6749 §5.2 error in ``body``, or ``None`` when it holds none."""
    data = _json_object(body)
    if data is None or not isinstance(data.get("error"), str):
        return None
    error: str = data["error"]
    description = data.get("error_description")
    uri = data.get("error_uri")
    description = description if isinstance(description, str) else None
    uri = uri if isinstance(uri, str) else None
    # the server's words are shown escaped and cut short: RFC 6749 §5.2 allows printable
    # ASCII only, and a CR, LF or ANSI escape in a message would reach logs and terminals
    message = f"token endpoint refused client {client!r}: {shown(error, 100)}"
    if description:
        message += f" ({shown(description, 300)})"
    message += f" [HTTP {status}]"
    hint = _HINTS.get(error)
    if hint:
        message += f"; {hint}"
    return TokenRequestError(
        message,
        error=error,
        error_description=description,
        error_uri=uri,
        status=status,
        client=client,
    )


_HINTS = {
    "invalid_client": (
        "check the client id, its secret or registered public key, the signing algorithm, "
        "and that the server accepts the assertion audience"
    ),
    "invalid_scope": "ask only for scopes the client is registered for",
    "unauthorized_client": "register the client_credentials grant for this client",
    "invalid_target": "ask only for resources the client may use (RFC 8707)",
    "unsupported_grant_type": "the server does not offer the client_credentials grant",
    "use_dpop_nonce": (
        "the server wants a DPoP nonce; jwtmint answers once per attempt with it, a new proof "
        "and a new client assertion. Refused again: its nonces may expire faster than a round "
        "trip; or there was no new assertion to send (a client_assertion passed to get_token "
        "is sent once: give the client a key or a ClientAssertionService)"
    ),
    "invalid_dpop_proof": (
        "the server refused the DPoP proof: check that it accepts the dpop_key's algorithm "
        "(dpop_signing_alg_values_supported) and that the clocks agree"
    ),
}
