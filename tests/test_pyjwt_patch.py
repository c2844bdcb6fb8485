"""patch_pyjwt(): PyJWT's encode, accelerated in place, returns, warns and raises as PyJWT does.

Every case runs twice: through PyJWT's own ``encode`` (captured before any patch) and through
the patched ``jwt.encode``; the outcomes (the token, or the exception's class and message, and
the warnings) must be the same. Tokens of the randomised algorithms (ECDSA, PSS) are compared
by what they carry, after PyJWT verified both.
"""

from __future__ import annotations

import functools
import json
import warnings
from collections.abc import Callable, Iterator
from datetime import datetime, timezone
from decimal import Decimal
from types import ModuleType
from typing import Any

import jwt
import jwt.api_jws
import jwt.api_jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa
from hypothesis import given, settings
from hypothesis import strategies as st
from jwt.algorithms import HMACAlgorithm

import jwtmint
from jwtmint.errors import ConfigurationError
from tests.conftest import KeptEcKey

ORIGINAL = jwt.api_jwt.PyJWT.encode
GLOBAL = jwt.api_jwt._jwt_global_obj
SECRET = "a secret of thirty-two bytes!!!!"
RSA_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
RSA_1024 = rsa.generate_private_key(public_exponent=65537, key_size=1024)
P256 = ec.generate_private_key(ec.SECP256R1())
P384 = ec.generate_private_key(ec.SECP384R1())
K256 = ec.generate_private_key(ec.SECP256K1())
ED25519 = ed25519.Ed25519PrivateKey.generate()
ED448 = ed448.Ed448PrivateKey.generate()
RANDOMISED = ("ES", "PS")
#: nesting beyond every CPython's JSON parser (3.13's goes deeper than a few thousand)
DEEP = 100_000
JWK_IN_ARRAY = '[{"kty": "oct", "k": "' + "a" * 40 + '"}]'


def _pem(key: Any) -> str:
    pem: bytes = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return pem.decode()


def _public_pem(key: Any) -> str:
    pem: bytes = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return pem.decode()


@pytest.fixture(autouse=True)
def _each_kernel(kernel: ModuleType) -> Iterator[None]:
    """Every case with the extension's encoder (c) and with its pure-Python twin (py): a
    patch binds the kernel active when it is made."""
    yield
    jwtmint.unpatch_pyjwt()


@pytest.fixture
def patch(kernel: ModuleType) -> Iterator[jwtmint.PyJWTPatch]:
    patched = jwtmint.patch_pyjwt()
    assert patched.implementation == kernel.IMPLEMENTATION
    yield patched
    jwtmint.unpatch_pyjwt()


def _outcome(call: Callable[[], str]) -> tuple[str, Any, list[tuple[type[Warning], str]]]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            result: tuple[str, Any] = ("token", call())
        except Exception as exc:
            result = ("raised", (type(exc), str(exc)))
    return (*result, [(w.category, str(w.message)) for w in caught])


def _same_as_pyjwt(payload: Any, key: Any, **options: Any) -> str:
    """Run both ways; assert the same outcome; return which path it was."""
    reference = _outcome(lambda: ORIGINAL(GLOBAL, payload, key, **options))
    patch = jwtmint.patch_pyjwt()
    before = patch.fast
    patched = _outcome(lambda: jwt.encode(payload, key, **options))
    assert patched[0] == reference[0], (patched, reference)
    assert patched[2] == reference[2]  # the same warnings, in order
    if reference[0] == "raised":
        assert patched[1] == reference[1]
    else:
        _same_token(patched[1], reference[1], key)
    return "fast" if patch.fast > before else "fallback"


def _same_token(token: str, reference: str, key: Any) -> None:
    header = jwt.get_unverified_header(reference)
    if not str(header.get("alg") or "").startswith(RANDOMISED):
        assert token == reference
        return
    assert jwt.get_unverified_header(token) == header
    if isinstance(key, str):
        key = serialization.load_pem_private_key(key.encode(), None)
    verifier = (key.key if isinstance(key, jwt.PyJWK) else key).public_key()
    decoded = [
        jwt.decode(
            t,
            verifier,
            algorithms=[header["alg"]],
            options={"verify_aud": False, "verify_exp": False, "verify_iat": False},
        )
        for t in (token, reference)
    ]
    assert decoded[0] == decoded[1]


CLAIMS = {"iss": "invoice", "sub": "invoice", "aud": "https://idp", "jti": "j1", "exp": 2 * 10**9}


@pytest.mark.parametrize(
    ("key", "options", "path"),
    [
        (SECRET, {}, "fast"),
        ((SECRET * 2).encode(), {"algorithm": "HS512"}, "fast"),
        (RSA_KEY, {"algorithm": "RS256"}, "fast"),
        (_pem(RSA_KEY), {"algorithm": "RS384"}, "fast"),
        (RSA_KEY, {"algorithm": "PS256"}, "fast"),
        (P256, {"algorithm": "ES256"}, "fast"),
        (_pem(P384), {"algorithm": "ES384"}, "fast"),
        (ED25519, {"algorithm": "EdDSA"}, "fast"),
        (ED448, {"algorithm": "EdDSA"}, "fast"),
        (SECRET, {"headers": {"kid": "k1", "x5t": "abc"}}, "fast"),
        (SECRET * 2, {"headers": {"alg": "HS384"}}, "fast"),
        (SECRET, {"headers": {"typ": ""}}, "fast"),
        (SECRET, {"headers": {"typ": None, "b64": True}}, "fast"),
        (SECRET, {"sort_headers": False, "headers": {"kid": "k", "cty": "x"}}, "fast"),
        # PyJWT's own answers: warnings, refusals, its algorithms only it has
        ("short", {}, "fallback"),  # InsecureKeyLengthWarning, then a token
        ("", {}, "fallback"),
        (SECRET, {"algorithm": None}, "fallback"),  # "none"
        (SECRET, {"algorithm": "none"}, "fallback"),
        (SECRET, {"algorithm": "XS256"}, "fallback"),  # NotImplementedError
        (SECRET, {"algorithm": 256}, "fallback"),
        (_pem(RSA_KEY), {"algorithm": "HS256"}, "fallback"),  # algorithm confusion
        (_public_pem(RSA_KEY), {"algorithm": "HS256"}, "fallback"),
        ("ssh-rsa AAAAB3NzaC1yc2E", {"algorithm": "HS256"}, "fallback"),
        ('{"kty":"oct","k":"c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0"}', {}, "fallback"),
        (P256, {"algorithm": "RS256"}, "fallback"),
        (RSA_KEY, {"algorithm": "ES256"}, "fallback"),
        (P384, {"algorithm": "ES256"}, "fallback"),
        (RSA_1024, {"algorithm": "RS256"}, "fallback"),  # a warning, then a token
        (K256, {"algorithm": "ES256K"}, "fallback"),
        (ec.generate_private_key(ec.SECP521R1()), {"algorithm": "ES521"}, "fallback"),
        (_public_pem(P256), {"algorithm": "ES256"}, "fallback"),
        (P256.public_key(), {"algorithm": "ES256"}, "fallback"),
        (bytearray(SECRET.encode()), {}, "fallback"),
        (SECRET, {"headers": {"kid": 7}}, "fallback"),
        (SECRET, {"headers": {"b64": False}}, "fallback"),  # detached payload
        (SECRET, {"headers": ["kid"]}, "fallback"),
        (
            _pem(RSA_KEY) + _pem(P256),
            {"algorithm": "RS256"},
            "fallback",
        ),  # two keys in one text: PyJWT's reading, not jwtmint's
    ],
)
def test_every_input_gives_what_pyjwt_gives(
    patch: jwtmint.PyJWTPatch, key: Any, options: dict[str, Any], path: str
) -> None:
    assert _same_as_pyjwt(dict(CLAIMS), key, **options) == path


@pytest.mark.parametrize(
    "payload",
    [
        ["not", "a", "dict"],
        "text",
        {"iss": 7},
        {"exp": datetime(2030, 1, 1, tzinfo=timezone.utc), "iat": datetime(2029, 1, 1)},
        {"unserialisable": {1, 2}},
        {"nan": float("nan")},
        {1: "non-string key"},
        {"big": 10**40, "unicode": "héllo \u2028 \U0001f600", "nested": [{"a": None}]},
    ],
)
def test_payloads_are_handled_as_pyjwt_handles_them(
    patch: jwtmint.PyJWTPatch, payload: Any
) -> None:
    _same_as_pyjwt(payload, SECRET)


def test_a_mapping_that_is_no_dict_is_refused_as_pyjwt_refuses_it(
    patch: jwtmint.PyJWTPatch,
) -> None:
    from types import MappingProxyType

    assert _same_as_pyjwt(MappingProxyType(dict(CLAIMS)), SECRET) == "fallback"


def test_json_encoder_is_used_on_the_fast_path(patch: jwtmint.PyJWTPatch) -> None:
    class Decimals(json.JSONEncoder):
        def default(self, o: Any) -> Any:
            return str(o) if isinstance(o, Decimal) else super().default(o)

    payload = {**CLAIMS, "amount": Decimal("12.50")}
    assert _same_as_pyjwt(payload, SECRET, json_encoder=Decimals) == "fast"
    assert _same_as_pyjwt(payload, SECRET) == "fallback"  # TypeError, as PyJWT raises it


@pytest.mark.parametrize(
    "key",
    [
        jwt.PyJWK(json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(RSA_KEY)), "RS256"),
        jwt.PyJWK(json.loads(jwt.algorithms.ECAlgorithm.to_jwk(P256)), "ES256"),
        jwt.PyJWK(json.loads(jwt.algorithms.OKPAlgorithm.to_jwk(ED25519)), "EdDSA"),
        jwt.PyJWK({"kty": "oct", "k": "c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0cw"}, "HS256"),
    ],
    ids=["RSA", "EC", "OKP", "oct"],
)
@pytest.mark.parametrize("algorithm", ["unset", None])
def test_pyjwk_keys_are_pyjwts(
    patch: jwtmint.PyJWTPatch, key: jwt.PyJWK, algorithm: str | None
) -> None:
    options = {} if algorithm == "unset" else {"algorithm": algorithm}
    assert _same_as_pyjwt(dict(CLAIMS), key, **options) == "fallback"


class _Reversed(HMACAlgorithm):
    """A registered algorithm of the user's own (signs the reversed input)."""

    def sign(self, msg: bytes, key: bytes) -> bytes:
        return super().sign(msg[::-1], key)


def test_a_registered_algorithm_is_used_and_a_replaced_one_too(
    patch: jwtmint.PyJWTPatch,
) -> None:
    registry = jwt.api_jws._jws_global_obj
    registry.register_algorithm("XR256", _Reversed(HMACAlgorithm.SHA256))
    registry.unregister_algorithm("HS256")
    registry.register_algorithm("HS256", _Reversed(HMACAlgorithm.SHA256))
    try:
        assert _same_as_pyjwt(dict(CLAIMS), SECRET, algorithm="XR256") == "fallback"
        assert _same_as_pyjwt(dict(CLAIMS), SECRET) == "fallback"  # HS256 is not PyJWT's now
    finally:
        registry.unregister_algorithm("XR256")
        registry.unregister_algorithm("HS256")
        registry.register_algorithm("HS256", HMACAlgorithm(HMACAlgorithm.SHA256))
    assert _same_as_pyjwt(dict(CLAIMS), SECRET) == "fast"


def test_a_subclass_keeps_its_hooks(patch: jwtmint.PyJWTPatch) -> None:
    class Compact(jwt.PyJWT):
        def _encode_payload(self, payload: dict[str, Any], *args: Any, **kwargs: Any) -> bytes:
            return json.dumps(payload, separators=(",", ":"), sort_keys=True).encode()

    token = Compact().encode({"b": 1, "a": 2}, SECRET)
    assert token == ORIGINAL(Compact(), {"b": 1, "a": 2}, SECRET)
    assert jwt.decode_complete(token, SECRET, algorithms=["HS256"])["payload"] == {"a": 2, "b": 1}
    assert patch.fallback >= 1 and patch.fast == 0


def test_an_instance_with_its_own_options_warns_or_raises_as_configured(
    patch: jwtmint.PyJWTPatch,
) -> None:
    strict = jwt.PyJWT(options={"enforce_minimum_key_length": True})
    with pytest.raises(jwt.InvalidKeyError):
        strict.encode(dict(CLAIMS), "short")
    assert strict.encode(dict(CLAIMS), SECRET) == ORIGINAL(strict, dict(CLAIMS), SECRET)


_json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text() | st.floats(allow_nan=False),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner, max_size=3),
    max_leaves=8,
)


@settings(max_examples=150, deadline=None)
@given(
    payload=st.dictionaries(st.text(), _json_values, max_size=6),
    headers=st.none()
    | st.dictionaries(st.sampled_from(["kid", "cty", "x5t", "zip"]), st.text())
    | st.dictionaries(
        st.sampled_from(["kid", "cty", "alg", "typ", "b64"]),
        st.sampled_from(["", "HS256", "HS384", "RS256", "JWT", "at+jwt"])
        | st.text()
        | st.none()
        | st.booleans()
        | st.integers(),
    ),
    algorithm=st.sampled_from(["HS256", "HS384", "RS256", "EdDSA"]),
    sort_headers=st.booleans(),
)
def test_hypothesis_same_bytes_as_pyjwt(
    payload: dict[str, Any], headers: dict[str, Any] | None, algorithm: str, sort_headers: bool
) -> None:
    key = {"HS256": SECRET, "HS384": SECRET * 2, "RS256": RSA_KEY, "EdDSA": ED25519}[algorithm]
    jwtmint.patch_pyjwt()
    try:
        path = _same_as_pyjwt(
            payload, key, algorithm=algorithm, headers=headers, sort_headers=sort_headers
        )
    finally:
        jwtmint.unpatch_pyjwt()
    plain_headers = headers is None or all(
        name in ("kid", "cty", "x5t", "zip") and type(value) is str
        for name, value in headers.items()
    )
    if plain_headers and ("iss" not in payload or isinstance(payload["iss"], str)):
        assert path == "fast"


def test_patch_and_unpatch(patch: jwtmint.PyJWTPatch) -> None:
    assert jwt.api_jwt.PyJWT.encode is not ORIGINAL  # type: ignore[comparison-overlap,unused-ignore]
    assert jwt.encode == jwt.api_jwt.encode
    assert jwtmint.patch_pyjwt() is patch  # twice: the same patch, not a wrapper of a wrapper
    jwt.encode(dict(CLAIMS), SECRET)
    assert patch.fast == 1
    jwtmint.unpatch_pyjwt()
    assert jwt.api_jwt.PyJWT.encode is ORIGINAL
    assert jwt.encode == GLOBAL.encode and jwt.api_jwt.encode == GLOBAL.encode
    jwtmint.unpatch_pyjwt()  # harmless


@pytest.mark.parametrize("version", ["1.7.1", "2.9.0", "3.0.0", "weird"])
def test_an_unsupported_pyjwt_is_refused_and_left_alone(
    monkeypatch: pytest.MonkeyPatch, version: str
) -> None:
    monkeypatch.setattr(jwt, "__version__", version)
    with pytest.raises(ConfigurationError, match=r"patch_pyjwt mirrors PyJWT 2\.10"):
        jwtmint.patch_pyjwt()
    assert jwt.api_jwt.PyJWT.encode is ORIGINAL


# ---- found by review: each differed from PyJWT before it was mended ----------------------


@pytest.mark.parametrize(
    ("key", "algorithm"),
    [
        (_pem(ED25519).encode() + b"\xff", "EdDSA"),  # PyJWT: UnicodeDecodeError
        (
            "---- BEGIN SSH2 PUBLIC KEY ----\nAAAAB3NzaC1yc2E=\n---- END SSH2 PUBLIC KEY ----\n",
            "HS256",
        ),
        ("---- BEGIN PRIVATE KEY ----\nMIIBVQ==\n---- END PRIVATE KEY ----", "HS256"),
        (b"0\x82\x01\x0aa secret that starts like DER, 32+ bytes", "HS256"),
        # JSON PyJWT parses (and refuses for the JWK inside) where a plain reading would not:
        # a BOM, UTF-16, integers beyond Python's digit limit; and nesting beyond the parser
        ("\ufeff" + JWK_IN_ARRAY, "HS256"),
        (b"\xef\xbb\xbf" + JWK_IN_ARRAY.encode(), "HS256"),
        (JWK_IN_ARRAY.encode("utf-16"), "HS256"),
        (JWK_IN_ARRAY.encode("utf-32-le"), "HS256"),
        ('[{"kty": 1}, ' + "1" * 5000 + ', "' + "a" * 40 + '"]', "HS256"),
        ('{"kty": 1, "n": ' + "1" * 5000 + "}", "HS256"),
        (" " + JWK_IN_ARRAY, "HS256"),
        ("[" * DEEP + "a" * 40, "HS256"),  # PyJWT: a token
        ('{"a":' * DEEP + "1" + "}" * DEEP, "HS256"),  # PyJWT: refused
        ("[" * DEEP + '"kty": "' + "a" * 40, "HS256"),  # PyJWT: refused
    ],
)
def test_keys_pyjwt_reads_its_own_way(
    patch: jwtmint.PyJWTPatch, key: str | bytes, algorithm: str
) -> None:
    assert _same_as_pyjwt(dict(CLAIMS), key, algorithm=algorithm) == "fallback"


def test_methods_replaced_after_the_patch_take_effect(
    patch: jwtmint.PyJWTPatch, monkeypatch: pytest.MonkeyPatch
) -> None:
    def upper_payload(self: Any, payload: dict[str, Any], *args: Any, **kwargs: Any) -> bytes:
        return json.dumps({k.upper(): v for k, v in payload.items()}).encode()

    def no_headers(self: Any, headers: dict[str, Any], *args: Any, **kwargs: Any) -> None:
        raise jwt.InvalidTokenError("no headers here")

    def reversed_sign(self: Any, msg: bytes, key: bytes) -> bytes:
        return b"signed" + msg[::-1][:8]

    def no_algorithm(self: Any, alg_name: str) -> Any:
        raise NotImplementedError(f"no {alg_name} today")

    def own_encode(self: Any, *args: Any, **kwargs: Any) -> str:
        return "not.a.token"

    instance = jwt.PyJWT()
    for owner, name, replacement in (
        (jwt.api_jwt.PyJWT, "_encode_payload", upper_payload),
        (instance, "_encode_payload", upper_payload.__get__(instance)),
        (jwt.api_jws.PyJWS, "_validate_headers", no_headers),
        (jwt.api_jws.PyJWS, "get_algorithm_by_name", no_algorithm),
        (jwt.api_jws.PyJWS, "encode", own_encode),
        (instance._jws, "encode", own_encode.__get__(instance._jws)),
        (HMACAlgorithm, "sign", reversed_sign),
    ):
        target: Any = instance if owner in (instance, instance._jws) else GLOBAL
        claims, extra = dict(CLAIMS), {"k": 1}
        # a fast call first: what was found unchanged then must not be taken as unchanged now
        fast = patch.fast
        target.encode(claims, SECRET, headers=extra)
        assert patch.fast == fast + 1, name
        with monkeypatch.context() as patched:
            patched.setattr(owner, name, replacement)
            reference = _outcome(functools.partial(ORIGINAL, target, claims, SECRET, headers=extra))
            fast = patch.fast
            got = _outcome(functools.partial(target.encode, claims, SECRET, headers=extra))
            assert got == reference, name
            assert patch.fast == fast, name
        # put back: the fast path again
        target.encode(claims, SECRET, headers=extra)
        assert patch.fast == fast + 1, name


def _rsa_min_size_warns(self: Any, *args: Any, **kwargs: Any) -> None:
    raise AssertionError("never called")


# every class PyJWT's encode goes through, changed in ways the methods above do not cover:
# helpers they call, class constants, an attribute encode never reads, a base class
CLASS_CHANGES: list[tuple[str, Callable[[], Any], str, Any, str, Callable[[], Any]]] = [
    ("PyJWS._validate_kid", lambda: jwt.api_jws.PyJWS, "_validate_kid",
     lambda self, kid: (_ for _ in ()).throw(jwt.InvalidTokenError("kid refused")), "HS256",
     lambda: SECRET),
    ("RSAAlgorithm._MIN_KEY_SIZE", lambda: jwt.algorithms.RSAAlgorithm, "_MIN_KEY_SIZE", 3072,
     "RS256", lambda: RSA_KEY),
    ("Algorithm.check_crypto_key_type", lambda: jwt.algorithms.Algorithm,
     "check_crypto_key_type",
     lambda self, key: (_ for _ in ()).throw(jwt.InvalidKeyError("not today")), "ES256",
     lambda: P256),
    ("HMACAlgorithm._is_der_key", lambda: HMACAlgorithm, "_is_der_key",
     staticmethod(lambda key: True), "HS256", lambda: SECRET),
    ("PyJWT, an unread attribute", lambda: jwt.api_jwt.PyJWT, "jwtmint_marker", 1, "HS256",
     lambda: SECRET),
    ("PyJWS, an unread attribute", lambda: jwt.api_jws.PyJWS, "jwtmint_marker", 1, "HS256",
     lambda: SECRET),
]  # fmt: skip


@pytest.mark.parametrize(
    ("owner", "name", "value", "algorithm", "key"),
    [change[1:] for change in CLASS_CHANGES],
    ids=[change[0] for change in CLASS_CHANGES],
)
def test_any_change_to_pyjwts_classes_hands_the_call_to_pyjwt(
    patch: jwtmint.PyJWTPatch,
    monkeypatch: pytest.MonkeyPatch,
    owner: Callable[[], Any],
    name: str,
    value: Any,
    algorithm: str,
    key: Callable[[], Any],
) -> None:
    import sys

    headers = {"kid": "k1"}
    assert _same_as_pyjwt(dict(CLAIMS), key(), algorithm=algorithm, headers=headers) == "fast"
    with monkeypatch.context() as changed:
        changed.setattr(owner(), name, value, raising=False)
        assert (
            _same_as_pyjwt(dict(CLAIMS), key(), algorithm=algorithm, headers=headers) == "fallback"
        )
        sys._clear_type_cache()  # a cleared method cache must not make the change unseen
        assert (
            _same_as_pyjwt(dict(CLAIMS), key(), algorithm=algorithm, headers=headers) == "fallback"
        )
    assert _same_as_pyjwt(dict(CLAIMS), key(), algorithm=algorithm, headers=headers) == "fast"


def test_a_base_class_swapped_hands_the_call_to_pyjwt(patch: jwtmint.PyJWTPatch) -> None:
    from jwt.algorithms import Algorithm

    class Forging(Algorithm):
        def __getattribute__(self, name: str) -> Any:
            if name == "sign":
                return lambda msg, key: b"forged"
            return super().__getattribute__(name)

    assert _same_as_pyjwt(dict(CLAIMS), SECRET) == "fast"
    HMACAlgorithm.__bases__ = (Forging,)
    try:
        assert _same_as_pyjwt(dict(CLAIMS), SECRET) == "fallback"  # PyJWT's forged token
    finally:
        HMACAlgorithm.__bases__ = (Algorithm,)
    assert _same_as_pyjwt(dict(CLAIMS), SECRET) == "fast"


@pytest.mark.parametrize(
    ("args", "kwargs"),
    [
        ((), {}),
        (({},), {}),
        (({}, SECRET), {"foo": 1}),
        (({}, SECRET, "HS256"), {"algorithm": "HS256"}),
        (({}, SECRET, "HS256", None, None, True, 7), {}),
        ((), {"payload": {}, "key": SECRET}),  # all by keyword: fine, and fast
        (({},), {"key": SECRET, "sort_headers": False, "headers": {"kid": "k"}}),
    ],
    ids=["nothing", "no-key", "unknown", "twice", "too-many", "keywords", "mixed"],
)
def test_arguments_are_pyjwts_to_refuse(
    patch: jwtmint.PyJWTPatch, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> None:
    reference = _outcome(lambda: ORIGINAL(GLOBAL, *args, **kwargs))
    assert _outcome(lambda: jwt.encode(*args, **kwargs)) == reference


def test_refused_keys_are_never_shown(patch: jwtmint.PyJWTPatch) -> None:
    short = "tenant-a-short-secret"  # refused by jwtmint, signed by PyJWT with a warning
    with pytest.warns(jwt.warnings.InsecureKeyLengthWarning):
        jwt.encode(dict(CLAIMS), short)
    encode: Any = jwt.api_jwt.PyJWT.encode
    # what a debugger or an error reporter prints: the encoder's free variables (its frame's
    # locals, in the pure twin; the extension keeps them in C) and the patch itself
    shown = [repr(patch)]
    for cell in getattr(encode, "__closure__", None) or ():
        shown.append(repr(cell.cell_contents))
    assert all(short not in text for text in shown)
    from jwtmint._pure_pyjwt import RefusedKeys

    refused = RefusedKeys(2)
    refused.add((str, short, "HS256"))
    assert (str, short, "HS256") in refused and short not in repr(refused)


def test_str_and_bytes_keys_are_never_compared(kernel: ModuleType) -> None:
    # under python -b a str compared with bytes warns; -W error turns the warning into a failure
    import os
    import subprocess
    import sys

    script = (
        "import jwt, jwtmint\n"
        "secret = 'x' * 40\n"
        "jwtmint.patch_pyjwt()\n"
        "for key in (secret, secret.encode(), secret, secret.encode()):\n"
        "    assert jwt.encode({'a': 1}, key) == jwtmint.encode({'a': 1}, key)\n"
        "for key in ('y' * 40, b'y' * 40):  # refused by jwtmint for RS256: remembered\n"
        "    for _ in range(2):\n"
        "        try:\n"
        "            jwt.encode({'a': 1}, key, algorithm='RS256')\n"
        "        except jwt.InvalidKeyError:\n"
        "            pass\n"
    )
    done = subprocess.run(
        [sys.executable, "-b", "-W", "error::BytesWarning", "-c", script],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**os.environ, "JWTMINT_NO_EXTENSIONS": "1" if kernel.IMPLEMENTATION == "py" else ""},
    )
    assert done.returncode == 0, done.stderr


@pytest.mark.parametrize("name", ["_validate_kid", "header_typ", "options_of_mine"])
def test_an_instance_attribute_named_like_a_class_one_hands_the_call_to_pyjwt(
    patch: jwtmint.PyJWTPatch, name: str
) -> None:
    instance = jwt.PyJWT()
    assert instance.encode(dict(CLAIMS), SECRET) and patch.fast == 1
    if name == "options_of_mine":  # no class has it: the fast path stays
        instance._jws.options_of_mine = 1  # type: ignore[attr-defined]
        assert instance.encode(dict(CLAIMS), SECRET) and patch.fast == 2
        return
    value = (lambda kid: None) if name == "_validate_kid" else "JWT"
    setattr(instance._jws, name, value)
    token = instance.encode(dict(CLAIMS), SECRET)
    assert token == ORIGINAL(instance, dict(CLAIMS), SECRET)
    assert patch.fast == 1 and patch.fallback == 1


def test_classes_are_compared_again_only_after_a_change(
    patch: jwtmint.PyJWTPatch, kernel: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    import sys

    counts: Any = patch._counts
    jwt.encode(dict(CLAIMS), SECRET)  # PyJWT, PyJWS, HMACAlgorithm and its bases compared
    before = counts.class_checks
    for _ in range(50):
        jwt.encode(dict(CLAIMS), SECRET)
    if kernel.IMPLEMENTATION == "py" or sys.version_info < (3, 11):
        assert counts.class_checks >= before + 50  # every call (no version tags to go by)
        return
    assert counts.class_checks == before  # unchanged classes: not compared again
    monkeypatch.setattr(jwt.api_jws.PyJWS, "jwtmint_marker", 1, raising=False)
    jwt.encode(dict(CLAIMS), SECRET)
    assert counts.class_checks > before  # changed: compared (and found changed)


def test_a_key_object_is_judged_per_algorithm(patch: jwtmint.PyJWTPatch) -> None:
    # its class is remembered as a private key's after the first call: for RS256 only
    assert _same_as_pyjwt(dict(CLAIMS), RSA_KEY, algorithm="RS256") == "fast"
    assert _same_as_pyjwt(dict(CLAIMS), RSA_KEY, algorithm="RS256") == "fast"
    assert _same_as_pyjwt(dict(CLAIMS), RSA_KEY, algorithm="HS256") == "fallback"
    assert _same_as_pyjwt(dict(CLAIMS), RSA_KEY, algorithm="ES256") == "fallback"


def test_a_key_class_of_its_own_signs_the_way_pyjwt_signs_with_it(
    patch: jwtmint.PyJWTPatch,
) -> None:
    # a Python subclass of cryptography's key classes is PyJWT's to use, never jwtmint's
    assert _same_as_pyjwt(dict(CLAIMS), KeptEcKey(P256), algorithm="ES256") == "fallback"
    assert _same_as_pyjwt(dict(CLAIMS), P256, algorithm="ES256") == "fast"


def test_a_key_posing_as_another_class_is_not_remembered_as_one(
    patch: jwtmint.PyJWTPatch,
) -> None:
    class Posing:
        """Claims to be an RSA key through __class__ (isinstance believes it), holds one."""

        def __init__(self, key: Any) -> None:
            self._key = key

        @property  # type: ignore[misc]
        def __class__(self) -> type:
            return type(RSA_KEY)

        def __getattr__(self, name: str) -> Any:
            return getattr(self._key, name)

    from jwtmint import _pyjwt_patch

    _same_as_pyjwt(dict(CLAIMS), Posing(RSA_KEY), algorithm="RS256")
    assert Posing not in _pyjwt_patch._KEY_CLASSES


def test_an_algorithm_object_changed_after_a_fast_call_is_used_as_changed(
    patch: jwtmint.PyJWTPatch, monkeypatch: pytest.MonkeyPatch
) -> None:
    import hashlib

    assert _same_as_pyjwt(dict(CLAIMS), SECRET) == "fast"
    hs256 = jwt.api_jws._jws_global_obj._algorithms["HS256"]
    monkeypatch.setattr(hs256, "hash_alg", hashlib.sha512)
    assert _same_as_pyjwt(dict(CLAIMS), SECRET) == "fallback"


def test_a_dict_subclass_is_copied_its_own_way(patch: jwtmint.PyJWTPatch) -> None:
    class Versioned(dict[str, Any]):
        def copy(self) -> dict[str, Any]:
            return {**self, "ver": 2}

    assert _same_as_pyjwt(Versioned(sub="x"), SECRET) == "fallback"


def test_a_json_encoder_runs_once_when_the_json_fails(patch: jwtmint.PyJWTPatch) -> None:
    class Loud(json.JSONEncoder):
        def default(self, o: Any) -> Any:
            if isinstance(o, Decimal):
                warnings.warn("a Decimal became a string", UserWarning, stacklevel=2)
                return str(o)
            return super().default(o)  # TypeError for anything else

    payload = {**CLAIMS, "amount": Decimal("1.5"), "opaque": object()}
    # one warning, then PyJWT's TypeError: not the warning twice (jwtmint's try, then PyJWT's)
    _same_as_pyjwt(payload, SECRET, json_encoder=Loud)


def test_a_refused_key_is_not_parsed_again(monkeypatch: pytest.MonkeyPatch) -> None:
    from jwtmint import _pyjwt_patch

    tried: list[object] = []
    real = _pyjwt_patch.sign_jws  # type: ignore[attr-defined]

    def counting(*args: Any) -> str:
        tried.append(args[1])
        return real(*args)

    # the patch binds jwtmint's signer when it is made
    monkeypatch.setattr(_pyjwt_patch, "sign_jws", counting)
    patch = jwtmint.patch_pyjwt()
    try:
        weak = _pem(RSA_1024)
        for _ in range(3):
            with pytest.warns(jwt.warnings.InsecureKeyLengthWarning if hasattr(jwt, "warnings")
                              else Warning):  # fmt: skip
                jwt.encode(dict(CLAIMS), weak, algorithm="RS256")
        assert len(tried) == 1 and patch.fallback == 3
    finally:
        jwtmint.unpatch_pyjwt()


def test_unpatch_survives_a_changed_version_and_leaves_others_replacements(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # recorded unpatched, so that the teardown puts PyJWT's own back, not a stale patch
    monkeypatch.setattr(jwt, "encode", jwt.encode)
    jwtmint.patch_pyjwt()
    monkeypatch.setattr(jwt, "__version__", "9.9.9")
    mine = object()
    monkeypatch.setattr(jwt, "encode", mine)
    jwtmint.unpatch_pyjwt()
    assert jwt.api_jwt.PyJWT.encode is ORIGINAL
    assert jwt.encode is mine  # someone else's since the patch: left as they set it
    assert jwt.api_jwt.encode == GLOBAL.encode


def test_an_encode_already_wrapped_by_someone_else_is_not_patched(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    @functools.wraps(ORIGINAL)
    def instrumented(*args: Any, **kwargs: Any) -> str:
        return ORIGINAL(*args, **kwargs)

    monkeypatch.setattr(jwt.api_jwt.PyJWT, "encode", instrumented)
    with pytest.raises(ConfigurationError, match="already replaced"):
        jwtmint.patch_pyjwt()
    assert jwt.api_jwt.PyJWT.encode is instrumented


class _Forwarding:
    """A wrapper that forwards attribute reads to the function it wraps (as wrapt's do): its
    __code__ is PyJWT's own."""

    def __init__(self, wrapped: Any) -> None:
        self.__wrapped__ = wrapped

    def __getattr__(self, name: str) -> Any:
        return getattr(self.__wrapped__, name)

    def __get__(self, obj: Any, cls: Any = None) -> Any:
        return functools.partial(self, obj) if obj is not None else self

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.__wrapped__(*args, **kwargs)


def test_a_forwarding_wrapper_is_not_taken_for_pyjwts_function(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    wrapper = _Forwarding(ORIGINAL)
    assert wrapper.__code__ is ORIGINAL.__code__
    monkeypatch.setattr(jwt.api_jwt.PyJWT, "encode", wrapper)
    with pytest.raises(ConfigurationError, match="already replaced"):
        jwtmint.patch_pyjwt()
    assert jwt.api_jwt.PyJWT.encode is wrapper


def test_a_replaced_instance_dict_hands_the_call_to_pyjwt(patch: jwtmint.PyJWTPatch) -> None:
    class Attributes(dict[str, Any]):
        pass

    for shadowed in ("jwt", "jws"):
        instance = jwt.PyJWT()
        owner: Any = instance if shadowed == "jwt" else instance._jws
        owner.__dict__ = Attributes(owner.__dict__)
        fast = patch.fast
        assert instance.encode(dict(CLAIMS), SECRET) == ORIGINAL(instance, dict(CLAIMS), SECRET)
        assert patch.fast == fast  # PyJWT's path, and its token


def test_a_property_added_to_pyjwt_runs_only_as_pyjwt_runs_it(
    patch: jwtmint.PyJWTPatch, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[str] = []

    def jws(self: Any) -> Any:
        calls.append("read")
        return self.__dict__["_jws"]

    assert _same_as_pyjwt(dict(CLAIMS), SECRET) == "fast"
    monkeypatch.setattr(jwt.api_jwt.PyJWT, "_jws", property(jws), raising=False)
    reference = _outcome(lambda: ORIGINAL(GLOBAL, dict(CLAIMS), SECRET))
    by_pyjwt = len(calls)
    assert _outcome(lambda: jwt.encode(dict(CLAIMS), SECRET)) == reference
    assert len(calls) == 2 * by_pyjwt  # as often as PyJWT reads it: never by the checks
