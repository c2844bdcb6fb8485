"""Signing many inputs at once, on every core (the ``mint_many`` back end).

The extension's signers (HMAC, ES256 on OpenSSL, Ed25519 on libsodium) and
cryptography's RSA release the GIL while they sign, so a thread per core
scales them. ECDSA signed through cryptography scales poorly on threads: its
per-call work under the GIL keeps them queued on it, while separate processes
share nothing. So large batches of that kind go to worker processes,
everything else to threads, and HMAC, which costs less than handing work to
another thread, stays in the calling thread.

Workers (:mod:`jwtmint._signworker`) are started with ``python -I`` and the
parent's ``sys.path``, not by multiprocessing (which re-imports the caller's
``__main__``), in their own session (a Ctrl-C is the parent's). They talk
over two dedicated pipes in a length-prefixed byte protocol (no pickle), and
every wait on them has a deadline: a stuck worker is killed, never waited on.
A worker receives the private key as PKCS#8 PEM over its pipe (never on
disk) and keeps only its latest key. Whatever goes wrong on that path (a
worker that dies, hangs, or cannot start) the batch is signed by threads
instead; after ``_MAX_WORKER_FAILURES`` failures processes are not tried again.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import select
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed448, ed25519, rsa

from . import _pure
from ._algorithms import SignFunction, get_algorithm
from ._frames import MAX_FRAME, PROTOCOL, decode_fields, encode_fields, frame_length
from ._keys import SigningKey

__all__ = ["PROCESS_BATCH_MIN", "cpu_count", "sign_batch", "use_processes"]

#: Smallest ECDSA batch sent to worker processes: below it, the pipe costs more than it saves.
PROCESS_BATCH_MIN = 1024

_log = logging.getLogger("jwtmint.batch")
_lock = threading.Lock()
_threads: ThreadPoolExecutor | None = None


def cpu_count() -> int:
    """Cores this process may run on."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return max(1, os.cpu_count() or 1)


def _thread_pool() -> ThreadPoolExecutor:
    global _threads
    with _lock:
        if _threads is None:
            _threads = ThreadPoolExecutor(max_workers=cpu_count(), thread_name_prefix="jwtmint")
        return _threads


class _WorkerFailed(Exception):
    """A worker died, hung, answered garbage or could not sign: threads take over."""


class _WorkerClosed(_WorkerFailed):
    """The batch could not use a worker another batch had just closed: not a new failure."""


#: Seconds a worker may take for a batch: a base plus a per-message allowance.
_REPLY_TIMEOUT_BASE = 10.0
_REPLY_TIMEOUT_PER_MESSAGE = 0.05  # room for the slowest keys (RSA-8192) on a busy machine
_MAX_WORKER_FAILURES = 3
#: The calling thread's share of a process batch relative to one worker's (measured: 1.1).
_CALLER_WEIGHT = 1.1


class _Worker:
    """One signing child process and its two pipes; one request at a time."""

    def __init__(self) -> None:
        request_read, self._requests = os.pipe()
        self._replies, reply_write = os.pipe()
        code = (
            f"import sys; sys.path[:0] = {list(sys.path)!r}; "
            "from jwtmint._signworker import main; "
            f"raise SystemExit(main({request_read}, {reply_write}))"
        )
        try:
            self._process = subprocess.Popen(
                [sys.executable, "-I", "-c", code],
                pass_fds=(request_read, reply_write),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                start_new_session=True,
            )
        except BaseException:
            for fd in (self._requests, self._replies):
                os.close(fd)
            raise
        finally:
            os.close(request_read)
            os.close(reply_write)
        os.set_blocking(self._requests, False)
        os.set_blocking(self._replies, False)
        self._lock = threading.Lock()
        self._dead = False

    def sign(self, algorithm: str, pem: bytes, messages: list[bytes]) -> list[bytes]:
        request = encode_fields([PROTOCOL, algorithm.encode("ascii"), pem, *messages])
        if len(request) - 4 > MAX_FRAME:
            raise _WorkerClosed("batch too large for one frame")  # not the worker's fault
        with self._lock:
            if self._dead:
                raise _WorkerClosed("worker already closed")
            # the deadline starts once this batch has the worker, not while it queues
            deadline = (
                time.monotonic() + _REPLY_TIMEOUT_BASE + _REPLY_TIMEOUT_PER_MESSAGE * len(messages)
            )
            try:
                self._send(request, deadline)
                kind, *fields = decode_fields(
                    self._receive(frame_length(self._receive(4, deadline)), deadline)
                )
            except (OSError, ValueError) as exc:
                self._kill()
                raise _WorkerFailed(f"{type(exc).__name__}: {exc}") from None
            except _WorkerFailed:
                self._kill()
                raise
        if kind != b"S" or len(fields) != len(messages):
            raise _WorkerFailed("worker could not sign")  # its text may quote our input
        return fields

    def _send(self, data: bytes, deadline: float) -> None:
        view = memoryview(data)
        poller = select.poll()
        poller.register(self._requests, select.POLLOUT)
        while view:
            self._wait(poller, deadline)
            try:
                view = view[os.write(self._requests, view) :]
            except BlockingIOError:
                continue

    def _receive(self, size: int, deadline: float) -> bytes:
        chunks: list[bytes] = []
        poller = select.poll()
        poller.register(self._replies, select.POLLIN)
        while size:
            self._wait(poller, deadline)
            try:
                chunk = os.read(self._replies, min(size, 1 << 20))
            except BlockingIOError:
                continue
            if not chunk:
                raise _WorkerFailed(f"worker exited ({self._process.poll()})")
            chunks.append(chunk)
            size -= len(chunk)
        return b"".join(chunks)

    @staticmethod
    def _wait(poller: select.poll, deadline: float) -> None:
        remaining = deadline - time.monotonic()
        if remaining <= 0 or not poller.poll(remaining * 1000):
            raise _WorkerFailed("worker did not answer in time")

    def _kill(self) -> None:
        """Stop the child and close the pipes; callers hold the lock."""
        if self._dead:
            return
        self._dead = True
        for fd in (self._requests, self._replies):
            with contextlib.suppress(OSError):
                os.close(fd)
        with contextlib.suppress(OSError):
            self._process.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self._process.wait(timeout=5)

    def close(self) -> None:
        """Close the request pipe (the child exits at EOF); kill it if it lingers."""
        with self._lock:
            if self._dead:
                return
            self._dead = True
            with contextlib.suppress(OSError):
                os.close(self._requests)
            try:
                self._process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._process.kill()
                with contextlib.suppress(subprocess.TimeoutExpired):
                    self._process.wait(timeout=5)
            with contextlib.suppress(OSError):
                os.close(self._replies)

    def forget_in_child(self) -> None:
        """In a forked child: close our copies of the pipes without touching the process."""
        self._dead = True
        for fd in (self._requests, self._replies):
            with contextlib.suppress(OSError):
                os.close(fd)


_workers: list[_Worker] | None = None
_worker_failures = 0
#: Signatures made by worker processes so far (tests check the process path really ran).
signed_by_workers = 0


def _worker_pool() -> list[_Worker]:
    global _workers
    with _lock:
        if _workers is None:
            started: list[_Worker] = []
            try:
                # the calling thread signs a share too: one worker fewer than cores
                for _ in range(max(1, cpu_count() - 1)):
                    started.append(_Worker())
            except BaseException:
                for worker in started:
                    worker.close()
                raise
            _workers = started
        return _workers


def _close_workers() -> None:
    global _workers
    with _lock:
        workers, _workers = _workers, None
    for worker in workers or ():
        worker.close()


def _worker_failed() -> None:
    """Count a failure and drop every worker; the next large batch starts fresh ones."""
    global _worker_failures
    with _lock:
        _worker_failures += 1
        if _worker_failures == _MAX_WORKER_FAILURES:
            _log.warning(
                "jwtmint: signing workers failed %d times; mint_many uses threads from now on",
                _worker_failures,
            )
    _close_workers()


atexit.register(_close_workers)


def _forget_pools_in_child() -> None:
    # a forked child has none of the parent's threads, and the workers are the parent's:
    # close our copies of their pipes, or they would not see EOF when the parent exits
    global _threads, _workers, _lock
    for worker in _workers or ():
        worker.forget_in_child()
    _threads = None
    _workers = None
    _lock = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_pools_in_child)


#: Signatures per GIL-free section: enough to make the GIL handoff between them negligible,
#: few enough that a huge batch still checks for Ctrl-C and holds small buffers.
SECTION = 512


def _sign_chunk(sign: SignFunction, chunk: list[bytes]) -> list[bytes]:
    many = getattr(sign, "sign_many", None)
    if many is not None:
        # the extension's signers sign many messages in one GIL-free section: taken and
        # dropped per signature, the GIL went back and forth between the threads once per
        # item, and those handoffs cost as much as the parallel work saved (issue #13)
        signatures: list[bytes] = []
        for start in range(0, len(chunk), SECTION):
            signatures += many(chunk[start : start + SECTION])
        return signatures
    return [sign(data) for data in chunk]


def _split(inputs: list[bytes], parts: int) -> list[list[bytes]]:
    step = -(-len(inputs) // parts)
    return [inputs[i : i + step] for i in range(0, len(inputs), step)]


def use_processes(
    key: SigningKey,
    algorithm: str,
    count: int,
    processes: bool | None,
    sign: SignFunction | None = None,
) -> bool:
    """Whether a batch of ``count`` goes to worker processes (``processes`` None: decide).

    Only ECDSA signed through cryptography needs them; the extension's own
    ECDSA signer releases the GIL (``releases_gil``) and scales over threads.
    """
    if key.kty == "oct" or cpu_count() < 2 or os.name != "posix":
        return False
    if _worker_failures >= _MAX_WORKER_FAILURES:
        return False
    if processes is not None:
        return processes
    if getattr(sign, "releases_gil", False):
        return False
    return algorithm.startswith("ES") and count >= PROCESS_BATCH_MIN


def _sign_in_workers(
    key: SigningKey, algorithm: str, sign: SignFunction, inputs: list[bytes]
) -> list[bytes] | None:
    """The signatures, with a share signed here and the rest by the workers; None on failure.

    Every failure on this path ends here: the caller signs with threads, and
    no exception (whose frames would hold the PEM) escapes.
    """
    global signed_by_workers
    assert not isinstance(key.key, bytes)
    try:
        pem = key.key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        workers = _worker_pool()
        # the caller's share is a little larger: a worker's share also pays for the pipe
        mine_count = round(len(inputs) * _CALLER_WEIGHT / (len(workers) + _CALLER_WEIGHT))
        shares = [inputs[:mine_count], *_split(inputs[mine_count:], len(workers))]
        threads = _thread_pool()
        futures = [
            threads.submit(worker.sign, algorithm, pem, share)
            for worker, share in zip(workers, shares[1:], strict=False)
        ]
        mine = _sign_chunk(sign, shares[0])
        theirs = [sig for future in futures for sig in future.result()]
        _check_signatures(key, algorithm, theirs)
    except _WorkerClosed:
        return None
    except Exception:
        _worker_failed()
        return None
    signed_by_workers += len(theirs)
    return mine + theirs


def _check_signatures(key: SigningKey, algorithm: str, signatures: list[bytes]) -> None:
    """Raise unless every signature has its algorithm's shape (a worker of another version,
    or a broken one, must not put garbage into tokens)."""
    if algorithm.startswith("ES"):
        size = get_algorithm(algorithm).ec_size
        for signature in signatures:
            _pure.der_to_raw(signature, size)  # raises ValueError when malformed
        return
    obj = key.key
    expected = (obj.key_size + 7) // 8 if isinstance(obj, rsa.RSAPrivateKey) else None
    if isinstance(obj, ed25519.Ed25519PrivateKey):
        expected = 64
    elif isinstance(obj, ed448.Ed448PrivateKey):
        expected = 114
    if expected is None or any(len(signature) != expected for signature in signatures):
        raise _WorkerFailed("a worker returned signatures of the wrong size")


def sign_batch(
    key: SigningKey,
    algorithm: str,
    sign: SignFunction,
    inputs: list[bytes],
    *,
    processes: bool | None = None,
) -> list[bytes]:
    """Signatures of ``inputs`` in order, spread over threads or worker processes.

    The calling thread always signs the first share itself while the pool
    works on the rest.
    """
    cores = cpu_count()
    if key.kty == "oct" or cores < 2 or len(inputs) < 2 * cores:
        return _sign_chunk(sign, inputs)
    if use_processes(key, algorithm, len(inputs), processes, sign):
        signed = _sign_in_workers(key, algorithm, sign, inputs)
        if signed is not None:
            return signed
    try:
        threads = _thread_pool()
        chunks = _split(inputs, cores)
        futures = [threads.submit(_sign_chunk, sign, chunk) for chunk in chunks[1:]]
    except RuntimeError:  # interpreter shutdown: no new threads, sign here
        return _sign_chunk(sign, inputs)
    mine = _sign_chunk(sign, chunks[0])
    return mine + [sig for future in futures for sig in future.result()]
