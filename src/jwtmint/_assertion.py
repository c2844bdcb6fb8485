"""Client assertions (RFC 7523 §2.2, OpenID Connect Core §9) minted from a template.

An :class:`AssertionSigner` does all its JSON and base64url work for the
header and the constant claims once. Each :meth:`AssertionSigner.mint` then
takes 16 fresh random bytes for ``jti``, the time, and hands them to the
kernel, which splices them into the claims, signs and assembles the JWS.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

from . import _kernels
from ._algorithms import get_algorithm
from ._batch import sign_batch
from ._entropy import default_entropy
from ._headers import check_header_params
from ._json import dumps_claims
from ._keys import KeySource, SigningKey, load_key
from ._precompute import PrecomputedEcdsa, check_precompute, signer_store
from .errors import ConfigurationError, InvalidClaimsError, InvalidHeaderError

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
#: Longest assertion lifetime accepted (a year); client assertions live seconds to minutes.
MAX_LIFETIME = 365 * 24 * 3600
#: Precomputed ECDSA pairs per signer when ``precompute`` is not given: a client mints
#: one assertion per token request, so a few pairs cover its bursts (retries, renewals).
DEFAULT_PRECOMPUTE = 16

Clock = Callable[[], float]
Entropy = Callable[[], bytes]


@dataclass(frozen=True)
class ClientAssertion:
    """A client assertion ready for a token request: ``client_assertion_type`` and value."""

    value: str = field(repr=False)
    type: str = JWT_BEARER

    def __repr__(self) -> str:
        return f"ClientAssertion(type={self.type!r}, value=<{len(self.value)} chars>)"


class _KeyState:
    """Everything a mint needs from the key, swapped as one reference on rotation.

    A concurrent mint reads ``signer._state`` once, so it never pairs one
    key's header (kid, alg) with another key's signature.
    """

    __slots__ = (
        "algorithm",
        "ec_size",
        "generation",
        "header_b64",
        "key",
        "minter",
        "precomputed",
        "sign",
    )

    def __init__(
        self,
        signer: AssertionSigner,
        key: SigningKey,
        algorithm: str | None,
        generation: int,
    ) -> None:
        typ, headers, kernel = signer._typ, signer._headers, signer._kernel
        alg = get_algorithm(algorithm if algorithm is not None else key.algorithm)
        #: the plain signer: mint_many's batches (and their worker processes) sign with it
        self.sign = alg.signer(key, _kernel=kernel)
        self.key = key
        self.algorithm = alg.name
        self.ec_size = alg.ec_size
        self.generation = generation
        header: dict[str, Any] = {"alg": alg.name}
        if key.kid is not None:
            header["kid"] = key.kid
        if typ:
            header["typ"] = typ
        if headers:
            check_header_params(headers)
            for name, value in headers.items():
                if name in _SIGNER_HEADERS:
                    raise InvalidHeaderError(
                        f"header {name!r} is set by the signer; use algorithm=, typ= or "
                        "load_key(kid=) instead"
                    )
                header[name] = value
        self.header_b64: bytes = kernel.b64url_encode(dumps_claims(header, "headers"))
        #: mint()'s signer when ECDSA precomputation applies (ES256/ES512 on the C kernel);
        #: made once nothing else can fail, so that no store is filled for a refused key
        self.precomputed: PrecomputedEcdsa | None = signer_store(
            key, alg.name, signer._precompute, DEFAULT_PRECOMPUTE, _kernel=kernel
        )
        try:
            #: mint() in one call: the kernel binds this key's header and signature to the claims
            self.minter: Callable[[], str] = kernel.minter(
                self.header_b64,
                signer._prefix,
                signer._suffix,
                signer._lifetime,
                signer._clock,
                signer._entropy,
                self.sign if self.precomputed is None else self.precomputed,
                self.ec_size,
            )
        except BaseException:
            self.retire()
            raise

    def retire(self) -> None:
        """Close this key's store of precomputed pairs: wiped, and never filled again, even by
        a refill under way (a mint under way signs whole)."""
        if self.precomputed is not None:
            self.precomputed.close()


class AssertionSigner:
    """Mints client assertions for one client, key and audience.

    ``iss`` = ``sub`` = ``client_id``; ``aud`` is the authorization server's
    issuer identifier (draft-ietf-oauth-rfc7523bis), a string or a list;
    ``jti`` is 128 bits from the OS CSPRNG; ``iat`` = ``nbf`` = now and
    ``exp`` = now + ``lifetime`` seconds. ``clock`` (epoch seconds) and
    ``entropy`` (16 random bytes per call) exist for tests; ``_kernel``
    (private) is the kernel module to mint with instead of the active one.
    A signer is safe to share between threads and tasks; :meth:`rotate_key`
    swaps its key atomically.

    ``precompute`` is the number of ECDSA pairs (k^-1, r) made ahead of time
    for :meth:`mint` (:mod:`jwtmint._precompute`), so that an ES256 mint
    costs a hash and a few modular operations instead of a scalar
    multiplication: None (the default) keeps ``DEFAULT_PRECOMPUTE`` pairs,
    made when the first mint asks for them; a number (at most ``MAX_DEPTH``,
    65536) keeps that many, made at once; 0 disables it. It applies to ES256
    and ES512 on the C kernel and is ignored otherwise. :meth:`mint_many`
    signs its batches without it.
    """

    __slots__ = (
        "_audience",
        "_clock",
        "_entropy",
        "_headers",
        "_kernel",
        "_lifetime",
        "_precompute",
        "_prefix",
        "_rotation_lock",
        "_state",
        "_suffix",
        "_typ",
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
        precompute: int | None = None,
        _kernel: ModuleType | None = None,
    ) -> None:
        # the bench times both twins side by side: it names the kernel (for the JWS
        # assembly and the C signers alike) instead of swapping the process-wide one
        self._kernel = _kernels.kernel if _kernel is None else _kernel
        self._typ = typ
        self._headers = dict(headers) if headers else None
        signing_key = load_key(key)
        self._rotation_lock = threading.Lock()

        if not isinstance(client_id, str) or not client_id:
            raise InvalidClaimsError("client_id must be a non-empty string")
        self.client_id = client_id
        self._audience = _check_audience(audience)
        if type(lifetime) is not int or not 0 < lifetime <= MAX_LIFETIME:
            raise InvalidClaimsError(
                f"lifetime must be an int of seconds from 1 to {MAX_LIFETIME}, got {lifetime!r}"
            )
        self._lifetime = lifetime
        self._precompute = check_precompute(precompute)

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
        self._state = _KeyState(self, signing_key, algorithm, 0)

    @property
    def key(self) -> SigningKey:
        return self._state.key

    @property
    def algorithm(self) -> str:
        return self._state.algorithm

    @property
    def key_generation(self) -> int:
        """0 for the first key, one more after each :meth:`rotate_key`."""
        return self._state.generation

    @property
    def audience(self) -> str | list[str]:
        return self._audience

    @property
    def lifetime(self) -> int:
        return self._lifetime

    @property
    def clock(self) -> Clock:
        return self._clock

    def __repr__(self) -> str:
        state = self._state
        return (
            f"AssertionSigner(client_id={self.client_id!r}, audience={self._audience!r}, "
            f"alg={state.algorithm!r}, kid={state.key.kid!r}, lifetime={self._lifetime}, "
            f"implementation={self._kernel.IMPLEMENTATION!r})"
        )

    def rotate_key(self, key: KeySource, *, algorithm: str | None = None) -> None:
        """Sign with ``key`` from now on.

        The algorithm is ``algorithm`` when given; else the new key's own when
        it is a :class:`SigningKey` or a JWK with ``alg``; else it stays what
        it was (a server may have registered it, e.g. PS256 for an RSA client)
        for a key of the same type, raising InvalidKeyError if that key cannot
        sign with it, and is the new key's default for a key of another type. Mints
        already running finish with the old key; every later mint uses the
        new one. Assertion pools notice the new ``key_generation`` and discard
        what they minted with the old key.
        """
        loaded = load_key(key)
        # a SigningKey, or a JWK with "alg", says which algorithm it signs with: that wins
        chosen = isinstance(key, SigningKey) or (isinstance(key, Mapping) and "alg" in key)
        if algorithm is None and not chosen:
            current = get_algorithm(self._state.algorithm)
            if loaded.kty == current.kty:
                # same kind of key: keep the algorithm, or say why not (a secret too short
                # for HS512, a P-384 key for ES256) rather than switch it quietly
                current.check_key(loaded)
                algorithm = current.name
        with self._rotation_lock:
            retired = self._state
            self._state = _KeyState(self, loaded, algorithm, retired.generation + 1)
        retired.retire()

    def mint(self) -> str:
        """A fresh compact JWS: new ``jti``, ``iat`` = ``nbf`` = now, ``exp`` = now + lifetime."""
        return self._state.minter()

    def client_assertion(self) -> ClientAssertion:
        """A fresh assertion wrapped with its ``client_assertion_type``."""
        return ClientAssertion(self.mint())

    def mint_many(self, n: int, *, processes: bool | None = None) -> list[str]:
        """``n`` distinct assertions, the signatures spread over every core.

        The claims are spliced first (cheap, under the GIL), then signed by a
        thread per core (cryptography releases the GIL while it signs), or,
        for ECDSA batches of at least ``batch.PROCESS_BATCH_MIN``, by worker
        processes, where threads scale poorly. ``processes`` forces (True) or
        forbids (False) the worker processes. HMAC is signed in the calling
        thread. See :mod:`jwtmint._batch`.
        """
        if type(n) is not int or n < 0:
            raise ConfigurationError(f"n must be a non-negative int, got {n!r}")
        now = math.floor(self._clock())
        exp = now + self._lifetime
        state = self._state
        splice = self._kernel.assertion_signing_input
        header, prefix, suffix = state.header_b64, self._prefix, self._suffix
        entropy = self._entropy
        inputs = [splice(header, prefix, entropy(), now, exp, suffix) for _ in range(n)]
        signatures = sign_batch(state.key, state.algorithm, state.sign, inputs, processes=processes)
        compact, ec_size = self._kernel.compact, state.ec_size
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
