"""Checks on caller-supplied JOSE header parameters, shared by ``encode`` and the signer."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .errors import InvalidHeaderError

__all__ = ["check_header_params"]


def check_header_params(headers: Mapping[str, Any]) -> None:
    """Refuse header parameters we would sign but could not honour (RFC 7515 §4.1)."""
    if "kid" in headers and not isinstance(headers["kid"], str):
        raise InvalidHeaderError("the kid header must be a string")
    if headers.get("b64") is False:
        # RFC 7797 unencoded payloads change the signing input; we always base64url it
        raise InvalidHeaderError("unencoded payloads (b64=false, RFC 7797) are not supported")
    crit = headers.get("crit")
    if crit is not None and (
        not isinstance(crit, list) or not crit or not all(isinstance(n, str) for n in crit)
    ):
        raise InvalidHeaderError(
            "the crit header must be a non-empty list of names (RFC 7515 §4.1.11)"
        )
