"""``jwtmint demo | bench | keygen | mint | token`` (also ``python -m jwtmint``)."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

from cryptography.hazmat.primitives import serialization

from ._algorithms import ALGORITHMS
from ._assertion import AssertionSigner
from ._b64 import b64url_encode
from ._keys import generate_key, load_key
from .bench.adapters import PEERS
from .bench.settings import DEFAULT_ALGORITHMS, DEMO_ALGORITHMS
from .errors import JwtMintError

__all__ = ["main"]

_DEMO_ALGORITHMS = ",".join(DEMO_ALGORITHMS)
_BENCH_ALGORITHMS = ",".join(DEFAULT_ALGORITHMS)
_PEERS = ",".join(peer.name for peer in PEERS)


_QUICK = "fewer, shorter timing rounds: a quick look, not figures to quote"


def _names(known: Iterable[str]) -> Callable[[str], list[str]]:
    """An argparse type: a comma-separated list of names from ``known``."""
    choices = list(known)

    def parse(text: str) -> list[str]:
        names = [name.strip() for name in text.split(",") if name.strip()]
        unknown = [name for name in names if name not in choices]
        if unknown or not names:
            raise argparse.ArgumentTypeError(
                f"unknown {', '.join(unknown) or 'empty list'}; choose from {', '.join(choices)}"
            )
        return names

    return parse


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="jwtmint", description="Fast OAuth 2.0 client assertions (RFC 7523)."
    )
    commands = parser.add_subparsers(dest="command", required=True)

    demo = commands.add_parser("demo", help="mint, verify and time assertions vs PyJWT")
    demo.add_argument("--quick", action="store_true", help=_QUICK)
    demo.add_argument("--json", action="store_true", help="machine-readable results only")
    demo.add_argument(
        "--algorithms", type=_names(ALGORITHMS), default=_DEMO_ALGORITHMS.split(","),
        metavar="ALG,ALG", help="comma-separated subset (default: all nine)",
    )  # fmt: skip

    bench = commands.add_parser("bench", help="jwtmint vs the peers vs the signing floor")
    bench.add_argument(
        "mode", nargs="?", choices=["tokens", "redis", "pyjwt", "dpop"],
        help="tokens: TokenManager vs authlib's AsyncOAuth2Client, cached and cold tokens; "
        "redis: RedisTokenCache hits, misses and a fleet of 8 (starts its own redis-server); "
        "pyjwt: jwt.encode under patch_pyjwt() vs unpatched, jwtmint.encode and the floor; "
        "dpop: a DPoP proof per request, with and without ECDSA precomputation, vs PyJWT",
    )  # fmt: skip
    bench.add_argument("--quick", action="store_true", help=_QUICK)
    bench.add_argument("--json", action="store_true", help="machine-readable results only")
    bench.add_argument(
        "--algorithms", type=_names(ALGORITHMS), default=_BENCH_ALGORITHMS.split(","),
        metavar="ALG,ALG",
        help=f"comma-separated (default: {_BENCH_ALGORITHMS})",
    )  # fmt: skip
    bench.add_argument(
        "--peers", type=_names(_PEERS.split(",")), default=None, metavar="NAME,NAME",
        help=f"comma-separated subset of {_PEERS} (default: all; PyJWT is always timed)",
    )  # fmt: skip
    bench.add_argument("--repeats", type=int, help="batches per contender (default 15, quick 7)")
    bench.add_argument("--batch-ms", type=float, help="ms per batch (default 50, quick 15)")

    keygen = commands.add_parser("keygen", help="a new private key (PEM) and its public JWK")
    keygen.add_argument("--alg", default="ES256")
    keygen.add_argument("--kid", help="key id (default: the RFC 7638 thumbprint)")
    keygen.add_argument("--out", type=Path, help="write the private key here (mode 0600)")

    mint = commands.add_parser("mint", help="print one client assertion (RFC 7523)")
    mint.add_argument("--key", type=Path, required=True, help="PEM, DER, JWK or secret file")
    mint.add_argument("--client-id", required=True)
    mint.add_argument("--audience", required=True, action="append", help="repeatable")
    mint.add_argument("--alg", help="default: the key's algorithm")
    mint.add_argument("--kid")
    mint.add_argument("--lifetime", type=int, default=60, help="seconds (default 60)")

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

    args = parser.parse_args(argv)
    try:
        if args.command == "keygen":
            return _keygen(args)
        if args.command == "mint":
            return _mint(args)
        if args.command == "token":
            return _token(args)
        if args.command == "bench" and args.mode == "tokens":
            from .bench.token_runner import main as run_tokens

            return run_tokens(
                quick=args.quick, as_json=args.json, repeats=args.repeats, batch_ms=args.batch_ms
            )
        if args.command == "bench" and args.mode == "redis":
            from .bench.redis_runner import main as run_redis

            return run_redis(
                quick=args.quick, as_json=args.json, repeats=args.repeats, batch_ms=args.batch_ms
            )
        if args.command == "bench" and args.mode == "dpop":
            from .bench.dpop import main as run_dpop

            return run_dpop(quick=args.quick, as_json=args.json, repeats=args.repeats)
        if args.command == "bench" and args.mode == "pyjwt":
            from .bench.pyjwt_patch import main as run_pyjwt

            return run_pyjwt(
                quick=args.quick, as_json=args.json, repeats=args.repeats, batch_ms=args.batch_ms
            )
        if args.command == "bench":
            from .bench.runner import main as run_bench

            return run_bench(
                algorithms=args.algorithms, peers=args.peers, quick=args.quick,
                as_json=args.json, repeats=args.repeats, batch_ms=args.batch_ms,
            )  # fmt: skip
        from .bench.demo import run_demo

        return run_demo(args.algorithms, quick=args.quick, as_json=args.json)
    except (JwtMintError, OSError) as exc:
        parser.exit(2, f"jwtmint {args.command}: error: {exc}\n")


def _keygen(args: argparse.Namespace) -> int:
    key = generate_key(args.alg, kid=args.kid)
    if isinstance(key.key, bytes):
        private = json.dumps(
            {"kty": "oct", "k": b64url_encode(key.key).decode(), "alg": key.algorithm}
            | ({"kid": key.kid} if key.kid else {})
        )
        public = None
    else:
        private = key.key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode("ascii")
        public = json.dumps(key.public_jwk(), indent=2)
    if args.out is not None:
        fd = os.open(args.out, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="ascii") as handle:
            handle.write(private.rstrip("\n") + "\n")
        print(f"private key written to {args.out}", file=sys.stderr)
    else:
        print(private.rstrip("\n"))
    if public is not None:
        print(public)
    return 0


def _mint(args: argparse.Namespace) -> int:
    key = load_key(args.key, kid=args.kid, algorithm=args.alg)
    audience = args.audience[0] if len(args.audience) == 1 else args.audience
    # one mint and exit: no pairs to make ahead of time
    signer = AssertionSigner(key, args.client_id, audience, lifetime=args.lifetime, precompute=0)
    print(signer.mint())
    return 0


def _token(args: argparse.Namespace) -> int:
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


if __name__ == "__main__":
    sys.exit(main())
