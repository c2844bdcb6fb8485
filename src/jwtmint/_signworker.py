"""A signing worker process for :mod:`jwtmint.batch` (``python -m jwtmint._signworker``).

Started by its parent with pipes for stdin and stdout, never by
multiprocessing: that would re-import the user's ``__main__`` in the child.
Each request is a length-prefixed pickle of ``(pem, algorithm, messages)``
from the parent that started it; each reply a length-prefixed pickle of the
signatures, or of an error message. The key is loaded once per (pem,
algorithm) and kept until the parent closes stdin.
"""

from __future__ import annotations

import pickle
import sys


def main() -> int:
    from ._frames import read_frame, write_frame
    from .algorithms import SignFunction, get_algorithm
    from .keys import load_key

    requests, replies = sys.stdin.buffer, sys.stdout.buffer
    signers: dict[tuple[bytes, str], SignFunction] = {}
    while True:
        frame = read_frame(requests)
        if frame is None:
            return 0
        pem, algorithm, messages = pickle.loads(frame)  # from our own parent only
        try:
            sign = signers.get((pem, algorithm))
            if sign is None:
                sign = get_algorithm(algorithm).signer(load_key(pem, algorithm=algorithm))
                signers[(pem, algorithm)] = sign
            reply: object = [sign(message) for message in messages]
        except Exception as exc:  # reported to the parent, which raises it there
            reply = f"{type(exc).__name__}: {exc}"
        write_frame(replies, pickle.dumps(reply, protocol=pickle.HIGHEST_PROTOCOL))


if __name__ == "__main__":
    raise SystemExit(main())
