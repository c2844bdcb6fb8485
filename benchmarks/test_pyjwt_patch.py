"""PyJWT's ``jwt.encode`` under ``jwtmint.patch_pyjwt()``, and unpatched beside it (#14).

One group per (algorithm, key form): HS256 with a ``str`` secret, ES256 with
PEM text and with a key object. ``patched`` is ``jwt.encode`` with the patch
in force; ``unpatched`` is PyJWT's own ``encode`` on the same input, timed in
another test, with the patch out. Each token is verified with ``jwt.decode``
before and after timing, and each patched call must take the fast path.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

import jwtmint
from jwtmint.bench.job import AUDIENCE, CLIENT_ID
from jwtmint.bench.pyjwt_patch import claims, key_forms

from .conftest import Benchmark

jwt: Any = pytest.importorskip("jwt")

CASES = [("HS256", "secret"), ("ES256", "pem"), ("ES256", "object")]
_KEYS: dict[str, Any] = {}


def _case(algorithm: str, form: str) -> tuple[Any, Any]:
    """The key as the caller hands it over, and what verifies it (one key per algorithm)."""
    if algorithm not in _KEYS:
        _KEYS[algorithm] = key_forms(algorithm)
    key, forms = _KEYS[algorithm]
    verifier = key.key if isinstance(key.key, bytes) else key.key.public_key()
    return forms[form], verifier


@pytest.fixture
def patch() -> Iterator[jwtmint.PyJWTPatch]:
    try:
        yield jwtmint.patch_pyjwt()
    finally:
        jwtmint.unpatch_pyjwt()


def _encoder(algorithm: str, form: str) -> tuple[Callable[[], str], Callable[[str], None]]:
    key, verifier = _case(algorithm, form)
    payload, headers = claims(), {"kid": "bench"}

    def encode() -> str:
        token: str = jwt.encode(payload, key, algorithm=algorithm, headers=headers)
        return token

    def check(token: str) -> None:
        decoded = jwt.decode(
            token, verifier, algorithms=[algorithm], audience=AUDIENCE, issuer=CLIENT_ID
        )
        assert decoded == payload

    return encode, check


@pytest.mark.parametrize(("algorithm", "form"), CASES)
def test_patched(
    benchmark: Benchmark, patch: jwtmint.PyJWTPatch, algorithm: str, form: str
) -> None:
    benchmark.group = f"jwt.encode {algorithm} {form}"
    encode, check = _encoder(algorithm, form)
    check(encode())
    fast, fallback = patch.fast, patch.fallback
    check(benchmark(encode))
    assert patch.fallback == fallback and patch.fast > fast  # every call took the fast path


@pytest.mark.parametrize(("algorithm", "form"), CASES)
def test_unpatched(benchmark: Benchmark, algorithm: str, form: str) -> None:
    benchmark.group = f"jwt.encode {algorithm} {form}"
    assert not hasattr(jwt.encode, "__wrapped__"), "PyJWT is patched"
    encode, check = _encoder(algorithm, form)
    check(encode())
    check(benchmark(encode))
