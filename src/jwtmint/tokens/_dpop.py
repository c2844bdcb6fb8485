"""DPoP (RFC 9449) for token requests and API calls: a proof per request, server nonces per server.

A client with a ``dpop_key`` sends a fresh proof with every token request
(``htm`` POST, ``htu`` the token endpoint) and, once it holds a DPoP-bound
token, with every API call (``ath`` binds the token). Servers may demand a
nonce of their choosing (RFC 9449 §8, §9): they send it in ``DPoP-Nonce`` on
any response and rotate it when they like, so the latest one seen is kept
here, per authorization server (by its token endpoint's origin) and per
resource origin apart (§9: a nonce is used only at the server that issued it,
even when both live on one host), in a bounded store shared by the token
requests and the API adapters of one manager. A ``use_dpop_nonce`` challenge
is answered once per request with a new proof (and, at the token endpoint, a
new client assertion): a server that challenges forever costs one retry per
request, never a loop.
"""

from __future__ import annotations

import re
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping, MutableMapping

from yarl import URL

from .._dpop import DPoPSigner
from ._token import Token

__all__ = [
    "ANSWERABLE",
    "CHALLENGED",
    "DPOP",
    "DPOP_NONCE",
    "INVALID_DPOP_PROOF",
    "MAX_NONCE_LENGTH",
    "NOT_CHALLENGED",
    "USE_DPOP_NONCE",
    "ApiProofs",
    "DPoPNonces",
    "authorization_server",
    "dpop_error",
    "origin_of",
]

#: the request header that carries a proof (RFC 9449 §4.1)
DPOP = "DPoP"
#: the response header that carries a server's nonce (RFC 9449 §8.1)
DPOP_NONCE = "DPoP-Nonce"
#: the errors a server answers a proof with (RFC 9449 §7.1, §8, §9)
USE_DPOP_NONCE, INVALID_DPOP_PROOF = "use_dpop_nonce", "invalid_dpop_proof"
#: longer values are not kept: a nonce is a short opaque string, and a hostile server
#: must not make every later proof (and header) carry megabytes
MAX_NONCE_LENGTH = 1024
#: NQCHAR (RFC 9449 §8.1): printable ASCII without space, '"' and '\\'
_NONCE = re.compile(r"[\x21\x23-\x5b\x5d-\x7e]+")
#: one element of a WWW-Authenticate list (RFC 9110 §11.6.1): a quoted string or anything else
_ELEMENT = re.compile(r'(?:[^,"]|"(?:[^"\\]|\\.)*")+')
#: an element that starts a challenge: a scheme, then (optionally) its first auth-param
_SCHEME = re.compile(r"\s*([!#$%&'*+.^_`|~0-9A-Za-z-]+)(?:\s+(.*))?\s*$", re.DOTALL)
_PARAM = re.compile(r'\s*([!#$%&\'*+.^_`|~0-9A-Za-z-]+)\s*=\s*("(?:[^"\\]|\\.)*"|[^\s,]*)\s*$')


def origin_of(url: URL) -> str:
    """``scheme://host[:port]``; yarl drops default ports, so ``:443`` and none compare equal."""
    return str(url.origin())


def authorization_server(origin: str) -> str:
    """The store's key for the nonces of the authorization server at ``origin``: apart from
    the resource servers' (RFC 9449 §9), which are keyed by their origin alone."""
    return "as:" + origin


def dpop_error(www_authenticate: Iterable[str]) -> str | None:
    """The ``error`` of the DPoP challenge in a response's ``WWW-Authenticate`` fields (several
    challenges may share one field, RFC 9110 §11.6.1), or ``None`` when there is none."""
    for field in www_authenticate:
        scheme: str | None = None
        for element in _ELEMENT.findall(field):
            param = _PARAM.match(element)
            if param is None:
                start = _SCHEME.match(element)
                if start is None:
                    continue
                scheme = start.group(1).lower()
                param = _PARAM.match(start.group(2) or "")
                if param is None:
                    continue
            if scheme == "dpop" and param.group(1).lower() == "error":
                return param.group(2).strip('"')
    return None


class DPoPNonces:
    """The latest ``DPoP-Nonce`` each server sent, for at most ``limit`` servers (the least
    recently updated are forgotten first). Values that are not NQCHAR text of at most
    :data:`MAX_NONCE_LENGTH` characters are ignored: they would go into every proof."""

    __slots__ = ("_limit", "_nonces", "publish", "updates")

    def __init__(self, limit: int = 1024) -> None:
        self._limit = limit
        #: server -> (nonce, epoch second it was learned)
        self._nonces: OrderedDict[str, tuple[str, float]] = OrderedDict()
        #: nonces learned (new values only)
        self.updates = 0
        #: called with (server, nonce, learned at) by :meth:`announce`: a shared cache
        #: (RedisTokenCache) sets it to tell the other instances
        self.publish: Callable[[str, str, float], None] | None = None

    def __len__(self) -> int:
        return len(self._nonces)

    def __repr__(self) -> str:
        return f"DPoPNonces(servers={len(self._nonces)}, limit={self._limit})"

    def get(self, server: str) -> str | None:
        held = self._nonces.get(server)
        return held[0] if held is not None else None

    def learn(self, server: str, value: str | None, *, learned_at: float | None = None) -> bool:
        """Keep ``value`` as ``server``'s nonce; True when it is a new, valid one.
        ``learned_at`` is given for a nonce another instance learned then: it does not
        replace one learned here later (messages may arrive late)."""
        if value is None or len(value) > MAX_NONCE_LENGTH or not _NONCE.fullmatch(value):
            return False
        nonces = self._nonces
        held = nonces.get(server)
        if held is not None and (
            held[0] == value or (learned_at is not None and learned_at <= held[1])
        ):
            return False
        nonces[server] = (value, time.time() if learned_at is None else learned_at)
        nonces.move_to_end(server)
        if len(nonces) > self._limit:
            nonces.popitem(last=False)
        self.updates += 1
        return True

    def learn_from(self, server: str, headers: Mapping[str, str]) -> bool:
        """:meth:`learn` the ``DPoP-Nonce`` of a response's headers, if any."""
        return self.learn(server, headers.get(DPOP_NONCE))

    def announce(self, server: str) -> None:
        """Tell the other instances ``server``'s nonce: called after a challenge, the one
        moment a nonce is known to be needed (servers may rotate on every response, and
        publishing each would cost every instance a message per response)."""
        held = self._nonces.get(server)
        if held is not None and self.publish is not None:
            self.publish(server, held[0], held[1])


#: what :meth:`ApiProofs.challenged` finds in a response
NOT_CHALLENGED, CHALLENGED, ANSWERABLE = 0, 1, 2


class ApiProofs:
    """What the HTTP adapters add to an API call for a DPoP client (RFC 9449 §7): the
    ``DPoP`` proof binding method, URL and token, with the origin's latest nonce.

    A token the server issued as ``Bearer`` (it chose not to bind it) gets no
    proof: it is sent as a bearer token.
    """

    __slots__ = ("nonces", "signer")

    def __init__(self, signer: DPoPSigner, nonces: DPoPNonces) -> None:
        self.signer = signer
        self.nonces = nonces

    def __repr__(self) -> str:
        return f"ApiProofs(jkt={self.signer.thumbprint!r})"

    @staticmethod
    def binds(token: Token) -> bool:
        return token.token_type.lower() == "dpop"

    def authorize(
        self, headers: MutableMapping[str, str], method: str, url: str, origin: str, token: Token
    ) -> tuple[bool, str | None]:
        """Set a request's ``Authorization`` for ``token`` and, when it is DPoP-bound, a fresh
        proof for ``url`` (exactly as the HTTP client sends it); a Bearer token (the server
        chose not to bind it) goes without one, and no earlier proof is left behind. Whether
        a proof was set, and the nonce it carries."""
        headers["Authorization"] = token.authorization
        if not self.binds(token):
            headers.pop(DPOP, None)
            return False, None
        headers[DPOP], nonce = self.proof(method, url, origin, token)
        return True, nonce

    def proof(self, method: str, url: str, origin: str, token: Token) -> tuple[str, str | None]:
        """A fresh proof (new ``jti``) for one request to ``url`` (exactly as it is sent) at
        ``origin``, and the origin's nonce it carries."""
        nonce = self.nonces.get(origin)
        proof = self.signer.proof(method, url, access_token=token.access_token, nonce=nonce)
        return proof, nonce

    def challenged(
        self, origin: str, status: int, headers: Mapping[str, str], sent: str | None
    ) -> int:
        """Learn the nonce a response from ``origin`` carries, and say what its status means:
        :data:`ANSWERABLE` for a ``use_dpop_nonce`` challenge (RFC 9449 §9) that one retry
        can meet (a nonce other than the one ``sent`` is now known for the origin),
        :data:`CHALLENGED` for one it cannot, or for ``invalid_dpop_proof`` (a new token
        would not mend a proof), else :data:`NOT_CHALLENGED`."""
        nonces = self.nonces
        nonces.learn_from(origin, headers)
        if status != 401:
            return NOT_CHALLENGED
        error = dpop_error(_all(headers, "WWW-Authenticate"))
        if error == INVALID_DPOP_PROOF:
            return CHALLENGED
        if error != USE_DPOP_NONCE:
            return NOT_CHALLENGED
        current = nonces.get(origin)
        if current is None or current == sent:
            return CHALLENGED
        nonces.announce(origin)
        return ANSWERABLE


def _all(headers: Mapping[str, str], name: str) -> list[str]:
    # aiohttp's and httpx's header mappings both have getall / get_list for repeated fields
    getall = getattr(headers, "getall", None)
    if getall is not None:
        return list(getall(name, ()))
    get_list = getattr(headers, "get_list", None)
    if get_list is not None:
        return list(get_list(name))
    value = headers.get(name)
    return [value] if value is not None else []
