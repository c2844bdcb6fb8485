"""`jwtmint token`: one access token from a real (loopback) token endpoint, in a subprocess."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path

from cryptography.hazmat.primitives import serialization

from jwtmint.testing import TokenEndpoint

from .conftest import signing_key

SECRET = "a client secret that is long enough to use"


async def jwtmint_cli(*args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "jwtmint",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, **(env or {})},
    )
    out, err = await asyncio.wait_for(process.communicate(), timeout=60)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def test_token_with_a_key_file(tmp_path: Path) -> None:
    key = signing_key("ES256")
    pem = tmp_path / "client.pem"
    assert not isinstance(key.key, bytes)
    pem.write_bytes(
        key.key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    async with TokenEndpoint() as ep:
        ep.register_client("cli-app", public_key=key)
        code, out, err = await jwtmint_cli(
            "token", "--client-id", "cli-app", "--issuer", ep.issuer, "--key", str(pem),
            "--scope", "read",
        )  # fmt: skip
        assert code == 0, err
        info = ep.token_info(out.strip())
    assert info is not None and info["client_id"] == "cli-app" and info["scope"] == "read"
    assert ep.requests[0].auth_method == "private_key_jwt"


async def test_token_with_a_secret_from_the_environment() -> None:
    wrong = "not-the-secret-" * 3
    async with TokenEndpoint() as ep:
        ep.register_client("cli-app", secret=SECRET)
        args = ["token", "--client-id", "cli-app", "--token-endpoint", ep.token_url]
        args += ["--secret-env", "CLI_SECRET"]
        code, out, err = await jwtmint_cli(*args, "--json", env={"CLI_SECRET": SECRET})
        assert code == 0, err
        assert json.loads(out)["token_type"] == "Bearer"
        code, out, err = await jwtmint_cli(*args, env={"CLI_SECRET": wrong})
        assert (code, out) == (1, "")  # refused by the endpoint: exit 1
        assert "invalid_client" in err and wrong not in err
        code, out, err = await jwtmint_cli(*args, env={"CLI_SECRET": ""})
        assert code == 2 and "--secret-env: the environment variable CLI_SECRET is empty" in err
    assert [(r.auth_method, r.outcome) for r in ep.requests] == [
        ("client_secret_basic", "issued"),
        ("client_secret_basic", "invalid_client"),
    ]
