"""DPoP (RFC 9449) for token requests and API calls: a proof per request, server nonces per origin.

A client with a ``dpop_key`` sends a fresh proof with every token request
(``htm`` POST, ``htu`` the token endpoint) and, once it holds a DPoP-bound
token, with every API call (``ath`` binds the token). Servers may demand a
nonce of their choosing (RFC 9449 §8, §9): they send it in ``DPoP-Nonce`` on
any response and rotate it when they like, so the latest one seen per origin
is kept here, in a bounded store shared by the token requests and the API
adapters of one manager. A ``use_dpop_nonce`` challenge is answered once per
request with a new proof (and, at the token endpoint, a new client assertion):
a server that challenges forever costs one retry per request, never a loop.
"""

from __future__ import annotations

import re
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping

from yarl import URL

from .._dpop import DPoPSigner
from ._token import Token

__all__ = [
    "ANSWERABLE",
    "CHALLENGED",
    "DPOP",
    "DPOP_NONCE",
    "MAX_NONCE_LENGTH",
    "NOT_CHALLENGED",
    "ApiProofs",
    "DPoPNonces",
    "is_nonce_challenge",
    "origin_of",
]

#: the request header that carries a proof (RFC 9449 §4.1)
DPOP = "DPoP"
#: the response header that carries a server's nonce (RFC 9449 §8.1)
DPOP_NONCE = "DPoP-Nonce"
#: longer values are not kept: a nonce is a short opaque string, and a hostile server
#: must not make every later proof (and header) carry megabytes
MAX_NONCE_LENGTH = 1024
#: NQCHAR (RFC 9449 §8.1): printable ASCII without space, '"' and '\\'
_NONCE = re.compile(r"[\x21\x23-\x5b\x5d-\x7e]+")
_CHALLENGE = re.compile(r'(?:^|[\s,])error\s*=\s*"?use_dpop_nonce"?(?:$|[\s,])', re.IGNORECASE)


def origin_of(url: URL) -> str:
    """``scheme://host[:port]``; yarl drops default ports, so ``:443`` and none compare equal."""
    return str(url.origin())


def is_nonce_challenge(www_authenticate: Iterable[str]) -> bool:
    """Whether a resource's ``WWW-Authenticate`` values hold a DPoP ``use_dpop_nonce`` error."""
    for value in www_authenticate:
        scheme, _, params = value.strip().partition(" ")
        if scheme.lower() == "dpop" and _CHALLENGE.search(params):
            return True
    return False


class DPoPNonces:
    """The latest ``DPoP-Nonce`` each origin sent, for at most ``limit`` origins (the least
    recently updated are forgotten first). Values that are not NQCHAR text of at most
    :data:`MAX_NONCE_LENGTH` characters are ignored: they would go into every proof."""

    __slots__ = ("_limit", "_nonces", "publish", "updates")

    def __init__(self, limit: int = 1024) -> None:
        self._limit = limit
        self._nonces: OrderedDict[str, str] = OrderedDict()
        #: nonces learned (new values only)
        self.updates = 0
        #: called with (origin, nonce) for each new nonce learned here (not for shared ones):
        #: a shared cache (RedisTokenCache) sets it to tell the other instances
        self.publish: Callable[[str, str], None] | None = None

    def __len__(self) -> int:
        return len(self._nonces)

    def __repr__(self) -> str:
        return f"DPoPNonces(origins={len(self._nonces)}, limit={self._limit})"

    def get(self, origin: str) -> str | None:
        return self._nonces.get(origin)

    def learn(self, origin: str, value: str | None, *, shared: bool = False) -> bool:
        """Keep ``value`` as ``origin``'s nonce; True when it is a new, valid one.
        ``shared``: it came from another instance (it is not published again)."""
        if (
            value is None
            or len(value) > MAX_NONCE_LENGTH
            or not _NONCE.fullmatch(value)
            or self._nonces.get(origin) == value
        ):
            return False
        nonces = self._nonces
        nonces[origin] = value
        nonces.move_to_end(origin)
        if len(nonces) > self._limit:
            nonces.popitem(last=False)
        self.updates += 1
        if not shared and self.publish is not None:
            self.publish(origin, value)
        return True

    def learn_from(self, origin: str, headers: Mapping[str, str]) -> bool:
        """:meth:`learn` the ``DPoP-Nonce`` of a response's headers, if any."""
        return self.learn(origin, headers.get(DPOP_NONCE))


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

    def proof(self, method: str, url: URL, token: Token) -> tuple[str, str | None]:
        """A fresh proof for one request (new ``jti``) and the origin's nonce it carries."""
        nonce = self.nonces.get(origin_of(url))
        return self.signer.proof(
            method, str(url), access_token=token.access_token, nonce=nonce
        ), nonce

    def challenged(
        self, url: URL, status: int, headers: Mapping[str, str], sent: str | None
    ) -> int:
        """Learn the nonce a response carries, and say what its status means:
        :data:`ANSWERABLE` for a ``use_dpop_nonce`` challenge (RFC 9449 §9) that one retry
        can meet (a nonce other than the one ``sent`` is now known for the origin),
        :data:`CHALLENGED` for one it cannot, else :data:`NOT_CHALLENGED`."""
        origin = origin_of(url)
        nonces = self.nonces
        nonces.learn_from(origin, headers)
        if status != 401 or not is_nonce_challenge(_all(headers, "WWW-Authenticate")):
            return NOT_CHALLENGED
        current = nonces.get(origin)
        return ANSWERABLE if current is not None and current != sent else CHALLENGED


#: what :meth:`ApiProofs.challenged` finds in a response
NOT_CHALLENGED, CHALLENGED, ANSWERABLE = 0, 1, 2


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
