"""The protected resource at ``/api/...``: bearer tokens (RFC 6750) and DPoP (RFC 9449 §7)."""

from __future__ import annotations

from collections.abc import Callable

from aiohttp import web
from multidict import CIMultiDict

from ._auth import REALM
from ._dpop import DPoPVerifier, record_proof
from ._model import OAuthError, RecordedResourceRequest
from ._store import IssuedToken, TokenStore

__all__ = ["ProtectedResource"]

_NO_TOKEN = "a bearer token, or a DPoP-bound token with a DPoP proof, is required"


def _invalid_token(description: str) -> OAuthError:
    return OAuthError("invalid_token", description, status=401)


class ProtectedResource:
    """Answers ``/api/...`` with what the token was issued for, or a 401 challenge.

    ``Bearer`` tokens that are not DPoP-bound pass as RFC 6750 says; a DPoP-bound token
    needs the ``DPoP`` scheme, a proof for this request with its ``ath``, signed by the
    key the token is bound to (RFC 9449 §7.1); presented as ``Bearer`` it is refused
    (§7.2). Each call is appended to ``records``, and ``(path, status)`` to ``calls``.
    """

    def __init__(
        self,
        tokens: TokenStore,
        dpop: DPoPVerifier,
        clock: Callable[[], float],
        records: list[RecordedResourceRequest],
        calls: list[tuple[str, int]],
    ) -> None:
        self._tokens = tokens
        self._dpop = dpop
        self._clock = clock
        self._records = records
        self._calls = calls

    async def handle(self, request: web.Request) -> web.Response:
        """The ``/api/{tail}`` handler, for any method."""
        tail = request.match_info["tail"]
        proofs = tuple(request.headers.getall("DPoP", ()))
        scheme, _, token = request.headers.get("Authorization", "").strip().partition(" ")
        kind = scheme.lower()
        error = None
        try:
            issued = self._authorize(request, kind, token.strip(), proofs)
        except OAuthError as exc:
            response, error = self._challenge(exc, kind), exc.error
        else:
            if issued is None:
                response = self._challenge(None, kind)
            else:
                document = {"client_id": issued.client_id, "scope": issued.scope, "path": tail}
                response = web.json_response(document)
        self._dpop.add_nonce(response.headers)
        self._calls.append((tail, response.status))
        self._records.append(
            RecordedResourceRequest(
                request.method,
                tail,
                response.status,
                scheme or None,
                error,
                self._clock(),
                dpop=record_proof(proofs),
            )
        )
        return response

    def _authorize(
        self, request: web.Request, kind: str, token: str, proofs: tuple[str, ...]
    ) -> IssuedToken | None:
        """The token's record; None when no credentials came; an OAuthError to refuse."""
        if kind == "dpop":
            # RFC 9110 §7.1: the target URI, rebuilt from the scheme, Host and path
            url = f"{request.scheme}://{request.host}{request.rel_url.raw_path}"
            checked = self._dpop.check(proofs, request.method, url, access_token=token)
            issued = self._tokens.live(token)
            if issued is None:
                raise _invalid_token("the access token is unknown, revoked or expired")
            if issued.jkt is None:
                raise _invalid_token("the access token is not DPoP-bound: send it as Bearer")
            if issued.jkt != checked.jkt:
                raise _invalid_token("the access token is bound to another key than the proof's")
            return issued
        if kind == "bearer":
            issued = self._tokens.live(token)
            if issued is None:
                raise _invalid_token("the access token is unknown, revoked or expired")
            if issued.jkt is not None:
                raise _invalid_token(
                    "the access token is DPoP-bound: send it with the DPoP scheme and a proof"
                )
            return issued
        return None

    def _challenge(self, refusal: OAuthError | None, kind: str) -> web.Response:
        """RFC 6750 §3 and RFC 9449 §7.1: both schemes are offered, the one used first.

        The error goes in the challenge of the scheme used; with no credentials at all,
        neither challenge names one (RFC 6750 §3.1).
        """
        params = ""
        if refusal is not None:
            params = f', error="{refusal.error}", error_description="{refusal.description}"'
        algs = " ".join(self._dpop.policy.algorithms)
        bearer = f'Bearer realm="{REALM}"'
        dpop = f'DPoP realm="{REALM}"'
        if kind == "dpop":
            challenges = (f'{dpop}{params}, algs="{algs}"', bearer)
        else:
            challenges = (f"{bearer}{params}", f'{dpop}, algs="{algs}"')
        headers: CIMultiDict[str] = CIMultiDict()
        for challenge in challenges:
            headers.add("WWW-Authenticate", challenge)
        if refusal is None:
            document = {"error_description": _NO_TOKEN}
        else:
            headers.update(refusal.headers)
            document = refusal.document()
        return web.json_response(document, status=401, headers=headers)
