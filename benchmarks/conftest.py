"""Shared pieces of the benchmark suite: keys, contenders and their correctness checks.

Every contender mints the same client assertion as ``jwtmint demo`` (header
``{alg, kid, typ}``, claims iss/sub/aud/jti/iat/nbf/exp, a fresh jti and time
per call); ``jwtmint._timing`` builds them so that the demo and this suite
time the same job. Each callable is checked once before it is timed.
"""

from __future__ import annotations

import functools
import hmac
import os
from collections.abc import Callable
from typing import Any, Protocol, TypeVar

import jwt
import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa

import jwtmint
from jwtmint import _kernels, _pure, _timing
from jwtmint.algorithms import _hmac_states, hmac_sign

T = TypeVar("T")

SPEEDUPS = _kernels.load_speedups()

#: One line per algorithm in the benchmark table (one group each).
ALGORITHMS = ["RS256", "PS256", "ES256", "ES384", "ES512", "EdDSA", "HS256"]
CLIENT_ID = _timing.CLIENT_ID
AUDIENCE = _timing.AUDIENCE


class Benchmark(Protocol):
    """The part of pytest-benchmark's ``benchmark`` fixture this suite uses."""

    group: str | None
    extra_info: dict[str, Any]

    def __call__(self, function_to_benchmark: Callable[[], T]) -> T: ...


_KEYS: dict[str, jwtmint.SigningKey] = {}


def signing_key(algorithm: str) -> jwtmint.SigningKey:
    """One fresh key per algorithm per session: every contender signs with the same key."""
    if algorithm not in _KEYS:
        _KEYS[algorithm] = jwtmint.generate_key(algorithm)
    return _KEYS[algorithm]


def speedups() -> Any:
    """The compiled kernel; skip (or fail, under JWTMINT_REQUIRE_EXTENSIONS) when missing."""
    if SPEEDUPS is None:
        if os.environ.get("JWTMINT_REQUIRE_EXTENSIONS"):
            pytest.fail("the C extension jwtmint._speedups did not load")
        pytest.skip("C extension not built")
    return SPEEDUPS


def jwtmint_minter(algorithm: str, implementation: str) -> Callable[[], str]:
    module = speedups() if implementation == "c" else _pure
    return _timing.jwtmint_minter(signing_key(algorithm), module, algorithm)


def pyjwt_minter(algorithm: str) -> Callable[[], str]:
    return _timing.pyjwt_minter(signing_key(algorithm), algorithm)


def check_token(token: str, algorithm: str) -> None:
    """The token verifies with PyJWT and carries the expected header and claims."""
    key = signing_key(algorithm)
    verifier: Any = key.key if isinstance(key.key, bytes) else key.key.public_key()
    claims = jwt.decode(
        token,
        verifier,
        algorithms=[algorithm],
        audience=AUDIENCE,
        issuer=CLIENT_ID,
        options={"require": ["iss", "sub", "aud", "jti", "iat", "nbf", "exp"]},
    )
    assert claims["sub"] == CLIENT_ID
    assert claims["exp"] - claims["iat"] == _timing.LIFETIME
    header = jwt.get_unverified_header(token)
    expected = {"alg": algorithm, "typ": jwtmint.CLIENT_ASSERTION_TYP}
    if key.kid is not None:
        expected["kid"] = key.kid
    assert header == expected


_HASHES: dict[str, hashes.HashAlgorithm] = {
    "256": hashes.SHA256(),
    "384": hashes.SHA384(),
    "512": hashes.SHA512(),
}


def signing_floor(algorithm: str) -> tuple[Callable[[], bytes], Callable[[bytes], None], int]:
    """cryptography's bare ``sign()`` of a real signing input with the same key.

    Returns the signing callable (all arguments bound, as a minter would hold
    them), a check for its output, and the message length. The message is the
    signing input of one of our assertions, so it has the real size (~300-400 B).
    """
    key = signing_key(algorithm)
    token = _timing.jwtmint_minter(key, _pure, algorithm)()
    message = token.rpartition(".")[0].encode("ascii")
    obj = key.key
    sign: Callable[[], bytes]
    verify: Callable[[bytes], None]
    if isinstance(obj, bytes):
        # the cheapest HMAC Python offers: hash states primed with the key pads, copied
        # (hmac.digest redoes the key schedule and is ~2x slower)
        digest = "sha" + algorithm[2:]
        inner, outer = _hmac_states(obj, digest)
        sign = functools.partial(hmac_sign, inner, outer, message)

        def verify(signature: bytes) -> None:
            assert hmac.compare_digest(signature, hmac.new(obj, message, digest).digest())

    elif isinstance(obj, rsa.RSAPrivateKey):
        hash_alg = _HASHES[algorithm[2:]]
        pad: padding.AsymmetricPadding = (
            padding.PKCS1v15()
            if algorithm.startswith("RS")
            else padding.PSS(padding.MGF1(hash_alg), hash_alg.digest_size)
        )
        sign = functools.partial(obj.sign, message, pad, hash_alg)
        public = obj.public_key()

        def verify(signature: bytes) -> None:
            public.verify(signature, message, pad, hash_alg)

    elif isinstance(obj, ec.EllipticCurvePrivateKey):
        ecdsa = ec.ECDSA(_HASHES[algorithm[2:]])
        sign = functools.partial(obj.sign, message, ecdsa)
        ec_public = obj.public_key()

        def verify(signature: bytes) -> None:
            ec_public.verify(signature, message, ecdsa)

    else:
        assert isinstance(obj, ed25519.Ed25519PrivateKey)
        sign = functools.partial(obj.sign, message)
        ed_public = obj.public_key()

        def verify(signature: bytes) -> None:
            ed_public.verify(signature, message)

    return sign, verify, len(message)
