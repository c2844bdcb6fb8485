"""``jwtmint demo | bench | keygen | mint | token`` (also ``python -m jwtmint``).

``jwtmint --version`` (``-V``) prints the version, the active implementation (``c``: the
Cython module, ``py``: the Python twin) and the versions of cryptography and Python.

Exit codes a script can rely on: 0 success; 1 the token endpoint refused the
request (its RFC 6749 ``error`` printed); 2 usage or configuration (argparse's
own code for bad arguments); 3 the token endpoint was unreachable, timed out,
kept failing or answered something that is not a token response.
"""

from __future__ import annotations

import argparse
import platform
import sys
from collections.abc import Sequence

from ._cli_bench import add_bench, add_demo, run_bench, run_demo
from ._cli_keys import add_keygen, add_mint, run_keygen, run_mint
from ._cli_token import add_token, run_token
from .errors import JwtMintError, TokenEndpointError, TokenRequestError

__all__ = ["EXIT_OK", "EXIT_REFUSED", "EXIT_UNREACHABLE", "EXIT_USAGE", "main"]

EXIT_OK = 0
EXIT_REFUSED = 1
EXIT_USAGE = 2
EXIT_UNREACHABLE = 3

_RUN = {
    "demo": run_demo,
    "bench": run_bench,
    "keygen": run_keygen,
    "mint": run_mint,
    "token": run_token,
}


def exit_code(error: BaseException) -> int:
    """The exit code for an error a command raised (see the module docstring)."""
    if isinstance(error, TokenEndpointError):
        return EXIT_UNREACHABLE
    if isinstance(error, TokenRequestError):
        # a refusal names its RFC 6749 error; a 404 page or a bare 401 is no OAuth answer
        # (a wrong URL, a proxy): a script must not take it for refused credentials
        return EXIT_REFUSED if error.error is not None else EXIT_UNREACHABLE
    return EXIT_USAGE


def version_line() -> str:
    """``jwtmint X.Y.Z (implementation: c, cryptography A.B, Python x.y.z)``."""
    import cryptography

    from . import IMPLEMENTATION, __version__

    return (
        f"jwtmint {__version__} (implementation: {IMPLEMENTATION}, "
        f"cryptography {cryptography.__version__}, Python {platform.python_version()})"
    )


def message(error: BaseException) -> str:
    """One line for an error a command raised: an ``OSError`` without its errno."""
    if isinstance(error, OSError) and error.strerror and error.filename is not None:
        return f"{error.filename}: {error.strerror}"
    return str(error)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="jwtmint",
        description="Fast OAuth 2.0 client assertions (RFC 7523).",
        epilog="exit codes: 0 success; 1 refused by the token endpoint; 2 usage or "
        "configuration; 3 token endpoint unreachable, timed out or not answering OAuth",
    )
    parser.add_argument(
        "-V", "--version", action="version", version=version_line(),
        help="print the version, the implementation (c or py) and exit",
    )  # fmt: skip
    commands = parser.add_subparsers(dest="command", required=True)
    add_demo(commands)
    add_bench(commands)
    add_keygen(commands)
    add_mint(commands)
    add_token(commands)
    args = parser.parse_args(argv)
    try:
        return _RUN[args.command](args)
    except (JwtMintError, OSError) as exc:
        parser.exit(exit_code(exc), f"jwtmint {args.command}: error: {message(exc)}\n")


if __name__ == "__main__":
    sys.exit(main())
