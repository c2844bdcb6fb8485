"""Client assertions (RFC 7523 §2.2, OpenID Connect Core §9) minted from a template.

An :class:`AssertionSigner` does all its JSON and base64url work for the
header and the constant claims once. Each :meth:`AssertionSigner.mint` then
takes 16 fresh random bytes for ``jti``, the time, and hands them to the
kernel, which splices them into the claims, signs and assembles the JWS.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from . import _kernels
from ._entropy import default_entropy
from ._headers import check_header_params
from ._json import dumps_claims
from .algorithms import get_algorithm
from .errors import InvalidClaimsError, InvalidHeaderError
from .keys import KeySource, SigningKey, load_key

__all__ = [
    "CLIENT_ASSERTION_TYP",
    "JWT_BEARER",
    "REGISTERED_CLAIMS",
    "AssertionSigner",
    "ClientAssertion",
]

#: ``client_assertion_type`` for JWT client authentication (RFC 7523 §2.2).
JWT_BEARER = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
#: Explicit typing of client assertions (draft-ietf-oauth-rfc7523bis).
CLIENT_ASSERTION_TYP = "client-authentication+jwt"
#: Claims the signer sets itself; ``extra_claims`` may not override them.
REGISTERED_CLAIMS = frozenset({"iss", "sub", "aud", "jti", "iat", "nbf", "exp"})
_SIGNER_HEADERS = frozenset({"alg", "kid", "typ"})

Clock = Callable[[], float]
Entropy = Callable[[], bytes]


@dataclass(frozen=True)
class ClientAssertion:
    """A client assertion ready for a token request: ``client_assertion_type`` and value."""

    value: str = field(repr=False)
    type: str = JWT_BEARER

    def __repr__(self) -> str:
        return f"ClientAssertion(type={self.type!r}, value=<{len(self.value)} chars>)"


def _batch_workers() -> int:
    return max(1, os.cpu_count() or 1)


class AssertionSigner:
    """Mints client assertions for one client, key and audience.

    ``iss`` = ``sub`` = ``client_id``; ``aud`` is the authorization server's
    issuer identifier (draft-ietf-oauth-rfc7523bis), a string or a list;
    ``jti`` is 128 bits from the OS CSPRNG; ``iat`` = ``nbf`` = now and
    ``exp`` = now + ``lifetime`` seconds. ``clock`` (epoch seconds) and
    ``entropy`` (16 random bytes per call) exist for tests. A signer is
    immutable after construction and safe to share between threads and tasks.
    """

    __slots__ = (
        "_algorithm",
        "_audience",
        "_clock",
        "_ec_size",
        "_entropy",
        "_header_b64",
        "_kernel",
        "_key",
        "_lifetime",
        "_prefix",
        "_sign",
        "_suffix",
        "client_id",
    )

    def __init__(
        self,
        key: KeySource,
        client_id: str,
        audience: str | Sequence[str],
        *,
        algorithm: str | None = None,
        lifetime: int = 60,
        typ: str | None = CLIENT_ASSERTION_TYP,
        extra_claims: Mapping[str, Any] | None = None,
        headers: Mapping[str, Any] | None = None,
        clock: Clock | None = None,
        entropy: Entropy | None = None,
    ) -> None:
        signing_key = load_key(key)
        alg = get_algorithm(algorithm if algorithm is not None else signing_key.algorithm)
        self._sign = alg.signer(signing_key)
        self._key = signing_key
        self._algorithm = alg.name
        self._ec_size = alg.ec_size

        if not isinstance(client_id, str) or not client_id:
            raise InvalidClaimsError("client_id must be a non-empty string")
        self.client_id = client_id
        self._audience = _check_audience(audience)
        if type(lifetime) is not int or lifetime <= 0:
            raise InvalidClaimsError(
                f"lifetime must be a positive int of seconds, got {lifetime!r}"
            )
        self._lifetime = lifetime

        header: dict[str, Any] = {"alg": alg.name}
        if signing_key.kid is not None:
            header["kid"] = signing_key.kid
        if typ:
            header["typ"] = typ
        if headers:
            check_header_params(headers)
        for name, value in (headers or {}).items():
            if name in _SIGNER_HEADERS:
                raise InvalidHeaderError(
                    f"header {name!r} is set by the signer; use algorithm=, typ= or "
                    "load_key(kid=) instead"
                )
            header[name] = value
        kernel = _kernels.kernel
        self._kernel = kernel
        self._header_b64 = kernel.b64url_encode(dumps_claims(header, "headers"))

        extra = dict(extra_claims or {})
        clash = REGISTERED_CLAIMS.intersection(extra)
        if clash:
            raise InvalidClaimsError(
                f"extra_claims may not set {', '.join(sorted(clash))}: the signer sets them"
            )
        subject = dumps_claims(client_id)
        self._prefix = b'{"iss":%s,"sub":%s,"aud":%s,"jti":"' % (
            subject,
            subject,
            dumps_claims(self._audience, "audience"),
        )
        self._suffix = b"," + dumps_claims(extra, "extra_claims")[1:] if extra else b"}"
        self._clock: Clock = clock if clock is not None else time.time
        self._entropy: Entropy = entropy if entropy is not None else default_entropy

    @property
    def key(self) -> SigningKey:
        return self._key

    @property
    def algorithm(self) -> str:
        return self._algorithm

    @property
    def audience(self) -> str | list[str]:
        return self._audience

    @property
    def lifetime(self) -> int:
        return self._lifetime

    def __repr__(self) -> str:
        return (
            f"AssertionSigner(client_id={self.client_id!r}, audience={self._audience!r}, "
            f"alg={self._algorithm!r}, kid={self._key.kid!r}, lifetime={self._lifetime}, "
            f"implementation={self._kernel.IMPLEMENTATION!r})"
        )

    def mint(self) -> str:
        """A fresh compact JWS: new ``jti``, ``iat`` = ``nbf`` = now, ``exp`` = now + lifetime."""
        now = math.floor(self._clock())
        return self._kernel.mint(
            self._header_b64,
            self._prefix,
            self._suffix,
            self._entropy(),
            now,
            now + self._lifetime,
            self._sign,
            self._ec_size,
        )

    def client_assertion(self) -> ClientAssertion:
        """A fresh assertion wrapped with its ``client_assertion_type``."""
        return ClientAssertion(self.mint())

    def mint_many(self, n: int) -> list[str]:
        """``n`` distinct assertions, the signatures spread over a thread per core.

        The claims are spliced first (cheap, under the GIL); cryptography
        releases the GIL while it signs, so the signatures run in parallel.
        """
        if type(n) is not int or n < 0:
            raise ValueError(f"n must be a non-negative int, got {n!r}")
        now = math.floor(self._clock())
        exp = now + self._lifetime
        splice = self._kernel.assertion_signing_input
        header, prefix, suffix = self._header_b64, self._prefix, self._suffix
        entropy = self._entropy
        inputs = [splice(header, prefix, entropy(), now, exp, suffix) for _ in range(n)]
        workers = min(_batch_workers(), n)
        sign = self._sign
        if workers <= 1:
            signatures = [sign(data) for data in inputs]
        else:
            step = -(-n // workers)
            chunks = [inputs[i : i + step] for i in range(0, n, step)]
            with ThreadPoolExecutor(max_workers=len(chunks)) as pool:
                parts = pool.map(lambda chunk: [sign(data) for data in chunk], chunks)
                signatures = [sig for part in parts for sig in part]
        compact, ec_size = self._kernel.compact, self._ec_size
        return [compact(data, sig, ec_size) for data, sig in zip(inputs, signatures, strict=True)]


def _check_audience(audience: object) -> str | list[str]:
    if isinstance(audience, str):
        if audience:
            return audience
    elif isinstance(audience, Sequence) and audience:
        items = list(audience)
        if all(isinstance(item, str) and item for item in items):
            return items
    raise InvalidClaimsError(
        "audience must be a non-empty string (the authorization server's issuer) "
        "or a non-empty list of them"
    )
