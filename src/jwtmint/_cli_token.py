"""The ``jwtmint token`` command: its arguments and how it fetches one access token."""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

from .errors import JwtMintError

__all__ = ["add_token", "run_token"]


def add_token(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    token = commands.add_parser(
        "token", help="fetch one access token (client_credentials) and print it"
    )
    token.add_argument("--client-id", required=True)
    where = token.add_mutually_exclusive_group(required=True)
    where.add_argument("--issuer", help="discover the token endpoint (RFC 8414 / OpenID)")
    where.add_argument("--token-endpoint")
    token.add_argument("--key", type=Path, help="private key file: private_key_jwt")
    token.add_argument(
        "--secret-env", metavar="VAR",
        help="read the client secret from this environment variable (never from argv)",
    )  # fmt: skip
    token.add_argument(
        "--auth-method",
        help="default: private_key_jwt with --key, client_secret_basic with --secret-env; "
        "'none' (no credentials) only when asked for",
    )
    token.add_argument("--alg", help="assertion algorithm (default: the key's, or HS256)")
    token.add_argument("--scope")
    token.add_argument("--resource", action="append", help="RFC 8707 resource; repeatable")
    token.add_argument("--audience", help="assertion aud (default: the issuer)")
    token.add_argument("--json", action="store_true", help="the whole token response")


def run_token(args: argparse.Namespace) -> int:
    from .tokens import ClientCredentialsClient, TokenManager, run

    secret = None
    if args.secret_env is not None:
        secret = os.environ.get(args.secret_env)
        if not secret:
            raise JwtMintError(f"environment variable {args.secret_env} is empty or unset")
    client = ClientCredentialsClient(
        args.client_id,
        issuer=args.issuer,
        token_endpoint=args.token_endpoint,
        client_secret=secret,
        private_key=args.key,
        auth_method=args.auth_method,
        signing_algorithm=args.alg,
        audience=args.audience,
        scope=args.scope,
        resource=args.resource,
    )

    async def fetch() -> dict[str, object]:
        async with TokenManager({"cli": client}) as tokens:
            return dict((await tokens.get_token("cli")).raw)

    raw = run(fetch())
    print(json.dumps(raw) if args.json else raw["access_token"])
    return 0
