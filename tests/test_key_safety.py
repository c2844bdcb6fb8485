"""Keys that must never become something else: secrets, JWK sets, unknown files, stale caches."""

from __future__ import annotations

import contextlib
import hashlib
import json
import warnings
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

import jwtmint
from jwtmint import InvalidHeaderError, InvalidKeyError, _kernels, _pure, load_key

from .conftest import AUDIENCE, CLIENT_ID, signing_key

SECRET = b"k" * 32


def _pkcs8_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _exception_chain(exc: BaseException) -> list[BaseException]:
    seen: list[BaseException] = []
    pending: list[BaseException | None] = [exc]
    while pending:
        item = pending.pop()
        if item is None or any(item is s for s in seen):
            continue
        seen.append(item)
        pending.extend([item.__cause__, item.__context__])
    return seen


# ---------------------------------------------------------------- no silent HMAC fallback


def test_a_file_of_unknown_format_is_not_taken_as_a_secret(tmp_path: Path) -> None:
    putty = tmp_path / "id_rsa.ppk"
    putty.write_bytes(b"PuTTY-User-Key-File-3: ssh-rsa\nEncryption: none\n" + b"A" * 64)
    with pytest.raises(InvalidKeyError, match="algorithm='HS256'"):
        load_key(putty)
    # the caller who says it is a secret gets a secret
    assert load_key(putty, algorithm="HS256").kty == "oct"


#: every way a str reaches a key loader
_STR_KEY_USES: list[Callable[[str], object]] = [
    lambda name: load_key(name),
    lambda name: load_key(name, password=b"pw"),
    lambda name: load_key(name, algorithm="HS256"),
    lambda name: jwtmint.load_secret(name, "HS256"),
    lambda name: jwtmint.encode({"sub": "x"}, name, algorithm="HS256"),
    lambda name: jwtmint.AssertionSigner(name, CLIENT_ID, AUDIENCE),
    lambda name: jwtmint.DPoPSigner(name),
]


@pytest.mark.parametrize(
    "use",
    _STR_KEY_USES,
    ids=["load_key", "password", "HS256", "load_secret", "encode", "assertion", "dpop"],
)
def test_a_str_that_names_a_file_is_refused_not_taken_as_a_secret(
    use: Callable[[str], object], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pem = _pkcs8_pem(ec.generate_private_key(ec.SECP256R1()))
    monkeypatch.chdir(tmp_path)
    (tmp_path / "k.pem").write_bytes(pem)
    long_name = "a-key-file-with-a-name-of-forty-bytes.pem"
    (tmp_path / long_name).write_bytes(pem)
    # long enough to make a valid HS256 secret: today's trap, a key signed with its own path
    for name in ("k.pem", long_name, str(tmp_path / long_name)):
        with pytest.raises(InvalidKeyError, match=r"pathlib\.Path") as caught:
            use(name)
        # a str that happens to name a file may be someone's secret: never echoed
        assert name not in str(caught.value)
        assert load_key(Path(name)).kty == "EC"
    # a secret that names no file is still a secret
    assert load_key("s" * 32).kty == "oct"
    assert jwtmint.load_secret("nonexistent-" + long_name, "HS256").kty == "oct"


def test_a_password_means_key_material_not_a_secret() -> None:
    with pytest.raises(InvalidKeyError, match="neither PEM, DER, PKCS#12 nor a JWK"):
        load_key(b"x" * 40, password="hunter2")


def test_ber_indefinite_length_is_key_material_not_a_secret() -> None:
    with pytest.raises(InvalidKeyError, match="DER"):
        load_key(b"\x30\x80" + b"\x01" * 40 + b"\x00\x00")


# ---------------------------------------------------------------- JWK(S) as an HMAC secret


def test_a_public_jwks_is_refused_as_an_hmac_secret() -> None:
    public = signing_key("ES256").public_jwk()
    jwks = json.dumps({"keys": [public]})
    for key in (jwks, jwks.encode()):
        with pytest.raises(InvalidKeyError, match="algorithm-confusion"):
            jwtmint.encode({"sub": "admin"}, key, algorithm="HS256")
        with pytest.raises(InvalidKeyError, match="JWK"):
            load_key(key, algorithm="HS256")
    # PyJWT refuses the same key: we are not looser than the library we replace
    with pytest.raises(jwt.InvalidKeyError):
        jwt.encode({"sub": "admin"}, jwks, algorithm="HS256")


def test_encode_takes_a_str_secret_literally_and_refuses_jwk_text() -> None:
    oct_jwk = json.dumps({"kty": "oct", "k": "a2tra2tra2tra2tra2tra2tra2tra2tra2tra2tra2s"})
    with pytest.raises(InvalidKeyError):
        jwtmint.encode({"sub": "x"}, oct_jwk, algorithm="HS256")
    # load_key reads the same text as the JWK it is
    assert load_key(oct_jwk).key == b"k" * 32


# ---------------------------------------------------------------- secrets in exception chains


def test_a_malformed_private_jwk_member_does_not_reach_the_exception_chain() -> None:
    d_value = "sécret-private-value-" + "A" * 30
    jwk = {"kty": "OKP", "crv": "Ed25519", "d": d_value}
    with pytest.raises(InvalidKeyError) as info:
        load_key(jwk)
    for exc in _exception_chain(info.value):
        assert d_value not in repr(exc) and d_value not in str(exc.args)
        assert "private-value" not in repr(getattr(exc, "object", ""))


def test_broken_jwk_text_does_not_reach_the_exception_chain() -> None:
    text = '{"kty": "oct", "k": "TOP-SECRET-MATERIAL", '
    with pytest.raises(InvalidKeyError) as info:
        load_key(text)
    for exc in _exception_chain(info.value):
        assert "TOP-SECRET-MATERIAL" not in repr(exc)
        assert "TOP-SECRET-MATERIAL" not in str(getattr(exc, "doc", ""))


@pytest.mark.parametrize("bad", ["a b", "a*b", "ab+/", "é"])
def test_jwk_members_must_be_strict_base64url(bad: str) -> None:
    with pytest.raises(InvalidKeyError):
        load_key({"kty": "oct", "k": "a2tra2tra2tra2tra2tra2tra2tra2tra2tra2tra2s" + bad})


def test_a_secret_fingerprint_is_salted_not_a_plain_hash() -> None:
    key = load_key(SECRET)
    assert key.fingerprint == load_key(SECRET).fingerprint  # stable within a process
    assert key.fingerprint != load_key(b"j" * 32).fingerprint
    for plain in (hashlib.sha256(SECRET), hashlib.sha256(b"jwtmint-secret:" + SECRET)):
        assert key.fingerprint != plain.hexdigest()[:12]


# ---------------------------------------------------------------- encode's key cache


def test_encode_reads_a_path_key_again_after_rotation(tmp_path: Path) -> None:
    path = tmp_path / "client.pem"
    first, second = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    path.write_bytes(_pkcs8_pem(first))
    token = jwtmint.encode({"sub": "x"}, path, algorithm="ES256")
    jwt.decode(token, first.public_key(), algorithms=["ES256"])
    path.write_bytes(_pkcs8_pem(second))
    token = jwtmint.encode({"sub": "x"}, path, algorithm="ES256")
    jwt.decode(token, second.public_key(), algorithms=["ES256"])


@pytest.mark.parametrize("wrap", [bytearray, lambda b: memoryview(bytearray(b))])
def test_encode_accepts_mutable_buffers_as_secrets(wrap: Any) -> None:
    token = jwtmint.encode({"sub": "x"}, wrap(SECRET), algorithm="HS256")
    assert token == jwt.encode({"sub": "x"}, SECRET, algorithm="HS256")


# ---------------------------------------------------------------- header parameters


@pytest.mark.parametrize(
    "headers",
    [{"b64": False, "crit": ["b64"]}, {"crit": "b64"}, {"crit": []}, {"kid": 7}],
)
def test_signer_and_encode_refuse_header_parameters_they_cannot_honour(
    kernel: ModuleType, headers: dict[str, Any]
) -> None:
    key = signing_key("ES256")
    with pytest.raises(InvalidHeaderError):
        jwtmint.AssertionSigner(key, CLIENT_ID, AUDIENCE, headers=headers)
    with pytest.raises(InvalidHeaderError):
        jwtmint.encode({"sub": "x"}, key, headers=headers)


# ---------------------------------------------------------------- a stale extension


def test_a_stale_extension_is_reported_and_not_used(monkeypatch: pytest.MonkeyPatch) -> None:
    if _kernels.load_speedups() is None:
        pytest.skip("C extension not built")
    monkeypatch.setattr(_pure, "__all__", [*_pure.__all__, "a_function_added_later"])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert _kernels.load_speedups() is None
    assert any("stale" in str(w.message) for w in caught)


@pytest.mark.parametrize("last_byte", [0x20, 0x0A, 0x0D, 0x09, 0x00, 0x41])
def test_der_keys_ending_in_whitespace_bytes_are_still_refused_as_secrets(last_byte: int) -> None:
    # DER is binary: a key whose encoding ends in a byte that str.strip() treats as
    # whitespace must still be recognised (this was a 1-in-40 flake with random keys)
    for _ in range(2000):
        key = ec.generate_private_key(ec.SECP256R1())
        der = key.private_bytes(
            serialization.Encoding.DER,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        if der[-1] == last_byte:
            break
    else:
        pytest.skip(f"no key ending in {last_byte:#04x} in 2000 tries")
    with pytest.raises(InvalidKeyError, match="algorithm-confusion"):
        load_key(der, algorithm="HS256")


@pytest.mark.parametrize("text", ["~\x00\x00+", "~nouser\x00/k.pem", "~" + "x" * 300])
def test_a_tilde_name_the_user_database_refuses_is_a_secret_not_an_error(text: str) -> None:
    # found by the fuzz run: expanduser("~\x00...") raised ValueError (embedded null byte)
    with contextlib.suppress(jwtmint.InvalidKeyError):  # a short secret may be refused
        jwtmint.load_key(text)
    assert jwtmint.load_secret(text * 40, "HS256").kty == "oct"
