"""DPoP proof checking and server nonces for the loopback server (RFC 9449 §4.3, §8, §9).

Proofs are verified with this package's own JOSE code (:mod:`._jose`), never with
jwtmint's minting side: the point is to catch what jwtmint's proofs get wrong.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import math
import re
import secrets
from collections.abc import Callable, Iterable, Mapping, MutableMapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from ..errors import ConfigurationError
from ._jose import (
    ASYMMETRIC_ALGORITHMS,
    PRIVATE_JWK_MEMBERS,
    JoseError,
    b64url_encode,
    embedded_jwk,
    jwk_thumbprint,
    parse_compact,
)
from ._model import OAuthError, RecordedProof

__all__ = [
    "DPOP_TYP",
    "CheckedProof",
    "DPoPPolicy",
    "DPoPVerifier",
    "NonceStore",
    "access_token_hash",
    "normalise_http_uri",
    "record_proof",
]

DPOP_TYP = "dpop+jwt"
NONCE_HEADER = "DPoP-Nonce"
_DEFAULT_PORTS = {"http": 80, "https": 443}
_PERCENT = re.compile(r"%([0-9A-Fa-f]{2})")
# RFC 3986 §2.3: characters that percent-encoding normalization decodes
_UNRESERVED = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")
_PRUNE_FLOOR = 1024


def _invalid(description: str) -> OAuthError:
    return OAuthError("invalid_dpop_proof", description)


def access_token_hash(access_token: str) -> str:
    """RFC 9449 §4.2 ``ath``: base64url SHA-256 of the access token's ASCII bytes."""
    data = access_token.encode("utf-8", "surrogateescape")
    return b64url_encode(hashlib.sha256(data).digest())


def _normalise_escape(match: re.Match[str]) -> str:
    char = chr(int(match.group(1), 16))
    return char if char in _UNRESERVED else "%" + match.group(1).upper()


def _remove_dot_segments(path: str) -> str:
    """RFC 3986 §5.2.4, for an absolute path."""
    segments = path.split("/")[1:]
    output: list[str] = []
    for index, segment in enumerate(segments):
        last = index == len(segments) - 1
        if segment == "..":
            if output:
                output.pop()
        elif segment != ".":
            output.append(segment)
            continue
        if last:  # "/a/.." is "/a/": the trailing slash stays
            output.append("")
    return "/" + "/".join(output)


def normalise_http_uri(uri: str) -> str | None:
    """An http(s) URI without query and fragment, normalised as RFC 9449 §4.3 (9) asks.

    Syntax-based (RFC 3986 §6.2.2: case, percent-encoding, dot segments) and
    scheme-based (§6.2.3: default port, empty path) normalization. None when
    ``uri`` is no absolute http(s) URI with a host (or carries user information).
    """
    try:
        parts = urlsplit(uri)
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    host = parts.hostname  # lowercased by urlsplit
    if scheme not in _DEFAULT_PORTS or not host or "@" in parts.netloc:
        return None
    if ":" in host:
        host = f"[{host}]"
    authority = host if port in (None, _DEFAULT_PORTS[scheme]) else f"{host}:{port}"
    path = _remove_dot_segments(_PERCENT.sub(_normalise_escape, parts.path or "/"))
    return f"{scheme}://{authority}{path}"


@dataclass(frozen=True)
class DPoPPolicy:
    """What this server demands of DPoP proofs (RFC 9449 §4.3, §5, §8)."""

    require: bool = False
    nonce: bool = False
    nonce_lifetime: float | None = None
    max_age: int = 60
    leeway: int = 5
    algorithms: tuple[str, ...] = ASYMMETRIC_ALGORITHMS

    def __post_init__(self) -> None:
        if self.max_age <= 0:
            raise ConfigurationError("dpop_max_age must be a positive number of seconds")
        if self.nonce_lifetime is not None and not self.nonce_lifetime > 0:
            raise ConfigurationError("dpop_nonce_lifetime must be positive, or None")
        unknown = sorted(set(self.algorithms).difference(ASYMMETRIC_ALGORITHMS))
        if unknown or not self.algorithms:
            raise ConfigurationError(
                "dpop_algorithms must name asymmetric JWS algorithms among "
                f"{', '.join(ASYMMETRIC_ALGORITHMS)}; got {', '.join(unknown) or 'none'}"
            )

    @classmethod
    def build(cls, algorithms: Iterable[str] | None, **options: Any) -> DPoPPolicy:
        """A policy from the TokenEndpoint options (``algorithms`` None: every asymmetric one)."""
        if isinstance(algorithms, str):
            raise ConfigurationError("dpop_algorithms must be an iterable of names, not one str")
        chosen = ASYMMETRIC_ALGORITHMS if algorithms is None else tuple(algorithms)
        return cls(algorithms=chosen, **options)


class NonceStore:
    """Server-provided nonces (RFC 9449 §8): the current one and the one before stay valid.

    With a ``lifetime``, a nonce older than that is replaced when next asked for; the
    one it replaced stays valid for one more lifetime.
    """

    def __init__(self, clock: Callable[[], float], lifetime: float | None) -> None:
        self._clock = clock
        self._lifetime = lifetime
        self._current = self._fresh()
        self._previous: str | None = None
        self._since = clock()

    @staticmethod
    def _fresh() -> str:
        return secrets.token_urlsafe(16)  # base64url: within RFC 9449's NQCHAR

    def current(self) -> str:
        """The nonce to hand out now."""
        self._expire()
        return self._current

    def rotate(self) -> str:
        """Start a new nonce at once; the one it replaces stays valid."""
        self._previous, self._current = self._current, self._fresh()
        self._since = self._clock()
        return self._current

    def valid(self, nonce: str) -> bool:
        """Whether ``nonce`` is the current or the previous nonce (compared in constant time)."""
        self._expire()
        given = nonce.encode("utf-8", "surrogatepass")  # JSON may hold lone surrogates
        matches = [
            hmac.compare_digest(given, known.encode("ascii"))
            for known in (self._current, self._previous)
            if known is not None
        ]
        return any(matches)

    def _expire(self) -> None:
        if self._lifetime is None:
            return
        elapsed = self._clock() - self._since
        if elapsed >= self._lifetime:
            self.rotate()
            if elapsed >= 2 * self._lifetime:
                self._previous = None


@dataclass(frozen=True)
class CheckedProof:
    """An accepted proof: the thumbprint of its key (RFC 9449 §6.1 ``jkt``) and its ``jti``."""

    jkt: str
    jti: str


def record_proof(values: Sequence[str]) -> RecordedProof | None:
    """The request's proof decoded leniently for the request log; never raises."""
    if not values:
        return None
    try:
        jws = parse_compact(values[0].strip())
    except JoseError:
        return RecordedProof(None, None, header_count=len(values))
    header = dict(jws.header)
    jwk = header.get("jwk")
    private: tuple[str, ...] = ()
    jkt = None
    if isinstance(jwk, Mapping):
        private = tuple(sorted(PRIVATE_JWK_MEMBERS.intersection(jwk)))
        header["jwk"] = public = {k: v for k, v in jwk.items() if k not in PRIVATE_JWK_MEMBERS}
        with contextlib.suppress(JoseError):
            jkt = jwk_thumbprint(public)
    return RecordedProof(header, jws.claims, jkt, private, len(values))


def _string_claim(claims: Mapping[str, Any], name: str) -> str:
    value = claims.get(name)
    if not isinstance(value, str) or not value:
        raise _invalid(f"the DPoP proof has no {name} string")
    return value


def _is_dpop_typ(typ: object) -> bool:
    # RFC 7515 §4.1.9: media types compare case-insensitively, "application/" may be left out
    return isinstance(typ, str) and typ.lower().removeprefix("application/") == DPOP_TYP


class DPoPVerifier:
    """Checks DPoP proofs (RFC 9449 §4.3) and remembers the ``jti`` of every accepted one."""

    def __init__(self, policy: DPoPPolicy, clock: Callable[[], float]) -> None:
        self.policy = policy
        self.nonces = NonceStore(clock, policy.nonce_lifetime)
        self._clock = clock
        self._seen_jti: dict[str, float] = {}
        self._prune_at = _PRUNE_FLOOR

    def add_nonce(self, headers: MutableMapping[str, str]) -> None:
        """RFC 9449 §8.2: when nonces are on, every answer carries the current one."""
        if self.policy.nonce:
            headers[NONCE_HEADER] = self.nonces.current()

    def check(
        self, values: Sequence[str], method: str, url: str, access_token: str | None = None
    ) -> CheckedProof:
        """The accepted proof, or an OAuthError ``invalid_dpop_proof`` / ``use_dpop_nonce``.

        ``url`` is the request's target URI; ``access_token`` is given at a protected
        resource, where the proof must carry its hash (RFC 9449 §7.1).
        """
        if not values:
            raise _invalid("a DPoP proof is required")
        if len(values) > 1:
            raise _invalid("exactly one DPoP header is allowed (RFC 9449 4.3)")
        try:
            jws = parse_compact(values[0].strip())
        except JoseError as exc:
            raise _invalid(f"malformed DPoP proof: {exc}") from None
        alg, jkt, key = self._check_header(jws.header)
        if not key.verify(alg, jws.signing_input, jws.signature):
            raise _invalid("the DPoP proof signature does not verify with its jwk")
        claims = jws.claims
        jti = _string_claim(claims, "jti")
        if _string_claim(claims, "htm") != method:
            raise _invalid(f"the DPoP proof htm does not match the request method {method}")
        if normalise_http_uri(_string_claim(claims, "htu")) != normalise_http_uri(url):
            raise _invalid("the DPoP proof htu does not match the request URI")
        if access_token is not None and claims.get("ath") != access_token_hash(access_token):
            raise _invalid("the DPoP proof ath does not match the access token")
        iat = self._iat(claims)
        self._check_nonce(claims.get("nonce"))
        now, policy = self._clock(), self.policy
        if not now - policy.max_age - policy.leeway <= iat <= now + policy.leeway:
            raise _invalid(f"the DPoP proof iat is not within {policy.max_age} seconds of now")
        if jti in self._seen_jti:
            raise _invalid("the DPoP proof jti was already used (replay)")
        self._remember(jti, iat + policy.max_age + policy.leeway)
        return CheckedProof(jkt, jti)

    def _check_header(self, header: Mapping[str, Any]) -> tuple[str, str, Any]:
        if not _is_dpop_typ(header.get("typ")):
            raise _invalid(f"the DPoP proof typ must be {DPOP_TYP}")
        alg = header.get("alg")
        if not isinstance(alg, str) or alg not in self.policy.algorithms:
            # alg none and HMAC algorithms are never among them (RFC 9449 4.3, check 5)
            raise _invalid(f"the DPoP proof alg must be one of {' '.join(self.policy.algorithms)}")
        if "crit" in header:  # RFC 7515 §4.1.11: no extension is understood here
            raise _invalid("the DPoP proof header has crit parameters this server ignores")
        try:
            key, jkt = embedded_jwk(header.get("jwk"))
        except JoseError as exc:
            raise _invalid(f"the DPoP proof jwk is unusable: {exc}") from None
        if alg not in key.algorithms:
            raise _invalid(f"the DPoP proof alg {alg} does not fit its jwk")
        return alg, jkt, key

    @staticmethod
    def _iat(claims: Mapping[str, Any]) -> float:
        value = claims.get("iat")
        seconds = math.nan
        if isinstance(value, int | float) and not isinstance(value, bool):
            with contextlib.suppress(OverflowError):
                seconds = float(value)
        if not math.isfinite(seconds):
            raise _invalid("the DPoP proof iat is missing or not a NumericDate")
        return seconds

    def _check_nonce(self, nonce: object) -> None:
        if nonce is not None and not isinstance(nonce, str):
            raise _invalid("the DPoP proof nonce is not a string")
        if not self.policy.nonce:
            return  # RFC 9449 §4.3 (10) checks a nonce only where the server gave one
        if nonce is None or not self.nonces.valid(nonce):
            described = "a nonce is required" if nonce is None else "the nonce is stale"
            raise OAuthError(
                "use_dpop_nonce",
                f"{described}: sign a new proof with the DPoP-Nonce value",
                headers={NONCE_HEADER: self.nonces.current()},
            )

    def _remember(self, jti: str, until: float) -> None:
        # RFC 9449 §11.1: a jti is kept as long as its iat would still be accepted
        self._seen_jti[jti] = until
        if len(self._seen_jti) >= self._prune_at:
            now = self._clock()
            self._seen_jti = {j: t for j, t in self._seen_jti.items() if t >= now}
            self._prune_at = max(_PRUNE_FLOOR, 2 * len(self._seen_jti))
