"""A signing worker process for :mod:`jwtmint._batch`.

Started by its parent with ``python -I -c`` (isolated: neither the working
directory nor PYTHON* variables reach ``sys.path``; the parent passes its own
``sys.path``), never by multiprocessing, which would re-import the user's
``__main__``. It reads requests from one inherited pipe and writes replies to
another; stdin and stdout are not used, so stray output cannot corrupt the
protocol. It keeps only the key of its latest request and exits when the
parent closes the request pipe.
"""

from __future__ import annotations

import os
import signal

from ._frames import PROTOCOL, decode_fields, encode_fields, frame_length


def _read_exact(fd: int, size: int) -> bytes | None:
    chunks = []
    while size:
        chunk = os.read(fd, min(size, 1 << 20))
        if not chunk:
            return None
        chunks.append(chunk)
        size -= len(chunk)
    return b"".join(chunks)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def main(requests: int, replies: int) -> int:
    from ._algorithms import SignFunction, get_algorithm
    from ._keys import load_key

    # Ctrl-C in the parent's terminal is the parent's business: it closes our pipe
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    current: tuple[bytes, bytes] | None = None
    sign: SignFunction | None = None
    while True:
        header = _read_exact(requests, 4)
        if header is None:
            return 0
        try:
            body = _read_exact(requests, frame_length(header))
            if body is None:
                return 0
            protocol, algorithm, pem, *messages = decode_fields(body)
            if protocol != PROTOCOL:
                raise ValueError("the parent speaks another protocol version")
        except ValueError:  # out of step with the parent: say so and stop
            _write_all(replies, encode_fields([b"E", b"protocol"]))
            return 1
        try:
            if sign is None or current != (algorithm, pem):
                current, sign = None, None  # keep no retired key around
                sign = get_algorithm(algorithm.decode("ascii")).signer(
                    load_key(pem, algorithm=algorithm.decode("ascii"))
                )
                current = (algorithm, pem)
            reply = encode_fields([b"S", *(sign(message) for message in messages)])
        except Exception as exc:  # the parent falls back to threads and signs itself
            reply = encode_fields([b"E", type(exc).__name__.encode()])
        _write_all(replies, reply)
