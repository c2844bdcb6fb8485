"""Median microseconds per ECDSA signature: the floor, direct OpenSSL, and with precomputed pairs.

For each curve (ES256, ES384, ES512), one process, the same key and a
signing input of the real size (one of our assertions):

    floor      cryptography's sign() (what jwtmint signs with on the pure path)
    direct     the C kernel's OpenSSL signer (ecdsa_signer): hash + ECDSA_do_sign
    setup      one (k^-1, r) pair (ECDSA_sign_setup), timed over a batch fill
    request    a signature with a stored pair (ECDSA_do_sign_ex): what a request pays
    total      setup + request: all the CPU one signature costs with precomputation

Each figure is the median over ``--repeats`` blocks of the per-call mean. It is
a wall-clock figure on whatever the machine is doing: run it on a quiet one.
Usage: python tools/precompute_timing.py [--repeats 7] [--scale 1.0]
"""

from __future__ import annotations

import argparse
import ctypes
import functools
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable

import cryptography
from cryptography.hazmat.backends.openssl import backend
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

import jwtmint
from jwtmint import _kernels

CURVES = {
    "ES256": (ec.SECP256R1(), hashes.SHA256(), 256, 2000),
    "ES384": (ec.SECP384R1(), hashes.SHA384(), 384, 200),
    "ES512": (ec.SECP521R1(), hashes.SHA512(), 512, 200),
}


def _block_mean(op: Callable[[], object], calls: int) -> float:
    start = time.perf_counter()
    for _ in range(calls):
        op()
    return (time.perf_counter() - start) / calls * 1e6


def _median(op: Callable[[], object], calls: int, repeats: int) -> float:
    _block_mean(op, max(1, calls // 10))  # warm-up
    return statistics.median(_block_mean(op, calls) for _ in range(repeats))


def _measure(algorithm: str, calls: int, repeats: int) -> dict[str, float]:
    speedups = _kernels.load_speedups()
    assert speedups is not None, "the C extension is not built"
    curve, hash_alg, bits, _ = CURVES[algorithm]
    private = ec.generate_private_key(curve)
    key = jwtmint.load_key(private)
    signer = jwtmint.AssertionSigner(key, "invoice", "https://idp.example.com", precompute=0)
    message = signer.mint().rpartition(".")[0].encode("ascii")
    sec1 = private.private_bytes(
        serialization.Encoding.DER,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )
    direct = speedups.ecdsa_signer(sec1, bits)
    store = speedups.ecdsa_precomputed(sec1, bits, calls, 0)
    public = private.public_key()
    store.fill(1)
    public.verify(store(message), message, ec.ECDSA(hash_alg))  # correct before timed
    setups: list[float] = []
    requests: list[float] = []
    sign_with_pair = functools.partial(store, message)
    for _ in range(repeats + 1):
        start = time.perf_counter()
        assert store.fill() == calls
        setups.append((time.perf_counter() - start) / calls * 1e6)
        requests.append(_block_mean(sign_with_pair, calls))
        assert store.available == 0
    assert store.direct == 0
    setup, request = statistics.median(setups[1:]), statistics.median(requests[1:])
    return {
        "floor": _median(
            functools.partial(private.sign, message, ec.ECDSA(hash_alg)), calls, repeats
        ),
        "direct": _median(functools.partial(direct, message), calls, repeats),
        "setup": setup,
        "request": request,
        "total": setup + request,
    }


def _linked_openssl() -> str:
    """OpenSSL_version() of the libcrypto mapped into this process (the one _speedups links)."""
    with open("/proc/self/maps", encoding="ascii", errors="replace") as maps:
        paths = {line.split()[-1] for line in maps if "libcrypto" in line}
    for path in sorted(paths):
        function = ctypes.CDLL(path).OpenSSL_version
        function.restype = ctypes.c_char_p
        return f"{function(0).decode()} ({path})"
    return "no dynamic libcrypto"


def _cpu() -> str:
    try:
        lscpu = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return platform.processor() or "unknown CPU"
    fields = dict(line.split(":", 1) for line in lscpu.splitlines() if ":" in line)
    return f"{fields.get('Model name', '?').strip()}, {fields.get('CPU(s)', '?').strip()} CPU(s)"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--scale", type=float, default=1.0, help="multiply the calls per block")
    parser.add_argument("algorithms", nargs="*", default=list(CURVES))
    args = parser.parse_args(argv)
    print(f"CPU: {_cpu()}")
    print(
        f"Python {platform.python_version()}, cryptography {cryptography.__version__} "
        f"({backend.openssl_version_text()}), jwtmint {jwtmint.__version__} linked against "
        f"{_linked_openssl()}"
    )
    print(
        f"{'alg':6} {'floor':>8} {'direct':>8} {'setup':>8} {'request':>8} {'total':>8}"
        "   request/floor  total/floor   (median µs per signature)"
    )
    for algorithm in args.algorithms:
        calls = max(10, int(CURVES[algorithm][3] * args.scale))
        r = _measure(algorithm, calls, args.repeats)
        print(
            f"{algorithm:6} {r['floor']:8.2f} {r['direct']:8.2f} {r['setup']:8.2f} "
            f"{r['request']:8.2f} {r['total']:8.2f}   {r['request'] / r['floor']:13.3f}"
            f"  {r['total'] / r['floor']:11.3f}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
