"""Instructions per mint under callgrind: a repeatable figure on a noisy machine.

Wall-clock medians on a shared 2-core VM move by 10 % between runs; the
number of instructions executed does not. For each algorithm this runs one
process per contender twice (0 and N operations after warm-up) under
``valgrind --tool=callgrind`` and reports (difference / N):

    floor   the bare sign() of a signing input of the real size, same key
    c       AssertionSigner.mint() with the Cython kernel
    py      AssertionSigner.mint() with the pure-Python twin
    pyjwt   jwt.encode() of the same header and claims, pre-loaded key

Usage: python tools/callgrind_mint.py [--n 500] [ALG ...]   (make instructions)
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile

_CHILD = r"""
import os, secrets, sys, time
import jwtmint
from jwtmint import _kernels, _pure
alg, mode, n, key_file = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
if mode == "py":
    _kernels.kernel = _pure
with open(key_file, "rb") as handle:
    key = jwtmint.load_key(handle.read(), algorithm=alg)
# precompute=0: callgrind counts every thread, and a refill thread would run at random
signer = jwtmint.AssertionSigner(key, "invoice", "https://idp.example.com", precompute=0)
message = signer.mint().rpartition(".")[0].encode()
if mode == "floor":
    sign = jwtmint.get_algorithm(alg).signer(key)
    op = lambda: sign(message)
elif mode == "pyjwt":
    import jwt
    raw = key.key
    headers = {"kid": key.kid or "k", "typ": "client-authentication+jwt"}
    def op():
        now = int(time.time())
        return jwt.encode({"iss": "invoice", "sub": "invoice", "aud": "https://idp.example.com",
                           "jti": secrets.token_urlsafe(16), "iat": now, "nbf": now,
                           "exp": now + 60}, raw, algorithm=alg, headers=headers)
else:
    op = signer.mint
for _ in range(200):
    op()
for _ in range(n):
    op()
"""


def instructions(python: str, alg: str, mode: str, n: int, key_file: str) -> int:
    result = subprocess.run(
        ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null",
         python, "-c", _CHILD, alg, mode, str(n), key_file],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    found = re.search(r"Collected : (\d+)", result.stderr)
    if found is None:
        raise RuntimeError(f"no callgrind total for {alg} {mode}: {result.stderr[-500:]}")
    return int(found.group(1))


def _write_key(alg: str) -> str:
    from cryptography.hazmat.primitives import serialization

    import jwtmint

    key = jwtmint.generate_key(alg)
    if isinstance(key.key, bytes):
        data = key.key
    else:
        data = key.key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    handle = tempfile.NamedTemporaryFile(prefix="jwtmint-key-", delete=False)  # noqa: SIM115
    with handle:
        handle.write(data)
    return handle.name


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("algorithms", nargs="*", default=["RS256", "ES256", "EdDSA", "HS256"])
    parser.add_argument("--n", type=int, default=500, help="operations per measurement")
    parser.add_argument("--modes", default="floor,c,py,pyjwt")
    args = parser.parse_args()
    modes = args.modes.split(",")
    print(f"instructions per operation (callgrind, N={args.n}); ratio = contender / floor")
    print(f"{'alg':6} " + " ".join(f"{mode:>16}" for mode in modes))
    for alg in args.algorithms:
        # one key for every process: RSA and ECDSA costs vary a little from key to key
        key_file = _write_key(alg)
        per_op = {}
        try:
            for mode in modes:
                base = instructions(sys.executable, alg, mode, 0, key_file)
                total = instructions(sys.executable, alg, mode, args.n, key_file)
                per_op[mode] = (total - base) / args.n
        finally:
            os.unlink(key_file)
        floor = per_op.get("floor")
        cells = []
        for mode in modes:
            ratio = f"{per_op[mode] / floor:.3f}x" if floor else ""
            cells.append(f"{per_op[mode]:>9,.0f} {ratio:>6}")
        print(f"{alg:6} " + " ".join(cells))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
