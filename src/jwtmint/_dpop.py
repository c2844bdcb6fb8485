"""DPoP proofs (RFC 9449): a proof-of-possession JWT per HTTP request, made from a template.

A :class:`DPoPSigner` encodes its header ``{"typ":"dpop+jwt","alg":...,
"jwk":{...}}`` once per key (the public JWK members only). Each
:meth:`DPoPSigner.proof` is one call into the kernel's bound prover, which
reads the clock, takes 16 fresh random bytes for ``jti``, splices the claims,
signs and assembles. The claims are always in this order, so that the bytes
are deterministic for a given time and ``jti``::

    {"jti":"<22 base64url chars>","htm":"GET","htu":"https://api.example.com/x","iat":N
     [,"ath":"<base64url SHA-256 of the token>"][,"nonce":"<server nonce>"]}

The request's method, URL, token and nonce are checked and turned into JSON
by cached functions (:mod:`jwtmint._dpop_claims`): a gateway sends many
requests to the same URLs with the same token.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from types import ModuleType
from typing import Any

from . import _kernels
from ._algorithms import Algorithm, SignFunction, get_algorithm
from ._dpop_claims import ath_cache, htm_json, htu_json, nonce_json
from ._entropy import default_entropy
from ._json import dumps_claims
from ._jwk import jwk_thumbprint, public_members
from ._keys import KeySource, SigningKey, load_key
from ._keytypes import PRIVATE_KEY_TYPES
from ._precompute import DEFAULT_DEPTH, PrecomputedEcdsa, check_precompute, signer_store
from .errors import InvalidKeyError, UnsupportedAlgorithmError

__all__ = ["DPOP_TYP", "PRIVATE_JWK_MEMBERS", "DPoPSigner", "dpop_proof"]

#: The ``typ`` of a DPoP proof's header (RFC 9449 §4.2).
DPOP_TYP = "dpop+jwt"
#: JWK members that hold private key material (RFC 7518 §6.2.2, §6.3.2, §6.4; RFC 8037 §2):
#: never in a proof's header.
PRIVATE_JWK_MEMBERS = frozenset({"d", "p", "q", "dp", "dq", "qi", "oth", "k"})
#: Signers that :func:`dpop_proof` keeps for key objects and key text it saw recently.
ONE_OFF_CACHE_SIZE = 64

Clock = Callable[[], float]
Entropy = Callable[[], bytes]
Prover = Callable[[str, str, str | None, str | None], str]

_NOT_ASYMMETRIC = (
    "DPoP needs an asymmetric key (RSA, EC P-256/384/521, Ed25519 or Ed448): the server "
    "checks each proof with the public key in its header, and RFC 9449 §4.2 forbids MAC "
    "algorithms"
)


def _sign_function(
    alg: Algorithm, key: SigningKey, kernel: ModuleType, precompute: int | None
) -> tuple[SignFunction, int, PrecomputedEcdsa | None]:
    """How a DPoP signer signs: ``sign(data)``, the R||S width to convert its output from
    DER (0: the output is the JWS signature as it is, as for RSA and EdDSA), and the store
    of precomputed ECDSA pairs it signs from, if any (:mod:`jwtmint._precompute`)."""
    # a gateway signs a proof per request: pairs made by the refill thread take the
    # expensive half of each ECDSA signature off the request path
    precomputed = signer_store(key, alg.name, precompute, DEFAULT_DEPTH, _kernel=kernel)
    if precomputed is not None:
        return precomputed, alg.ec_size, precomputed
    return alg.signer(key, _kernel=kernel), alg.ec_size, None


def _dpop_algorithm(key: SigningKey, algorithm: str | None) -> Algorithm:
    if key.kty == "oct" or isinstance(key.key, bytes):
        raise InvalidKeyError(f"{_NOT_ASYMMETRIC}; load a private key, not a secret")
    alg = get_algorithm(algorithm if algorithm is not None else key.algorithm)
    if alg.kty == "oct":
        raise UnsupportedAlgorithmError(
            f"{alg.name} is a MAC algorithm; {_NOT_ASYMMETRIC}: use ES256, PS256, RS256 or EdDSA"
        )
    alg.check_key(key)
    return alg


def _public_jwk(key: SigningKey) -> dict[str, str]:
    """The key's public JWK members, checked to hold nothing private (RFC 9449 §4.2)."""
    assert not isinstance(key.key, bytes)  # _dpop_algorithm refused secrets
    jwk = public_members(key.key)
    # checked here, in the code that writes the header, not only in tests: a private member
    # in a proof would publish the key with every request
    if PRIVATE_JWK_MEMBERS.intersection(jwk) or jwk.get("kty") not in ("RSA", "EC", "OKP"):
        raise InvalidKeyError("refusing to put private key material in a DPoP proof's jwk")
    if not all(isinstance(value, str) for value in jwk.values()):
        raise InvalidKeyError("the key's public JWK members are not all strings")
    return dict(jwk)


class _KeyState:
    """Everything a proof needs from the key, made once and read as one reference."""

    __slots__ = (
        "algorithm",
        "ec_size",
        "header_b64",
        "key",
        "precomputed",
        "prover",
        "public_jwk",
        "sign",
        "thumbprint",
    )

    def __init__(self, signer: DPoPSigner, key: SigningKey, algorithm: str | None) -> None:
        kernel = signer._kernel
        alg = _dpop_algorithm(key, algorithm)
        self.key = key
        self.algorithm = alg.name
        self.public_jwk = _public_jwk(key)
        self.thumbprint = jwk_thumbprint(self.public_jwk)
        header: dict[str, Any] = {"typ": DPOP_TYP, "alg": alg.name, "jwk": self.public_jwk}
        self.header_b64: bytes = kernel.b64url_encode(dumps_claims(header, "header"))
        self.sign, self.ec_size, self.precomputed = _sign_function(
            alg, key, kernel, signer._precompute
        )
        try:
            #: proof() in one call: the kernel binds header, clock, entropy and signature
            self.prover: Prover = kernel.dpop_prover(
                self.header_b64,
                signer._clock,
                signer._entropy,
                self.sign,
                self.ec_size,
                htm_json,
                htu_json,
                signer._ath,
                nonce_json,
            )
        except BaseException:
            if self.precomputed is not None:
                self.precomputed.close()  # abandoned: no refill for a signer never made
            raise


class DPoPSigner:
    """Makes DPoP proofs (RFC 9449 §4) with one private key.

    ``algorithm`` defaults to the key's own (RSA -> RS256, P-256 -> ES256,
    Ed25519 -> EdDSA, ...); ES256/384/512, PS256/384/512, RS256/384/512 and
    EdDSA (Ed25519, Ed448) are accepted, HMAC keys and algorithms are not.
    ``precompute`` is how many precomputed ECDSA pairs to keep for ES256 and
    ES512 on the C kernel (:mod:`jwtmint._precompute`): None keeps 64, made
    from the first proof on by a background thread; a number (at most
    ``MAX_DEPTH``, 65536) keeps that many, made at once; 0 signs each proof
    whole on the calling thread.
    ``clock`` (epoch seconds) and ``entropy`` (16 random bytes per call) exist
    for tests; ``_kernel`` (private) is the kernel module to sign with instead
    of the active one. A signer is safe to share between threads and tasks.
    """

    __slots__ = ("_ath", "_clock", "_entropy", "_kernel", "_precompute", "_state")

    def __init__(
        self,
        key: KeySource,
        *,
        algorithm: str | None = None,
        precompute: int | None = None,
        clock: Clock | None = None,
        entropy: Entropy | None = None,
        _kernel: ModuleType | None = None,
    ) -> None:
        self._precompute = check_precompute(precompute)
        self._kernel = _kernels.kernel if _kernel is None else _kernel
        self._clock: Clock = clock if clock is not None else time.time
        self._entropy: Entropy = entropy if entropy is not None else default_entropy
        # this signer's own: the tokens it remembers live no longer than it does
        self._ath = ath_cache()
        self._state = _KeyState(self, load_key(key), algorithm)

    @property
    def algorithm(self) -> str:
        return self._state.algorithm

    @property
    def key(self) -> SigningKey:
        return self._state.key

    @property
    def precomputed(self) -> PrecomputedEcdsa | None:
        """The store of precomputed ECDSA pairs proofs are signed from (its counters show how
        many were), or None where there is none (RSA, EdDSA, ES384, the pure kernel, 0)."""
        return self._state.precomputed

    @property
    def public_jwk(self) -> dict[str, str]:
        """The ``jwk`` of every proof's header: the public key's required members (a copy)."""
        return dict(self._state.public_jwk)

    @property
    def thumbprint(self) -> str:
        """The key's RFC 7638 thumbprint (base64url SHA-256): the ``jkt`` tokens are bound to
        (RFC 9449 §6.1)."""
        return self._state.thumbprint

    def __repr__(self) -> str:
        state = self._state
        return (
            f"DPoPSigner(alg={state.algorithm!r}, jkt={state.thumbprint!r}, "
            f"implementation={self._kernel.IMPLEMENTATION!r})"
        )

    def proof(
        self,
        method: str,
        url: str,
        *,
        access_token: str | None = None,
        nonce: str | None = None,
    ) -> str:
        """A fresh DPoP proof for one HTTP request (RFC 9449 §4.2): the value of its ``DPoP``
        header.

        ``method`` is the request's method as it is sent (an RFC 9110 token,
        case kept); ``url`` its absolute http(s) URL (``htu`` drops query and
        fragment and normalises as RFC 9449 §4.3 says); ``access_token``, for
        a request to a resource server, adds ``ath``; ``nonce`` is the server's
        latest ``DPoP-Nonce`` (RFC 9449 §8). Every proof has a new ``jti``.
        Bad values raise :class:`InvalidClaimsError`.

        The normalisation is the syntax-based one (RFC 3986 §6.2.2, §6.2.3:
        scheme and host case, the default port, an empty path): dot segments
        (``/a/../b``) are not removed and percent-encodings are kept as
        written (``%7e`` stays ``%7e``, not ``%7E`` or ``~``). The server
        compares ``htu`` with the URL it received, so pass the URL exactly as
        your HTTP client sends it (the aiohttp middleware and httpx auth of
        :mod:`jwtmint.tokens` pass the client's own URL object).
        """
        return self._state.prover(method, url, access_token, nonce)


#: what dpop_proof() remembers: key objects by identity (holding the key, so that its id
#: cannot be reused while cached), key text by value; never mappings (mutable) or paths
_one_off: dict[tuple[object, str | None, ModuleType], tuple[object, DPoPSigner]] = {}
_KEY_OBJECTS = (SigningKey, *PRIVATE_KEY_TYPES)


def _one_off_signer(key: KeySource, algorithm: str | None) -> DPoPSigner:
    kernel = _kernels.kernel
    by_value = type(key) is str or type(key) is bytes
    # precompute=0: pairs made for a key used once would be CPU and memory spent for
    # nothing, and up to 64 cached signers would each hold a store
    if not by_value and not isinstance(key, _KEY_OBJECTS):
        return DPoPSigner(key, algorithm=algorithm, precompute=0)
    slot = (key if by_value else id(key), algorithm, kernel)
    entry = _one_off.get(slot)
    if entry is not None and (by_value or entry[0] is key):
        return entry[1]
    signer = DPoPSigner(key, algorithm=algorithm, precompute=0)
    if len(_one_off) >= ONE_OFF_CACHE_SIZE:
        _one_off.clear()
    _one_off[slot] = (key, signer)
    return signer


def dpop_proof(
    key: KeySource,
    method: str,
    url: str,
    *,
    access_token: str | None = None,
    nonce: str | None = None,
    algorithm: str | None = None,
) -> str:
    """One DPoP proof with ``key``: :meth:`DPoPSigner.proof` without keeping a signer.

    The signer is remembered for a key object (``SigningKey``, a cryptography
    key) by identity and for key text by value, the last 64 of them; a JWK
    mapping or a path is loaded on every call. It signs each proof whole
    (``precompute=0``): no precomputed ECDSA pairs are made for one-offs.
    Keep a :class:`DPoPSigner` for repeated proofs (and, for ES256 and ES512,
    proofs signed from precomputed pairs).
    """
    signer = _one_off_signer(key, algorithm)
    return signer.proof(method, url, access_token=access_token, nonce=nonce)
