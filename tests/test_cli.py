"""The installed ``jwtmint`` entry point in a subprocess: --version, keygen, mint, exit codes.

What keygen and mint produce is checked with PyJWT and cryptography, not with jwtmint."""

from __future__ import annotations

import asyncio
import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

import jwtmint
from jwtmint.testing import TokenEndpoint

JWTMINT = Path(sys.executable).parent / "jwtmint"
AUDIENCE = "https://idp.example.com"
ASYMMETRIC = ["ES256", "ES384", "ES512", "RS256", "PS384", "EdDSA"]


def cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(JWTMINT), *args], capture_output=True, text=True, timeout=60, cwd=cwd, check=False
    )


def assert_usage_error(result: subprocess.CompletedProcess[str], command: str, text: str) -> None:
    """Exit 2, nothing on stdout, and the last stderr line is ``jwtmint CMD: error: ...``."""
    assert (result.returncode, result.stdout) == (2, ""), result.stderr
    assert "Traceback" not in result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith(f"jwtmint {command}: error: "), last
    assert text in last, last


def test_version() -> None:
    for flag in ("--version", "-V"):
        result = cli(flag)
        assert result.returncode == 0, result.stderr
        line = result.stdout.strip()
        assert line.startswith(f"jwtmint {jwtmint.__version__} (implementation: ")
        assert f"implementation: {jwtmint.IMPLEMENTATION}," in line
        assert "cryptography " in line and "Python 3." in line


@pytest.mark.parametrize("alg", ASYMMETRIC)
def test_keygen_prints_a_jwk_set_and_writes_the_key_0600(tmp_path: Path, alg: str) -> None:
    out = tmp_path / "keys" / "client.pem"
    result = cli("keygen", "--alg", alg, "--out", str(out))
    assert result.returncode == 0, result.stderr
    jwks = json.loads(result.stdout)  # stdout is JSON and nothing else
    [public] = jwks["keys"]
    assert public["alg"] == alg and public["use"] == "sig" and public["kid"]
    assert "d" not in public and "p" not in public
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    assert stat.S_IMODE(out.parent.stat().st_mode) == 0o700
    assert str(out) in result.stderr
    private = serialization.load_pem_private_key(out.read_bytes(), password=None)
    # the registered JWK verifies what `jwtmint mint` signs with the written key
    # a PEM does not record the algorithm: RSA keys sign RS256 unless told (as the hint says)
    minted = cli("mint", "--key", str(out), "--client-id", "app", "--audience", AUDIENCE)
    if alg.startswith(("RS", "PS")) and alg != "RS256":
        assert f"sign with --alg {alg}" in result.stderr
        minted = cli(
            "mint", "--key", str(out), "--alg", alg, "--client-id", "app", "--audience", AUDIENCE
        )
    assert minted.returncode == 0, minted.stderr
    token = minted.stdout.strip()
    verifier = jwt.PyJWK(public)
    claims = jwt.decode(token, verifier.key, algorithms=[alg], audience=AUDIENCE)
    assert claims["iss"] == claims["sub"] == "app"
    assert jwt.get_unverified_header(token)["kid"] == public["kid"]
    assert private.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    ) == verifier.key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def test_keygen_rsa_bits_kid_and_jwks_out(tmp_path: Path) -> None:
    out, jwks_out = tmp_path / "k.pem", tmp_path / "jwks.json"
    result = cli(
        "keygen", "--alg", "PS256", "--bits", "3072", "--kid", "invoice-1",
        "--out", str(out), "--jwks-out", str(jwks_out),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert json.loads(jwks_out.read_text()) == json.loads(result.stdout)
    assert json.loads(result.stdout)["keys"][0]["kid"] == "invoice-1"
    private = serialization.load_pem_private_key(out.read_bytes(), password=None)
    assert isinstance(private, rsa.RSAPrivateKey) and private.key_size == 3072


def test_keygen_out_dash_prints_the_key_alone(tmp_path: Path) -> None:
    jwks_out = tmp_path / "jwks.json"
    result = cli("keygen", "--out", "-", "--jwks-out", str(jwks_out))
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("-----BEGIN PRIVATE KEY-----")
    assert result.stdout.rstrip().endswith("-----END PRIVATE KEY-----")
    assert json.loads(jwks_out.read_text())["keys"][0]["alg"] == "ES256"
    # no file for the JWK Set: it goes to stderr, stdout keeps the key alone
    result = cli("keygen", "--out", "-")
    assert result.stdout.count("PRIVATE KEY-----") == 2
    assert json.loads(result.stderr)["keys"][0]["kty"] == "EC"


def test_keygen_hmac_writes_a_secret_to_register(tmp_path: Path) -> None:
    out = tmp_path / "secret"
    result = cli("keygen", "--alg", "HS512", "--out", str(out))
    assert (result.returncode, result.stdout) == (0, ""), result.stderr
    assert "register it as the client's secret" in result.stderr
    secret = out.read_text()
    assert len(secret) == 86 and "\n" not in secret  # 64 random bytes, base64url
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    minted = cli(
        "mint", "--key", str(out), "--alg", "HS512", "--client-id", "app", "--audience", AUDIENCE
    )
    assert minted.returncode == 0, minted.stderr
    jwt.decode(minted.stdout.strip(), secret, algorithms=["HS512"], audience=AUDIENCE)


def test_keygen_never_overwrites(tmp_path: Path) -> None:
    out = tmp_path / "invoice.pem"
    out.write_text("precious")
    result = cli("keygen", "--out", str(out))
    assert_usage_error(result, "keygen", f"{out} exists; choose another --out or remove it")
    assert out.read_text() == "precious"
    # a --jwks-out that exists refuses before the private key is written
    fresh = tmp_path / "fresh.pem"
    result = cli("keygen", "--out", str(fresh), "--jwks-out", str(out))
    assert_usage_error(result, "keygen", "choose another --jwks-out")
    assert not fresh.exists()


@pytest.mark.parametrize(
    ("args", "text"),
    [
        ([], "the following arguments are required: --out"),
        (["--alg", "none", "--out", "k"], "argument --alg: unknown algorithm 'none'; choose from"),
        (["--alg", "ES256", "--bits", "4096", "--out", "k"], "--bits is for RS*/PS* keys only"),
        (["--alg", "RS256", "--bits", "1024", "--out", "k"], "argument --bits: '1024'"),
        (["--alg", "HS256", "--out", "k", "--jwks-out", "j"], "HS256 has no public key"),
        (["--kid", " ", "--out", "k"], "argument --kid: a key id must not be empty"),
    ],
)
def test_keygen_usage_errors(tmp_path: Path, args: list[str], text: str) -> None:
    assert_usage_error(cli("keygen", *args, cwd=tmp_path), "keygen", text)
    assert list(tmp_path.iterdir()) == []


@pytest.fixture(scope="module")
def es256_pem(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("keys") / "client.pem"
    assert cli("keygen", "--out", str(out)).returncode == 0
    return out


@pytest.mark.parametrize(
    ("args", "text"),
    [
        (["--key", "missing.pem"], "cannot read --key missing.pem: No such file or directory"),
        (["--key", "."], "cannot read --key .: Is a directory"),
        (["--alg", "XS256"], "argument --alg: unknown algorithm 'XS256'"),
        (["--alg", "RS256"], "RS256 needs an RSA key, but the key is an EC key"),
        (["--lifetime", "0"], "argument --lifetime: '0' is not a whole number of seconds"),
        (["--lifetime", "soon"], "argument --lifetime: 'soon'"),
        (["--lifetime", "99999999"], "from 1 to 31536000"),
    ],
)
def test_mint_usage_errors(es256_pem: Path, args: list[str], text: str) -> None:
    base = ["mint", "--key", str(es256_pem), "--client-id", "app", "--audience", AUDIENCE]
    result = cli(*base, *args, cwd=es256_pem.parent)
    assert_usage_error(result, "mint", text)


def test_mint_secret_without_alg_names_the_flag(tmp_path: Path) -> None:
    secret = tmp_path / "secret"
    secret.write_text("a" * 40)
    result = cli("mint", "--key", str(secret), "--client-id", "app", "--audience", AUDIENCE)
    assert_usage_error(result, "mint", "pass --alg HS256")
    assert "algorithm=" not in result.stderr


def test_unknown_command_and_flag_exit_2() -> None:
    assert cli("frobnicate").returncode == 2
    assert_usage_error(cli("mint", "--nope"), "mint", "the following arguments are required")
    assert cli().returncode == 2


def test_python_m_jwtmint_is_the_same_command() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "jwtmint", "--version"],
        capture_output=True, text=True, timeout=60, check=False,
        env={**os.environ},
    )  # fmt: skip
    assert result.returncode == 0 and result.stdout.startswith("jwtmint ")


async def test_keygen_jwk_set_registers_at_a_token_endpoint(tmp_path: Path) -> None:
    out = tmp_path / "invoice.pem"
    result = cli("keygen", "--alg", "ES384", "--out", str(out))
    assert result.returncode == 0, result.stderr
    async with TokenEndpoint() as ep:
        ep.register_client("invoice", public_key=json.loads(result.stdout))
        # a subprocess that blocks: run in a thread so the endpoint's loop keeps serving
        token = await asyncio.to_thread(
            cli, "token", "--client-id", "invoice", "--issuer", ep.issuer, "--key", str(out)
        )
        assert token.returncode == 0, token.stderr
        assert ep.token_info(token.stdout.strip()) is not None


def test_keygen_leaves_no_private_key_without_its_jwk_set(tmp_path: Path) -> None:
    (tmp_path / "a-file").write_text("not a directory")
    out = tmp_path / "keys" / "k.pem"
    result = cli("keygen", "--out", str(out), "--jwks-out", str(tmp_path / "a-file" / "j.json"))
    assert result.returncode == 2, result.stderr
    assert result.stderr.startswith("jwtmint keygen: error: ") and "Traceback" not in result.stderr
    assert not out.exists()  # the JWK Set could not be written: no key to register is left
    result = cli("keygen", "--out", str(tmp_path / "a-file" / "k.pem"), "--jwks-out", str(out))
    assert result.returncode == 2, result.stderr
    assert not out.exists()  # the private key could not be written: its JWK Set is removed
