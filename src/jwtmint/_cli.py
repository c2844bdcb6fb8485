"""``jwtmint demo | bench | keygen | mint | token`` (also ``python -m jwtmint``).

Exit codes a script can rely on: 0 success; 1 the token endpoint refused the
request (its RFC 6749 ``error`` printed); 2 usage or configuration (argparse's
own code for bad arguments); 3 the token endpoint was unreachable, timed out,
kept failing or answered something that is not a token response.
"""

from __future__ import annotations

import argparse
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
        return EXIT_REFUSED
    return EXIT_USAGE


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="jwtmint", description="Fast OAuth 2.0 client assertions (RFC 7523)."
    )
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
        parser.exit(exit_code(exc), f"jwtmint {args.command}: error: {exc}\n")


if __name__ == "__main__":
    sys.exit(main())
