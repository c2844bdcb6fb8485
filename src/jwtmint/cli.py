"""``jwtmint demo | keygen | mint`` (also ``python -m jwtmint``)."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization

from . import _kernels
from ._b64 import b64url_encode
from ._timing import DEMO_ALGORITHMS, AlgorithmRun, decode_segments, environment, measure, prepare
from .assertion import AssertionSigner
from .errors import JwtMintError
from .keys import generate_key, load_key

__all__ = ["main"]

_LABELS = {"jwtmint-c": "jwtmint C", "jwtmint-py": "jwtmint py", "pyjwt": "PyJWT"}
# (repeats, seconds per batch): 9 algorithms x 3 contenders -> ~30 s, or ~5 s with --quick.
_FULL, _QUICK = (15, 0.06), (9, 0.018)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="jwtmint", description="Fast OAuth 2.0 client assertions (RFC 7523)."
    )
    commands = parser.add_subparsers(dest="command", required=True)

    demo = commands.add_parser("demo", help="mint, verify and time assertions vs PyJWT")
    demo.add_argument("--quick", action="store_true", help="a ~5 s run instead of ~30 s")
    demo.add_argument("--json", action="store_true", help="machine-readable results only")
    demo.add_argument(
        "--algorithms", type=lambda text: text.split(","), default=list(DEMO_ALGORITHMS),
        metavar="ALG,ALG", help="comma-separated subset (default: all nine)",
    )  # fmt: skip

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

    args = parser.parse_args(argv)
    try:
        if args.command == "keygen":
            return _keygen(args)
        if args.command == "mint":
            return _mint(args)
        return _demo(args)
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
    signer = AssertionSigner(key, args.client_id, audience, lifetime=args.lifetime)
    print(signer.mint())
    return 0


def _demo(args: argparse.Namespace) -> int:
    try:
        import jwt  # noqa: F401
    except ImportError:
        with_pyjwt = False
    else:
        with_pyjwt = True
    speedups = _kernels.load_speedups()
    repeats, batch_seconds = _QUICK if args.quick else _FULL

    def say(text: str) -> None:
        if not args.json:
            print(text, file=sys.stderr, flush=True)

    started = time.perf_counter()
    runs: list[AlgorithmRun] = []
    for algorithm in args.algorithms:
        say(f"  {algorithm}: new key, check tokens, time ...")
        run = prepare(algorithm, with_pyjwt=with_pyjwt, speedups=speedups)
        run.timings = measure(
            list(run.minters.items()), repeats=repeats, batch_seconds=batch_seconds
        )
        runs.append(run)
    elapsed = time.perf_counter() - started
    base = "jwtmint-c" if speedups is not None else "jwtmint-py"
    example = next((r for r in runs if r.algorithm == "ES256"), runs[0])
    header, claims = decode_segments(example.minters[base]())
    checked_by = "PyJWT jwt.decode" if with_pyjwt else "cryptography (PyJWT is not installed)"
    env = environment()
    if not with_pyjwt:
        env["pyjwt"] = None
    results = {
        "environment": env,
        "settings": {"repeats": repeats, "batch_seconds": batch_seconds, "quick": args.quick},
        "checked_by": checked_by,
        "example": {"algorithm": example.algorithm, "header": header, "claims": claims},
        "results": {
            run.algorithm: {
                "kid": run.key.kid,
                "timings": {name: timing.as_dict() for name, timing in run.timings.items()},
                "baseline": base,
                "pyjwt_over_baseline": (
                    round(run.timings["pyjwt"].median_us / run.timings[base].median_us, 3)
                    if "pyjwt" in run.timings
                    else None
                ),
            }
            for run in runs
        },
        "elapsed_s": round(elapsed, 1),
    }
    if args.json:
        print(json.dumps(results, indent=2))
    else:
        _print_report(results, runs, base, with_pyjwt)
    return 0


def _us(value: float) -> str:
    return f"{value:.2f}" if value < 10 else f"{value:.1f}" if value < 1000 else f"{value:.0f}"


def _print_report(
    results: dict[str, Any], runs: list[AlgorithmRun], base: str, with_pyjwt: bool
) -> None:
    env = results["environment"]
    settings = results["settings"]
    example = results["example"]
    tokens = sum(len(run.minters) for run in runs)
    print(f"jwtmint {env['jwtmint']} demo: client assertions minted, checked and timed")
    print(f"  implementation: {env['implementation']} (C kernel: {env['c_kernel']})")
    print(
        f"  {env['python']} | cryptography {env['cryptography']} ({env['openssl']}) | "
        f"PyJWT {env['pyjwt'] or 'not installed'} | orjson {env['orjson']}"
    )
    print(f"  CPU: {env['cpu']}, {env['cpu_count']} logical ({env['cpu_usable']} usable)")
    print(
        f"\nchecked: {tokens} tokens ({len(runs)} algorithms) verified with {results['checked_by']}"
    )
    print("  (signature, alg/kid/typ header, aud, iss = sub, exp - iat = 60, 128-bit jti)")
    print(f"\nexample ({example['algorithm']}, {_LABELS[base]}), decoded:")
    print(f"  header {json.dumps(example['header'], separators=(',', ':'))}")
    print(f"  claims {json.dumps(example['claims'], separators=(',', ':'))}")

    names = [name for name in _LABELS if any(name in run.timings for run in runs)]
    print(
        f"\nmedian µs per mint (±IQR % of median) and mints/s; {settings['repeats']} "
        f"interleaved batches of ~{settings['batch_seconds'] * 1000:.0f} ms per cell"
    )
    ratio_head = f"{'PyJWT/' + _LABELS[base][8:]:>10}" if with_pyjwt else ""
    print("alg    " + "".join(f"{_LABELS[name]:>25}" for name in names) + ratio_head)
    for run in runs:
        cells = []
        for name in names:
            timing = run.timings.get(name)
            if timing is None:
                cells.append(f"{'not built':>25}")
                continue
            median = timing.median_us
            cells.append(f"{_us(median):>9} ±{timing.spread * 100:>2.0f}%{1e6 / median:>10,.0f}/s")
        ratio = results["results"][run.algorithm]["pyjwt_over_baseline"]
        ratio_text = f"{ratio:>9.2f}x" if ratio is not None else ""
        print(f"{run.algorithm:<7}" + "".join(cells) + ratio_text)
    if not with_pyjwt:
        print("PyJWT is not installed (pip install pyjwt): no PyJWT column")
    print(
        f"\n{results['elapsed_s']:.1f} s. All contenders timed in this run, round-robin, GC off "
        "during batches.\nA shared or throttled machine adds noise: compare ratios from one run, "
        "not µs across runs."
    )


if __name__ == "__main__":
    sys.exit(main())
