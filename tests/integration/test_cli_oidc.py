"""The command line against a real authorization server (panva's oidc-provider), as a user
would go: ``jwtmint keygen --out`` makes keys, their printed public JWKs are registered,
a clients file names every client, and ``jwtmint token --config --client`` fetches a
token for each authentication method; each token introspects as active.

Everything runs through the installed ``jwtmint`` entry point, in subprocesses.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from .conftest import OidcProviderFactory, granted, introspect
from .oidc_server import secret_client

ENTRY_POINT = Path(sys.executable).parent / "jwtmint"
#: ≥ 48 bytes for HS384, with characters client_secret_basic must form-urlencode
SECRET = "jwtmint cli integration: s3cret+with/form&chars=%41 and some more"
SCOPE = "api.read"

#: table name -> (client_id, auth method, keygen algorithm or None)
CLIENTS = {
    "es": ("cli-es", "private_key_jwt", "ES256"),
    "ed": ("cli-ed", "private_key_jwt", "EdDSA"),
    "hs": ("cli-hs", "client_secret_jwt", None),
    "basic": ("cli-basic", "client_secret_basic", None),
    "post": ("cli-post", "client_secret_post", None),
}


def keygen(algorithm: str, out: Path) -> dict[str, Any]:
    """``jwtmint keygen --alg A --out FILE``: the public JWK Set it prints, as registered.

    It prints a JWK Set (``{"keys": [...]}``) or, in older versions, the bare public JWK;
    either becomes a JWK Set here."""
    done = subprocess.run(
        [str(ENTRY_POINT), "keygen", "--alg", algorithm, "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    printed: dict[str, Any] = json.loads(done.stdout)
    jwks = printed
    assert list(jwks) == ["keys"], jwks  # a JWK Set, not a bare JWK
    assert all("d" not in jwk for jwk in jwks["keys"]), "keygen printed private key material"
    return jwks


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("cli-oidc")


@pytest.fixture(scope="module")
def issuer(oidc_provider: OidcProviderFactory, workdir: Path) -> Iterator[str]:
    """oidc-provider with the clients registered: the key clients by keygen's JWK Set."""
    registrations: list[dict[str, Any]] = []
    (workdir / "keys").mkdir()
    for name, (client_id, method, algorithm) in CLIENTS.items():
        if algorithm is None:
            registrations.append(secret_client(client_id, SECRET, method))
            continue
        jwks = keygen(algorithm, workdir / "keys" / f"{name}.pem")
        registrations.append(
            {
                "client_id": client_id,
                "token_endpoint_auth_method": method,
                "token_endpoint_auth_signing_alg": algorithm,
                "jwks": jwks,
                "grant_types": ["client_credentials"],
                "response_types": [],
                "redirect_uris": [],
                "scope": "api.read api.write",
            }
        )
    # the server takes an assertion only when aud is exactly the issuer
    with oidc_provider(registrations, require_issuer_audience=True) as url:
        yield url


@pytest.fixture(scope="module")
def clients_file(workdir: Path, issuer: str) -> Path:
    tables = []
    for name, (client_id, method, algorithm) in CLIENTS.items():
        lines = [f"[{name}]", f'client_id = "{client_id}"', f'issuer = "{issuer}"']
        lines.append(f'scope = "{SCOPE}"')
        if algorithm is not None:
            lines.append(f'private_key = "keys/{name}.pem"')
        else:
            lines += [f'auth_method = "{method}"', 'client_secret_env = "CLI_OIDC_SECRET"']
        if method == "client_secret_jwt":
            lines.append('signing_algorithm = "HS384"')
        tables.append("\n".join(lines))
    path = workdir / "clients.toml"
    path.write_text("[manager]\nrequest_timeout = 10\n\n" + "\n\n".join(tables) + "\n")
    return path


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as http:
        yield http


async def jwtmint_token(*args: str) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        str(ENTRY_POINT),
        "token",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "CLI_OIDC_SECRET": SECRET},
        cwd="/",  # the file's relative key paths resolve against its own directory
    )
    out, err = await asyncio.wait_for(process.communicate(), timeout=60)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


@pytest.mark.parametrize("name", list(CLIENTS))
async def test_every_auth_method_from_the_clients_file(
    session: aiohttp.ClientSession, issuer: str, clients_file: Path, name: str
) -> None:
    client_id, method, _ = CLIENTS[name]
    code, out, err = await jwtmint_token("--config", str(clients_file), "--client", name)
    assert code == 0, err
    access_token = out.strip()
    answer = await introspect(session, issuer, access_token, client_id="cli-basic", secret=SECRET)
    assert answer["active"] is True
    assert answer["client_id"] == client_id and answer["scope"] == SCOPE
    seen = await granted(session, issuer, client_id)
    assert [entry["auth_method"] for entry in seen] == [method]
    if seen[0]["assertion"] is not None:  # aud = the issuer, alg = the one registered
        assert seen[0]["assertion"]["claims"]["aud"] == issuer


async def test_a_refusal_exits_1_with_the_oauth_error(issuer: str, clients_file: Path) -> None:
    code, out, err = await jwtmint_token(
        "--config", str(clients_file), "--client", "basic", "--scope", "api.admin"
    )
    assert (code, out) == (1, "")
    assert "refused client 'basic': invalid_scope" in err, err
    assert SECRET not in err
