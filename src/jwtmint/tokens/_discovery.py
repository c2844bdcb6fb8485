"""Authorization server metadata: RFC 8414 and OpenID Connect Discovery 1.0."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit, urlunsplit

import orjson

from .._display import shown, shown_url

__all__ = ["check_metadata", "discovery_urls"]

OPENID_CONFIGURATION = "/.well-known/openid-configuration"
OAUTH_AUTHORIZATION_SERVER = "/.well-known/oauth-authorization-server"


def discovery_urls(issuer: str) -> tuple[str, ...]:
    """Where the metadata of ``issuer`` may be, in the order they are tried.

    OpenID Connect Discovery §4 appends the well-known path to the issuer;
    RFC 8414 §3.1 inserts it between the host and the issuer's path. For an
    issuer without a path both name the same place.
    """
    openid = issuer.rstrip("/") + OPENID_CONFIGURATION
    parts = urlsplit(issuer)
    path = parts.path.rstrip("/")
    oauth = urlunsplit((parts.scheme, parts.netloc, OAUTH_AUTHORIZATION_SERVER + path, "", ""))
    return (openid, oauth)


def check_metadata(issuer: str, url: str, body: bytes) -> dict[str, Any] | str:
    """The metadata in ``body``, or a sentence saying what is wrong with it."""
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        return f"{shown_url(url)} did not return JSON"
    if not isinstance(data, dict):
        return f"{shown_url(url)} did not return a JSON object"
    # RFC 8414 §3.3: the issuer in the metadata must be identical to the one asked about,
    # or an attacker's metadata could redirect the client's credentials
    if data.get("issuer") != issuer:
        return (
            f"{shown_url(url)} names issuer {shown(data.get('issuer'), quote=True)}, not "
            f"{shown_url(issuer)} (RFC 8414 §3.3); "
            "configure the issuer exactly as the server spells it"
        )
    endpoint = data.get("token_endpoint")
    try:
        usable = isinstance(endpoint, str) and urlsplit(endpoint).scheme in ("http", "https")
    except ValueError:  # "https://[::1/t"
        usable = False
    if not usable:
        return f"{shown_url(url)} has no usable token_endpoint"
    return data
