"""The ``jwtmint demo`` measurement: contenders, correctness checks, interleaved timing.

Every contender does the same job: one client assertion (RFC 7523 §3) with
the header ``{alg, kid, typ}`` and the claims iss/sub/aud/jti/iat/nbf/exp,
a fresh 128-bit ``jti`` and the current time on every call. Each token is
checked before anything is timed (PyJWT's ``jwt.decode`` when installed,
cryptography directly otherwise).

Timing: a batch size per contender is calibrated so that one batch takes
``batch_seconds``; then the contenders of one algorithm run round-robin,
``repeats`` times, the order rotated every round, so that a noisy neighbour
hurts all of them alike. The figure reported is the median of the per-call
times of those batches; the interquartile range says how noisy it was.
The cyclic garbage collector is off during batches (as in :mod:`timeit`).
"""

from __future__ import annotations

import base64
import gc
import hmac
import itertools
import json
import os
import platform
import secrets
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from importlib import metadata
from types import ModuleType
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from . import _kernels, _pure
from .assertion import CLIENT_ASSERTION_TYP, AssertionSigner
from .keys import SigningKey

__all__ = [
    "DEMO_ALGORITHMS",
    "AlgorithmRun",
    "Timing",
    "check_token",
    "environment",
    "jwtmint_minter",
    "measure",
    "pyjwt_minter",
]

DEMO_ALGORITHMS = (
    "RS256", "PS256", "ES256", "ES384", "ES512", "EdDSA", "HS256", "HS384", "HS512",
)  # fmt: skip
CLIENT_ID = "demo-client"
AUDIENCE = "https://idp.example.com"
LIFETIME = 60

Minter = Callable[[], str]


def _version(distribution: str) -> str | None:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return None


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            for line in handle:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def environment() -> dict[str, Any]:
    """Versions and machine, printed with every set of results."""
    from cryptography.hazmat.backends.openssl.backend import backend

    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        usable = os.cpu_count() or 1
    speedups = _kernels.load_speedups()
    return {
        "jwtmint": _version("jwtmint"),
        "implementation": _kernels.kernel.IMPLEMENTATION,
        "c_kernel": "built" if speedups is not None else "not built",
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "cryptography": _version("cryptography"),
        "openssl": backend.openssl_version_text(),
        "pyjwt": _version("PyJWT"),
        "orjson": _version("orjson"),
        "cpu": _cpu_model(),
        "cpu_count": os.cpu_count(),
        "cpu_usable": usable,
        "platform": platform.platform(),
    }


# -- contenders -----------------------------------------------------------------------------


def jwtmint_minter(key: SigningKey, module: ModuleType, algorithm: str) -> Minter:
    """``AssertionSigner.mint`` of a signer built while ``module`` is the kernel.

    A signer binds the kernel at construction, so this times exactly ``module``.
    """
    saved = _kernels.kernel
    _kernels.kernel = module
    try:
        signer = AssertionSigner(key, CLIENT_ID, AUDIENCE, algorithm=algorithm, lifetime=LIFETIME)
    finally:
        _kernels.kernel = saved
    return signer.mint


def pyjwt_minter(key: SigningKey, algorithm: str) -> Minter:
    """PyJWT doing the same job: ``jwt.encode`` with a pre-loaded key object."""
    import jwt

    encode = jwt.encode
    signing_key = key.key
    headers: dict[str, Any] = {"typ": CLIENT_ASSERTION_TYP}
    if key.kid is not None:
        headers["kid"] = key.kid

    def mint() -> str:
        now = int(time.time())
        claims = {
            "iss": CLIENT_ID,
            "sub": CLIENT_ID,
            "aud": AUDIENCE,
            "jti": secrets.token_urlsafe(16),
            "iat": now,
            "nbf": now,
            "exp": now + LIFETIME,
        }
        return encode(claims, signing_key, algorithm=algorithm, headers=headers)

    return mint


# -- checks ---------------------------------------------------------------------------------


class TokenCheckError(AssertionError):
    """Raised when a minted token does not verify or does not carry the expected claims."""


_HASHES: dict[str, hashes.HashAlgorithm] = {
    "256": hashes.SHA256(),
    "384": hashes.SHA384(),
    "512": hashes.SHA512(),
}


def _b64url_decode(segment: str) -> bytes:
    return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))


def _verify_with_cryptography(token: str, key: SigningKey, algorithm: str) -> None:
    signing_input, _, sig_b64 = token.rpartition(".")
    data, signature = signing_input.encode("ascii"), _b64url_decode(sig_b64)
    obj = key.key
    hash_alg = _HASHES.get(algorithm[2:], _HASHES["256"])
    try:
        if isinstance(obj, bytes):
            expected = hmac.digest(obj, data, hash_alg.name)
            if not hmac.compare_digest(expected, signature):
                raise InvalidSignature
        elif isinstance(obj, rsa.RSAPrivateKey):
            pad: padding.AsymmetricPadding = (
                padding.PKCS1v15()
                if algorithm.startswith("RS")
                else padding.PSS(padding.MGF1(hash_alg), hash_alg.digest_size)
            )
            obj.public_key().verify(signature, data, pad, hash_alg)
        elif isinstance(obj, ec.EllipticCurvePrivateKey):
            half = len(signature) // 2
            der = encode_dss_signature(
                int.from_bytes(signature[:half], "big"), int.from_bytes(signature[half:], "big")
            )
            obj.public_key().verify(der, data, ec.ECDSA(hash_alg))
        else:
            assert isinstance(obj, ed25519.Ed25519PrivateKey | ed448.Ed448PrivateKey)
            obj.public_key().verify(signature, data)
    except InvalidSignature:
        raise TokenCheckError(f"{algorithm}: the signature does not verify") from None
    now = time.time()
    claims = json.loads(_b64url_decode(token.split(".")[1]))
    if claims.get("aud") != AUDIENCE or claims.get("iss") != CLIENT_ID:
        raise TokenCheckError(f"{algorithm}: wrong aud or iss")
    if not (claims["nbf"] <= now + 5 and now < claims["exp"]):
        raise TokenCheckError(f"{algorithm}: not valid now (nbf/exp)")


def check_token(token: str, key: SigningKey, algorithm: str, *, use_pyjwt: bool) -> None:
    """Verify signature, header and claims of one demo assertion, or raise TokenCheckError."""
    header = json.loads(_b64url_decode(token.split(".")[0]))
    expected_header = {"alg": algorithm, "typ": CLIENT_ASSERTION_TYP}
    if key.kid is not None:
        expected_header["kid"] = key.kid
    if header != expected_header:
        raise TokenCheckError(f"{algorithm}: unexpected header {header}")
    if use_pyjwt:
        import jwt

        verifier: Any = key.key if isinstance(key.key, bytes) else key.key.public_key()
        try:
            claims = jwt.decode(
                token,
                verifier,
                algorithms=[algorithm],
                audience=AUDIENCE,
                issuer=CLIENT_ID,
                options={"require": ["iss", "sub", "aud", "jti", "iat", "nbf", "exp"]},
            )
        except jwt.PyJWTError as exc:
            raise TokenCheckError(f"{algorithm}: PyJWT rejects the token: {exc}") from None
    else:
        _verify_with_cryptography(token, key, algorithm)
        claims = json.loads(_b64url_decode(token.split(".")[1]))
    if claims["sub"] != CLIENT_ID or claims["exp"] - claims["iat"] != LIFETIME:
        raise TokenCheckError(f"{algorithm}: wrong sub or lifetime")
    if len(_b64url_decode(claims["jti"])) != 16:
        raise TokenCheckError(f"{algorithm}: jti is not 128 bits")


def decode_segments(token: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """Header and claims of a compact JWS, unverified: for display only."""
    header, claims, _ = token.split(".")
    return json.loads(_b64url_decode(header)), json.loads(_b64url_decode(claims))


# -- timing ---------------------------------------------------------------------------------


@dataclass
class Timing:
    """Per-call times (seconds) of ``repeats`` batches of ``batch`` calls each."""

    batch: int
    samples: list[float] = field(default_factory=list)

    @property
    def median_us(self) -> float:
        return statistics.median(self.samples) * 1e6

    @property
    def spread(self) -> float:
        """Interquartile range as a fraction of the median."""
        if len(self.samples) < 4:
            return 0.0
        q1, _, q3 = statistics.quantiles(self.samples, n=4)
        return (q3 - q1) / statistics.median(self.samples)

    def as_dict(self) -> dict[str, Any]:
        median = self.median_us
        return {
            "median_us": round(median, 3),
            "mints_per_s": round(1e6 / median, 1),
            "iqr_fraction": round(self.spread, 4),
            "batch": self.batch,
            "repeats": len(self.samples),
            "samples_us": [round(s * 1e6, 3) for s in self.samples],
        }


def _run_batch(fn: Minter, n: int) -> float:
    calls = itertools.repeat(None, n)
    start = time.perf_counter()
    for _ in calls:
        fn()
    return time.perf_counter() - start


def _calibrate(fn: Minter, batch_seconds: float) -> int:
    """Calls per batch so that one batch takes about ``batch_seconds`` (doubles as warm-up)."""
    n = 1
    while True:
        elapsed = _run_batch(fn, n)
        if elapsed >= batch_seconds / 4 or n >= 1 << 24:
            return max(1, round(n * batch_seconds / max(elapsed, 1e-9)))
        n *= 2


def measure(
    contenders: Sequence[tuple[str, Minter]], *, repeats: int, batch_seconds: float
) -> dict[str, Timing]:
    """Round-robin timing of ``contenders``: ``repeats`` batches each, order rotated per round."""
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        timings = {name: Timing(_calibrate(fn, batch_seconds)) for name, fn in contenders}
        for round_no in range(repeats):
            shift = round_no % len(contenders)
            for name, fn in [*contenders[shift:], *contenders[:shift]]:
                timing = timings[name]
                timing.samples.append(_run_batch(fn, timing.batch) / timing.batch)
    finally:
        if gc_was_enabled:
            gc.enable()
    return timings


# -- the demo -------------------------------------------------------------------------------


@dataclass
class AlgorithmRun:
    """One algorithm's contenders, their example tokens and timings."""

    algorithm: str
    key: SigningKey = field(repr=False)
    minters: dict[str, Minter] = field(repr=False)
    timings: dict[str, Timing] = field(default_factory=dict)


def prepare(algorithm: str, *, with_pyjwt: bool, speedups: ModuleType | None) -> AlgorithmRun:
    """A fresh key and every contender for ``algorithm``; each token checked once."""
    from .keys import generate_key

    key = generate_key(algorithm)
    minters: dict[str, Minter] = {}
    if speedups is not None:
        minters["jwtmint-c"] = jwtmint_minter(key, speedups, algorithm)
    minters["jwtmint-py"] = jwtmint_minter(key, _pure, algorithm)
    if with_pyjwt:
        minters["pyjwt"] = pyjwt_minter(key, algorithm)
    for mint in minters.values():
        check_token(mint(), key, algorithm, use_pyjwt=with_pyjwt)
    return AlgorithmRun(algorithm, key, minters)
