"""Named client configuration: who the client is and how it authenticates."""

from __future__ import annotations

import base64
import ipaddress
from collections.abc import Mapping, Sequence
from typing import Final
from urllib.parse import quote_plus, urlsplit

from .._algorithms import get_algorithm
from .._display import shown_url
from .._dpop import DPoPSigner
from .._keys import KeySource, SigningKey, load_key, load_secret
from ..errors import ConfigurationError, InvalidKeyError, UnsupportedAlgorithmError
from ._cache import CacheKey, Parameters, cache_key, normalize_parameters, normalize_resource

__all__ = [
    "AUTH_METHODS",
    "RESERVED_PARAMETERS",
    "ClientCredentialsClient",
    "check_url",
    "is_loopback",
    "request_key",
]

CLIENT_SECRET_BASIC: Final = "client_secret_basic"
CLIENT_SECRET_POST: Final = "client_secret_post"
CLIENT_SECRET_JWT: Final = "client_secret_jwt"
PRIVATE_KEY_JWT: Final = "private_key_jwt"
NONE: Final = "none"
#: token_endpoint_auth_method values (RFC 7591 §2, OpenID Connect Core §9)
AUTH_METHODS: Final = frozenset(
    {CLIENT_SECRET_BASIC, CLIENT_SECRET_POST, CLIENT_SECRET_JWT, PRIVATE_KEY_JWT, NONE}
)
#: form fields the manager writes itself; custom parameters may not set them
RESERVED_PARAMETERS: Final = frozenset(
    {
        "grant_type",
        "scope",
        "resource",
        "client_id",
        "client_secret",
        "client_assertion",
        "client_assertion_type",
    }
)


def is_loopback(host: str | None) -> bool:
    """``localhost`` or a literal loopback address (never a name that merely starts with 127.)."""
    if host is None:
        return False
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_url(
    name: str, url: object, *, allow_http: bool = False, hint: str = "allow_insecure_http=True"
) -> str:
    """An absolute https URL (http only on loopback, or when allowed), without credentials.

    ``name`` and ``hint`` (how to allow plain http) are the words of the caller's front end:
    parameter names here, a clients file's fields, or the command line's flags."""
    if not isinstance(url, str):
        raise ConfigurationError(f"{name} must be a URL string, got {type(url).__name__}")
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - parsing the port is the check: "idp:99999" must fail here
        valid = True
    except ValueError:  # "https://[::1/t", a port out of range: raised outside the except
        valid = False
    if not valid or parts.scheme not in ("https", "http") or not parts.netloc:
        # shown without its userinfo: the credentials check below has not run yet
        raise ConfigurationError(f"{name} must be an absolute https URL, got {shown_url(url)}")
    if parts.username is not None or parts.password is not None:
        # a password in the URL would reach messages and logs; say so without repeating it
        raise ConfigurationError(f"{name} must not carry credentials in the URL")
    if parts.fragment:
        raise ConfigurationError(f"{name} must not have a fragment, got {shown_url(url)}")
    if parts.scheme == "http" and not (allow_http or is_loopback(parts.hostname)):
        # RFC 6749 §2.3.1 and RFC 8414 §2: client credentials travel only over TLS
        raise ConfigurationError(
            f"{name} {shown_url(url)} is plain http: use https, or {hint} for a trusted network"
        )
    return url


class ClientCredentialsClient:
    """One client of the client_credentials grant (RFC 6749 §4.4) and how it authenticates.

    ``auth_method`` is a ``token_endpoint_auth_method`` (OpenID Connect Core
    §9): ``client_secret_basic`` (RFC 6749 §2.3.1), ``client_secret_post``,
    ``client_secret_jwt`` (an HS256 assertion keyed by the secret),
    ``private_key_jwt`` (an assertion signed with ``private_key``) or
    ``none``. Without one it is inferred: a private key means
    ``private_key_jwt``, a secret ``client_secret_basic``; with neither it
    must be given (``private_key_jwt`` when assertions come from a
    ``ClientAssertionService`` or ``get_token``'s callers, ``none`` for a
    client that sends no credentials), never inferred.

    The token endpoint is ``token_endpoint``, or found by discovery from
    ``issuer`` (RFC 8414, OpenID Connect Discovery). The assertion audience
    is ``audience`` when given, else the issuer when known
    (draft-ietf-oauth-rfc7523bis), else the token endpoint. ``scope``,
    ``resource`` (RFC 8707) and ``parameters`` go into every token request
    for this client unless ``get_token`` overrides them. With ``dpop_key`` (an
    EC, RSA or Ed25519 private key; ``dpop_algorithm`` to choose, e.g. PS256)
    every token request carries a DPoP proof (RFC 9449), tokens come bound
    to the key (``token_type`` ``DPoP``) and are cached under its thumbprint,
    and the manager's HTTP adapters send a proof with every API call. Every mistake that
    can be seen here raises :class:`~jwtmint.errors.ConfigurationError` now,
    not at the first token request.
    """

    __slots__ = (
        "_basic_authorization",
        "_secret",
        "allow_insecure_http",
        "assertion_lifetime",
        "audience",
        "auth_method",
        "client_id",
        "dpop",
        "issuer",
        "parameters",
        "private_key",
        "resource",
        "scope",
        "signing_algorithm",
        "token_endpoint",
    )

    def __init__(
        self,
        client_id: str,
        *,
        token_endpoint: str | None = None,
        issuer: str | None = None,
        client_secret: str | bytes | None = None,
        private_key: KeySource | None = None,
        auth_method: str | None = None,
        signing_algorithm: str | None = None,
        audience: str | None = None,
        scope: str | Sequence[str] | None = None,
        resource: str | Sequence[str] | None = None,
        parameters: Mapping[str, str | Sequence[str]] | None = None,
        assertion_lifetime: int = 60,
        allow_insecure_http: bool = False,
        dpop_key: KeySource | None = None,
        dpop_algorithm: str | None = None,
    ) -> None:
        if not isinstance(client_id, str) or not client_id:
            raise ConfigurationError("client_id must be a non-empty string")
        self.client_id = client_id
        if token_endpoint is None and issuer is None:
            raise ConfigurationError(
                f"client {client_id!r} needs token_endpoint= or issuer= (for discovery)"
            )
        self.allow_insecure_http = bool(allow_insecure_http)
        insecure = self.allow_insecure_http
        self.token_endpoint = (
            check_url("token_endpoint", token_endpoint, allow_http=insecure)
            if token_endpoint is not None
            else None
        )
        self.issuer = (
            check_url("issuer", issuer, allow_http=insecure) if issuer is not None else None
        )
        if audience is not None and (not isinstance(audience, str) or not audience):
            # RFC 7519 §4.1.3: any StringOrURI, so urn: audiences are fine
            raise ConfigurationError("audience must be a non-empty string")
        self.audience = audience
        if client_secret is not None and private_key is not None:
            raise ConfigurationError(
                f"client {client_id!r} has both a client_secret and a private_key; "
                "give the one its auth_method uses"
            )
        if client_secret is not None and (
            not isinstance(client_secret, str | bytes) or not client_secret
        ):
            raise ConfigurationError("client_secret must be a non-empty str or bytes")
        self.auth_method = self._choose_method(auth_method, client_secret, private_key)
        self._secret = self._check_secret(client_secret)
        self.signing_algorithm = self._check_algorithm(signing_algorithm)
        self.private_key = self._load_private_key(private_key, signing_algorithm)
        if self.auth_method == CLIENT_SECRET_JWT:
            assert client_secret is not None
            try:  # too short for the algorithm? say so now
                load_secret(client_secret, signing_algorithm or "HS256")
            except InvalidKeyError as exc:
                raise ConfigurationError(f"client {client_id!r}: {exc}") from None
        if type(assertion_lifetime) is not int or not 1 <= assertion_lifetime <= 3600:
            raise ConfigurationError("assertion_lifetime must be an int of seconds, 1 to 3600")
        self.assertion_lifetime = assertion_lifetime
        self.scope = normal_scope(scope)
        self.resource = normal_resources(resource)
        self.parameters: Parameters = check_parameters(parameters)
        self._basic_authorization = (
            _basic(client_id, self._secret) if self.auth_method == CLIENT_SECRET_BASIC else None
        )
        self.dpop = self._dpop_signer(dpop_key, dpop_algorithm)

    def _choose_method(
        self, method: str | None, secret: str | bytes | None, key: KeySource | None
    ) -> str:
        cid = self.client_id
        if method is None:
            if key is not None:
                return PRIVATE_KEY_JWT
            if secret is not None:
                return CLIENT_SECRET_BASIC
            # sending no credentials at all is a choice, never a default to fall into
            raise ConfigurationError(
                f"client {cid!r} has no client_secret and no private_key: give it one; say "
                "auth_method='private_key_jwt' when its assertions come from a "
                "ClientAssertionService or get_token(client_assertion=...), or "
                "auth_method='none' for a public client that sends only its client_id"
            )
        if method not in AUTH_METHODS:
            raise ConfigurationError(
                f"client {cid!r}: unknown auth_method {method!r}; use one of "
                + ", ".join(sorted(AUTH_METHODS))
            )
        needs_secret = method in (CLIENT_SECRET_BASIC, CLIENT_SECRET_POST, CLIENT_SECRET_JWT)
        if needs_secret and secret is None:
            raise ConfigurationError(f"client {cid!r}: {method} needs client_secret=")
        if method == PRIVATE_KEY_JWT and secret is not None:
            raise ConfigurationError(
                f"client {cid!r}: private_key_jwt signs with private_key=, not a client_secret"
            )
        if method == NONE and (secret is not None or key is not None):
            raise ConfigurationError(
                f"client {cid!r}: auth_method 'none' sends no credentials; drop the secret or key"
            )
        if key is not None and method != PRIVATE_KEY_JWT:
            raise ConfigurationError(f"client {cid!r}: a private_key is used by private_key_jwt")
        return method

    def _check_secret(self, secret: str | bytes | None) -> str | bytes | None:
        if isinstance(secret, bytes) and self.auth_method in (
            CLIENT_SECRET_BASIC,
            CLIENT_SECRET_POST,
        ):
            # sent as text in a form or header; raised outside the except block, so the
            # decode error (which holds the bytes) is not even the context
            try:
                text: str | None = secret.decode("utf-8")
            except UnicodeDecodeError:
                text = None
            if text is None:
                raise ConfigurationError(
                    f"client {self.client_id!r}: a {self.auth_method} secret must be UTF-8 text"
                )
            return text
        return secret

    def _check_algorithm(self, algorithm: str | None) -> str | None:
        if algorithm is None:
            return None
        if not self.uses_assertion:
            raise ConfigurationError(
                f"client {self.client_id!r}: signing_algorithm is for client assertions; "
                f"{self.auth_method} signs nothing"
            )
        try:
            return get_algorithm(algorithm).name
        except UnsupportedAlgorithmError as exc:
            raise ConfigurationError(f"client {self.client_id!r}: {exc}") from None

    def _load_private_key(self, key: KeySource | None, algorithm: str | None) -> SigningKey | None:
        if key is None:
            # private_key_jwt without a key: the assertions come from a ClientAssertionService,
            # or from get_token's callers
            return None
        try:
            loaded = load_key(key)
            if algorithm is not None:
                loaded = loaded.with_options(algorithm=algorithm)
        except InvalidKeyError as exc:
            raise ConfigurationError(f"client {self.client_id!r}: {exc}") from None
        if loaded.kty == "oct":
            raise ConfigurationError(
                f"client {self.client_id!r}: private_key is an HMAC secret; pass it as "
                "client_secret= with auth_method='client_secret_jwt'"
            )
        return loaded

    def _dpop_signer(self, key: KeySource | None, algorithm: str | None) -> DPoPSigner | None:
        if key is None:
            if algorithm is not None:
                raise ConfigurationError(
                    f"client {self.client_id!r}: dpop_algorithm needs a dpop_key"
                )
            return None
        try:
            loaded = load_key(key)
        except InvalidKeyError as exc:
            raise ConfigurationError(f"client {self.client_id!r}: dpop_key: {exc}") from None
        if loaded.kty == "oct":
            # RFC 9449 §4.2: the proof carries the public key; a shared secret has none
            raise ConfigurationError(
                f"client {self.client_id!r}: a DPoP key must be an asymmetric private key "
                "(EC, RSA or Ed25519), not an HMAC secret"
            )
        try:
            return DPoPSigner(loaded, algorithm=algorithm)
        except (InvalidKeyError, UnsupportedAlgorithmError) as exc:
            raise ConfigurationError(f"client {self.client_id!r}: dpop_key: {exc}") from None

    @property
    def dpop_jkt(self) -> str | None:
        """The RFC 7638 thumbprint of the DPoP key (the ``jkt`` tokens are bound to), or None."""
        return self.dpop.thumbprint if self.dpop is not None else None

    @property
    def client_secret(self) -> str | bytes | None:
        return self._secret

    @property
    def basic_authorization(self) -> str | None:
        """``Basic ...`` for client_secret_basic, computed once."""
        return self._basic_authorization

    @property
    def identity(self) -> str:
        """Who this client is at which server: part of every cache key."""
        return f"{self.client_id} {self.issuer or self.token_endpoint}"

    @property
    def uses_assertion(self) -> bool:
        return self.auth_method in (CLIENT_SECRET_JWT, PRIVATE_KEY_JWT)

    @property
    def needs_assertions(self) -> bool:
        """Whether its token requests need an assertion from elsewhere (``private_key_jwt``
        without a key of its own): a ``ClientAssertionService``, or ``get_token``'s caller."""
        return self.auth_method == PRIVATE_KEY_JWT and self.private_key is None

    def __repr__(self) -> str:
        parts = [f"{self.client_id!r}", f"auth_method={self.auth_method!r}"]
        if self.issuer:
            parts.append(f"issuer={self.issuer!r}")
        if self.token_endpoint:
            parts.append(f"token_endpoint={self.token_endpoint!r}")
        if self.scope:
            parts.append(f"scope={self.scope!r}")
        if self.private_key is not None:
            parts.append(f"key={self.private_key.fingerprint}")
        if self._secret is not None:
            parts.append("client_secret=<hidden>")
        if self.dpop is not None:
            parts.append(f"dpop_jkt={self.dpop.thumbprint!r}")
        return f"ClientCredentialsClient({', '.join(parts)})"

    __str__ = __repr__


def normal_scope(scope: str | Sequence[str] | None) -> str | None:
    """A scope argument as one space-delimited string, or ConfigurationError."""
    if scope is None:
        return None
    words = scope.split() if isinstance(scope, str) else list(scope)
    if not all(isinstance(w, str) and w and " " not in w for w in words):
        raise ConfigurationError("scope must be a space-delimited string or a list of scope tokens")
    return " ".join(words) or None


def normal_resources(resource: str | Sequence[str] | None) -> tuple[str, ...]:
    """RFC 8707 resource values, sorted, or ConfigurationError."""
    values = normalize_resource(resource)
    for value in values:
        # RFC 8707 §2: an absolute URI without a fragment
        if not isinstance(value, str) or ":" not in value or "#" in value:
            raise ConfigurationError(
                "resource must be absolute URIs without a fragment (RFC 8707), got "
                + shown_url(value)
            )
    return values


def check_parameters(parameters: Mapping[str, str | Sequence[str]] | None) -> Parameters:
    """Custom form parameters, normalised; the reserved names raise ConfigurationError."""
    if parameters is None:
        return ()
    if not isinstance(parameters, Mapping):
        raise ConfigurationError("parameters must be a mapping of names to str or list of str")
    clash = RESERVED_PARAMETERS.intersection(parameters)
    if clash:
        raise ConfigurationError(
            f"parameters may not set {', '.join(sorted(clash))}: use scope=, resource= or the "
            "client's authentication settings"
        )
    normal = normalize_parameters(parameters)
    for name, values in normal:
        if not isinstance(name, str) or not name or not all(isinstance(v, str) for v in values):
            raise ConfigurationError(f"parameter {name!r} must map to a str or a list of str")
    return normal


def request_key(
    name: str,
    client: ClientCredentialsClient,
    scope: str | Sequence[str] | None = None,
    resource: str | Sequence[str] | None = None,
    parameters: Mapping[str, str | Sequence[str]] | None = None,
) -> CacheKey:
    """The cache key of a request for ``client`` (named ``name``): the client's scope,
    resources and parameters, overridden by the request's (parameters merged, the
    request's winning), or ConfigurationError."""
    try:
        chosen_scope = client.scope if scope is None else normal_scope(scope)
        chosen_resource = client.resource if resource is None else normal_resources(resource)
        chosen_parameters = client.parameters
        override = check_parameters(parameters)
        if override:
            merged = dict(chosen_parameters)
            merged.update(override)
            chosen_parameters = tuple(sorted(merged.items()))
    except ConfigurationError as exc:
        raise ConfigurationError(f"get_token({name!r}): {exc}") from None
    return cache_key(
        name, client.identity, chosen_scope, chosen_resource, chosen_parameters, client.dpop_jkt
    )


def _basic(client_id: str, secret: str | bytes | None) -> str:
    assert isinstance(secret, str)  # _check_secret made it text
    text = secret
    # RFC 6749 §2.3.1: form-urlencode both before base64 (many servers skip this; ':' breaks them)
    pair = f"{quote_plus(client_id)}:{quote_plus(text)}"
    return "Basic " + base64.b64encode(pair.encode()).decode("ascii")
