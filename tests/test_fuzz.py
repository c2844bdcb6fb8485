"""A bounded fuzz run of the key loaders (load_key, load_secret, the JWK, PEM, DER and PKCS#12
parsers, the format sniffer) and of DER->raw in both kernels: Hypothesis here on every
platform, and atheris (libFuzzer, coverage-guided) in a subprocess where its wheel exists.
Only a SigningKey, a JwtMintError subclass or TypeError may come out of a loader; only
2*size bytes, ValueError or TypeError out of der_to_raw, the same from C and Python."""

from __future__ import annotations

import base64
import importlib.util
import json
import os
import platform
import subprocess
import sys
import tracemalloc
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import jwtmint
from jwtmint.errors import InvalidKeyError

from .fuzz_keys import (
    ALGORITHMS,
    PASSWORDS,
    check_der_to_raw,
    check_jwk,
    check_key_bytes,
    seeds,
)

SEEDS = seeds()


def fuzz(examples: int) -> settings:
    """A bounded run: ``examples`` inputs, none timed (key parsing varies)."""
    return settings(
        max_examples=examples, deadline=None, suppress_health_check=[HealthCheck.too_slow]
    )


#: atheris ships wheels (with libFuzzer inside) for CPython 3.11-3.13 on x86_64 Linux only;
#: pyproject's test extra installs it there, and CI must then run it
ATHERIS_PLATFORM = (
    sys.platform == "linux"
    and platform.machine() == "x86_64"
    and (3, 11) <= sys.version_info[:2] <= (3, 13)
)
ATHERIS_RUNS = 20_000


@st.composite
def mutated(draw: st.DrawFn, seed: bytes) -> bytes:
    """``seed`` after a few random edits: flipped bytes, a cut, an insertion, a splice."""
    data = bytearray(seed)
    for _ in range(draw(st.integers(1, 4))):
        edit = draw(st.sampled_from(["flip", "cut", "insert", "splice"]))
        at = draw(st.integers(0, max(0, len(data) - 1)))
        if edit == "flip" and data:
            data[at] ^= 1 << draw(st.integers(0, 7))
        elif edit == "cut":
            data = data[:at] if draw(st.booleans()) else data[at:]
        elif edit == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=8))
        else:
            data[at : at + draw(st.integers(0, 16))] = draw(st.binary(max_size=16))
    return bytes(data)


KEY_FILES = sorted(name for name in SEEDS if name != "ecdsa.der")
key_bytes = st.one_of(
    st.binary(max_size=300),
    st.sampled_from(KEY_FILES).flatmap(lambda name: mutated(SEEDS[name])),
)


@fuzz(1500)
@given(key_bytes, st.sampled_from(PASSWORDS), st.sampled_from(ALGORITHMS))
def test_key_files_load_or_raise_jwtmint_errors(
    data: bytes, password: bytes | None, algorithm: str | None
) -> None:
    check_key_bytes(data, password, algorithm)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


JSON_SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text(max_size=20)
)
MEMBER_VALUES = st.one_of(
    st.binary(max_size=80).map(_b64),  # what a member should be: base64url
    st.sampled_from(["RSA", "EC", "OKP", "oct", "P-256", "P-384", "P-521", "Ed25519", "Ed448",
                     "X25519", "secp256k1", "ES256", "RS256", "HS256", "none", "", "AQAB"]),
    JSON_SCALARS,
    st.lists(JSON_SCALARS, max_size=3),
)  # fmt: skip
MEMBERS = st.sampled_from(["kty", "crv", "x", "y", "d", "n", "e", "p", "q", "dp", "dq", "qi",
                           "k", "alg", "kid", "use", "key_ops", "oth", "keys"])  # fmt: skip
VALID_JWKS = [
    json.loads(SEEDS["ec.jwk"]),
    json.loads(SEEDS["oct.jwk"]),
    {**jwtmint.generate_key("EdDSA").public_jwk(), "d": _b64(os.urandom(32))},
]


@st.composite
def edited_jwk(draw: st.DrawFn) -> dict[str, Any]:
    """A valid JWK with members replaced, removed or added."""
    jwk = dict(draw(st.sampled_from(VALID_JWKS)))
    for _ in range(draw(st.integers(1, 3))):
        member = draw(MEMBERS)
        if draw(st.booleans()):
            jwk.pop(member, None)
        else:
            jwk[member] = draw(MEMBER_VALUES)
    return jwk


jwks = st.one_of(
    edited_jwk(),
    st.dictionaries(MEMBERS, MEMBER_VALUES, max_size=8),
    st.recursive(JSON_SCALARS, lambda inner: st.lists(inner, max_size=3)
                 | st.dictionaries(st.text(max_size=5), inner, max_size=3), max_leaves=8),
)  # fmt: skip


@fuzz(1500)
@given(jwks, st.sampled_from(ALGORITHMS))
def test_jwks_load_or_raise_jwtmint_errors(jwk: Any, algorithm: str | None) -> None:
    check_jwk(jwk, algorithm)


@st.composite
def der_signatures(draw: st.DrawFn) -> bytes:
    """SEQUENCE { INTEGER, INTEGER } with every length and content byte open to error."""

    def integer() -> bytes:
        content = draw(st.binary(min_size=0, max_size=70))
        length = draw(st.one_of(st.just(len(content)), st.integers(0, 0xFF)))
        return b"\x02" + bytes([length]) + content

    body = integer() + integer() + draw(st.one_of(st.just(b""), st.binary(max_size=3)))
    if len(body) < 0x80 and draw(st.booleans()):
        header = b"\x30" + bytes([draw(st.one_of(st.just(len(body)), st.integers(0, 0xFF)))])
    else:
        header = b"\x30\x81" + bytes(
            [draw(st.one_of(st.just(len(body) & 0xFF), st.integers(0, 0xFF)))]
        )
    return header + body


sizes = st.one_of(st.integers(-3, 70), st.sampled_from([32, 48, 66]), st.integers())


@fuzz(2000)
@given(st.one_of(der_signatures(), st.binary(max_size=150)), sizes)
def test_der_to_raw_kernels_agree_on_any_bytes(der: bytes, size: int) -> None:
    check_der_to_raw(der, size)


@fuzz(500)
@given(st.sampled_from([32, 48, 66]), st.data())
def test_der_to_raw_of_a_valid_signature_is_r_and_s(size: int, data: st.DataObject) -> None:
    r, s = (data.draw(st.integers(0, 2 ** (8 * size) - 1)) for _ in range(2))
    raw = check_der_to_raw(encode_dss_signature(r, s), size)
    assert raw == r.to_bytes(size, "big") + s.to_bytes(size, "big")


@pytest.mark.parametrize(
    ("der", "size"),
    [
        (bytearray(b"0\x06\x02\x01\x01\x02\x01\x02"), 1),
        (memoryview(b"0\x06\x02\x01\x01\x02\x01\x02"), 1),
        (type("Sub", (bytes,), {})(b"0\x06\x02\x01\x01\x02\x01\x02"), 1),
        ("0\x06\x02\x01\x01\x02\x01\x02", 1),
        (None, 1),
        (b"0\x06\x02\x01\x01\x02\x01\x02", 1.0),
        (b"0\x06\x02\x01\x01\x02\x01\x02", "1"),
        (b"0\x06\x02\x01\x01\x02\x01\x02", 2**31),
        (b"0\x06\x02\x01\x01\x02\x01\x02", -(2**63) - 1),
        (b"0\x06\x02\x01\x01\x02\x01\x02", 2**100),
    ],
)
def test_der_to_raw_kernels_refuse_the_same_odd_arguments(der: Any, size: Any) -> None:
    """Found by the fuzz run: C raised OverflowError for a huge size (and took 1.0), while
    Python took bytearray, bytes subclasses and str (returning a bytearray for one)."""
    assert check_der_to_raw(der, size) is None


def test_an_rsa_jwk_too_large_to_sign_is_refused_before_prime_recovery() -> None:
    """Found by the fuzz run: a JWK without p and q sends n, e and d to prime recovery, whose
    time grows with the cube of n's size (minutes at 32768 bits)."""
    jwk = {"kty": "RSA", "n": _b64(b"\xff" * 4096), "e": "AQAB", "d": _b64(b"\x7f" * 4096)}
    with pytest.raises(InvalidKeyError, match="at most 16384"):
        jwtmint.load_key(jwk)


def test_a_jwk_member_that_is_a_number_allocates_nothing() -> None:
    """Found by the fuzz run: base64url decoding did bytes(member), which for an int is that
    many zero bytes: {"k": 10**8} took 100 MB before it was refused ({"d": 10**11}, 100 GB)."""
    tracemalloc.start()
    try:
        with pytest.raises(InvalidKeyError):
            jwtmint.load_key({"kty": "oct", "k": 10**8})
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 1_000_000


def test_a_private_key_openssl_refuses_after_parsing_is_an_invalid_key() -> None:
    """Found by the fuzz run: an X448 PKCS#8 structure around a 32-byte key made cryptography
    raise InternalError, from the sniffer (DER) and from the PEM loader alike."""
    pem = (
        b"-----BEGIN PRIVATE KEY-----\n"
        b"MC4CAQAwBQYDK2VvBCIEIAaeqz5xRjDy3SrbglmvFWCvaciiS8xnTC828ZihV2wF\n"
        b"-----END PRIVATE KEY-----\n"
    )
    der = base64.b64decode(b"".join(pem.splitlines()[1:-1]))
    for source in (pem, der, pem.decode()):
        with pytest.raises(InvalidKeyError):
            jwtmint.load_key(source)


def test_atheris_fuzzes_the_same_targets(tmp_path: Path) -> None:
    """libFuzzer over jwtmint's instrumented Python (the C kernel is compared with its twin
    on every input): a bounded run from a corpus of valid key files, which must end clean."""
    if importlib.util.find_spec("atheris") is None:
        if ATHERIS_PLATFORM and os.environ.get("CI"):
            pytest.fail("atheris has a wheel for this platform, and CI must run it")
        pytest.skip("atheris has no wheel for this platform (CPython 3.11-3.13, x86_64 Linux)")
    harness = Path(__file__).with_name("fuzz_keys.py")
    run = subprocess.run(
        [sys.executable, str(harness), str(tmp_path / "corpus"), f"-runs={ATHERIS_RUNS}",
         f"-artifact_prefix={tmp_path}/", "-print_final_stats=1"],
        capture_output=True, text=True, timeout=120,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
    )  # fmt: skip
    assert run.returncode == 0, run.stderr[-3000:]
    assert f"stat::number_of_executed_units: {ATHERIS_RUNS}" in run.stderr
