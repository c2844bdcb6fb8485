"""``jws_plain`` and ``str_items``: the kernels behind ``encode``'s common call, run against
the Cython module (c) and its Python twin (py).

The JSON they must write is the standard library's ``json.dumps`` with PyJWT's separators;
the base64url and the HMAC come from the standard library too.
"""

from __future__ import annotations

import base64
import enum
import hashlib
import hmac
import json
from types import ModuleType
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from jwtmint import _pure
from tests.conftest import SPEEDUPS

fixture_ok = settings(deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
HEADER = base64.urlsafe_b64encode(b'{"alg":"HS256","typ":"JWT"}').rstrip(b"=")
SECRET = b"k" * 32


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def sign(data: bytes) -> bytes:
    return hmac.new(SECRET, data, hashlib.sha256).digest()


def pyjwt_json(claims: Any) -> bytes:
    return json.dumps(claims, separators=(",", ":")).encode()


class Colour(enum.IntEnum):
    RED = 1


class Name(str):
    pass


def _deep(levels: int) -> Any:
    value: Any = "bottom"
    for _ in range(levels):
        value = [value]
    return value


def test_the_token_carries_json_dumps_bytes_and_the_signature(kernel: ModuleType) -> None:
    claims = {"iss": "a", "n": -7, "ok": True, "no": None, "l": [1, "x", {"k": []}], "d": {}}
    token = kernel.jws_plain(claims, HEADER, sign, 0)
    head, body, signature = token.split(".")
    assert head == HEADER.decode()
    assert unb64(body) == pyjwt_json(claims)
    assert signature == b64(sign(f"{head}.{body}".encode()))


def test_an_ecdsa_signature_is_written_as_r_and_s(kernel: ModuleType) -> None:
    key = ec.generate_private_key(ec.SECP256R1())

    def sign_der(data: bytes) -> bytes:
        return key.sign(data, ec.ECDSA(hashes.SHA256()))

    token = kernel.jws_plain({"iss": "a"}, HEADER, sign_der, 32)
    head, body, signature = token.split(".")
    raw = unb64(signature)
    der = encode_dss_signature(int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big"))
    key.public_key().verify(der, f"{head}.{body}".encode(), ec.ECDSA(hashes.SHA256()))


@pytest.mark.parametrize(
    "claims",
    [
        {"exp": 1.5},  # json writes Python's float repr, orjson its own
        {1: "one"},
        {"big": 2**64},
        {"small": -(2**63) - 1},
        {"name": "Jöhn"},  # json escapes non-ASCII, orjson writes UTF-8
        {"del": "a\x7fb"},  # json escapes DEL, orjson does not
        {"lone": "\ud800"},
        {"colour": Colour.RED},
        {"sub": Name("subclass")},
        {"tuple": (1, 2)},
        {"nested": {"deep": [{"x": 0.1}]}},
        {"deep": _deep(250)},
    ],
    ids=lambda claims: next(iter(claims)) if isinstance(claims, dict) else "?",
)
def test_what_orjson_would_write_otherwise_is_declined_unsigned(
    kernel: ModuleType, claims: dict[Any, Any]
) -> None:
    signed: list[bytes] = []

    def record(data: bytes) -> bytes:
        signed.append(data)
        return b""

    assert kernel.jws_plain(claims, HEADER, record, 0) is None
    assert signed == []


def test_nesting_within_the_bound_is_written(kernel: ModuleType) -> None:
    claims = {"deep": _deep(150)}
    token = kernel.jws_plain(claims, HEADER, sign, 0)
    assert unb64(token.split(".")[1]) == pyjwt_json(claims)


def test_bad_arguments_raise(kernel: ModuleType) -> None:
    from collections import OrderedDict

    with pytest.raises(TypeError):
        kernel.jws_plain(OrderedDict(iss="a"), HEADER, sign, 0)
    with pytest.raises(TypeError):  # a signer must return bytes
        kernel.jws_plain({"iss": "a"}, HEADER, lambda data: "text", 0)
    with pytest.raises(UnicodeDecodeError):  # the header is copied into the token as it is
        kernel.jws_plain({"iss": "a"}, b"\xff", sign, 0)
    with pytest.raises(TypeError):
        kernel.str_items(OrderedDict(kid="a"))


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=12,
)


@fixture_ok
@given(claims=st.dictionaries(st.text(), json_values, max_size=6))
def test_any_claims_are_json_dumps_bytes_or_declined(
    kernel: ModuleType, claims: dict[str, Any]
) -> None:
    token = kernel.jws_plain(claims, HEADER, sign, 0)
    if token is None:
        return
    head, body, signature = token.split(".")
    assert unb64(body) == pyjwt_json(claims)
    assert signature == b64(sign(f"{head}.{body}".encode()))


@pytest.mark.skipif(SPEEDUPS is None, reason="C extension not built")
@settings(deadline=None)
@given(claims=st.dictionaries(st.text(), json_values, max_size=6))
def test_c_and_py_decide_and_write_alike(claims: dict[str, Any]) -> None:
    assert SPEEDUPS is not None
    assert SPEEDUPS.jws_plain(claims, HEADER, sign, 0) == _pure.jws_plain(claims, HEADER, sign, 0)


@pytest.mark.skipif(SPEEDUPS is None, reason="C extension not built")
@pytest.mark.parametrize("levels", range(197, 204))
def test_c_and_py_draw_the_nesting_bound_at_the_same_depth(levels: int) -> None:
    assert SPEEDUPS is not None
    claims = {"deep": _deep(levels)}
    ours = SPEEDUPS.jws_plain(claims, HEADER, sign, 0)
    assert ours == _pure.jws_plain(claims, HEADER, sign, 0)
    assert (ours is None) == (levels > 200)  # the bound of jwtmint._json's orjson check


@pytest.mark.parametrize(
    ("mapping", "expected"),
    [
        ({}, ()),
        ({"kid": "a"}, ("kid", "a")),
        ({"kid": "a", "cty": "b"}, ("kid", "a", "cty", "b")),
        ({"cty": "b", "kid": "a"}, ("cty", "b", "kid", "a")),  # in the dict's order
        ({"kid": 1}, None),
        ({"typ": None}, None),
        ({1: "a"}, None),
        ({"kid": Name("a")}, None),
        ({"kid": "a", "x5c": ["cert"]}, None),
    ],
)
def test_str_items_flattens_all_str_dicts_only(
    kernel: ModuleType, mapping: dict[Any, Any], expected: tuple[str, ...] | None
) -> None:
    assert kernel.str_items(mapping) == expected
