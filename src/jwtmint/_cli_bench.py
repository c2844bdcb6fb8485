"""The ``jwtmint demo`` and ``jwtmint bench`` commands: their arguments and how they run."""

from __future__ import annotations

import argparse
import importlib
import math
from collections.abc import Callable, Iterable
from pathlib import Path

from ._algorithms import ALGORITHMS
from .bench.adapters import PEERS
from .bench.settings import DEFAULT_ALGORITHMS, DEMO_ALGORITHMS
from .errors import ConfigurationError

__all__ = ["add_bench", "add_demo", "run_bench", "run_demo"]

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


def _positive(kind: Callable[[str], float]) -> Callable[[str], float]:
    """An argparse type: a number above zero (a count of batches, milliseconds)."""

    def parse(text: str) -> float:
        try:
            value = kind(text)
        except ValueError:
            value = 0
        if not 0 < value < math.inf:
            what = "whole number" if kind is int else "number"
            raise argparse.ArgumentTypeError(f"{text!r} is not a {what} above 0")
        return value

    return parse


def add_demo(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    demo = commands.add_parser(
        "demo",
        help="time assertions vs PyJWT, then 330 clients of every auth method under load; "
        "a summary and a verdict (exit 1 if a check failed)",
    )
    demo.add_argument("--quick", action="store_true", help=_QUICK)
    demo.add_argument("--json", action="store_true", help="machine-readable results only")
    demo.add_argument(
        "--algorithms", type=_names(ALGORITHMS), default=_DEMO_ALGORITHMS.split(","),
        metavar="ALG,ALG", help="comma-separated subset (default: all nine)",
    )  # fmt: skip


#: each mode's module in jwtmint.bench, and the options its main() takes besides quick, as_json
#: and repeats (imported when asked for: each pulls in what only it needs)
_MODES: dict[str, tuple[str, tuple[str, ...]]] = {
    "tokens": ("token_runner", ("batch_ms",)),
    "redis": ("redis_runner", ("batch_ms",)),
    "pyjwt": ("pyjwt_patch", ("batch_ms",)),
    "dpop": ("dpop", ()),
    "gateway": ("gateway", ("plot",)),
    "batch": ("batch", ()),
}


def add_bench(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    bench = commands.add_parser("bench", help="jwtmint vs the peers vs the signing floor")
    bench.add_argument(
        "mode", nargs="?", choices=list(_MODES),
        help="tokens: TokenManager vs authlib's AsyncOAuth2Client, cached and cold tokens; "
        "redis: RedisTokenCache hits, misses and a fleet of 8 (starts its own redis-server); "
        "pyjwt: jwt.encode under patch_pyjwt() vs unpatched, jwtmint.encode and the floor; "
        "dpop: a DPoP proof per request, with and without ECDSA precomputation, vs PyJWT; "
        "gateway: an aiohttp gateway forwarding requests with tokens of many clients, under load; "
        "batch: mint_many against one process per core (the ceiling), and the scaling model",
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
    bench.add_argument(
        "--plot", type=Path, metavar="FILE.png",
        help="also draw the peer comparison as a PNG: grouped bars, log scale, the signing "
        "floor marked (needs matplotlib: pip install 'jwtmint[plot]')",
    )  # fmt: skip
    bench.add_argument(
        "--repeats", type=_positive(int), metavar="N",
        help="batches per contender (default 15, quick 7)",
    )  # fmt: skip
    bench.add_argument(
        "--batch-ms", type=_positive(float), metavar="MS",
        help="ms per batch (default 50, quick 15)",
    )  # fmt: skip


def run_demo(args: argparse.Namespace) -> int:
    from .bench.demo import run_demo as demo

    return demo(args.algorithms, quick=args.quick, as_json=args.json)


def _check_plot(args: argparse.Namespace) -> None:
    """Refuse a --plot that cannot be written before minutes of timing, not after."""
    path: Path = args.plot
    if args.mode not in (None, "gateway"):
        raise ConfigurationError(
            f"--plot draws the peer comparison and bench gateway only, not bench {args.mode}"
        )
    if path.suffix.lower() != ".png":
        raise ConfigurationError(f"--plot writes a PNG: name the file *.png, not {path}")
    if not path.parent.is_dir():
        raise ConfigurationError(f"--plot {path}: directory {path.parent} does not exist")
    from .bench.plot import require_matplotlib

    require_matplotlib()


def run_bench(args: argparse.Namespace) -> int:
    if args.plot is not None:
        _check_plot(args)
    if args.mode is not None:
        module_name, extra = _MODES[args.mode]
        module = importlib.import_module(f"{__package__}.bench.{module_name}")
        options = {"quick": args.quick, "as_json": args.json, "repeats": args.repeats}
        options.update({name: getattr(args, name) for name in extra})
        code: int = module.main(**options)
        return code
    from .bench.runner import main as run_peers

    return run_peers(
        algorithms=args.algorithms, peers=args.peers, quick=args.quick,
        as_json=args.json, repeats=args.repeats, batch_ms=args.batch_ms, plot=args.plot,
    )  # fmt: skip
