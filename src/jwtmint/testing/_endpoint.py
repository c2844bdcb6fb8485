"""The loopback authorization server: token endpoint, discovery and a protected resource."""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import random
import time
from collections import deque
from collections.abc import Callable, Iterable
from typing import Any

from aiohttp import web

from ..errors import ConfigurationError
from ._auth import AssertionPolicy, Authenticator, Claimed, Client, claimed_identity
from ._dpop import DPoPPolicy, DPoPVerifier, record_proof
from ._jose import SUPPORTED_ALGORITHMS
from ._model import AUTH_METHODS, Fault, OAuthError, RecordedRequest, RecordedResourceRequest
from ._request import MAX_BODY, Form, check_resources, check_scope, extra_parameters, read_form
from ._resource import ProtectedResource
from ._responses import NO_STORE, error_response, fault_response
from ._server import LoopbackServer
from ._store import IssuedToken, TokenStore

__all__ = ["TokenEndpoint"]

#: what ``failure_rate`` answers: a transient refusal (RFC 6749 §5.2 via Fault's default body)
_TRANSIENT = Fault(status=503)

GRANT_TYPE = "client_credentials"
_log = logging.getLogger("jwtmint.testing")
_DISCOVERY_PATHS = ("/.well-known/openid-configuration", "/.well-known/oauth-authorization-server")


class TokenEndpoint(LoopbackServer):
    """A strict OAuth 2.0 authorization server on 127.0.0.1, for tests and demos.

    It serves the client credentials grant (RFC 6749 §4.4) at ``/token`` with real client
    authentication: ``client_secret_basic`` and ``client_secret_post`` (RFC 6749 §2.3.1),
    ``client_secret_jwt`` and ``private_key_jwt`` (RFC 7523 §2.2 and §3, verified by its own JWS
    code), and ``none``. It publishes RFC 8414 metadata at both well-known paths and guards
    ``/api/...`` with the bearer tokens it issued (RFC 6750). Every request that reaches the
    ``/token`` handler is recorded in :attr:`requests`, whatever its answer (aiohttp itself
    refuses some malformed HTTP before that, such as an unknown Content-Encoding);
    :meth:`fail_next` and :meth:`set_fault` replace normal answers with a :class:`Fault`. A
    request it cannot make sense of gets an RFC 6749 §5.2 error (4xx), never a 500: only a bug
    in the endpoint itself is answered 500 ``{"error": "server_error"}``, recorded with outcome
    ``server_error`` and logged to the ``jwtmint.testing`` logger.

    ``token_lifetime`` is the ``expires_in`` it issues (None: omitted, and the
    token never expires); ``clock`` (epoch seconds) judges assertion times and
    token expiry; ``max_assertion_lifetime`` bounds ``exp - iat``;
    ``leeway`` is the clock skew tolerated; ``require_typ`` demands the
    ``client-authentication+jwt`` header type; ``discovery=False`` answers 404
    at the metadata paths.

    DPoP (RFC 9449), checked with its own JOSE code: a token request with a valid ``DPoP``
    proof gets ``"token_type": "DPoP"``, bound to the proof key's thumbprint (``cnf.jkt`` in
    :meth:`token_info`); without one it stays Bearer, unless ``require_dpop=True`` or the
    client was registered with ``dpop_bound_access_tokens=True``: then it is refused 400
    ``invalid_grant`` (as oidc-provider answers). A bad proof is 400 ``invalid_dpop_proof``
    at ``/token``, 401 with ``WWW-Authenticate: DPoP error="invalid_dpop_proof"`` at
    ``/api``. ``dpop_max_age`` bounds a proof's age by its ``iat`` (``leeway`` applies too);
    a ``jti`` is refused while it could be replayed. ``dpop_algorithms`` limits the
    algorithms taken (default: every asymmetric one; published as
    ``dpop_signing_alg_values_supported``). ``dpop_nonce=True`` requires the server nonce
    (RFC 9449 §8, §9): without it, or with a stale one, ``use_dpop_nonce`` (400 at
    ``/token``, 401 at ``/api``) and a ``DPoP-Nonce`` header; every answer but a fault's
    carries the current nonce (:attr:`dpop_nonce`). :meth:`rotate_dpop_nonce` starts a new
    one, and so does ``dpop_nonce_lifetime`` seconds' age; the previous one stays valid.

    An assertion's ``aud`` must name the issuer identifier: the string itself,
    or an array holding it among other values (RFC 7523 §3 allows that, and
    oidc-provider accepts it). ``strict_audience=True`` demands the single
    string draft-ietf-oauth-rfc7523bis requires: no array, not even one of a
    single member. ``accept_token_endpoint_audience=True`` also takes the
    token URL wherever the issuer is taken.

    ``failure_rate`` answers that fraction of token requests (at random, ``seed``
    for repeatable runs) with a 503 ``temporarily_unavailable``, as a loaded
    server would, unless a fault is queued or set.

    Use it as ``async with TokenEndpoint() as ep:`` (or ``await ep.start()`` and
    ``await ep.close()``) on the running event loop; it runs once.
    """

    def __init__(
        self,
        *,
        token_lifetime: int | None = 3600,
        clock: Callable[[], float] = time.time,
        max_assertion_lifetime: int = 300,
        leeway: int = 5,
        accept_token_endpoint_audience: bool = False,
        require_typ: bool = False,
        discovery: bool = True,
        strict_audience: bool = False,
        require_dpop: bool = False,
        dpop_nonce: bool = False,
        dpop_nonce_lifetime: float | None = None,
        dpop_max_age: int = 60,
        dpop_algorithms: Iterable[str] | None = None,
        failure_rate: float = 0.0,
        seed: int | None = None,
    ) -> None:
        if not 0.0 <= failure_rate <= 1.0:
            raise ConfigurationError("failure_rate is a fraction of token requests, 0 to 1")
        #: token requests answered 503 at random (transient failures), and their dice
        self.failure_rate = failure_rate
        self._dice = random.Random(seed)
        if token_lifetime is not None and token_lifetime <= 0:
            raise ConfigurationError("token_lifetime must be positive, or None to omit expires_in")
        if max_assertion_lifetime <= 0 or leeway < 0:
            raise ConfigurationError(
                "max_assertion_lifetime must be positive and leeway not negative"
            )
        super().__init__()
        self._token_lifetime = token_lifetime
        self._clock = clock
        self._accept_token_url = accept_token_endpoint_audience
        self._discovery = discovery
        self._clients: dict[str, Client] = {}
        policy = AssertionPolicy(max_assertion_lifetime, leeway, require_typ, strict_audience)
        self._authenticator = Authenticator(self._clients, policy, clock)
        dpop = DPoPPolicy.build(
            dpop_algorithms,
            require=require_dpop,
            nonce=dpop_nonce,
            nonce_lifetime=dpop_nonce_lifetime,
            max_age=dpop_max_age,
            leeway=leeway,
        )
        self._dpop = DPoPVerifier(dpop, clock)
        # the resource is another server: its own nonces and jti memory (RFC 9449 §9: a
        # nonce is for the server that issued it; a client must not use the AS's at the RS)
        self._resource_dpop = DPoPVerifier(dpop, clock)
        self._tokens = TokenStore(clock)
        self._faults: deque[Fault] = deque()
        self._fault: Fault | None = None
        #: Every request that reached ``/token`` (any method, refused, faulted or failed;
        #: only one whose client hung up before its body was read is not), in the order
        #: they were decided: a delayed fault is recorded before its wait.
        self.requests: list[RecordedRequest] = []
        #: ``(path after /api/, HTTP status)`` of every protected-resource call.
        self.api_requests: list[tuple[str, int]] = []
        #: Every protected-resource call, with its scheme, refusal and DPoP proof.
        self.resource_requests: list[RecordedResourceRequest] = []
        self._resource = ProtectedResource(
            self._tokens, self._resource_dpop, clock, self.resource_requests, self.api_requests
        )
        #: Merged into the metadata documents; a None value removes that member.
        self.metadata_overrides: dict[str, Any] = {}
        #: Seconds each token request waits before it is answered as usual (a slow
        #: authorization server, slower than a client's lock or timeout); closing cuts it short.
        self.latency: float = 0.0

    def __repr__(self) -> str:
        return f"TokenEndpoint(url={self._url!r}, clients={len(self._clients)})"

    def _application(self) -> web.Application:
        app = web.Application(client_max_size=MAX_BODY)
        app.router.add_route("*", "/token", self._handle_token)
        if self._discovery:
            for path in _DISCOVERY_PATHS:
                app.router.add_get(path, self._handle_metadata)
        # [\s\S]: a path segment may hold an encoded newline, which "." would not match
        app.router.add_route("*", r"/api/{tail:[\s\S]*}", self._resource.handle)
        return app

    # ------------------------------------------------------------------ addresses

    @property
    def issuer(self) -> str:
        """The issuer identifier (RFC 8414 §2), the same string as :attr:`url`."""
        return self.url

    @property
    def token_url(self) -> str:
        """The token endpoint URL (RFC 6749 §3.2)."""
        return self.url + "/token"

    # ------------------------------------------------------------------ configuration

    def register_client(
        self,
        client_id: str,
        *,
        secret: str | bytes | None = None,
        public_key: object = None,
        auth_method: str | None = None,
        allowed_scopes: Iterable[str] | None = None,
        dpop_bound_access_tokens: bool = False,
    ) -> None:
        """Register (or replace) a client, as RFC 7591 §2 metadata would describe it.

        ``public_key`` is a jwtmint ``SigningKey``, a cryptography public or
        private key, a public JWK, a JWK Set or a list of these (a JWK's
        ``alg`` and ``kid`` are honoured). ``auth_method`` is one of
        ``client_secret_basic``, ``client_secret_post``, ``client_secret_jwt``,
        ``private_key_jwt`` or ``none``; without it a public key means
        ``private_key_jwt``, a secret ``client_secret_basic``, neither ``none``.
        ``allowed_scopes`` limits the scope tokens granted (None: any).
        ``dpop_bound_access_tokens=True`` (RFC 9449 §5.2) refuses its token
        requests that carry no DPoP proof.

        RSA keys under 2048 bits are refused with a ValueError (RFC 7518
        §3.3). A ``client_secret_jwt`` secret shorter than the hash output (32
        bytes for HS256, 48 for HS384, 64 for HS512) is registered, but an
        assertion signed with it is refused as ``invalid_client`` (RFC 7518
        §3.2); ``client_secret_basic`` and ``client_secret_post`` secrets may
        be of any length.
        """
        self._clients[client_id] = Client.register(
            client_id,
            secret=secret,
            public_key=public_key,
            auth_method=auth_method,
            allowed_scopes=allowed_scopes,
            dpop_bound=dpop_bound_access_tokens,
        )

    def fail_next(self, n: int = 1, fault: Fault | None = None, **fault_fields: Any) -> None:
        """Answer the next ``n`` token requests with ``fault`` instead of processing them.

        ``fault_fields`` build the fault (``fail_next(status=429, headers=...)``)
        or override fields of the one given. Calls queue up first in, first
        out, and queued faults come before one set with :meth:`set_fault`.
        """
        if n < 0:
            raise ConfigurationError("n cannot be negative")
        if fault is None:
            chosen = Fault(**fault_fields)
        else:
            chosen = dataclasses.replace(fault, **fault_fields)
        self._faults.extend([chosen] * n)

    def set_fault(self, fault: Fault | None) -> None:
        """Answer every token request with ``fault`` until called with None."""
        self._fault = fault

    def _take_fault(self) -> Fault | None:
        if self._faults:
            return self._faults.popleft()
        if self._fault is None and self.failure_rate and self._dice.random() < self.failure_rate:
            return _TRANSIENT
        return self._fault

    # ------------------------------------------------------------------ tokens

    def revoke(self, access_token: str) -> None:
        """Forget one issued token; unknown tokens are ignored (as RFC 7009 §2.2 does)."""
        self._tokens.revoke(access_token)

    def revoke_all(self) -> None:
        """Forget every issued token."""
        self._tokens.clear()

    def token_info(self, access_token: str) -> dict[str, Any] | None:
        """What the token was issued for, or None when unknown, revoked or expired.

        The keys are ``client_id``, ``scope``, ``resource`` (a tuple),
        ``expires_at`` (epoch seconds by the endpoint's clock; None when the
        token never expires), ``parameters`` (extra form fields of the request),
        ``token_type`` (``Bearer`` or ``DPoP``) and, for a DPoP-bound token only,
        ``cnf``: ``{"jkt": thumbprint}`` as introspection shows it (RFC 9449 §6.2).
        """
        issued = self._tokens.live(access_token)
        return None if issued is None else issued.info()

    def request_count(self, client_id: str | None = None) -> int:
        """How many token requests arrived (from ``client_id``, when given)."""
        if client_id is None:
            return len(self.requests)
        return sum(1 for r in self.requests if r.client_id == client_id)

    @property
    def dpop_nonce(self) -> str | None:
        """The DPoP nonce ``/token`` hands out now (RFC 9449 §8); None unless
        ``dpop_nonce=True``."""
        return self._dpop.nonces.current() if self._dpop.policy.nonce else None

    @property
    def resource_dpop_nonce(self) -> str | None:
        """The DPoP nonce ``/api`` hands out now (RFC 9449 §9): another server's, never the
        same as :attr:`dpop_nonce`; None unless ``dpop_nonce=True``."""
        return self._resource_dpop.nonces.current() if self._dpop.policy.nonce else None

    def rotate_dpop_nonce(self) -> str:
        """Start new DPoP nonces now at ``/token`` and ``/api``; the ones they replace stay
        valid until the next rotation. Returns the new ``/token`` nonce."""
        self._resource_dpop.nonces.rotate()
        return self._dpop.nonces.rotate()

    # ------------------------------------------------------------------ /token

    async def _handle_token(self, request: web.Request) -> web.StreamResponse:
        form = Form(
            {}, request.headers.get("Authorization"), tuple(request.headers.getall("DPoP", ()))
        )
        recorded = False
        try:
            form, refusal = await read_form(request)
            fault = self._take_fault()
            if fault is not None:
                self._record(form, "fault", fault.status)
                recorded = True
                return await self._answer_fault(request, fault)
            if self.latency > 0:
                await self._pause(self.latency)
            try:
                if refusal is not None:
                    raise refusal
                response, outcome = self._grant(form), "issued"
            except OAuthError as exc:
                response, outcome = error_response(exc), exc.error
            self._dpop.add_nonce(response.headers)
            self._record(form, outcome, response.status)
            return response
        except Exception:
            # every malformed request is an OAuthError above: this is a bug in the endpoint
            _log.exception("TokenEndpoint: unexpected error answering a token request")
            if not recorded:
                claimed = Claimed()
                with contextlib.suppress(Exception):  # in case claimed_identity is the bug
                    claimed = claimed_identity(form)
                self._record(form, "server_error", 500, claimed)
            failed = web.json_response({"error": "server_error"}, status=500, headers=NO_STORE)
            self._dpop.add_nonce(failed.headers)
            return failed

    def _grant(self, form: Form) -> web.Response:
        """RFC 6749 §4.4.2 and §4.4.3: check the request, then issue a token."""
        form.check_single()
        grant_type = form.get("grant_type")
        if grant_type is None:
            raise OAuthError("invalid_request", "grant_type is missing")
        if grant_type != GRANT_TYPE:
            raise OAuthError("unsupported_grant_type", f"only {GRANT_TYPE} is supported")
        client = self._authenticator.authenticate(form, self._audiences())
        scope = form.get("scope")
        check_scope(scope, client.allowed_scopes)
        resource = tuple(form.fields.get("resource", ()))
        check_resources(resource)
        jkt = self._proof_key(form, client)
        expires_at = None if self._token_lifetime is None else self._clock() + self._token_lifetime
        parameters = extra_parameters(form)
        issued = IssuedToken(client.client_id, scope, resource, expires_at, parameters, jkt)
        document: dict[str, Any] = {
            "access_token": self._tokens.issue(issued),
            "token_type": issued.token_type,
        }
        if self._token_lifetime is not None:
            document["expires_in"] = self._token_lifetime
        if scope is not None:
            document["scope"] = scope
        return web.json_response(document, headers=NO_STORE)

    def _proof_key(self, form: Form, client: Client) -> str | None:
        """RFC 9449 §5: a valid proof binds the token to its key's thumbprint."""
        if form.dpop:
            return self._dpop.check(form.dpop, "POST", self.token_url).jkt
        if client.dpop_bound or self._dpop.policy.require:
            # oidc-provider's answer; RFC 9449 §5.2 only says such requests are rejected
            raise OAuthError("invalid_grant", "DPoP proof JWT not provided (RFC 9449 5)")
        return None

    def _audiences(self) -> frozenset[str]:
        if self._accept_token_url:
            return frozenset({self.issuer, self.token_url})
        return frozenset({self.issuer})

    def _record(
        self, form: Form, outcome: str, status: int, claimed: Claimed | None = None
    ) -> None:
        if claimed is None:
            claimed = claimed_identity(form)
        assertion = claimed.assertion
        jti = assertion.claims.get("jti") if assertion else None
        self.requests.append(
            RecordedRequest(
                client_id=claimed.client_id,
                auth_method=claimed.auth_method,
                grant_type=form.get("grant_type"),
                scope=form.get("scope"),
                resource=tuple(form.fields.get("resource", ())),
                parameters=extra_parameters(form),
                jti=jti if isinstance(jti, str) else None,
                assertion_claims=assertion.claims if assertion else None,
                assertion_header=assertion.header if assertion else None,
                outcome=outcome,
                at=self._clock(),
                status=status,
                dpop=record_proof(form.dpop),
            )
        )

    async def _answer_fault(self, request: web.Request, fault: Fault) -> web.StreamResponse:
        if fault.delay:
            await self._pause(fault.delay)
        if fault.drop:
            if request.transport is not None:
                request.transport.close()
            # aiohttp's attempt to write this to the closed transport is dropped quietly
            return web.Response()
        return fault_response(fault)

    # ------------------------------------------------------------------ metadata

    async def _handle_metadata(self, request: web.Request) -> web.Response:
        """RFC 8414 §3.2 (and OpenID Connect Discovery 1.0 §4) metadata."""
        metadata: dict[str, Any] = {
            "issuer": self.issuer,
            "token_endpoint": self.token_url,
            "token_endpoint_auth_methods_supported": list(AUTH_METHODS),
            "token_endpoint_auth_signing_alg_values_supported": list(SUPPORTED_ALGORITHMS),
            "grant_types_supported": [GRANT_TYPE],
            "dpop_signing_alg_values_supported": list(self._dpop.policy.algorithms),
        }
        for name, value in self.metadata_overrides.items():
            if value is None:
                metadata.pop(name, None)
            else:
                metadata[name] = value
        return web.json_response(metadata)
