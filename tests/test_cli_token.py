"""`jwtmint token`: one access token from a real (loopback) token endpoint, in a subprocess."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import sys
from pathlib import Path

import pytest
from aiohttp import web
from cryptography.hazmat.primitives import serialization

import jwtmint
from jwtmint.testing import TokenEndpoint

from .conftest import signing_key

SECRET = "a client secret that is long enough to use"


async def jwtmint_cli(*args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    """``python -m jwtmint ARGS``: exit code, stdout, stderr."""
    return await _run(sys.executable, "-m", "jwtmint", *args, env=env)


async def _run(*argv: str, env: dict[str, str] | None) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        *argv,
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


# ---- the clients file, exit codes and messages, through the installed entry point ----------

#: the console script pip installed next to this interpreter (pyproject's [project.scripts])
ENTRY_POINT = Path(sys.executable).parent / "jwtmint"


async def installed_cli(*args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    assert ENTRY_POINT.is_file(), f"{ENTRY_POINT} is missing: pip install -e . makes it"
    return await _run(str(ENTRY_POINT), *args, env=env)


def write_pem(path: Path, key: jwtmint.SigningKey) -> None:
    assert not isinstance(key.key, bytes)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(
        key.key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then closed)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


async def test_token_from_a_clients_file(tmp_path: Path) -> None:
    write_pem(tmp_path / "keys" / "invoice.pem", signing_key("ES256"))
    async with TokenEndpoint() as ep:
        ep.register_client("invoice-service", public_key=signing_key("ES256"))
        ep.register_client("billing", secret=SECRET, auth_method="client_secret_post")
        config = tmp_path / "clients.toml"
        config.write_text(
            f'[invoice]\nclient_id = "invoice-service"\nissuer = "{ep.issuer}"\n'
            'private_key = "keys/invoice.pem"\nscope = "invoice.read"\n\n'
            f'[billing]\ntoken_endpoint = "{ep.token_url}"\nauth_method = "client_secret_post"\n'
            'client_secret_env = "BILLING_SECRET"\n'
        )
        # the other client's secret is not needed to fetch this one's token
        code, out, err = await installed_cli(
            "token", "--config", str(config), "--client", "invoice"
        )
        assert code == 0, err
        info = ep.token_info(out.strip())
        assert info is not None and info["client_id"] == "invoice-service"
        assert info["scope"] == "invoice.read"
        # --scope and --json apply per call
        code, out, err = await jwtmint_cli(
            "token", "--config", str(config), "--client", "billing", "--scope", "a b", "--json",
            env={"BILLING_SECRET": SECRET},
        )  # fmt: skip
        assert code == 0, err
        assert json.loads(out)["scope"] == "a b"
    assert [(r.client_id, r.auth_method) for r in ep.requests] == [
        ("invoice-service", "private_key_jwt"),
        ("billing", "client_secret_post"),
    ]


async def test_a_refusal_exits_1_with_the_oauth_error(tmp_path: Path) -> None:
    async with TokenEndpoint() as ep:
        ep.register_client("svc", secret=SECRET, allowed_scopes=["read"])
        config = tmp_path / "clients.toml"
        config.write_text(
            f'[svc]\ntoken_endpoint = "{ep.token_url}"\nclient_secret_env = "SVC_SECRET"\n'
        )
        code, out, err = await installed_cli(
            "token", "--config", str(config), "--scope", "admin", env={"SVC_SECRET": SECRET}
        )
    assert (code, out) == (1, "")
    # the RFC 6749 error and its description, as the server sent them
    assert "refused client 'svc': invalid_scope (scope not allowed for this client: admin)" in err
    assert SECRET not in err


async def test_unreachable_exits_3_with_the_client_id(tmp_path: Path) -> None:
    port = closed_port()
    code, out, err = await installed_cli(
        "token", "--client-id", "probe-app", "--token-endpoint", f"http://127.0.0.1:{port}/token",
        "--secret-env", "PROBE_SECRET", env={"PROBE_SECRET": SECRET},
    )  # fmt: skip
    assert (code, out) == (3, "")
    assert "client 'probe-app'" in err and "'cli'" not in err, err
    assert SECRET not in err


@pytest.mark.parametrize(
    ("status", "body", "content_type"),
    [(404, "<html>Not Found</html>", "text/html"), (401, "", "text/plain")],
)
async def test_an_answer_that_is_not_oauth_exits_3(
    status: int, body: str, content_type: str
) -> None:
    # a wrong URL or a proxy in the way: no RFC 6749 error, so not a refusal (exit 1)
    async def answer(request: web.Request) -> web.Response:
        return web.Response(status=status, text=body, content_type=content_type)

    app = web.Application()
    app.router.add_post("/token", answer)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        port = runner.addresses[0][1]
        code, out, err = await jwtmint_cli(
            "token", "--client-id", "probe-app", "--token-endpoint",
            f"http://127.0.0.1:{port}/token", "--secret-env", "PROBE_SECRET",
            env={"PROBE_SECRET": SECRET},
        )  # fmt: skip
    finally:
        await runner.cleanup()
    assert (code, out) == (3, ""), err
    assert f"HTTP {status}" in err and SECRET not in err


async def test_a_file_of_several_clients_needs_client_before_any_is_built(
    tmp_path: Path,
) -> None:
    config = tmp_path / "clients.toml"
    config.write_text(
        '[invoice]\ntoken_endpoint = "https://idp.example/t"\nclient_secret_env = "UNSET_A"\n'
        '[billing]\ntoken_endpoint = "https://idp.example/t"\nclient_secret_env = "UNSET_B"\n'
    )
    code, out, err = await jwtmint_cli("token", "--config", str(config))
    assert (code, out) == (2, "")
    assert "has 2 clients: name one with --client (billing, invoice)" in err, err
    assert "UNSET_" not in err


async def test_a_failed_discovery_exits_3_with_advice_in_flag_words(tmp_path: Path) -> None:
    write_pem(tmp_path / "app.pem", signing_key("ES256"))
    code, out, err = await jwtmint_cli(
        "token", "--client-id", "probe-app", "--issuer", f"http://127.0.0.1:{closed_port()}",
        "--key", str(tmp_path / "app.pem"),
    )  # fmt: skip
    assert (code, out) == (3, "")
    assert "no authorization server metadata" in err and "give --token-endpoint" in err, err
    assert "token_endpoint=" not in err


async def test_a_silent_server_times_out_per_the_manager_table(tmp_path: Path) -> None:
    async with TokenEndpoint() as ep:
        ep.register_client("slow", secret=SECRET)
        ep.latency = 60.0  # never answers within the client's timeout; closing cuts it short
        config = tmp_path / "clients.toml"
        config.write_text(
            "[manager]\nrequest_timeout = 0.3\nretries = 0\n\n"
            f'[slow]\ntoken_endpoint = "{ep.token_url}"\nclient_secret_env = "SLOW_SECRET"\n'
        )
        code, out, err = await jwtmint_cli(
            "token", "--config", str(config), env={"SLOW_SECRET": SECRET}
        )
    assert (code, out) == (3, ""), err
    assert "did not answer client 'slow' within 0.3 s" in err, err


@pytest.mark.parametrize(
    ("toml", "expected"),
    [
        ('[app]\ntoken_endpoint = "https://idp.example/t"\nclient_secret_env = "APP_SECRET"\n'
         'scopes = "read"\n', "clients.toml:4: [app] scopes: unknown field; did you mean 'scope'?"),
        ('[app]\ntoken_endpoint = "https://idp.example/t"\nclient_secret_env = "UNSET_VAR_X"\n',
         "clients.toml:3: [app] client_secret_env: the environment variable UNSET_VAR_X"),
        ('[app]\ntoken_endpoint = "https://idp.example/t"\nprivate_key = "keys/app.pem"\n',
         "clients.toml:3: [app] private_key: cannot read "),
        ('[app]\ntoken_endpoint = "https://idp.example/t"\nclient_secret = "inline-secret-1"\n',
         "clients.toml:3: [app] client_secret: secrets are not written inline"),
        ('[app]\ntoken_endpoint = "http://10.9.8.7/t"\nclient_secret_env = "APP_SECRET"\n',
         "[app] token_endpoint 'http://10.9.8.7/t' is plain http: use https, or "
         "allow_insecure_http = true"),
        ("[app\n", "clients.toml:1: not valid TOML"),
    ],
)  # fmt: skip
async def test_bad_config_files_exit_2_naming_file_client_and_field(
    tmp_path: Path, toml: str, expected: str
) -> None:
    config = tmp_path / "clients.toml"
    config.write_text(toml)
    code, out, err = await installed_cli(
        "token", "--config", str(config), "--client", "app", env={"APP_SECRET": SECRET}
    )
    assert (code, out) == (2, "")
    assert err.startswith(f"jwtmint token: error: {tmp_path}/"), err
    assert expected in err, err
    assert SECRET not in err and "inline-secret-1" not in err


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--config", "c.toml", "--client-id", "x", "--key", "k.pem"],
         "--config takes the client from the file: drop --client-id, --key"),
        (["--config", "missing.toml"], "clients file missing.toml: cannot read it"),
        (["--client-id", "x"], "give --token-endpoint or --issuer (for discovery)"),
        (["--client-id", "x", "--token-endpoint", "https://idp.example/t"],
         "no credentials: give --key (private_key_jwt) or --secret-env or --secret-file"),
        (["--client-id", "x", "--token-endpoint", "https://idp.example/t", "--key", "none.pem"],
         "--key: cannot read "),
        (["--client-id", "x", "--token-endpoint", "https://idp.example/t", "--secret-env",
          "UNSET_VAR_X"], "--secret-env: the environment variable UNSET_VAR_X"),
        (["--client-id", "x", "--token-endpoint", "https://idp.example/t", "--secret-env",
          "APP_SECRET", "--auth-method", "client_secret_jw"],
         "--auth-method: unknown method 'client_secret_jw'"),
        (["--client-id", "x", "--token-endpoint", "http://10.9.8.7/t", "--secret-env",
          "APP_SECRET"], "--token-endpoint 'http://10.9.8.7/t' is plain http: use https, or "
         "--allow-insecure-http for a trusted network"),
        (["--client-id", "x", "--token-endpoint", "https://idp.example/t", "--secret-env",
          "APP_SECRET", "--resource", "api"], "--resource 'api' is not an absolute URI"),
        (["--client-id", "x", "--token-endpoint", "https://idp.example/t", "--secret-env",
          "APP_SECRET", "--alg", "HS256"],
         "--alg: is for client assertions; client_secret_basic signs nothing"),
        (["--client", "x"], "--client names a client of --config FILE"),
        ([], "give --client-id (with --issuer or --token-endpoint"),
    ],
)  # fmt: skip
async def test_bad_flags_exit_2_in_flag_words(
    tmp_path: Path, args: list[str], expected: str
) -> None:
    (tmp_path / "c.toml").write_text("[x]\n")
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "jwtmint", "token", *args,
        cwd=tmp_path, env={**os.environ, "APP_SECRET": SECRET},
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(process.communicate(), timeout=60)
    assert (process.returncode, out) == (2, b""), err
    message = err.decode()
    assert message.startswith("jwtmint token: error: ") and expected in message, message
    for python_words in ("allow_insecure_http=True", "client_secret=", "'cli'", "private_key="):
        assert python_words not in message


def non_loopback_address() -> str | None:
    """An address of this machine that is not loopback (where a route to TEST-NET leaves)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("192.0.2.123", 9))  # UDP: nothing is sent
        except OSError:
            return None
        address: str = probe.getsockname()[0]
    return None if address.startswith("127.") else address


async def test_allow_insecure_http_on_purpose() -> None:
    address = non_loopback_address()
    if address is None:
        pytest.skip("this machine has no non-loopback IPv4 address to serve plain http on")

    async with TokenEndpoint() as ep:
        ep.register_client("lan-app", secret=SECRET)
        target = int(ep.url.rpartition(":")[2])

        async def forward(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            upstream_reader, upstream_writer = await asyncio.open_connection("127.0.0.1", target)

            async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
                dst.close()

            await asyncio.gather(pipe(reader, upstream_writer), pipe(upstream_reader, writer))

        server = await asyncio.start_server(forward, address, 0)
        async with server:
            port = server.sockets[0].getsockname()[1]
            args = ["token", "--client-id", "lan-app", "--secret-env", "LAN_SECRET"]
            args += ["--token-endpoint", f"http://{address}:{port}/token"]
            code, out, err = await jwtmint_cli(*args, env={"LAN_SECRET": SECRET})
            assert code == 2 and "use https, or --allow-insecure-http" in err, err
            code, out, err = await jwtmint_cli(
                *args, "--allow-insecure-http", env={"LAN_SECRET": SECRET}
            )
            assert code == 0, err
        assert ep.token_info(out.strip()) is not None
