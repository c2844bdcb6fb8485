"""EntropyPool: 16 fresh bytes per call, never the same twice, across threads and fork."""

from __future__ import annotations

import os
import sys
import threading
import warnings
from collections.abc import Callable

import pytest

from jwtmint._entropy import JTI_BYTES, EntropyPool, default_entropy

needs_fork = pytest.mark.skipif(not hasattr(os, "fork"), reason="os.fork is POSIX-only")


def test_values_are_16_bytes() -> None:
    pool = EntropyPool()
    assert JTI_BYTES == 16
    for _ in range(1000):
        value = pool()
        assert type(value) is bytes
        assert len(value) == 16


def test_default_entropy_is_a_pool() -> None:
    assert isinstance(default_entropy, EntropyPool)
    assert len(default_entropy()) == 16


def test_no_repeats_over_many_draws() -> None:
    pool = EntropyPool()
    draws = [pool() for _ in range(200_000)]  # many refills of the buffer
    assert len(set(draws)) == len(draws)
    # not a counter or a constant: the bytes look random (each byte value appears)
    assert len({byte for value in draws[:2000] for byte in value}) == 256


def test_separate_pools_do_not_share_values() -> None:
    first, second = EntropyPool(), EntropyPool()
    a = {first() for _ in range(5000)}
    b = {second() for _ in range(5000)}
    assert not a & b


def test_no_repeats_across_threads() -> None:
    pool = EntropyPool()
    threads, per_thread = 8, 25_000
    barrier = threading.Barrier(threads)
    results: list[list[bytes]] = [[] for _ in range(threads)]
    errors: list[BaseException] = []

    def work(out: list[bytes]) -> None:
        try:
            barrier.wait(timeout=30)
            for _ in range(per_thread):
                out.append(pool())
        except BaseException as exc:
            errors.append(exc)

    # switch threads often, so that refills race with pops
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        workers = [threading.Thread(target=work, args=(out,)) for out in results]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join(timeout=60)
    finally:
        sys.setswitchinterval(interval)
    assert not errors
    draws = [value for out in results for value in out]
    assert len(draws) == threads * per_thread
    assert len(set(draws)) == len(draws)


def test_reset_drops_the_buffered_bytes() -> None:
    pool = EntropyPool()
    pool()  # fills the buffer
    buffered = set(pool._chunks)
    assert buffered
    pool.reset()
    assert not buffered & {pool() for _ in range(len(buffered) + 10)}


def _draws_in_child_and_parent(
    draw: Callable[[], bytes], count: int
) -> tuple[list[bytes], list[bytes]]:
    """Fork; the child sends ``count`` draws through a pipe; the parent draws ``count`` too."""
    read_end, write_end = os.pipe()
    with warnings.catch_warnings():
        # Python 3.12+ warns about fork() in a process with threads; this child
        # only draws bytes and leaves with os._exit.
        warnings.simplefilter("ignore", DeprecationWarning)
        pid = os.fork()
    if pid == 0:  # the child: never return into pytest
        status = 1
        try:
            os.close(read_end)
            data = b"".join(draw() for _ in range(count))
            view = memoryview(data)
            while view:
                written = os.write(write_end, view)
                view = view[written:]
            status = 0
        finally:
            os._exit(status)
    os.close(write_end)
    parent = [draw() for _ in range(count)]
    chunks = []
    with os.fdopen(read_end, "rb") as pipe:
        while chunk := pipe.read():
            chunks.append(chunk)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    data = b"".join(chunks)
    assert len(data) == count * JTI_BYTES
    child = [data[i : i + JTI_BYTES] for i in range(0, len(data), JTI_BYTES)]
    return parent, child


@needs_fork
@pytest.mark.timeout(60)
def test_fork_child_never_repeats_the_parents_values() -> None:
    pool = EntropyPool()
    pool()  # the buffer now holds values the parent will hand out next
    parent, child = _draws_in_child_and_parent(pool, 600)
    assert len(set(child)) == len(child)
    assert not set(parent) & set(child)


@needs_fork
@pytest.mark.timeout(60)
def test_fork_child_never_repeats_the_default_pool() -> None:
    default_entropy()
    parent, child = _draws_in_child_and_parent(default_entropy, 600)
    assert not set(parent) & set(child)
