"""Client registrations and client authentication (RFC 6749 §2.3, RFC 7521 §4.2, RFC 7523 §3)."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote_plus

from ..errors import ConfigurationError
from ._jose import (
    HMAC_ALGORITHMS,
    HMAC_MIN_KEY_BYTES,
    SUPPORTED_ALGORITHMS,
    JoseError,
    ParsedJws,
    VerificationKey,
    parse_compact,
    verification_keys,
    verify_hmac,
)
from ._model import AUTH_METHODS, OAuthError
from ._request import Form, scope_tokens

__all__ = [
    "CLIENT_ASSERTION_TYP",
    "JWT_BEARER",
    "AssertionPolicy",
    "Authenticator",
    "Claimed",
    "Client",
    "claimed_identity",
]

# Spelled out here rather than imported: this side must not trust jwtmint's constants either.
JWT_BEARER = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
CLIENT_ASSERTION_TYP = "client-authentication+jwt"
REALM = "jwtmint-testing"
_SECRET_METHODS = frozenset({"client_secret_basic", "client_secret_post", "client_secret_jwt"})
_PRUNE_FLOOR = 1024


def _invalid_client(description: str) -> OAuthError:
    # RFC 6749 §5.2 asks for the challenge when the client used the Authorization header; an
    # HTTP 401 must carry one anyway (RFC 9110 §15.5.2), so every invalid_client has it
    return OAuthError(
        "invalid_client",
        description,
        status=401,
        headers={"WWW-Authenticate": f'Basic realm="{REALM}"'},
    )


@dataclass(frozen=True)
class Client:
    """A registered client: how it authenticates and what it may ask for."""

    client_id: str
    auth_method: str
    secret: bytes | None = field(repr=False)
    keys: tuple[VerificationKey, ...] = field(repr=False)
    allowed_scopes: frozenset[str] | None
    #: RFC 9449 §5.2 ``dpop_bound_access_tokens``: every token request needs a proof
    dpop_bound: bool = False

    @classmethod
    def register(
        cls,
        client_id: str,
        *,
        secret: str | bytes | None,
        public_key: object,
        auth_method: str | None,
        allowed_scopes: Iterable[str] | None,
        dpop_bound: bool = False,
    ) -> Client:
        """Check a registration the way a strict authorization server would (RFC 7591 §2)."""
        if not isinstance(client_id, str) or not client_id:
            raise ConfigurationError("client_id must be a non-empty string")
        method = auth_method or _infer_method(secret, public_key)
        if method not in AUTH_METHODS:
            raise ConfigurationError(f"auth_method must be one of {', '.join(AUTH_METHODS)}")
        _check_credentials(method, secret, public_key)
        secret_bytes = secret.encode("utf-8") if isinstance(secret, str) else secret
        try:
            keys = verification_keys(public_key) if public_key is not None else ()
        except (TypeError, ValueError) as exc:  # the verifier's own words, as a setting error
            raise ConfigurationError(f"client {client_id!r}: {exc}") from None
        scopes = _scope_set(allowed_scopes)
        return cls(client_id, method, secret_bytes, keys, scopes, bool(dpop_bound))


def _infer_method(secret: str | bytes | None, public_key: object) -> str:
    if secret is not None and public_key is not None:
        raise ConfigurationError("both secret and public_key given: name the auth_method")
    if public_key is not None:
        return "private_key_jwt"
    return "client_secret_basic" if secret is not None else "none"


def _check_credentials(method: str, secret: str | bytes | None, public_key: object) -> None:
    if secret is not None and not isinstance(secret, str | bytes):
        raise ConfigurationError("secret must be str or bytes")
    wants_secret = method in _SECRET_METHODS
    if wants_secret != (secret is not None) or (secret is not None and not secret):
        raise ConfigurationError(f"{method} needs {'a non-empty' if wants_secret else 'no'} secret")
    if (method == "private_key_jwt") != (public_key is not None):
        needs = "a" if method == "private_key_jwt" else "no"
        raise ConfigurationError(f"{method} needs {needs} public_key")


def _scope_set(allowed_scopes: Iterable[str] | None) -> frozenset[str] | None:
    if allowed_scopes is None:
        return None
    if isinstance(allowed_scopes, str):
        # a str is iterable too, and would allow its single characters
        raise ConfigurationError("allowed_scopes must be an iterable of scope strings, not one str")
    scopes = frozenset(allowed_scopes)
    for scope in scopes:
        try:
            scope_tokens(scope)  # one token each: "a b" would never match a requested token
        except OAuthError:
            valid = False
        else:
            valid = " " not in scope
        if not valid:
            raise ConfigurationError(f"allowed scope {scope!r} is not a single scope token")
    return scopes


@dataclass(frozen=True)
class Claimed:
    """Who a request says it is, before anything is checked: for the request log."""

    client_id: str | None = None
    auth_method: str | None = None
    assertion: ParsedJws | None = None


def _attempted_methods(form: Form) -> list[str]:
    methods = []
    if form.authorization is not None:
        methods.append("client_secret_basic")
    if "client_secret" in form.fields:
        methods.append("client_secret_post")
    if "client_assertion" in form.fields or "client_assertion_type" in form.fields:
        methods.append("jwt")
    return methods


def _jwt_method(alg: object) -> str:
    return "client_secret_jwt" if alg in HMAC_ALGORITHMS else "private_key_jwt"


def claimed_identity(form: Form) -> Claimed:
    """The client id and method a request presents, decoded leniently; never raises.

    What cannot be decoded (Basic credentials, an assertion) is left out as None.
    """
    methods = _attempted_methods(form)
    form_id = form.get("client_id")
    if not methods:
        return Claimed(form_id, "none" if form_id is not None else None)
    assertion = None
    if "jwt" in methods:
        with contextlib.suppress(JoseError):
            assertion = parse_compact(form.get("client_assertion") or "")
    method = methods[0] if len(methods) == 1 else None
    client_id = form_id
    if method == "client_secret_basic":
        try:
            client_id = _decode_basic(form.authorization or "")[0]
        except OAuthError:
            client_id = None
    elif method == "jwt":
        method = _jwt_method(assertion.header.get("alg")) if assertion else None
        sub = assertion.claims.get("sub") if assertion else None
        client_id = sub if isinstance(sub, str) else form_id
    return Claimed(client_id, method, assertion)


def _decode_basic(authorization: str) -> tuple[str, str]:
    """RFC 6749 §2.3.1: base64 of form-encoded client_id ":" form-encoded secret.

    Anything else is an OAuthError (``invalid_client``), never another exception.
    """
    scheme, _, credentials = authorization.strip().partition(" ")
    if scheme.lower() != "basic":
        raise _invalid_client("the token endpoint accepts only the Basic authorization scheme")
    try:
        # non-ASCII text, bad base64 (binascii.Error), bytes or percent-escapes that are not
        # UTF-8 (UnicodeDecodeError): each is a ValueError
        decoded = base64.b64decode(credentials.strip(), validate=True).decode("utf-8")
        user, colon, password = decoded.partition(":")
        # a client id or secret holding ":" or "+" only survives because both were form-encoded
        client_id = unquote_plus(user, errors="strict")
        secret = unquote_plus(password, errors="strict")
    except ValueError as exc:
        raise _invalid_client(
            "malformed Basic credentials: base64 of form-encoded UTF-8 client_id:secret expected"
        ) from exc
    if not colon:
        raise _invalid_client("malformed Basic credentials: no colon between client_id and secret")
    return client_id, secret


def _same_secret(registered: bytes | None, presented: bytes) -> bool:
    if registered is None:
        return False
    # digests of equal length, so the comparison reveals neither content nor length
    return hmac.compare_digest(
        hashlib.sha256(registered).digest(), hashlib.sha256(presented).digest()
    )


@dataclass(frozen=True)
class AssertionPolicy:
    """The client assertion checks of RFC 7523 §3, with this endpoint's tolerances."""

    max_lifetime: int = 300
    leeway: int = 5
    require_typ: bool = False
    strict_audience: bool = False


class Authenticator:
    """Authenticates token requests against registered clients; remembers used ``jti``s."""

    def __init__(
        self, clients: dict[str, Client], policy: AssertionPolicy, clock: Callable[[], float]
    ) -> None:
        self._clients = clients
        self._policy = policy
        self._clock = clock
        self._seen_jti: dict[str, float] = {}
        self._prune_at = _PRUNE_FLOOR

    def authenticate(self, form: Form, audiences: frozenset[str]) -> Client:
        """The authenticated client, or an OAuthError (RFC 6749 §2.3, §5.2)."""
        methods = _attempted_methods(form)
        if len(methods) > 1:
            raise OAuthError(
                "invalid_request", "more than one client authentication method (RFC 6749 2.3)"
            )
        if not methods:
            return self._none(form)
        if methods[0] == "client_secret_basic":
            return self._basic(form)
        if methods[0] == "client_secret_post":
            return self._post(form)
        return self._jwt(form, audiences)

    def _client(self, client_id: str, method: str) -> Client:
        client = self._clients.get(client_id)
        if client is None:
            raise _invalid_client(f"unknown client {client_id}")
        if client.auth_method != method:
            raise _invalid_client(
                f"client {client_id} is registered for {client.auth_method}, not {method}"
            )
        return client

    def _none(self, form: Form) -> Client:
        client_id = form.get("client_id")
        if client_id is None:
            raise _invalid_client("client authentication is required")
        return self._client(client_id, "none")

    def _basic(self, form: Form) -> Client:
        client_id, secret = _decode_basic(form.authorization or "")
        if form.get("client_id") not in (None, client_id):
            raise OAuthError("invalid_request", "client_id differs from the Basic credentials")
        return self._check_secret(self._client(client_id, "client_secret_basic"), secret)

    def _post(self, form: Form) -> Client:
        client_id = form.get("client_id")
        if client_id is None:
            raise OAuthError("invalid_request", "client_secret needs client_id")
        client = self._client(client_id, "client_secret_post")
        return self._check_secret(client, form.get("client_secret") or "")

    @staticmethod
    def _check_secret(client: Client, secret: str) -> Client:
        if not _same_secret(client.secret, secret.encode("utf-8")):
            raise _invalid_client("wrong client secret")
        return client

    def _jwt(self, form: Form, audiences: frozenset[str]) -> Client:
        """RFC 7523 §3 and §2.2: a signed JWT as the client's credentials."""
        assertion_type, value = form.get("client_assertion_type"), form.get("client_assertion")
        if assertion_type is None or value is None:
            raise OAuthError(
                "invalid_request", "client_assertion and client_assertion_type go together"
            )
        if assertion_type != JWT_BEARER:
            raise _invalid_client(f"client_assertion_type must be {JWT_BEARER}")
        try:
            jws = parse_compact(value)
        except JoseError as exc:
            raise _invalid_client(f"malformed client assertion: {exc}") from exc
        alg = _check_header(jws.header, self._policy.require_typ)
        client = self._assertion_client(jws, form.get("client_id"), alg)
        if not _signature_ok(client, alg, jws):
            raise _invalid_client("client assertion signature does not verify")
        self._check_claims(jws.claims, audiences)
        self._remember_jti(jws.claims)
        return client

    def _assertion_client(self, jws: ParsedJws, form_client_id: str | None, alg: str) -> Client:
        iss, sub = jws.claims.get("iss"), jws.claims.get("sub")
        if not isinstance(sub, str) or not sub:
            raise _invalid_client("client assertion has no sub")
        if iss != sub:  # RFC 7523 §3 (B): iss and sub are both the client_id
            raise _invalid_client("client assertion iss must equal sub")
        if form_client_id not in (None, sub):
            raise _invalid_client("client_id differs from the client assertion sub")
        return self._client(sub, _jwt_method(alg))

    def _check_claims(self, claims: dict[str, Any], audiences: frozenset[str]) -> None:
        now, leeway = self._clock(), self._policy.leeway
        _check_audience(claims.get("aud"), audiences, self._policy.strict_audience)
        exp = _numeric_date(claims, "exp")
        if exp is None:
            raise _invalid_client("client assertion has no exp")
        if exp <= now - leeway:
            raise _invalid_client("client assertion expired")
        iat = _numeric_date(claims, "iat")
        if iat is not None and iat > now + leeway:
            raise _invalid_client("client assertion iat is in the future")
        nbf = _numeric_date(claims, "nbf")
        if nbf is not None and nbf > now + leeway:
            raise _invalid_client("client assertion is not valid yet (nbf)")
        # without iat only the remaining life can be judged, and clocks differ by the leeway
        lifetime, limit = (
            (exp - iat, self._policy.max_lifetime)
            if iat is not None
            else (exp - now, self._policy.max_lifetime + leeway)
        )
        if lifetime > limit:
            raise _invalid_client(
                f"client assertion lifetime exceeds {self._policy.max_lifetime} seconds"
            )
        jti = claims.get("jti")
        if not isinstance(jti, str) or not jti:
            raise _invalid_client("client assertion has no jti")
        if jti in self._seen_jti:
            raise _invalid_client("client assertion jti was already used (replay)")

    def _remember_jti(self, claims: dict[str, Any]) -> None:
        # RFC 7523 §3 (7): kept until the assertion expires; jti is unique across issuers
        # (RFC 7519 §4.1.7), so one set serves every client
        self._seen_jti[claims["jti"]] = float(claims["exp"])
        if len(self._seen_jti) >= self._prune_at:
            horizon = self._clock() - self._policy.leeway
            self._seen_jti = {j: e for j, e in self._seen_jti.items() if e > horizon}
            self._prune_at = max(_PRUNE_FLOOR, 2 * len(self._seen_jti))


def _check_header(header: dict[str, Any], require_typ: bool) -> str:
    alg = header.get("alg")
    if not isinstance(alg, str):
        raise _invalid_client("client assertion header has no alg")
    if alg.lower() == "none":
        raise _invalid_client("unsigned client assertions (alg none) are refused")
    if alg not in SUPPORTED_ALGORITHMS:
        raise _invalid_client(f"unsupported client assertion alg {alg}")
    if "crit" in header:  # RFC 7515 §4.1.11: no extension is understood here
        raise _invalid_client("client assertion header has crit parameters this server ignores")
    if require_typ and not _is_assertion_typ(header.get("typ")):
        raise _invalid_client(f"client assertion typ must be {CLIENT_ASSERTION_TYP}")
    return alg


def _is_assertion_typ(typ: object) -> bool:
    # RFC 7515 §4.1.9: media types compare case-insensitively, "application/" may be left out
    if not isinstance(typ, str):
        return False
    typ = typ.lower()
    return typ.removeprefix("application/") == CLIENT_ASSERTION_TYP


def _signature_ok(client: Client, alg: str, jws: ParsedJws) -> bool:
    if alg in HMAC_ALGORITHMS:
        secret, needed = client.secret or b"", HMAC_MIN_KEY_BYTES[alg]
        if len(secret) < needed:
            raise _invalid_client(
                f"the client secret is too short for {alg}: RFC 7518 3.2 needs at least "
                f"{needed} bytes"
            )
        return verify_hmac(alg, secret, jws.signing_input, jws.signature)
    kid = jws.header.get("kid")
    keys = [k for k in client.keys if kid is None or k.kid in (None, kid)]
    if not keys:
        raise _invalid_client("no registered key has the client assertion kid")
    usable = [k for k in keys if alg in k.algorithms]
    if not usable:
        raise _invalid_client(f"no registered key of this client verifies {alg}")
    return any(k.verify(alg, jws.signing_input, jws.signature) for k in usable)


def _check_audience(aud: object, audiences: frozenset[str], strict: bool) -> None:
    expected = " or ".join(sorted(audiences))
    if strict:
        # draft-ietf-oauth-rfc7523bis: aud is the issuer identifier, as a single string
        if not isinstance(aud, str) or aud not in audiences:
            raise _invalid_client(
                f"client assertion aud must be the single string {expected} (strict_audience)"
            )
        return
    # RFC 7523 §3 (3): an array is accepted when it holds one of the audiences
    values = [aud] if isinstance(aud, str) else aud
    if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
        raise _invalid_client("client assertion aud must be a string or a list of strings")
    if audiences.isdisjoint(values):
        raise _invalid_client(f"client assertion aud must be the issuer identifier {expected}")


def _numeric_date(claims: dict[str, Any], name: str) -> float | None:
    """RFC 7519 §2 NumericDate: a JSON number of seconds, possibly non-integer."""
    value = claims.get(name)
    if value is None:
        return None
    seconds = math.nan
    if isinstance(value, int | float) and not isinstance(value, bool):
        # a JSON integer beyond the float range (10**400) is no date either
        with contextlib.suppress(OverflowError):
            seconds = float(value)
    if not math.isfinite(seconds):
        raise _invalid_client(f"client assertion {name} is not a NumericDate")
    return seconds
