"""Reading a token request: its body, its form and its grant parameters (RFC 6749 §3, §4.4)."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import parse_qsl, urlsplit

from aiohttp import web, web_protocol
from aiohttp.http_exceptions import HttpProcessingError

from ._model import OAuthError

__all__ = [
    "AUTH_FIELDS",
    "GRANT_FIELDS",
    "MAX_BODY",
    "Form",
    "check_resources",
    "check_scope",
    "extra_parameters",
    "parse_form",
    "read_form",
    "scope_tokens",
]

#: The form fields that carry client authentication (RFC 6749 §2.3.1, RFC 7521 §4.2).
AUTH_FIELDS = frozenset({"client_id", "client_secret", "client_assertion", "client_assertion_type"})
GRANT_FIELDS = frozenset({"grant_type", "scope", "resource"})
#: RFC 8707 §2: the only parameter that may repeat
_REPEATABLE = frozenset({"resource"})
_FORM_TYPE = "application/x-www-form-urlencoded"
#: aiohttp's default; a larger body is refused 413 (and recorded)
MAX_BODY = 1024**2
# RFC 6749 §3.3: scope-token = 1*( %x21 / %x23-5B / %x5D-7E )
_SCOPE_TOKEN = re.compile(r"[\x21\x23-\x5b\x5d-\x7e]+")
# RFC 3986 §3.1
_URI_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*")
_MAX_FIELDS = 1000


@dataclass(frozen=True)
class Form:
    """A token request's form fields (blank ones dropped), Authorization and DPoP headers."""

    fields: dict[str, list[str]]
    authorization: str | None = None
    #: every ``DPoP`` header field, in order (RFC 9449 §4.3 wants exactly one)
    dpop: tuple[str, ...] = ()

    def get(self, name: str) -> str | None:
        """The field's value, or None when absent (a duplicate is refused by ``check_single``)."""
        values = self.fields.get(name)
        return values[0] if values else None

    def check_single(self) -> None:
        """RFC 6749 §3.2: parameters other than ``resource`` must not be repeated."""
        for name, values in self.fields.items():
            if len(values) > 1 and name not in _REPEATABLE:
                raise OAuthError("invalid_request", f"parameter {name} is repeated")


def parse_form(
    content_type: str, body: bytes, authorization: str | None, dpop: tuple[str, ...] = ()
) -> Form:
    """Decode an ``application/x-www-form-urlencoded`` body (RFC 6749 §4.4.2, Appendix B)."""
    if content_type != _FORM_TYPE:
        raise OAuthError("invalid_request", f"the request body must be {_FORM_TYPE}")
    try:
        pairs = parse_qsl(
            body.decode("utf-8"),
            keep_blank_values=True,
            errors="strict",
            max_num_fields=_MAX_FIELDS,
        )
    except (UnicodeDecodeError, ValueError) as exc:
        raise OAuthError("invalid_request", "the form body is not UTF-8 form encoding") from exc
    fields: dict[str, list[str]] = {}
    for name, value in pairs:
        # RFC 6749 §3.1: a parameter without a value is treated as omitted
        if value:
            fields.setdefault(name, []).append(value)
    return Form(fields, authorization, dpop)


def scope_tokens(scope: str) -> list[str]:
    """RFC 6749 §3.3: space-delimited tokens; any other shape is ``invalid_scope``."""
    tokens = scope.split(" ")
    if not all(_SCOPE_TOKEN.fullmatch(token) for token in tokens):
        raise OAuthError("invalid_scope", "scope must be scope tokens separated by single spaces")
    return tokens


def check_scope(scope: str | None, allowed: Iterable[str] | None) -> None:
    """Refuse a scope the client may not ask for (RFC 6749 §5.2 ``invalid_scope``)."""
    if scope is None:
        return
    tokens = scope_tokens(scope)
    if allowed is None:
        return
    refused = sorted(set(tokens).difference(allowed))
    if refused:
        raise OAuthError("invalid_scope", f"scope not allowed for this client: {' '.join(refused)}")


def check_resources(resources: Iterable[str]) -> None:
    """RFC 8707 §2: each ``resource`` is an absolute URI without a fragment."""
    for resource in resources:
        try:
            parts = urlsplit(resource)
        except ValueError as exc:
            raise OAuthError("invalid_target", "resource is not a URI") from exc
        if not _URI_SCHEME.fullmatch(parts.scheme) or "#" in resource or " " in resource:
            raise OAuthError(
                "invalid_target", "resource must be an absolute URI without a fragment"
            )


async def read_form(request: web.Request) -> tuple[Form, OAuthError | None]:
    """The request's form, and the error to answer when it is no token request at all."""
    authorization = request.headers.get("Authorization")
    dpop = tuple(request.headers.getall("DPoP", ()))
    empty = Form({}, authorization, dpop)
    try:
        body = await request.read()
    except web.HTTPRequestEntityTooLarge:
        return empty, OAuthError(
            "invalid_request", f"the request body exceeds {MAX_BODY} bytes", status=413
        )
    except (web_protocol.RequestPayloadError, HttpProcessingError):
        # a body aiohttp cannot decode (a broken gzip or chunked stream): the client's fault
        return empty, OAuthError(
            "invalid_request", "the request body could not be read", status=400
        )
    if request.method != "POST":  # RFC 6749 §3.2
        refusal = OAuthError("invalid_request", "the token endpoint takes POST", status=405)
        refusal.headers["Allow"] = "POST"
        return empty, refusal
    try:
        return parse_form(request.content_type, body, authorization, dpop), None
    except OAuthError as exc:
        return empty, exc


def extra_parameters(form: Form) -> dict[str, list[str]]:
    """The fields that are neither client authentication nor the grant's own."""
    hidden = AUTH_FIELDS | GRANT_FIELDS
    return {name: list(values) for name, values in form.fields.items() if name not in hidden}
