"""The ``jwtmint token`` command: its arguments and how it fetches one access token.

The client comes from the flags (``--client-id``, ``--issuer`` or ``--token-endpoint``,
``--key`` or ``--secret-env``, ...) or from a clients file (``--config FILE --client NAME``);
either way it is checked by the clients file's own code, so that a mistake is named by
the flag or by the file, table and field the user wrote.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import TYPE_CHECKING, Final

from ._display import shown
from .errors import ConfigurationError, JwtMintError

if TYPE_CHECKING:  # imported when the command runs: aiohttp is slow to import
    from .tokens import TokenManager

__all__ = ["add_token", "run_token"]

#: the client's settings as flags: argparse dest -> the clients-file field it sets
_CLIENT_FLAGS: Final = {
    "client_id": "client_id",
    "issuer": "issuer",
    "token_endpoint": "token_endpoint",
    "key": "private_key",
    "key_password_env": "private_key_password_env",
    "key_password_file": "private_key_password_file",
    "secret_env": "client_secret_env",
    "secret_file": "client_secret_file",
    "auth_method": "auth_method",
    "alg": "signing_algorithm",
    "audience": "audience",
    "allow_insecure_http": "allow_insecure_http",
}
#: field -> how messages name it on the command line
_LABELS: Final = {field: "--" + dest.replace("_", "-") for dest, field in _CLIENT_FLAGS.items()} | {
    "scope": "--scope",
    "resource": "--resource",
}


def add_token(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    token = commands.add_parser(
        "token",
        help="fetch one access token (client_credentials) and print it",
        description="Fetch one access token (client_credentials, RFC 6749 §4.4) and print it. "
        "Describe the client with the flags, or name it in a clients file with --config and "
        "--client. Exit codes: 0 a token, 1 refused by the token endpoint, 2 usage or "
        "configuration, 3 endpoint unreachable, timed out or not answering OAuth.",
    )
    from_file = token.add_argument_group("a client from a clients file")
    from_file.add_argument("--config", type=Path, metavar="FILE", help="clients file (TOML)")
    from_file.add_argument(
        "--client", metavar="NAME", help="its client's table name (optional if it has one)"
    )
    inline = token.add_argument_group("a client from flags (not with --config)")
    inline.add_argument("--client-id", metavar="ID")
    inline.add_argument(
        "--issuer", metavar="URL", help="discover the token endpoint (RFC 8414 / OpenID)"
    )
    inline.add_argument("--token-endpoint", metavar="URL")
    inline.add_argument(
        "--key", type=Path, metavar="FILE", help="private key file: private_key_jwt"
    )
    inline.add_argument(
        "--key-password-env", metavar="VAR", help="the --key file's password, from this variable"
    )
    inline.add_argument(
        "--key-password-file", type=Path, metavar="FILE", help="the --key file's password"
    )
    inline.add_argument(
        "--secret-env", metavar="VAR",
        help="read the client secret from this environment variable (never from argv)",
    )  # fmt: skip
    inline.add_argument(
        "--secret-file", type=Path, metavar="FILE", help="read the client secret from this file"
    )
    inline.add_argument(
        "--auth-method",
        metavar="METHOD",
        help="default: private_key_jwt with --key, client_secret_basic with a secret; "
        "'none' (no credentials) only when asked for",
    )
    inline.add_argument("--alg", help="assertion algorithm (default: the key's, or HS256)")
    inline.add_argument("--audience", metavar="AUD", help="assertion aud (default: the issuer)")
    inline.add_argument(
        "--allow-insecure-http",
        action="store_true",
        help="allow plain http to a host that is not loopback (a trusted network only)",
    )
    token.add_argument("--scope", help="space-delimited scopes (default: the client's)")
    token.add_argument(
        "--resource", metavar="URI", action="append", help="RFC 8707 resource; repeatable"
    )
    token.add_argument("--json", action="store_true", help="the whole token response")


def run_token(args: argparse.Namespace) -> int:
    from .tokens import run
    from .tokens._client import normal_resources

    if args.config is not None:
        tokens, name = _from_file(args)
    else:
        tokens, name = _from_flags(args)
    for resource in args.resource or ():
        try:
            normal_resources(resource)
        except ConfigurationError:
            raise ConfigurationError(
                f"--resource {shown(resource, quote=True)} is not an absolute URI without a "
                "fragment (RFC 8707)"
            ) from None

    async def fetch() -> dict[str, object]:
        async with tokens:
            token = await tokens.get_token(name, scope=args.scope, resource=args.resource)
            return dict(token.raw)

    try:
        raw = run(fetch())
    except JwtMintError as exc:
        _in_cli_words(exc, file=args.config is not None)
        raise
    print(json.dumps(raw) if args.json else raw["access_token"])
    return 0


def _in_cli_words(error: JwtMintError, *, file: bool) -> None:
    """Say the library's advice (``token_endpoint=``, ``RetryPolicy(deadline=)``) as the user
    would act on it: a flag, or a clients-file field. The error keeps its class and
    attributes (the exit code depends on the class)."""
    if len(error.args) != 1 or not isinstance(error.args[0], str):
        return
    words = {
        "configure token_endpoint=": "set token_endpoint" if file else "give --token-endpoint",
        "set signing_algorithm=": "set signing_algorithm" if file else "give --alg",
        "allow_insecure_http=True": "allow_insecure_http = true"
        if file
        else "--allow-insecure-http",
        "give RetryPolicy(deadline=) more time": "give [manager] retries.deadline more time"
        if file
        else "try again",
    }
    message = error.args[0]
    for library, cli in words.items():
        message = message.replace(library, cli)
    error.args = (message,)


def _from_file(args: argparse.Namespace) -> tuple[TokenManager, str]:
    from .tokens import TokenManager
    from .tokens._config import client_names, manager_from_config

    given = [_LABELS[field] for dest, field in _CLIENT_FLAGS.items() if getattr(args, dest)]
    if given:
        raise ConfigurationError(
            f"--config takes the client from the file: drop {', '.join(given)} (only --client, "
            "--scope, --resource and --json go with it)"
        )
    name = args.client
    if name is None:
        # counted before any client is built: a missing --client is the mistake to name,
        # not another client's unset secret
        names = client_names(args.config)
        if len(names) != 1:
            raise ConfigurationError(
                f"{args.config} has {len(names)} clients: name one with --client "
                f"({', '.join(names)})"
            )
        name = names[0]
    # only the client asked for: the others' secrets need not be set for this call
    tokens = manager_from_config(TokenManager, args.config, base_dir=None, overrides={}, only=name)
    return tokens, name


def _from_flags(args: argparse.Namespace) -> tuple[TokenManager, str]:
    from .tokens import TokenManager
    from .tokens._config_fields import Origin, build_client

    if args.client is not None:
        raise ConfigurationError("--client names a client of --config FILE; give that too")
    if args.client_id is None:
        raise ConfigurationError(
            "give --client-id (with --issuer or --token-endpoint, and --key or --secret-env), "
            "or --config FILE --client NAME"
        )
    if args.issuer is not None and args.token_endpoint is not None:
        raise ConfigurationError("give --issuer or --token-endpoint, not both")
    fields = {
        field: str(value) if isinstance(value, Path) else value
        for dest, field in _CLIENT_FLAGS.items()
        if (value := getattr(args, dest)) not in (None, False)
    }
    client = build_client(Origin(None, Path.cwd(), flags=_LABELS), None, fields)
    if client.needs_assertions:
        raise ConfigurationError("--auth-method private_key_jwt needs --key")
    # named by its client id, so that every message says which client it was
    return TokenManager({args.client_id: client}), args.client_id
