"""The ``jwtmint keygen`` and ``jwtmint mint`` commands: their arguments and how they run."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from cryptography.hazmat.primitives import serialization

from ._assertion import AssertionSigner
from ._b64 import b64url_encode
from ._keys import generate_key, load_key

__all__ = ["add_keygen", "add_mint", "run_keygen", "run_mint"]


def add_keygen(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    keygen = commands.add_parser("keygen", help="a new private key (PEM) and its public JWK")
    keygen.add_argument("--alg", default="ES256")
    keygen.add_argument("--kid", help="key id (default: the RFC 7638 thumbprint)")
    keygen.add_argument("--out", type=Path, help="write the private key here (mode 0600)")


def add_mint(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    mint = commands.add_parser("mint", help="print one client assertion (RFC 7523)")
    mint.add_argument("--key", type=Path, required=True, help="PEM, DER, JWK or secret file")
    mint.add_argument("--client-id", required=True)
    mint.add_argument("--audience", required=True, action="append", help="repeatable")
    mint.add_argument("--alg", help="default: the key's algorithm")
    mint.add_argument("--kid")
    mint.add_argument("--lifetime", type=int, default=60, help="seconds (default 60)")


def run_keygen(args: argparse.Namespace) -> int:
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


def run_mint(args: argparse.Namespace) -> int:
    key = load_key(args.key, kid=args.kid, algorithm=args.alg)
    audience = args.audience[0] if len(args.audience) == 1 else args.audience
    # one mint and exit: no pairs to make ahead of time
    signer = AssertionSigner(key, args.client_id, audience, lifetime=args.lifetime, precompute=0)
    print(signer.mint())
    return 0
