"""The HTTP answers the token endpoint builds: OAuth errors (RFC 6749 §5.2) and faults."""

from __future__ import annotations

import json

from aiohttp import web

from ._model import Fault, OAuthError

__all__ = ["NO_STORE", "error_response", "fault_response"]

# RFC 6749 §5.1: token responses must not be cached
NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}
# what an unhappy reverse proxy answers in place of the authorization server
_GARBAGE = (
    b"<html><head><title>502 Bad Gateway</title></head>"
    b"<body><h1>502 Bad Gateway</h1><hr>nginx</body></html>"
)


def error_response(error: OAuthError) -> web.Response:
    """RFC 6749 §5.2."""
    return web.json_response(
        error.document(), status=error.status, headers={**NO_STORE, **error.headers}
    )


def fault_response(fault: Fault) -> web.Response:
    if fault.garbage:
        return web.Response(
            status=200, body=_GARBAGE, content_type="text/html", headers=fault.headers
        )
    body, content_type = _fault_body(fault)
    headers = dict(fault.headers or {})
    if not any(name.lower() == "content-type" for name in headers):
        headers["Content-Type"] = content_type
    return web.Response(status=fault.status, body=body, headers=headers)


def _fault_body(fault: Fault) -> tuple[bytes, str]:
    body = fault.body
    if body is None:
        error = _default_fault_error(fault.status)
        if error is None:
            return b"", "text/plain"
        body = {"error": error}
    if isinstance(body, dict):
        return json.dumps(body).encode("utf-8"), "application/json"
    if isinstance(body, str):
        return body.encode("utf-8"), "text/plain; charset=utf-8"
    return body, "text/plain"


def _default_fault_error(status: int) -> str | None:
    if status >= 500 or status == 429:
        return "temporarily_unavailable"
    if status == 401:
        return "invalid_client"
    if status >= 400:
        return "invalid_request"
    return None
