"""The README's Quick start, run as written against a loopback TokenEndpoint, and its Clients
file example loaded, so that neither can drift from what the code does.

Only the authorization server's URL is swapped for the loopback one; the shell commands run
through the installed ``jwtmint`` entry point, in a scratch directory.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shlex
import sys
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization

import jwtmint
from jwtmint.testing import TokenEndpoint
from jwtmint.tokens import TokenManager, load_clients

README = Path(__file__).resolve().parent.parent / "README.md"
ENTRY_POINT = Path(sys.executable).parent / "jwtmint"
IDP = "https://idp.example.com"


def section(title: str) -> str:
    text = README.read_text(encoding="utf-8")
    start = text.index(f"\n## {title}\n")
    end = text.find("\n## ", start + 1)
    return text[start : end if end != -1 else None]


def blocks(text: str) -> list[tuple[str, str]]:
    """``(language, code)`` of each fenced block, in order."""
    return re.findall(r"```(\w+)\n(.*?)```", text, re.DOTALL)


def commands(code: str) -> list[list[str]]:
    """The commands of a shell block, as argv (comments dropped)."""
    return [shlex.split(line, comments=True) for line in code.splitlines() if line.strip()]


async def shell(argv: list[str], cwd: Path) -> tuple[int, str, str]:
    assert argv[0] == "jwtmint"
    process = await asyncio.create_subprocess_exec(
        str(ENTRY_POINT),
        *argv[1:],
        cwd=cwd,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), timeout=60)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def test_the_quick_start_runs_as_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    found = blocks(section("Quick start"))
    assert [language for language, _ in found] == ["sh", "toml", "sh", "python"], found
    (_, keygen), (_, toml), (_, token), (_, python) = found
    mkdir, keygen_argv = commands(keygen)
    assert mkdir[:2] == ["mkdir", "-p"]
    for directory in mkdir[2:]:
        (tmp_path / directory).mkdir(parents=True)
    [token_argv] = commands(token)
    assert keygen_argv[:2] == ["jwtmint", "keygen"] and token_argv[:2] == ["jwtmint", "token"]
    client_id = re.search(r'client_id = "([^"]+)"', toml)
    assert client_id is not None and IDP in toml

    # 1. the key: a private key file, and the public JWK Set on stdout
    code, out, err = await shell(keygen_argv, tmp_path)
    assert code == 0, err
    printed: dict[str, Any] = json.loads(out)
    jwks = printed  # a JWK Set (RFC 7517 §5), what servers register; a bare JWK fails here
    assert list(jwks) == ["keys"] and len(jwks["keys"]) == 1, jwks
    key_file = tmp_path / keygen_argv[keygen_argv.index("--out") + 1]
    assert key_file.is_file() and os.stat(key_file).st_mode & 0o077 == 0

    async with TokenEndpoint() as ep:
        # 2. registered at the authorization server, by that JWK Set only
        ep.register_client(client_id.group(1), public_key=jwks)
        # 3. the clients file, for this server
        (tmp_path / "clients.toml").write_text(toml.replace(IDP, ep.issuer), encoding="utf-8")
        # 4. jwtmint token
        code, out, err = await shell(token_argv, tmp_path)
        assert code == 0, err
        info = ep.token_info(out.strip())
        assert info is not None and info["client_id"] == client_id.group(1)
        # 5. the same in Python (run() cannot start a loop inside this test's: awaited instead)
        assert python.rstrip().endswith("run(main())")
        namespace: dict[str, Any] = {}
        exec(python.rstrip().removesuffix("run(main())"), namespace)
        monkeypatch.chdir(tmp_path)
        await namespace["main"]()
    line = capsys.readouterr().out.strip()
    assert line.startswith("Bearer invoice.read "), line
    assert [(r.client_id, r.auth_method, r.outcome) for r in ep.requests] == [
        (client_id.group(1), "private_key_jwt", "issued")
    ] * 2


def test_the_clients_file_example_loads(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    toml = next(code for language, code in blocks(section("Clients file")) if language == "toml")
    # what the example refers to: key files, a secret variable and a secret file
    (tmp_path / "keys").mkdir()
    for name in ("invoice", "bound", "bound-dpop"):
        key = jwtmint.generate_key("ES256")
        assert not isinstance(key.key, bytes)
        pem = key.key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        (tmp_path / "keys" / f"{name}.pem").write_bytes(pem)
    monkeypatch.setenv("BILLING_SECRET", "b" * 48)
    (tmp_path / "reports-secret").write_text("r" * 32 + "\n")
    assert "/run/secrets/reports" in toml
    path = tmp_path / "clients.toml"
    path.write_text(toml.replace("/run/secrets/reports", str(tmp_path / "reports-secret")))
    clients = load_clients(path)
    assert {name: c.auth_method for name, c in clients.items()} == {
        "invoice": "private_key_jwt",
        "billing": "client_secret_jwt",
        "reports": "client_secret_basic",
        "bound": "private_key_jwt",
    }
    assert clients["billing"].client_id == "billing"
    assert clients["bound"].dpop is not None
    assert TokenManager.from_config(path).clients.keys() == clients.keys()
