"""Signing many inputs at once, on every core (the ``mint_many`` back end).

cryptography releases the GIL while it signs, so a thread per core scales
RSA (1.9x on 2 cores) and Ed25519 (1.8x). ECDSA does not: its per-call work
around the signature keeps the threads queued on the GIL (1.3-1.4x measured
here), while separate processes reach 1.75x. So large ECDSA batches go to
worker processes, everything else to threads, and HMAC, which hashlib runs
under the GIL for short inputs, stays in the calling thread.

Workers are ``python -m jwtmint._signworker`` children talking over pipes,
not multiprocessing pools: those re-import the caller's ``__main__`` in the
child, which breaks any script without an ``if __name__ == "__main__"``
guard. A worker receives the private key as PKCS#8 PEM over its pipe (it
never touches disk), loads it once per key and keeps it until this process
exits or the worker fails; then batches fall back to threads.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import pickle
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor

from cryptography.hazmat.primitives import serialization

from ._frames import read_frame, write_frame
from .algorithms import SignFunction
from .keys import SigningKey

__all__ = ["PROCESS_BATCH_MIN", "cpu_count", "sign_batch", "use_processes"]

#: Smallest ECDSA batch sent to worker processes: below it, the pipe costs more than it saves.
PROCESS_BATCH_MIN = 1024

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


class _Worker:
    """One ``jwtmint._signworker`` child; one request at a time."""

    def __init__(self) -> None:
        self._process = subprocess.Popen(
            [sys.executable, "-m", "jwtmint._signworker"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
        )
        self._lock = threading.Lock()

    def sign(self, pem: bytes, algorithm: str, messages: list[bytes]) -> list[bytes]:
        process = self._process
        assert process.stdin is not None and process.stdout is not None
        request = pickle.dumps((pem, algorithm, messages), protocol=pickle.HIGHEST_PROTOCOL)
        with self._lock:
            try:
                write_frame(process.stdin, request)
                reply = read_frame(process.stdout)
            except OSError as exc:
                raise _WorkerFailed(f"signing worker pipe failed: {exc}") from None
        if reply is None:
            raise _WorkerFailed(f"signing worker exited with {process.poll()}")
        result = pickle.loads(reply)  # from the child this process started
        if isinstance(result, str):
            raise _WorkerFailed(f"signing worker failed: {result}")
        return result  # type: ignore[no-any-return]

    def close(self) -> None:
        if self._process.stdin is not None:
            with contextlib.suppress(OSError):  # the worker is already gone
                self._process.stdin.close()
        try:
            self._process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
        if self._process.stdout is not None:
            self._process.stdout.close()


class _WorkerFailed(Exception):
    """A worker died or could not sign: the batch falls back to threads."""


_workers: list[_Worker] | None = None


def _worker_pool() -> list[_Worker]:
    global _workers
    with _lock:
        if _workers is None:
            # the calling thread signs a share too: one worker fewer than cores
            _workers = [_Worker() for _ in range(max(1, cpu_count() - 1))]
        return _workers


def _drop_workers() -> None:
    global _workers
    with _lock:
        workers, _workers = _workers, None
    for worker in workers or ():
        worker.close()


atexit.register(_drop_workers)


def _forget_pools_in_child() -> None:
    # a forked child has none of the parent's threads, and the workers are the parent's
    global _threads, _workers, _lock
    _threads = None
    _workers = None
    _lock = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_pools_in_child)


def _sign_chunk(sign: SignFunction, chunk: list[bytes]) -> list[bytes]:
    return [sign(data) for data in chunk]


def _split(inputs: list[bytes], parts: int) -> list[list[bytes]]:
    step = -(-len(inputs) // parts)
    return [inputs[i : i + step] for i in range(0, len(inputs), step)]


def use_processes(key: SigningKey, algorithm: str, count: int, processes: bool | None) -> bool:
    """Whether a batch of ``count`` goes to worker processes (``processes`` None: decide)."""
    if key.kty == "oct" or cpu_count() < 2:
        return False
    if processes is not None:
        return processes
    return algorithm.startswith("ES") and count >= PROCESS_BATCH_MIN


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
    chunks = _split(inputs, cores)
    threads = _thread_pool()
    if use_processes(key, algorithm, len(inputs), processes):
        assert not isinstance(key.key, bytes)
        pem = key.key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        try:
            workers = _worker_pool()
            # a thread per worker waits on its pipe (no GIL held while it waits)
            shares = _split(inputs, len(workers) + 1)
            futures = [
                threads.submit(worker.sign, pem, algorithm, share)
                for worker, share in zip(workers, shares[1:], strict=False)
            ]
            mine = _sign_chunk(sign, shares[0])
            return mine + [sig for future in futures for sig in future.result()]
        except (_WorkerFailed, OSError):
            _drop_workers()  # a worker died or could not start: use threads from now on
    futures = [threads.submit(_sign_chunk, sign, chunk) for chunk in chunks[1:]]
    mine = _sign_chunk(sign, chunks[0])
    return mine + [sig for future in futures for sig in future.result()]
