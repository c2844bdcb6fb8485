"""The ``jwtmint keygen`` and ``jwtmint mint`` commands: their arguments and how they run.

``keygen`` keeps stdout machine-readable: it prints the JWK Set to register at the
authorization server (``{"keys": [...]}``, RFC 7517 §5) and nothing else, so
``jwtmint keygen --out keys/invoice.pem > jwks.json`` works; the private key never goes to
a terminal unasked: it is written to ``--out`` (mode 0600), or to stdout alone with
``--out -`` (then the JWK Set goes to ``--jwks-out``, or to stderr). Neither file is ever
overwritten.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from pathlib import Path
from typing import TextIO

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from ._algorithms import ALGORITHMS, HMAC_ALGORITHMS, MIN_RSA_BITS
from ._assertion import AssertionSigner
from ._b64 import b64url_encode
from ._jwk import MAX_RSA_BITS
from ._keys import SigningKey, generate_key, load_key
from .errors import ConfigurationError, InvalidKeyError

__all__ = ["add_keygen", "add_mint", "run_keygen", "run_mint"]

#: ``algorithm='HS256'`` in a loader's message, to show as ``--alg HS256``
_PYTHON_ARGUMENT = re.compile(r"\balgorithm='([^']*)'")
#: the algorithms a PEM key of theirs signs with when no algorithm is named
_PEM_DEFAULTS = frozenset({"RS256", "ES256", "ES384", "ES512", "EdDSA"})
#: the longest assertion lifetime ``mint`` accepts, as AssertionSigner does (a year)
_MAX_LIFETIME = 365 * 24 * 3600

_KEYGEN_HELP = """\
Make a new signing key. stdout gets the JWK Set to register at the authorization server
(JSON only, so `jwtmint keygen --out keys/invoice.pem > jwks.json` works); the private key
goes to --out FILE (PKCS#8 PEM, mode 0600; missing directories are made, mode 0700; an
existing file is never overwritten). `--out -` prints the private key alone on stdout
instead (to pipe it into a secret store); the JWK Set then goes to --jwks-out, or to stderr.
For HS256/384/512 there is no public key: --out gets a random base64url secret (no final
newline) that is the client secret to register, and stdout stays empty."""


def _alg(text: str) -> str:
    if text not in ALGORITHMS:
        raise argparse.ArgumentTypeError(
            f"unknown algorithm {text!r}; choose from {', '.join(sorted(ALGORITHMS))}"
        )
    return text


def _kid(text: str) -> str:
    if not text.strip():
        raise argparse.ArgumentTypeError("a key id must not be empty")
    return text


def _bits(text: str) -> int:
    try:
        bits = int(text)
    except ValueError:
        bits = 0
    if not MIN_RSA_BITS <= bits <= MAX_RSA_BITS:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a number of bits from {MIN_RSA_BITS} to {MAX_RSA_BITS}"
        )
    return bits


def _lifetime(text: str) -> int:
    try:
        seconds = int(text)
    except ValueError:
        seconds = 0
    if not 1 <= seconds <= _MAX_LIFETIME:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a whole number of seconds from 1 to {_MAX_LIFETIME} (a year)"
        )
    return seconds


def add_keygen(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    keygen = commands.add_parser(
        "keygen", help="a new private key, and the JWK Set to register",
        description=_KEYGEN_HELP,
    )  # fmt: skip
    keygen.add_argument(
        "--alg", type=_alg, default="ES256", metavar="ALG",
        help=f"one of {', '.join(sorted(ALGORITHMS))} (default ES256); EdDSA is Ed25519",
    )  # fmt: skip
    keygen.add_argument(
        "--bits", type=_bits, metavar="N",
        help=f"RSA modulus size for RS*/PS* (default {MIN_RSA_BITS})",
    )  # fmt: skip
    keygen.add_argument(
        "--kid", type=_kid, help="key id (default: the RFC 7638 thumbprint; HS*: none)"
    )
    keygen.add_argument(
        "--out", metavar="FILE", required=True,
        help="where to write the private key or secret (mode 0600); '-' for stdout",
    )  # fmt: skip
    keygen.add_argument(
        "--jwks-out", type=Path, metavar="FILE",
        help="also write the JWK Set to this file (never overwritten)",
    )  # fmt: skip


def add_mint(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    mint = commands.add_parser("mint", help="print one client assertion (RFC 7523)")
    mint.add_argument("--key", type=Path, required=True, help="PEM, DER, JWK or secret file")
    mint.add_argument("--client-id", required=True)
    mint.add_argument("--audience", required=True, action="append", help="repeatable")
    mint.add_argument(
        "--alg", type=_alg, metavar="ALG",
        help="default: the key's algorithm; HS256/384/512 for a secret file",
    )  # fmt: skip
    mint.add_argument("--kid", type=_kid, help="default: the key's (its thumbprint)")
    mint.add_argument("--lifetime", type=_lifetime, default=60, help="seconds (default 60)")


def _new_key(alg: str, bits: int | None, kid: str | None) -> SigningKey:
    if bits is not None:
        if ALGORITHMS[alg].kty != "RSA":
            raise ConfigurationError(f"--bits is for RS*/PS* keys only, not {alg}")
        private = rsa.generate_private_key(public_exponent=65537, key_size=bits)
        return load_key(private, kid=kid, algorithm=alg)
    return generate_key(alg, kid=kid)


def _refuse_existing(path: Path, flag: str) -> None:
    if path.exists() or path.is_symlink():
        raise ConfigurationError(f"{path} exists; choose another {flag} or remove it")


def _write_new(path: Path, text: str, flag: str, mode: int) -> None:
    """Write ``text`` to a file that must not exist yet, made with ``mode`` (no window in
    which a private key sits readable by others), its missing directories with 0700."""
    missing = [parent for parent in path.parent.parents if not parent.is_dir()]
    for directory in [*reversed(missing), path.parent]:
        # each one 0700 (Path.mkdir(parents=True) would give the upper ones the umask's)
        directory.mkdir(mode=0o700, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    except FileExistsError:
        raise ConfigurationError(f"{path} exists; choose another {flag} or remove it") from None
    with os.fdopen(fd, "w", encoding="ascii") as handle:
        handle.write(text)


def _private_text(key: SigningKey) -> str:
    if isinstance(key.key, bytes):
        return key.key.decode("ascii")
    return key.key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode("ascii")


def run_keygen(args: argparse.Namespace) -> int:
    to_stdout = args.out == "-"
    out = None if to_stdout else Path(args.out)
    jwks_out: Path | None = args.jwks_out
    hmac = args.alg in HMAC_ALGORITHMS
    if hmac and jwks_out is not None:
        raise ConfigurationError(f"{args.alg} has no public key: drop --jwks-out")
    if out is not None and jwks_out is not None and out.absolute() == jwks_out.absolute():
        raise ConfigurationError("--out and --jwks-out name the same file")
    # both checked before anything is made: a refusal leaves no half-written pair behind
    if out is not None:
        _refuse_existing(out, "--out")
    if jwks_out is not None:
        _refuse_existing(jwks_out, "--jwks-out")
    if hmac:
        # the secret is this base64url text (its ASCII octets are the HMAC key, as a
        # client_secret's are for client_secret_jwt), so it can be registered as typed
        secret = b64url_encode(os.urandom(ALGORITHMS[args.alg].hash_size))
        key = load_key(secret, kid=args.kid, algorithm=args.alg)
    else:
        key = _new_key(args.alg, args.bits, args.kid)
    private = _private_text(key)
    jwks = None if hmac else json.dumps({"keys": [key.public_jwk()]}, indent=2) + "\n"
    if jwks is not None and jwks_out is not None:
        # the public half first: if it cannot be written, no private key is left behind
        # without the JWK Set that registers it
        _write_new(jwks_out, jwks, "--jwks-out", 0o644)
    try:
        if out is None:
            sys.stdout.write(private if not hmac else private + "\n")
        else:
            _write_new(out, private, "--out", 0o600)
    except BaseException:
        if jwks_out is not None:
            jwks_out.unlink(missing_ok=True)
        raise
    if jwks is None:
        where = "printed above" if out is None else f"written to {out}"
        print(
            f"{args.alg} secret {where}: register it as the client's secret "
            "(client_secret_jwt); there is no public key",
            file=sys.stderr,
        )
        return 0
    jwks_stream: TextIO = sys.stderr if to_stdout else sys.stdout
    if out is not None or jwks_out is None:
        jwks_stream.write(jwks)
    if out is not None:
        saved = f" and {jwks_out}" if jwks_out is not None else ""
        # a PEM does not say which algorithm it is for: RSA keys sign RS256 unless told
        hint = "" if args.alg in _PEM_DEFAULTS else f"; sign with --alg {args.alg}"
        print(
            f"private key written to {out}; register the JWK Set (stdout{saved}) "
            f"at the authorization server (kid {key.kid}){hint}",
            file=sys.stderr,
        )
    return 0


def _check_readable(path: Path) -> None:
    # the loader is given the path, not the bytes: bytes of an unknown format would be taken
    # as an HMAC secret, a path's must be key material unless --alg says HS*
    try:
        with path.open("rb"):
            pass
    except OSError as exc:
        raise ConfigurationError(f"cannot read --key {path}: {exc.strerror or exc}") from None


def run_mint(args: argparse.Namespace) -> int:
    _check_readable(args.key)
    try:
        key = load_key(args.key, kid=args.kid, algorithm=args.alg)
    except InvalidKeyError as exc:
        # the loader's advice names its Python arguments; here they are flags
        raise InvalidKeyError(_PYTHON_ARGUMENT.sub(r"--alg \1", str(exc))) from None
    audience = args.audience[0] if len(args.audience) == 1 else args.audience
    # one mint and exit: no pairs to make ahead of time
    signer = AssertionSigner(key, args.client_id, audience, lifetime=args.lifetime, precompute=0)
    print(signer.mint())
    return 0
