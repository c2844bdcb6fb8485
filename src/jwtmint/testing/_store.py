"""The access tokens the loopback server issued: what each is for, and its DPoP key binding."""

from __future__ import annotations

import dataclasses
import hashlib
import secrets
from collections.abc import Callable
from typing import Any

__all__ = ["IssuedToken", "TokenStore"]


@dataclasses.dataclass(frozen=True)
class IssuedToken:
    """What a token was issued for; ``jkt`` the thumbprint it is bound to (RFC 9449 §6)."""

    client_id: str
    scope: str | None
    resource: tuple[str, ...]
    expires_at: float | None
    parameters: dict[str, list[str]]
    jkt: str | None = None

    @property
    def token_type(self) -> str:
        """``DPoP`` for a key-bound token (RFC 9449 §5), ``Bearer`` otherwise."""
        return "Bearer" if self.jkt is None else "DPoP"

    def info(self) -> dict[str, Any]:
        """The :meth:`TokenEndpoint.token_info` document: ``cnf`` as RFC 7800 §3.1 puts it."""
        info = dataclasses.asdict(self)
        jkt = info.pop("jkt")
        info["token_type"] = self.token_type
        if jkt is not None:
            info["cnf"] = {"jkt": jkt}
        return info


def _token_key(access_token: str) -> bytes:
    # tokens are held by digest: a lookup then does not compare token text byte by byte
    # surrogateescape: a header's bytes decoded as latin-1 or odd text never raises here
    return hashlib.sha256(access_token.encode("utf-8", "surrogateescape")).digest()


class TokenStore:
    """Opaque tokens by digest; a token past its ``expires_at`` (by ``clock``) is not live."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self._clock = clock
        self._tokens: dict[bytes, IssuedToken] = {}

    def issue(self, issued: IssuedToken) -> str:
        """A new random access token for ``issued``."""
        access_token = secrets.token_urlsafe(32)
        self._tokens[_token_key(access_token)] = issued
        return access_token

    def live(self, access_token: str) -> IssuedToken | None:
        """The token's record, or None when unknown, revoked or expired."""
        issued = self._tokens.get(_token_key(access_token))
        if issued is None or (issued.expires_at is not None and self._clock() >= issued.expires_at):
            return None
        return issued

    def revoke(self, access_token: str) -> None:
        """Forget one token; an unknown one is ignored."""
        self._tokens.pop(_token_key(access_token), None)

    def clear(self) -> None:
        """Forget every token."""
        self._tokens.clear()
