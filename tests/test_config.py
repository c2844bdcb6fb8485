"""The clients file: a valid one fetches tokens with every auth method from a real loopback
endpoint; every mistake is a ConfigurationError naming file, client and field, never a secret."""

from __future__ import annotations

import secrets
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization

import jwtmint
from jwtmint.errors import ConfigurationError
from jwtmint.testing import TokenEndpoint
from jwtmint.tokens import ClientCredentialsClient, RetryPolicy, TokenManager, load_clients

from .conftest import signing_key

#: long enough for client_secret_jwt with HS256; never to appear in a message
SECRET = "config-test-secret-" + secrets.token_urlsafe(24)
PASSWORD = "key-password-" + secrets.token_urlsafe(8)


def write_key(path: Path, key: jwtmint.SigningKey, password: str | None = None) -> Path:
    assert not isinstance(key.key, bytes)
    encryption: serialization.KeySerializationEncryption = (
        serialization.BestAvailableEncryption(password.encode())
        if password
        else serialization.NoEncryption()
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(
        key.key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption
        )
    )
    return path


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A directory with keys/es.pem, keys/locked.pem (PASSWORD), secret.txt and the
    environment variables CONFIG_SECRET and KEY_PASSWORD; the cwd is elsewhere, so that
    relative paths must resolve against the file's directory."""
    write_key(tmp_path / "keys" / "es.pem", signing_key("ES256"))
    write_key(tmp_path / "keys" / "locked.pem", signing_key("ES256"), PASSWORD)
    write_key(tmp_path / "keys" / "dpop.pem", signing_key("ES384"))
    (tmp_path / "secret.txt").write_text(SECRET + "\n", encoding="utf-8")
    monkeypatch.setenv("CONFIG_SECRET", SECRET)
    monkeypatch.setenv("KEY_PASSWORD", PASSWORD)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    return tmp_path


EVERY_METHOD = """\
[manager]
request_timeout = 5
renewal_buffer = 30
retries = {{ attempts = 2, backoff = 0.1, deadline = 10 }}

[signed]
issuer = "{issuer}"
private_key = "keys/es.pem"
scope = ["invoice.read", "invoice.write"]

[locked]
client_id = "locked-service"
token_endpoint = "{token_url}"
private_key = "keys/locked.pem"
private_key_password_env = "KEY_PASSWORD"
audience = "{issuer}"
assertion_lifetime = 30

[hmac]
issuer = "{issuer}"
auth_method = "client_secret_jwt"
client_secret_env = "CONFIG_SECRET"
signing_algorithm = "HS384"

[basic]
token_endpoint = "{token_url}"
client_secret_file = "secret.txt"
resource = "https://api.example.com"

[post]
token_endpoint = "{token_url}"
auth_method = "client_secret_post"
client_secret_env = "CONFIG_SECRET"
parameters = {{ tenant = "acme" }}

[public]
token_endpoint = "{token_url}"
auth_method = "none"

[bound]
token_endpoint = "{token_url}"
client_secret_env = "CONFIG_SECRET"
dpop_key = "keys/dpop.pem"
"""


async def test_every_auth_method_fetches_a_token(workdir: Path) -> None:
    async with TokenEndpoint() as ep:
        ep.register_client("signed", public_key=signing_key("ES256"))
        ep.register_client("locked-service", public_key=signing_key("ES256"))
        ep.register_client("hmac", secret=SECRET, auth_method="client_secret_jwt")
        ep.register_client("basic", secret=SECRET)
        ep.register_client("post", secret=SECRET, auth_method="client_secret_post")
        ep.register_client("public", auth_method="none")
        ep.register_client("bound", secret=SECRET)
        path = workdir / "clients.toml"
        path.write_text(EVERY_METHOD.format(issuer=ep.issuer, token_url=ep.token_url))
        clients = load_clients(path)
        assert list(clients) == ["signed", "locked", "hmac", "basic", "post", "public", "bound"]
        assert all(isinstance(c, ClientCredentialsClient) for c in clients.values())
        assert clients["signed"].scope == "invoice.read invoice.write"
        assert clients["hmac"].signing_algorithm == "HS384"
        assert clients["locked"].assertion_lifetime == 30
        assert SECRET not in repr(clients) and PASSWORD not in repr(clients)
        async with TokenManager.from_config(str(path)) as tokens:
            issued = {name: await tokens.get_token(name) for name in clients}
        assert issued["bound"].token_type == "DPoP"
    seen = {(r.client_id, r.auth_method, r.outcome) for r in ep.requests}
    assert seen == {
        ("signed", "private_key_jwt", "issued"),
        ("locked-service", "private_key_jwt", "issued"),
        ("hmac", "client_secret_jwt", "issued"),
        ("basic", "client_secret_basic", "issued"),
        ("post", "client_secret_post", "issued"),
        ("public", "none", "issued"),
        ("bound", "client_secret_basic", "issued"),
    }
    for name, token in issued.items():
        info = ep.token_info(token.access_token)
        assert info is not None and info["client_id"] == clients[name].client_id


async def test_a_mapping_and_its_base_dir(workdir: Path) -> None:
    async with TokenEndpoint() as ep:
        ep.register_client("svc", public_key=signing_key("ES256"))
        config = {
            "manager": {"request_timeout": 3},
            "svc": {"issuer": ep.issuer, "private_key": "keys/es.pem"},
        }
        with pytest.raises(ConfigurationError, match=r"the clients mapping: \[svc\] private_key"):
            load_clients(config)  # relative to the cwd, which holds no keys/
        async with TokenManager.from_config(config, base_dir=workdir) as tokens:
            token = await tokens.get_token("svc")
        assert ep.token_info(token.access_token) is not None


def test_manager_settings_and_overrides(workdir: Path) -> None:
    path = workdir / "clients.toml"
    path.write_text(
        '[manager]\nrequest_timeout = 2\nretries = 0\n\n[a]\ntoken_endpoint = "https://idp/t"\n'
        'client_secret_env = "CONFIG_SECRET"\n'
    )
    tokens = TokenManager.from_config(path, renewal_buffer=5, retries=RetryPolicy(attempts=1))
    assert list(tokens.clients) == ["a"] and tokens.clients["a"].client_id == "a"
    # a keyword argument's own mistake is TokenManager's to name (it is not in the file)
    with pytest.raises(ConfigurationError, match=r"^request_timeout must be a positive"):
        TokenManager.from_config(path, request_timeout=-1)
    with pytest.raises(ConfigurationError, match="drop clients="):
        TokenManager.from_config(path, clients={})


# (file text, the field named, what else the message says); [c] is the client table
MISTAKES = [
    ("[c]\ntoken_endpoint = 'https://idp/t'\nprivat_key = 'keys/es.pem'\n", 3,
     "privat_key", "unknown field; did you mean 'private_key'?"),
    ("[c]\nclient_secret_env = 'CONFIG_SECRET'\n", 1, None, "give token_endpoint or issuer"),
    ("[c]\ntoken_endpoint = 'https://idp/t'\n", 1, None, "no credentials: give private_key"),
    ("[c]\ntoken_endpoint = 'https://idp/t'\nauth_method = 'private_key_jw'\n"
     "private_key = 'keys/es.pem'\n", 3, "auth_method",
     "unknown method 'private_key_jw'; use one of client_secret_basic"),
    ("[c]\ntoken_endpoint = 'https://idp/t'\nauth_method = 'client_secret_post'\n", 3,
     "auth_method", "client_secret_post needs a client secret: give client_secret_env or"),
    ("[c]\ntoken_endpoint = 'https://idp/t'\nprivate_key = 'keys/missing.pem'\n", 3,
     "private_key", "keys/missing.pem: No such file or directory"),
    ("[c]\ntoken_endpoint = 'https://idp/t'\nprivate_key = 'secret.txt'\n", 3,
     "private_key", "neither PEM, DER, PKCS#12 nor a JWK"),
    ("[c]\ntoken_endpoint = 'https://idp/t'\nprivate_key = 'keys'\n", 3,
     "private_key", "Is a directory"),
    ("[c]\ntoken_endpoint = 'https://idp/t'\nprivate_key = 'keys/locked.pem'\n", 3,
     "private_key", "the key is encrypted: give private_key_password_env or"),
    ("[c]\ntoken_endpoint = 'https://idp/t'\nprivate_key = 'keys/locked.pem'\n"
     "private_key_password_env = 'CONFIG_SECRET'\n", 3, "private_key", "the password is wrong"),
    ("[c]\ntoken_endpoint = 'https://idp/t'\nprivate_key = 5\n", 3,
     "private_key", "must be a path to the key file (a string), got an integer"),
    ("[c]\ntoken_endpoint = 'https://idp/t'\nclient_secret_env = 'JWTMINT_UNSET_VARIABLE'\n", 3,
     "client_secret_env", "the environment variable JWTMINT_UNSET_VARIABLE is not set"),
    ("[c]\ntoken_endpoint = 'https://idp/t'\nclient_secret_env = 'EMPTY_SECRET'\n", 3,
     "client_secret_env", "the environment variable EMPTY_SECRET is empty"),
    ("[c]\ntoken_endpoint = 'https://idp/t'\nclient_secret_file = 'nope.txt'\n", 3,
     "client_secret_file", "nope.txt: No such file or directory"),
    ("[c]\ntoken_endpoint = 'https://idp/t'\nclient_secret_file = 'empty.txt'\n", 3,
     "client_secret_file", "empty.txt is empty"),
    ("[c]\ntoken_endpoint = 'https://idp/t'\nclient_secret_file = 'secret.txt'\n"
     "client_secret_env = 'CONFIG_SECRET'\n", 4, "client_secret_env",
     "give client_secret_env or client_secret_file, not both"),
    (f"[c]\ntoken_endpoint = 'https://idp/t'\nclient_secret = '{SECRET}'\n", 3,
     "client_secret", "secrets are not written inline; give client_secret_env or"),
    (f"[c]\ntoken_endpoint = 'https://idp/t'\nprivate_key = 'keys/locked.pem'\n"
     f"private_key_password = '{PASSWORD}'\n", 4, "private_key_password", "not written inline"),
    ("[c]\ntoken_endpoint = 'https://idp/t'\nclient_secret_env = 'CONFIG_SECRET'\nscope = 5\n",
     4, "scope", "must be a string or an array of strings, got an integer"),
    ("[c]\ntoken_endpoint = 'https://idp/t'\nclient_secret_env = 'CONFIG_SECRET'\n"
     "assertion_lifetime = '60'\n", 4, "assertion_lifetime", "must be an integer of seconds"),
    ("[c]\ntoken_endpoint = 'https://idp/t'\nclient_secret_env = 'CONFIG_SECRET'\n"
     "allow_insecure_http = 'yes'\n", 4, "allow_insecure_http", "must be true or false"),
    ("[c]\ntoken_endpoint = 'https://idp/t'\nclient_secret_env = 'CONFIG_SECRET'\n"
     "resource = 'api'\n", 4, "resource", "absolute URIs without a fragment"),
    ("[c]\ntoken_endpoint = 'https://idp/t'\nclient_secret_env = 'CONFIG_SECRET'\n"
     "parameters = { grant_type = 'password' }\n", 4, "parameters", "may not set grant_type"),
    ("[c]\ntoken_endpoint = 'http://10.1.2.3/token'\nclient_secret_env = 'CONFIG_SECRET'\n", 2,
     None, "token_endpoint 'http://10.1.2.3/token' is plain http: use https, or "
     "allow_insecure_http = true for a trusted network"),
    ("[c]\ntoken_endpoint = 'https://idp/t'\nprivate_key = 'keys/es.pem'\n"
     "signing_algorithm = 'ES384'\n", 1, None, "client 'c': "),
    ("[c]\ntoken_endpoint = 'https://idp/t'\nprivate_key = 'keys/es.pem'\n"
     "signing_algorithm = 'ES257'\n", 4, "signing_algorithm", "unknown algorithm 'ES257'"),
    ("[c]\ntoken_endpoint = 'https://idp/t'\nprivate_key = 'keys/es.pem'\n"
     "client_secret_env = 'CONFIG_SECRET'\n", 4, "client_secret_env",
     "a client authenticates with a secret or private_key, not both"),
    ("[c]\ntoken_endpoint = 'https://idp/t'\nclient_secret_env = 'CONFIG_SECRET'\n"
     "dpop_key = 'keys/missing.pem'\n", 4, "dpop_key", "No such file or directory"),
    ("[c]\ntoken_endpoint = 'https://idp/t'\nclient_secret_env = 'CONFIG_SECRET'\n"
     "signing_algorithm = 'HS256'\n", 4, "signing_algorithm",
     "is for client assertions; client_secret_basic signs nothing"),
    ("[c]\ntoken_endpoint = 'https://idp/t'\nclient_secret_env = 'CONFIG_SECRET'\n"
     "dpop_algorithm = 'ES256'\n", 4, "dpop_algorithm", "is for dpop_key, which is not given"),
    ("[manager]\nrequest_timout = 3\n[c]\ntoken_endpoint = 'https://idp/t'\n", 2,
     "request_timout", "unknown setting; did you mean 'request_timeout'?"),
    ("[manager]\nrequest_timeout = '3'\n[c]\ntoken_endpoint = 'https://idp/t'\n", 2,
     "request_timeout", "must be a number of seconds, got a string"),
    ("[manager]\nretries = -1\n[c]\ntoken_endpoint = 'https://idp/t'\n", 2, "retries",
     "must be >= 0"),
    ("[manager]\nretries = { attempt = 2 }\n[c]\ntoken_endpoint = 'https://idp/t'\n", 2,
     "retries", "unknown field 'attempt'; did you mean 'attempts'?"),
]  # fmt: skip


@pytest.mark.parametrize(("text", "line", "field", "problem"), MISTAKES)
def test_every_mistake_names_file_line_client_and_field(
    workdir: Path,
    monkeypatch: pytest.MonkeyPatch,
    text: str,
    line: int,
    field: str | None,
    problem: str,
) -> None:
    monkeypatch.setenv("EMPTY_SECRET", "")
    (workdir / "empty.txt").write_text("\n")
    path = workdir / "clients.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigurationError) as caught:
        load_clients(path)
    message = str(caught.value)
    table = "[manager]" if text.startswith("[manager]") else "[c]"
    expected = f"{path}:{line}: {table} " + (f"{field}: " if field else "")
    assert message.startswith(expected), message
    assert problem in message
    assert SECRET not in message and PASSWORD not in message
    # and not hidden in the chain either
    assert caught.value.__cause__ is None
    assert caught.value.__context__ is None or caught.value.__suppress_context__
    # TokenManager.from_config raises the same
    with pytest.raises(ConfigurationError, match="^" + str(path).replace("\\", "\\\\")):
        TokenManager.from_config(path)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", "{path}: no clients: add a table for each client"),
        ("# nothing yet\n[manager]\nretries = 1\n", "{path}: no clients"),
        ("[c]\nscope = 'a'\nscope = 'b'\n", "{path}:3: not valid TOML: "),
        ("[c]\ntoken_endpoint 'https://idp/t'\n", "{path}:2: not valid TOML: "),
        ("scope = 'x'\n[c]\n", "{path}:1: scope: is a string outside any table"),
    ],
)
def test_file_level_mistakes(workdir: Path, text: str, expected: str) -> None:
    path = workdir / "clients.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigurationError) as caught:
        load_clients(path)
    assert str(caught.value).startswith(expected.format(path=path)), str(caught.value)


def test_a_missing_or_unreadable_file(workdir: Path) -> None:
    with pytest.raises(ConfigurationError, match=r"nope\.toml: cannot read it: No such file"):
        load_clients(workdir / "nope.toml")
    (workdir / "latin1.toml").write_bytes(b"[c]\nscope = '\xe9'\n")
    with pytest.raises(ConfigurationError, match=r"latin1.toml: not UTF-8 text"):
        load_clients(workdir / "latin1.toml")
    with pytest.raises(ConfigurationError, match="a path or a mapping of tables, got int"):
        load_clients(42)  # type: ignore[arg-type]


def test_a_toml_error_does_not_show_the_line(workdir: Path) -> None:
    path = workdir / "clients.toml"
    path.write_text(f"[c]\nclient_secret = '{SECRET}\n", encoding="utf-8")
    with pytest.raises(ConfigurationError) as caught:
        load_clients(path)
    assert SECRET not in str(caught.value) and str(path) in str(caught.value)


async def test_a_secret_file_loses_one_trailing_newline_only(workdir: Path) -> None:
    (workdir / "two.txt").write_text(SECRET + "\n\n")
    (workdir / "crlf.txt").write_bytes(SECRET.encode() + b"\r\n")
    path = workdir / "clients.toml"
    async with TokenEndpoint() as ep:
        for name, registered in [("one", SECRET), ("two", SECRET + "\n"), ("crlf", SECRET)]:
            ep.register_client(name, secret=registered, auth_method="client_secret_post")
        tables = "".join(
            f'[{name}]\ntoken_endpoint = "{ep.token_url}"\n'
            f'auth_method = "client_secret_post"\nclient_secret_file = "{file}"\n'
            for name, file in [("one", "secret.txt"), ("two", "two.txt"), ("crlf", "crlf.txt")]
        )
        path.write_text(tables)
        async with TokenManager.from_config(path) as tokens:
            for name in ("one", "two", "crlf"):
                await tokens.get_token(name)
    assert [r.outcome for r in ep.requests] == ["issued"] * 3


@pytest.mark.parametrize("field", ["client_secret_env", "client_secret_file"])
def test_a_secret_written_where_its_reference_belongs_is_not_shown(
    workdir: Path, field: str
) -> None:
    misplaced = "Zq8" + secrets.token_urlsafe(24).replace(".", "").replace("/", "")
    path = workdir / "clients.toml"
    path.write_text(f'[c]\ntoken_endpoint = "https://idp/t"\n{field} = "{misplaced}"\n')
    with pytest.raises(ConfigurationError) as caught:
        load_clients(path)
    assert str(caught.value).startswith(f"{path}:3: [c] {field}: ")
    assert misplaced not in str(caught.value) and "(not shown)" in str(caught.value)


def test_client_table_names_may_need_quotes(workdir: Path) -> None:
    path = workdir / "clients.toml"
    path.write_text(
        '["my client"]\ntoken_endpoint = "https://idp/t"\nclient_secret_env = "CONFIG_SECRET"\n'
        "scope = 1\n"
    )
    with pytest.raises(ConfigurationError) as caught:
        load_clients(path)
    assert str(caught.value).startswith(f'{path}:4: ["my client"] scope: must be a string')
