"""The hot-path kernels, run against the Cython module (c) and its Python twin (py).

Expected values come from the standard library and cryptography, never from
the kernels themselves; the parity tests at the end compare c with py.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from types import ModuleType
from typing import Any

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from jwtmint import _pure
from tests.conftest import SPEEDUPS

# The kernel fixture is function-scoped but never changes between examples.
fixture_ok = settings(deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1
int64 = st.integers(min_value=INT64_MIN, max_value=INT64_MAX)

CURVES: list[tuple[ec.EllipticCurve, type[hashes.HashAlgorithm], int]] = [
    (ec.SECP256R1(), hashes.SHA256, 32),
    (ec.SECP384R1(), hashes.SHA384, 48),
    (ec.SECP521R1(), hashes.SHA512, 66),
]
CURVE_IDS = ["P-256", "P-384", "P-521"]


def b64(data: bytes) -> bytes:
    """The reference: the standard library's URL-safe alphabet, padding removed."""
    return base64.urlsafe_b64encode(data).rstrip(b"=")


def der_length(n: int) -> bytes:
    return bytes([n]) if n < 0x80 else bytes([0x81, n])


def der_int(content: bytes) -> bytes:
    return b"\x02" + der_length(len(content)) + content


def der_seq(body: bytes) -> bytes:
    return b"\x30" + der_length(len(body)) + body


def raw_rs(r: int, s: int, size: int) -> bytes:
    return r.to_bytes(size, "big") + s.to_bytes(size, "big")


# --------------------------------------------------------------------------- b64url


@fixture_ok
@given(data=st.binary(max_size=600))
@example(data=b"")
@example(data=b"\xfb\xff\xbf")  # every sextet is 62 or 63: "-" and "_"
@example(data=b"\x00")
@example(data=b"\x00\x01")
def test_b64url_encode_matches_stdlib(kernel: ModuleType, data: bytes) -> None:
    out = kernel.b64url_encode(data)
    assert type(out) is bytes
    assert out == b64(data)


def test_b64url_encode_uses_the_url_safe_alphabet(kernel: ModuleType) -> None:
    assert kernel.b64url_encode(b"\xfb\xff\xbf") == b"-_-_"
    assert kernel.b64url_encode(b"\xff") == b"_w"
    assert kernel.b64url_encode(b"\xfb\xf0") == b"-_A"


def test_b64url_encode_refuses_str(kernel: ModuleType) -> None:
    with pytest.raises(TypeError):
        kernel.b64url_encode("not bytes")


# --------------------------------------------------------------------------- der_to_raw


@pytest.mark.parametrize(("curve", "hash_type", "size"), CURVES, ids=CURVE_IDS)
def test_der_to_raw_on_real_signatures(
    kernel: ModuleType,
    curve: ec.EllipticCurve,
    hash_type: type[hashes.HashAlgorithm],
    size: int,
) -> None:
    key = ec.generate_private_key(curve)
    for i in range(40):
        message = b"message %d" % i
        der = key.sign(message, ec.ECDSA(hash_type()))
        r, s = decode_dss_signature(der)
        raw = kernel.der_to_raw(der, size)
        assert type(raw) is bytes
        assert raw == raw_rs(r, s, size)
        # and the raw form turned back into DER still verifies
        back = encode_dss_signature(
            int.from_bytes(raw[:size], "big"), int.from_bytes(raw[size:], "big")
        )
        key.public_key().verify(back, message, ec.ECDSA(hash_type()))


@pytest.mark.parametrize("size", [32, 48, 66])
@pytest.mark.parametrize(
    ("r_of", "s_of"),
    [
        (lambda m: 0, lambda m: 0),
        (lambda m: 1, lambda m: 1),
        (lambda m: m, lambda m: m),  # the widest values: every bit set
        (lambda m: m >> 1, lambda m: 0x80),  # high bit clear / a padded one-byte value
        (lambda m: 0x7F, lambda m: (m >> 8) + 1),  # short values padded with zeros
    ],
    ids=["zero", "one", "max", "mixed", "short"],
)
def test_der_to_raw_edge_values(
    kernel: ModuleType,
    size: int,
    r_of: Callable[[int], int],
    s_of: Callable[[int], int],
) -> None:
    most = 2 ** (8 * size) - 1
    r, s = r_of(most), s_of(most)
    assert kernel.der_to_raw(encode_dss_signature(r, s), size) == raw_rs(r, s, size)


@fixture_ok
@given(data=st.data())
def test_der_to_raw_equals_cryptography_for_any_r_s(
    kernel: ModuleType, data: st.DataObject
) -> None:
    size = data.draw(st.sampled_from([32, 48, 66]))
    values = st.integers(min_value=0, max_value=2 ** (8 * size) - 1)
    r, s = data.draw(values), data.draw(values)
    assert kernel.der_to_raw(encode_dss_signature(r, s), size) == raw_rs(r, s, size)


_R = der_int(b"\x01" * 32)
_S = der_int(b"\x02" * 32)
_GOOD = der_seq(_R + _S)

MALFORMED: dict[str, bytes] = {
    "empty": b"",
    "only-tag": b"\x30",
    "truncated-by-one": _GOOD[:-1],
    "truncated-to-8": _GOOD[:8],
    "truncated-after-r": der_seq(_R)[:-1],
    "sequence-without-s": der_seq(_R),
    "wrong-sequence-tag": b"\x31" + _GOOD[1:],
    "wrong-r-tag": der_seq(b"\x03" + _R[1:] + _S),
    "wrong-s-tag": der_seq(_R + b"\x04" + _S[1:]),
    "sequence-length-too-long": b"\x30" + bytes([len(_R + _S) + 1]) + _R + _S,
    "sequence-length-too-short": b"\x30" + bytes([len(_R + _S) - 1]) + _R + _S,
    "sequence-long-form-0x82": b"\x30\x82\x00" + bytes([len(_R + _S)]) + _R + _S,
    "sequence-long-form-non-minimal": b"\x30\x81" + bytes([len(_R + _S)]) + _R + _S,
    "sequence-indefinite-length": b"\x30\x80" + _R + _S + b"\x00\x00",
    "integer-long-form": der_seq(b"\x02\x81\x20" + b"\x01" * 32 + _S),
    "integer-length-past-end": der_seq(_R + b"\x02\x30" + b"\x02" * 32),
    "integer-zero-length": der_seq(b"\x02\x00" + _S),
    "integer-non-minimal": der_seq(der_int(b"\x00\x01") + _S),
    "trailing-bytes": _GOOD + b"\x00",
    "trailing-inside-sequence": der_seq(_R + _S + b"\x00"),
    "third-integer": der_seq(_R + _S + der_int(b"\x03")),
    "r-oversized": der_seq(der_int(b"\x01" * 33) + _S),
    "s-oversized": der_seq(_R + der_int(b"\x00\xff" + b"\x01" * 32)),
    "r-negative": der_seq(der_int(b"\x80" + b"\x01" * 31) + _S),
    "s-negative": der_seq(_R + der_int(b"\xff")),
    "r-minus-one": der_seq(der_int(b"\xff") + _S),
}


@pytest.mark.parametrize("der", list(MALFORMED.values()), ids=list(MALFORMED))
def test_der_to_raw_refuses_malformed_der(kernel: ModuleType, der: bytes) -> None:
    with pytest.raises(ValueError, match="malformed ECDSA signature"):
        kernel.der_to_raw(der, 32)
    # cryptography's strict DER parser agrees that none of these is a signature
    # for P-256 (either malformed, or a value wider than 32 bytes).
    try:
        r, s = decode_dss_signature(der)
    except ValueError:
        return
    assert max(r, s) >= 2**256


def test_der_to_raw_refuses_a_p521_signature_for_p256(kernel: ModuleType) -> None:
    der = encode_dss_signature(2**520, 1)
    assert kernel.der_to_raw(der, 66) == raw_rs(2**520, 1, 66)
    with pytest.raises(ValueError):
        kernel.der_to_raw(der, 32)


@pytest.mark.parametrize("size", [0, -1, 67, 1000])
def test_der_to_raw_refuses_bad_sizes(kernel: ModuleType, size: int) -> None:
    with pytest.raises(ValueError):
        kernel.der_to_raw(_GOOD, size)


@st.composite
def der_like(draw: st.DrawFn) -> bytes:
    """Sequences of two INTEGERs with arbitrary contents (leading zeros, high bits)."""
    r = draw(st.binary(max_size=70))
    s = draw(st.binary(max_size=70))
    body = der_int(r) + der_int(s)
    der = der_seq(body)
    return der + draw(st.sampled_from([b"", b"\x00"]))


@fixture_ok
@given(der=der_like(), size=st.sampled_from([32, 48, 66]))
@example(der=der_seq(der_int(b"\x00\x80") + der_int(b"\x01")), size=32)
@example(der=der_seq(der_int(b"\x00\x00\x80") + der_int(b"\x01")), size=32)
@example(der=der_seq(der_int(b"") + der_int(b"\x01")), size=32)
def test_der_to_raw_accepts_exactly_what_cryptography_accepts(
    kernel: ModuleType, der: bytes, size: int
) -> None:
    try:
        r, s = decode_dss_signature(der)
    except ValueError:
        expected: bytes | None = None
    else:
        expected = raw_rs(r, s, size) if max(r, s) < 2 ** (8 * size) else None
    if expected is None:
        with pytest.raises(ValueError):
            kernel.der_to_raw(der, size)
    else:
        assert kernel.der_to_raw(der, size) == expected


# --------------------------------------------------------------------------- signing input


def reference_signing_input(
    header_b64: bytes, prefix: bytes, jti: bytes, iat: int, exp: int, suffix: bytes
) -> bytes:
    claims = (
        prefix
        + b64(jti)
        + b'","iat":'
        + str(iat).encode()
        + b',"nbf":'
        + str(iat).encode()
        + b',"exp":'
        + str(exp).encode()
        + suffix
    )
    return header_b64 + b"." + b64(claims)


@fixture_ok
@given(
    header_b64=st.binary(max_size=200),
    prefix=st.binary(max_size=300),
    jti=st.binary(max_size=40),
    iat=int64,
    exp=int64,
    suffix=st.binary(max_size=300),
)
@example(header_b64=b"eyJ", prefix=b'{"jti":"', jti=b"\x00" * 16, iat=0, exp=0, suffix=b"}")
@example(header_b64=b"h", prefix=b"", jti=b"", iat=-1, exp=-60, suffix=b"")
@example(header_b64=b"h", prefix=b"p", jti=b"j", iat=INT64_MIN, exp=INT64_MAX, suffix=b"}")
@example(header_b64=b"h", prefix=b"p", jti=b"j", iat=INT64_MAX, exp=INT64_MIN, suffix=b"}")
@example(header_b64=b"h", prefix=b"p", jti=b"j", iat=-(2**31), exp=2**32, suffix=b"}")
def test_assertion_signing_input_splices_the_claims(
    kernel: ModuleType,
    header_b64: bytes,
    prefix: bytes,
    jti: bytes,
    iat: int,
    exp: int,
    suffix: bytes,
) -> None:
    out = kernel.assertion_signing_input(header_b64, prefix, jti, iat, exp, suffix)
    assert type(out) is bytes
    assert out == reference_signing_input(header_b64, prefix, jti, iat, exp, suffix)


def test_assertion_signing_input_readable_example(kernel: ModuleType) -> None:
    out = kernel.assertion_signing_input(
        b"HDR", b'{"iss":"a","jti":"', b"\xff" * 3, -5, 1_800_000_060, b',"x":1}'
    )
    header, payload = out.split(b".")
    assert header == b"HDR"
    assert base64.urlsafe_b64decode(payload + b"=" * (-len(payload) % 4)) == (
        b'{"iss":"a","jti":"____","iat":-5,"nbf":-5,"exp":1800000060,"x":1}'
    )


# --------------------------------------------------------------------------- compact


@fixture_ok
@given(
    signing_input=st.binary(max_size=300).map(lambda b: b64(b) + b"." + b64(b[::-1])),
    signature=st.binary(max_size=600),
)
def test_compact_without_ecdsa_conversion(
    kernel: ModuleType, signing_input: bytes, signature: bytes
) -> None:
    out = kernel.compact(signing_input, signature, 0)
    assert type(out) is str
    assert out == (signing_input + b"." + b64(signature)).decode("ascii")


@pytest.mark.parametrize(("curve", "hash_type", "size"), CURVES, ids=CURVE_IDS)
def test_compact_with_ecdsa_conversion(
    kernel: ModuleType,
    curve: ec.EllipticCurve,
    hash_type: type[hashes.HashAlgorithm],
    size: int,
) -> None:
    key = ec.generate_private_key(curve)
    signing_input = b"eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJ4In0"
    der = key.sign(signing_input, ec.ECDSA(hash_type()))
    r, s = decode_dss_signature(der)
    out = kernel.compact(signing_input, der, size)
    assert out == (signing_input + b"." + b64(raw_rs(r, s, size))).decode("ascii")
    assert len(out.rsplit(".", 1)[1]) == len(b64(b"\x00" * 2 * size))


def test_compact_refuses_malformed_der(kernel: ModuleType) -> None:
    with pytest.raises(ValueError, match="malformed ECDSA signature"):
        kernel.compact(b"a.b", MALFORMED["trailing-bytes"], 32)
    with pytest.raises(ValueError):
        kernel.compact(b"a.b", b"\x01" * 64, 32)  # already raw, not DER


def test_compact_refuses_non_ascii_signing_input(kernel: ModuleType) -> None:
    # A compact JWS is ASCII; the C kernel must not build a corrupt str.
    for signing_input in (b"\xe9", b"abcdefghijklmnop\xe9", b"0123456789abcdef\x80xyz"):
        with pytest.raises(UnicodeDecodeError):
            kernel.compact(signing_input, b"sig", 0)


# --------------------------------------------------------------------------- mint


def test_mint_signs_the_spliced_input(kernel: ModuleType) -> None:
    seen: list[bytes] = []

    def sign(data: bytes) -> bytes:
        seen.append(data)
        return b"\x00\xfa" + data[:5]

    args = (b"HDR", b'{"jti":"', b"}", b"\x01" * 16, 1_800_000_000, 1_800_000_060)
    token = kernel.mint(*args, sign, 0)
    expected_input = reference_signing_input(b"HDR", b'{"jti":"', b"\x01" * 16, *args[4:], b"}")
    assert seen == [expected_input]
    assert token == (expected_input + b"." + b64(b"\x00\xfa" + expected_input[:5])).decode()


@pytest.mark.parametrize(("curve", "hash_type", "size"), CURVES, ids=CURVE_IDS)
def test_mint_with_ecdsa_verifies(
    kernel: ModuleType,
    curve: ec.EllipticCurve,
    hash_type: type[hashes.HashAlgorithm],
    size: int,
) -> None:
    key = ec.generate_private_key(curve)

    def sign(data: bytes) -> bytes:
        return key.sign(data, ec.ECDSA(hash_type()))

    token = kernel.mint(b"HDR", b'{"jti":"', b"}", b"\x07" * 16, 0, 60, sign, size)
    signing_input, sig_b64 = token.rsplit(".", 1)
    raw = base64.urlsafe_b64decode(sig_b64 + "=" * (-len(sig_b64) % 4))
    assert len(raw) == 2 * size
    der = encode_dss_signature(int.from_bytes(raw[:size], "big"), int.from_bytes(raw[size:], "big"))
    key.public_key().verify(der, signing_input.encode(), ec.ECDSA(hash_type()))
    with pytest.raises(InvalidSignature):
        key.public_key().verify(der, signing_input.encode() + b"x", ec.ECDSA(hash_type()))


class _BytesSubclass(bytes):
    pass


@pytest.mark.parametrize(
    "result",
    ["signature", bytearray(b"sig"), memoryview(b"sig"), None, 0, _BytesSubclass(b"sig")],
    ids=["str", "bytearray", "memoryview", "None", "int", "bytes-subclass"],
)
def test_mint_refuses_a_sign_function_that_returns_non_bytes(
    kernel: ModuleType, result: object
) -> None:
    def sign(data: bytes) -> Any:
        return result

    with pytest.raises(TypeError, match="sign"):
        kernel.mint(b"HDR", b'{"jti":"', b"}", b"\x01" * 16, 0, 60, sign, 0)


def test_mint_propagates_sign_errors(kernel: ModuleType) -> None:
    def sign(data: bytes) -> bytes:
        raise RuntimeError("hsm unavailable")

    with pytest.raises(RuntimeError, match="hsm unavailable"):
        kernel.mint(b"HDR", b'{"jti":"', b"}", b"\x01" * 16, 0, 60, sign, 0)


# --------------------------------------------------------------------------- C vs Python

needs_c = pytest.mark.skipif(SPEEDUPS is None, reason="C extension not built")


def outcome(fn: Callable[..., Any], *args: Any) -> tuple[str, Any]:
    """The result, or the exception's type and message, so that failures compare too."""
    try:
        return ("ok", fn(*args))
    except Exception as exc:  # any difference is what we look for
        return ("error", (type(exc), str(exc)))


@needs_c
@settings(max_examples=300, deadline=None)
@given(
    data=st.binary(max_size=400),
    header_b64=st.binary(max_size=120),
    prefix=st.binary(max_size=200),
    jti=st.binary(max_size=32),
    iat=int64,
    exp=int64,
    suffix=st.binary(max_size=200),
    signature=st.binary(max_size=200),
    der=st.one_of(der_like(), st.binary(max_size=150)),
    size=st.integers(min_value=-2, max_value=70),
    ec_size=st.sampled_from([0, 32, 48, 66]),
)
def test_c_and_python_kernels_agree_byte_for_byte(
    data: bytes,
    header_b64: bytes,
    prefix: bytes,
    jti: bytes,
    iat: int,
    exp: int,
    suffix: bytes,
    signature: bytes,
    der: bytes,
    size: int,
    ec_size: int,
) -> None:
    c, py = SPEEDUPS, _pure
    assert c is not None
    assert c.b64url_encode(data) == py.b64url_encode(data)

    splice = (header_b64, prefix, jti, iat, exp, suffix)
    assert c.assertion_signing_input(*splice) == py.assertion_signing_input(*splice)

    assert outcome(c.der_to_raw, der, size) == outcome(py.der_to_raw, der, size)

    # compact over arbitrary bytes: non-ASCII input and bad DER must fail alike
    for sig in (signature, der):
        assert outcome(c.compact, header_b64, sig, ec_size) == outcome(
            py.compact, header_b64, sig, ec_size
        )

    def sign(signing_input: bytes) -> bytes:
        return signature + signing_input[-3:]

    minted = (header_b64, prefix, suffix, jti, iat, exp, sign, 0)
    assert outcome(c.mint, *minted) == outcome(py.mint, *minted)


@needs_c
@pytest.mark.parametrize(("curve", "hash_type", "size"), CURVES, ids=CURVE_IDS)
def test_c_and_python_kernels_agree_on_real_ecdsa(
    curve: ec.EllipticCurve, hash_type: type[hashes.HashAlgorithm], size: int
) -> None:
    assert SPEEDUPS is not None
    key = ec.generate_private_key(curve)
    for i in range(20):
        der = key.sign(b"%d" % i, ec.ECDSA(hash_type()))
        assert SPEEDUPS.der_to_raw(der, size) == _pure.der_to_raw(der, size)
        assert SPEEDUPS.compact(b"a.b", der, size) == _pure.compact(b"a.b", der, size)


# --------------------------------------------------------------------------- hmac_signer


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    secret=st.binary(max_size=300),
    message=st.binary(max_size=2000),
    hash_name=st.sampled_from(["sha256", "sha384", "sha512"]),
)
def test_hmac_signer_equals_stdlib_hmac(
    kernel: ModuleType, secret: bytes, message: bytes, hash_name: str
) -> None:
    import hmac

    sign = kernel.hmac_signer(secret, hash_name)
    assert sign(message) == hmac.new(secret, message, hash_name).digest()
    assert sign(message) == sign(message)  # the primed states are copied, never consumed


def test_the_c_hmac_signer_keeps_its_key_to_itself() -> None:
    import pickle

    if SPEEDUPS is None or SPEEDUPS.HMAC_BACKEND != "openssl":
        pytest.skip("the OpenSSL HMAC backend is not built")
    secret = b"s3cr3t-" * 8
    sign = SPEEDUPS.hmac_signer(secret, "sha256")
    assert "s3cr3t" not in repr(sign)
    with pytest.raises(TypeError):
        pickle.dumps(sign)


# --------------------------------------------------------------------------- minter


@settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    now=st.one_of(
        st.integers(min_value=-(2**40), max_value=2**40),
        st.floats(min_value=-(2.0**40), max_value=2.0**40),
    ),
    lifetime=st.integers(min_value=1, max_value=10**6),
    jti=st.binary(min_size=16, max_size=16),
)
def test_minter_is_mint_with_floor_of_the_clock(
    kernel: ModuleType, now: float, lifetime: int, jti: bytes
) -> None:
    import math

    header, prefix, suffix = b"eyJhbGciOiJIUzI1NiJ9", b'{"iss":"c","jti":"', b"}"

    def sign(data: bytes) -> bytes:
        return data[-4:]

    bound = kernel.minter(header, prefix, suffix, lifetime, lambda: now, lambda: jti, sign, 0)
    floor = math.floor(now)
    assert bound() == kernel.mint(header, prefix, suffix, jti, floor, floor + lifetime, sign, 0)


def test_minter_refuses_what_mint_would_not_sign(kernel: ModuleType) -> None:
    def sign(data: bytes) -> bytes:
        return b"sig"

    with pytest.raises(UnicodeDecodeError):
        kernel.minter(b"\xffheader", b"{", b"}", 60, lambda: 0.0, lambda: b"j" * 16, sign, 0)
    bad_entropy = kernel.minter(b"h", b"{", b"}", 60, lambda: 0.0, lambda: "j" * 16, sign, 0)
    with pytest.raises(TypeError):
        bad_entropy()
    bad_sign = kernel.minter(b"h", b"{", b"}", 60, lambda: 0.0, lambda: b"j" * 16, str, 0)
    with pytest.raises(TypeError):
        bad_sign()


def test_minter_refuses_an_exp_beyond_64_bits(kernel: ModuleType) -> None:
    def sign(data: bytes) -> bytes:
        return b"sig"

    bound = kernel.minter(b"h", b"{", b"}", 60, lambda: 2**63 - 30, lambda: b"j" * 16, sign, 0)
    with pytest.raises(OverflowError):
        bound()
