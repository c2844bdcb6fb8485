"""One small adapter per peer: the same job, a ``mint() -> str`` over a pre-loaded key.

Each adapter turns a :class:`~jwtmint.SigningKey` into the peer's own key
object once (key loading is not on the per-mint path), and returns a
``mint()`` that builds fresh claims (:func:`jwtmint.bench.job.claims`) and
calls the peer's usual "encode a JWT" entry point with the header
``{alg, kid, typ}``. Peers are imported when first used, so a peer that is
not installed is reported (:meth:`Peer.missing`), never fatal.

The floor is not a JWT library: it is cryptography's bare ``sign()`` of a
message as long as one of our signing inputs, with the same key. For HMAC it
is the active kernel's ``hmac_signer`` (OpenSSL's SHA functions on pre-padded
states in C, or hashlib states primed with the key pads): the cheapest HMAC
at hand. No JWT library can beat the floor with the same backend.
"""

from __future__ import annotations

import base64
import contextlib
import functools
import hmac
import importlib
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from types import ModuleType
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, padding, rsa

from .. import _kernels, _pure
from .._assertion import AssertionSigner
from .._keys import SigningKey
from . import environment
from .job import AUDIENCE, CLIENT_ID, HASHES, LIFETIME, TYP, Minter, claims, header

__all__ = [
    "PEERS",
    "REFERENCE",
    "Floor",
    "NotSupported",
    "Peer",
    "floor",
    "get_peer",
    "import_peer",
    "importing_quietly",
    "jwtmint_minter",
    "quiet",
]

#: The peer of the "vs PyJWT" column.
REFERENCE = "pyjwt"

Build = Callable[[SigningKey, str], Minter]


class NotSupported(Exception):
    """Raised by an adapter when its peer has no implementation of the algorithm."""


@contextlib.contextmanager
def importing_quietly() -> Iterator[None]:
    """Swallow a peer's import-time warnings, and undo any filter it installs.

    ``record=True`` because a peer may put its own filter in front of ours
    (authlib.deprecate does ``simplefilter("always", ...)`` on import).
    """
    with warnings.catch_warnings(record=True):
        warnings.simplefilter("ignore")
        yield


def import_peer(name: str) -> Any:
    """A peer's module, typed ``Any``: whether a peer is installed must not change type checks."""
    return importlib.import_module(name)


@dataclass(frozen=True)
class Peer:
    """A contender: how to tell that it is here, its version, and its adapter."""

    name: str
    label: str
    build: Build
    module: str
    distribution: str = "jwtmint"
    install: str | None = None
    probe: Callable[[], str | None] | None = None

    def missing(self) -> str | None:
        """Why this peer cannot run here, or None when it can."""
        if self.probe is not None:
            return self.probe()
        try:
            with importing_quietly():
                importlib.import_module(self.module)
        except ImportError as exc:
            hint = f" (pip install {self.install})" if self.install else ""
            return f"not installed{hint}: {exc}"
        return None

    def version(self) -> str | None:
        return environment.version(self.distribution)

    def minter(self, key: SigningKey, algorithm: str) -> Minter:
        """A ``mint()`` for ``key`` and ``algorithm``; raises :class:`NotSupported` if none."""
        return self.build(key, algorithm)


# -- jwtmint ----------------------------------------------------------------------------------


def jwtmint_minter(key: SigningKey, module: ModuleType, algorithm: str) -> Minter:
    """``AssertionSigner.mint`` of a signer that mints with the kernel ``module``.

    Without ECDSA precomputation: each mint does the whole signature on the
    calling thread, the same work as the floor and the peers.
    """
    signer = AssertionSigner(
        key,
        CLIENT_ID,
        AUDIENCE,
        algorithm=algorithm,
        lifetime=LIFETIME,
        precompute=0,
        _kernel=module,
    )
    return signer.mint


def _jwtmint_c(key: SigningKey, algorithm: str) -> Minter:
    speedups = _kernels.load_speedups()
    if speedups is None:
        raise NotSupported("the C extension is not built")
    return jwtmint_minter(key, speedups, algorithm)


def _jwtmint_py(key: SigningKey, algorithm: str) -> Minter:
    return jwtmint_minter(key, _pure, algorithm)


def _c_kernel_missing() -> str | None:
    return None if _kernels.load_speedups() is not None else "the C extension is not built"


# -- peers ------------------------------------------------------------------------------------

_KTY = {"RS": "RSA", "PS": "RSA", "ES": "EC", "Ed": "OKP", "HS": "oct"}


def _header_params(key: SigningKey) -> dict[str, Any]:
    """``kid`` and ``typ``: what PyJWT-style ``headers=`` take (they add ``alg`` themselves)."""
    params: dict[str, Any] = {} if key.kid is None else {"kid": key.kid}
    params["typ"] = TYP
    return params


def _pyjwt_compatible(module: str) -> Build:
    """PyJWT and its drop-ins: ``encode(payload, key, algorithm=, headers=)``."""

    def build(key: SigningKey, algorithm: str) -> Minter:
        encode = import_peer(module).encode
        signing_key, headers = key.key, _header_params(key)

        def mint() -> str:
            token: str = encode(claims(), signing_key, algorithm=algorithm, headers=headers)
            return token

        return mint

    return build


def _joserfc(key: SigningKey, algorithm: str) -> Minter:
    jwk, jwt = import_peer("joserfc.jwk"), import_peer("joserfc.jwt")
    peer_key = jwk.import_key(key.key, _KTY[algorithm[:2]])
    encode, head, allowed = jwt.encode, header(key, algorithm), [algorithm]

    def mint() -> str:
        token: str = encode(head, claims(), peer_key, algorithms=allowed)
        return token

    return mint


def _jwcrypto(key: SigningKey, algorithm: str) -> Minter:
    jwk, jwt = import_peer("jwcrypto.jwk"), import_peer("jwcrypto.jwt")
    if isinstance(key.key, bytes):
        secret = base64.urlsafe_b64encode(key.key).rstrip(b"=").decode("ascii")
        peer_key = jwk.JWK(kty="oct", k=secret)
    else:
        peer_key = jwk.JWK.from_pyca(key.key)
    new_jwt, head = jwt.JWT, header(key, algorithm)

    def mint() -> str:
        token = new_jwt(header=head, claims=claims())
        token.make_signed_token(peer_key)
        serialized: str = token.serialize()
        return serialized

    return mint


def _python_jose(key: SigningKey, algorithm: str) -> Minter:
    constants, jwk, jwt = (
        import_peer("jose.constants"),
        import_peer("jose.jwk"),
        import_peer("jose.jwt"),
    )
    if algorithm not in constants.ALGORITHMS.SUPPORTED:
        raise NotSupported(f"python-jose has no {algorithm}")
    peer_key = jwk.construct(key.key, algorithm)
    encode, headers = jwt.encode, _header_params(key)

    def mint() -> str:
        token: str = encode(claims(), peer_key, algorithm=algorithm, headers=headers)
        return token

    return mint


def _authlib(key: SigningKey, algorithm: str) -> Minter:
    with importing_quietly():  # authlib >= 1.6 deprecates authlib.jose (for joserfc) on import
        jose = import_peer("authlib.jose")
    peer_key = jose.JsonWebKey.import_key(key.key, {"kty": _KTY[algorithm[:2]]})
    encode, head = jose.jwt.encode, header(key, algorithm)

    def mint() -> str:
        token: bytes = encode(head, claims(), peer_key)
        return token.decode("ascii")

    return mint


def _oxyjwt(key: SigningKey, algorithm: str) -> Minter:
    oxyjwt = import_peer("oxyjwt")
    obj = key.key
    if isinstance(obj, bytes):
        peer_key = oxyjwt.EncodingKey.from_secret(obj)
    else:
        pem = obj.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        load = {"RSA": "from_rsa_pem", "EC": "from_ec_pem", "OKP": "from_ed_pem"}[key.kty]
        peer_key = getattr(oxyjwt.EncodingKey, load)(pem)
    encode, headers = oxyjwt.encode, _header_params(key)

    def mint() -> str:
        token: str = encode(claims(), peer_key, algorithm=algorithm, headers=headers)
        return token

    try:
        mint()
    except oxyjwt.InvalidAlgorithmError as exc:  # e.g. ES512: not in its Rust core
        raise NotSupported(f"oxyjwt: {exc}") from None
    return mint


def _jwskate(key: SigningKey, algorithm: str) -> Minter:
    jwskate = import_peer("jwskate")
    if isinstance(key.key, bytes):
        peer_key = jwskate.SymmetricJwk.from_bytes(key.key)
    else:
        peer_key = jwskate.Jwk.from_cryptography_key(key.key)
    sign, extra = jwskate.Jwt.sign, ({} if key.kid is None else {"kid": key.kid})

    def mint() -> str:
        return str(sign(claims(), peer_key, alg=algorithm, typ=TYP, extra_headers=extra))

    return mint


#: Every contender, in table order: ours first, then PyJWT (the reference), then the others.
PEERS: tuple[Peer, ...] = (
    Peer("jwtmint-c", "jwtmint C", _jwtmint_c, "jwtmint._speedups", probe=_c_kernel_missing),
    Peer("jwtmint-py", "jwtmint py", _jwtmint_py, "jwtmint._pure"),
    Peer("pyjwt", "PyJWT", _pyjwt_compatible("jwt"), "jwt", "PyJWT", "pyjwt"),
    Peer("joserfc", "joserfc", _joserfc, "joserfc", "joserfc", "joserfc"),
    Peer("jwcrypto", "jwcrypto", _jwcrypto, "jwcrypto", "jwcrypto", "jwcrypto"),
    Peer("python-jose", "python-jose", _python_jose, "jose", "python-jose", "python-jose"),
    Peer("authlib", "authlib", _authlib, "authlib", "Authlib", "authlib"),
    Peer("oxyjwt", "oxyjwt", _oxyjwt, "oxyjwt", "oxyjwt", "oxyjwt"),
    # pyjwt-rs imports as jwt_rs and mirrors PyJWT's encode(payload, key, algorithm, headers)
    Peer("pyjwt-rs", "pyjwt-rs", _pyjwt_compatible("jwt_rs"), "jwt_rs", "pyjwt-rs", "pyjwt-rs"),
    Peer("jwskate", "jwskate", _jwskate, "jwskate", "jwskate", "jwskate"),
)


def get_peer(name: str) -> Peer:
    for peer in PEERS:
        if peer.name == name:
            return peer
    raise KeyError(f"unknown peer {name!r}; known: {', '.join(p.name for p in PEERS)}")


#: Warnings peers raise on every mint of this job, silenced by :func:`quiet` while measuring.
_PEER_WARNINGS = (
    # joserfc warns on each use of alg "EdDSA" (RFC 9864 prefers "Ed25519"); the job is "EdDSA"
    r"EdDSA is deprecated",
)


@contextlib.contextmanager
def quiet() -> Iterator[None]:
    """Silence the peers' own per-call warnings (only those) for the duration of a run."""
    with warnings.catch_warnings():
        for message in _PEER_WARNINGS:
            warnings.filterwarnings("ignore", message=message)
        yield


# -- the floor --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Floor:
    """The bare signature: ``sign()`` with every argument bound, and a check of its output."""

    sign: Callable[[], bytes]
    verify: Callable[[bytes], None]
    message_bytes: int
    label: str


def floor(key: SigningKey, algorithm: str, message: bytes | None = None) -> Floor:
    """cryptography's bare ``sign()`` of a real signing input (~300-400 B) with ``key``:
    ``message``, or the signing input of one of our assertions."""
    if message is None:
        message = jwtmint_minter(key, _pure, algorithm)().rpartition(".")[0].encode("ascii")
    obj = key.key
    sign: Callable[[], bytes]
    verify: Callable[[bytes], None]
    if isinstance(obj, bytes):
        # the cheapest HMAC at hand: the active kernel's (OpenSSL's SHA on pre-padded
        # states in C, else hashlib states primed with the key pads); hmac.digest redoes
        # the key schedule on every call
        digest = "sha" + algorithm[2:]
        sign = functools.partial(_kernels.kernel.hmac_signer(obj, digest), message)

        def verify(signature: bytes) -> None:
            if not hmac.compare_digest(signature, hmac.new(obj, message, digest).digest()):
                raise ValueError("the HMAC floor computed a wrong MAC")

        backend = getattr(_kernels.kernel, "HMAC_BACKEND", "hashlib")
        return Floor(sign, verify, len(message), f"floor: HMAC ({backend})")

    if isinstance(obj, rsa.RSAPrivateKey):
        hash_alg = HASHES[algorithm[2:]]
        pad: padding.AsymmetricPadding = (
            padding.PKCS1v15()
            if algorithm.startswith("RS")
            else padding.PSS(padding.MGF1(hash_alg), hash_alg.digest_size)
        )
        sign = functools.partial(obj.sign, message, pad, hash_alg)
        rsa_public = obj.public_key()

        def verify(signature: bytes) -> None:
            rsa_public.verify(signature, message, pad, hash_alg)

    elif isinstance(obj, ec.EllipticCurvePrivateKey):
        ecdsa = ec.ECDSA(HASHES[algorithm[2:]])
        sign = functools.partial(obj.sign, message, ecdsa)
        ec_public = obj.public_key()

        def verify(signature: bytes) -> None:
            ec_public.verify(signature, message, ecdsa)

    else:
        assert isinstance(obj, ed25519.Ed25519PrivateKey | ed448.Ed448PrivateKey)
        sign = functools.partial(obj.sign, message)
        ed_public = obj.public_key()

        def verify(signature: bytes) -> None:
            ed_public.verify(signature, message)

    return Floor(sign, verify, len(message), "floor: cryptography sign()")
