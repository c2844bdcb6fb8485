"""ECDSA precomputation: every pair signs once, never in two processes, and the signatures verify.

The signatures are checked with cryptography's ``verify`` and whole
assertions with PyJWT; single use is checked on r (the first half of every
signature), which two signatures share exactly when they share k. The C
tests run where the extension is loaded; the pure twin has no precomputed
path and falls back to the ordinary signer.
"""

from __future__ import annotations

import ast
import ctypes
import gc
import os
import pickle
import subprocess
import sys
import threading
import time
import warnings
from collections.abc import Callable
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from hypothesis import given, settings
from hypothesis import strategies as st

import jwtmint
from jwtmint import _precompute, _pure
from jwtmint._assertion import DEFAULT_PRECOMPUTE
from jwtmint._precompute import MAX_DEPTH, PrecomputedEcdsa, precomputing_ecdsa_signer
from jwtmint.errors import ConfigurationError, InvalidKeyError
from tests.conftest import AUDIENCE, CLIENT_ID, SPEEDUPS, signing_key, verify_assertion

needs_c = pytest.mark.skipif(SPEEDUPS is None, reason="C extension not built")
needs_fork = pytest.mark.skipif(not hasattr(os, "fork"), reason="os.fork is POSIX-only")
WAIT = 30.0  # seconds: a deadline for the refill thread that only a broken build reaches


def _r(der: bytes) -> int:
    return decode_dss_signature(der)[0]


def _verify(
    der: bytes, data: bytes, key: jwtmint.SigningKey, hash_alg: hashes.HashAlgorithm | None = None
) -> None:
    """cryptography's verify (raises InvalidSignature): independent of our signer."""
    private = key.key
    assert isinstance(private, ec.EllipticCurvePrivateKey)
    private.public_key().verify(der, data, ec.ECDSA(hash_alg or hashes.SHA256()))


def _wait_for(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + WAIT
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.002)


def _store(depth: int, low_water: int = 0) -> PrecomputedEcdsa:
    """A store with no refill thread behind it (``on_low`` unset): the test fills it."""
    assert SPEEDUPS is not None
    private = signing_key("ES256").key
    assert isinstance(private, ec.EllipticCurvePrivateKey)
    sec1 = private.private_bytes(
        serialization.Encoding.DER,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )
    store: PrecomputedEcdsa = SPEEDUPS.ecdsa_precomputed(sec1, 256, depth, low_water)
    return store


# --------------------------------------------------------------------------- pure twin


def test_the_pure_twin_has_no_precomputed_path_and_signs_normally() -> None:
    key = signing_key("ES256")
    assert _pure.ecdsa_precomputed(b"", 256, 8, 4) is None
    assert precomputing_ecdsa_signer(key, "ES256", _kernel=_pure) is None
    signer = jwtmint.AssertionSigner(key, CLIENT_ID, AUDIENCE, precompute=8, _kernel=_pure)
    assert signer._state.precomputed is None
    assert verify_assertion(signer.mint(), key, "ES256")["iss"] == CLIENT_ID


# --------------------------------------------------------------------------- one process


@needs_c
def test_each_pair_signs_once_then_the_direct_path_takes_over() -> None:
    key = signing_key("ES256")
    store = _store(32)
    assert store.fill() == 32 and store.available == 32 and store.made == 32
    messages = [b"message %d" % i for i in range(40)]
    signatures = [store(message) for message in messages]
    for der, message in zip(signatures, messages, strict=True):
        _verify(der, message, key)
    assert len({_r(der) for der in signatures}) == 40
    assert (store.precomputed, store.direct, store.available) == (32, 8, 0)


@needs_c
def test_a_store_never_holds_more_than_its_depth_and_clear_wipes_it() -> None:
    store = _store(8)
    assert store.fill(5) == 5
    assert store.fill(100) == 3  # the room left
    assert store.fill() == 0
    assert store.clear() == 8
    assert (store.available, store.discarded) == (0, 8)
    store(b"after clear")
    assert (store.precomputed, store.direct) == (0, 1)


@needs_c
def test_a_closed_store_is_wiped_stores_nothing_and_signs_whole() -> None:
    key = signing_key("ES256")
    calls: list[object] = []
    store = _store(8, low_water=4)
    store.on_low = calls.append
    assert store.fill() == 8 and not store.closed
    assert store.close() == 8
    assert store.closed and store.on_low is None
    assert repr(store) == "<_EcdsaPrecomputed ES256 closed>"
    assert (store.available, store.discarded) == (0, 8)
    assert store.fill() == 0 and store.fill(3) == 0
    assert (store.available, store.made) == (0, 8)
    store.on_low = calls.append  # set again: a closed store still never calls it
    _verify(store(b"after close"), b"after close", key)
    assert (store.precomputed, store.direct, calls) == (0, 1, [])
    assert store.close() == 0


@needs_c
def test_closing_a_store_stops_a_fill_under_way_in_another_thread() -> None:
    store = _store(65536)  # about a second of filling: closed long before the end
    stored: list[int] = []
    filler = threading.Thread(target=lambda: stored.append(store.fill()))
    filler.start()
    _wait_for(lambda: store.available > 0, "the fill to start")
    store.close()
    filler.join(WAIT)
    # closed part-way, the fill stores nothing more and says so; had it ended first
    # (a very fast machine), close() wiped what it stored
    assert stored in ([0], [65536])
    assert store.available == 0 and store.discarded == store.made


@needs_c
def test_on_low_is_called_once_per_fall_below_low_water() -> None:
    calls: list[object] = []
    store = _store(4, low_water=2)
    store.on_low = calls.append
    store.fill()
    for _ in range(4):
        store(b"x")
    assert calls == [store]  # not again while the wake is pending
    for _ in range(3):  # the refill's steps, a take after each: still the same wake
        store.fill(1)
        store(b"x")
    assert calls == [store]
    store.fill()  # the end of the refill (the store full) re-arms it
    for _ in range(3):
        store(b"x")
    assert calls == [store, store]


@needs_c
def test_a_wake_that_raises_a_base_exception_is_asked_again() -> None:
    calls: list[object] = []

    def interrupted(signer: object) -> None:  # as a SIGINT landing inside the wake
        calls.append(signer)
        if len(calls) == 1:
            raise KeyboardInterrupt

    store = _store(4, low_water=2)
    store.on_low = interrupted
    store.fill()
    store(b"x")
    store(b"x")
    with pytest.raises(KeyboardInterrupt):
        store(b"x")  # below low water: the wake raises, and the call with it
    store(b"x")  # nothing was woken: this take asks again
    assert calls == [store, store]
    store(b"x")
    assert calls == [store, store]  # and then waits for the refill as usual


@needs_c
def test_threads_sharing_one_store_never_reuse_a_pair() -> None:
    key = signing_key("ES256")
    store = _store(256)
    store.fill()
    done = threading.Event()
    per_thread = 2000
    results: list[list[tuple[bytes, bytes]]] = [[] for _ in range(4)]

    def refill() -> None:  # a background filler racing the signing threads
        while not done.is_set():
            store.fill(16)

    def sign(slot: int) -> None:
        for i in range(per_thread):
            message = b"thread %d message %d" % (slot, i)
            results[slot].append((message, store(message)))

    filler = threading.Thread(target=refill)
    workers = [threading.Thread(target=sign, args=(slot,)) for slot in range(4)]
    filler.start()
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(WAIT)
    done.set()
    filler.join(WAIT)
    signed = [pair for part in results for pair in part]
    assert len(signed) == 4 * per_thread
    assert len({_r(der) for _, der in signed}) == 4 * per_thread
    assert store.precomputed + store.direct == 4 * per_thread
    assert store.precomputed >= 256
    for message, der in signed[::97]:
        _verify(der, message, key)


@needs_c
@settings(max_examples=60, deadline=None)
@given(message=st.binary(max_size=4096))
def test_any_message_signs_and_verifies(message: bytes) -> None:
    store = _HYPOTHESIS_STORE.setdefault("store", _store(16))
    if not store.available:
        store.fill()
    before = store.precomputed
    der = store(message)
    _verify(der, message, signing_key("ES256"))
    assert store.precomputed == before + 1


_HYPOTHESIS_STORE: dict[str, PrecomputedEcdsa] = {}


@needs_c
def test_a_signature_from_a_pair_keeps_the_gil_and_a_whole_one_releases_it() -> None:
    # A watcher thread records the store's counters. The signatures run inside one C call
    # (list(map(...)): no bytecode boundary, so the interpreter never hands the GIL over
    # between them) with the GC off (a finalizer would be one). The watcher asks for the
    # GIL every 0.1 ms (the switch interval), and a thread that releases it while asked
    # must let the watcher run (CPython's forced switching). So it sees a count between
    # the first and the last exactly when a signature released the GIL.
    n = 2000
    store = _store(n)
    assert store.fill() == n
    seen: set[tuple[int, int]] = set()
    stop = threading.Event()

    def watch() -> None:
        while not stop.is_set():
            seen.add((store.precomputed, store.direct))

    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-4)
    watcher = threading.Thread(target=watch)
    try:
        watcher.start()
        _wait_for(lambda: (0, 0) in seen, "the watcher")
        gc.disable()
        try:
            list(map(store, [b"pair %d" % i for i in range(n)]))
        finally:
            gc.enable()
        assert (store.precomputed, store.direct) == (n, 0)
        _wait_for(lambda: (n, 0) in seen, "the watcher")
        assert seen <= {(0, 0), (n, 0)}, "a signature from a pair released the GIL"
        # the store is empty: whole signatures (~20 us each) release it, and the watcher runs
        deadline = time.monotonic() + WAIT
        while not any(0 < direct < store.direct for _, direct in seen):
            assert time.monotonic() < deadline, "a whole signature kept the GIL"
            list(map(store, [b"whole %d" % i for i in range(100)]))
    finally:
        stop.set()
        watcher.join(WAIT)
        sys.setswitchinterval(interval)


@needs_c
def test_no_key_material_in_repr_and_no_pickling() -> None:
    store = _store(4)
    store.fill()
    private = signing_key("ES256").key
    assert isinstance(private, ec.EllipticCurvePrivateKey)
    scalar = private.private_numbers().private_value
    text = repr(store)
    assert text == "<_EcdsaPrecomputed ES256 4/4 ready>"
    assert format(scalar, "x") not in text and str(scalar) not in text
    with pytest.raises(TypeError, match="cannot be pickled"):
        pickle.dumps(store)


@needs_c
def test_bad_arguments_are_refused() -> None:
    key = signing_key("ES256")
    with pytest.raises(ConfigurationError):
        precomputing_ecdsa_signer(key, "ES256", depth=0)
    with pytest.raises(ConfigurationError):
        precomputing_ecdsa_signer(key, "ES256", depth=4, low_water=5)
    with pytest.raises(InvalidKeyError):
        precomputing_ecdsa_signer(signing_key("ES384"), "ES256")
    with pytest.raises(ValueError):
        _store(0)
    for bad in (-1, True, 2.0, "8", MAX_DEPTH + 1):
        with pytest.raises(ConfigurationError):
            jwtmint.AssertionSigner(key, CLIENT_ID, AUDIENCE, precompute=bad)  # type: ignore[arg-type]
        with pytest.raises(ConfigurationError):
            jwtmint.DPoPSigner(key, precompute=bad)  # type: ignore[arg-type]


@needs_c
def test_the_maximum_depth_is_the_kernels_and_is_named() -> None:
    key = signing_key("ES256")
    assert _store(MAX_DEPTH).depth == MAX_DEPTH
    with pytest.raises(ValueError):
        _store(MAX_DEPTH + 1)
    with pytest.raises(ConfigurationError, match=str(MAX_DEPTH)):
        precomputing_ecdsa_signer(key, "ES256", depth=MAX_DEPTH + 1)
    with pytest.raises(ConfigurationError, match=str(MAX_DEPTH)):
        jwtmint.AssertionSigner(key, CLIENT_ID, AUDIENCE, precompute=MAX_DEPTH + 1)
    with pytest.raises(ConfigurationError, match=str(MAX_DEPTH)):
        jwtmint.DPoPSigner(key, precompute=MAX_DEPTH + 1)


def test_es384_stays_on_cryptography() -> None:
    # the system OpenSSL 3.0 makes a P-384 pair in ~3.5x cryptography's signature time
    assert "ES384" not in _precompute.PRECOMPUTED_ALGORITHMS
    key = signing_key("ES384")
    assert precomputing_ecdsa_signer(key, "ES384") is None
    signer = jwtmint.AssertionSigner(key, CLIENT_ID, AUDIENCE, precompute=8)
    assert signer._state.precomputed is None
    verify_assertion(signer.mint(), key, "ES384")


@needs_c
def test_es512_signs_with_stored_pairs_and_pyjwt_verifies() -> None:
    key = signing_key("ES512")
    signer = jwtmint.AssertionSigner(key, CLIENT_ID, AUDIENCE, precompute=4)
    store = signer._state.precomputed
    assert store is not None and repr(store).startswith("<_EcdsaPrecomputed ES512")
    _wait_for(lambda: store.available == 4, "the first fill")
    store.on_low = None  # the next mints use exactly these four pairs
    tokens = [signer.mint() for _ in range(6)]
    assert all(verify_assertion(token, key, "ES512")["iss"] == CLIENT_ID for token in tokens)
    assert (store.precomputed, store.direct) == (4, 2)
    store.fill(3)
    signatures = [store(b"%d" % i) for i in range(3)]
    for i, der in enumerate(signatures):
        _verify(der, b"%d" % i, key, hashes.SHA512())
    assert len({_r(der) for der in signatures}) == 3


# --------------------------------------------------------------------------- refill thread


@needs_c
def test_the_refill_thread_fills_and_refills_after_a_drain() -> None:
    key = signing_key("ES256")
    sign = precomputing_ecdsa_signer(key, "ES256", depth=16)
    assert sign is not None and sign.low_water == 8
    _wait_for(lambda: sign.available == 16, "the first fill")
    assert _precompute.refiller_running()
    for round_ in range(3):
        # below low water the thread is woken and fills back to the depth (not before:
        # a store between low water and full is left alone)
        for i in range(9):
            message = b"round %d message %d" % (round_, i)
            _verify(sign(message), message, key)
        _wait_for(lambda: sign.available == 16, "the refill")
    assert sign.made >= 16 + 3 * 9 and sign.precomputed >= 27


@needs_c
def test_a_wake_for_a_full_store_leaves_the_thread_running() -> None:
    sign = precomputing_ecdsa_signer(signing_key("ES256"), "ES256", depth=4)
    assert sign is not None
    _wait_for(lambda: sign.available == 4, "the first fill")
    wakes = _precompute._REFILLER._wakes
    _precompute._REFILLER.request(sign)  # a wake for a signer that needs nothing
    _wait_for(wakes.empty, "the thread to take the wake")
    assert _precompute.refiller_running()
    sign.clear()
    sign(b"below low water")
    _wait_for(lambda: sign.available == 4, "the refill")


@needs_c
def test_assertions_verify_with_pyjwt_and_use_the_store() -> None:
    key = signing_key("ES256")
    signer = jwtmint.AssertionSigner(key, CLIENT_ID, AUDIENCE, precompute=8)
    store = signer._state.precomputed
    assert store is not None and store.depth == 8
    _wait_for(lambda: store.available == 8, "the first fill")
    tokens = [signer.mint() for _ in range(20)]
    assert all(verify_assertion(token, key, "ES256")["sub"] == CLIENT_ID for token in tokens)
    assert store.precomputed >= 8 and store.precomputed + store.direct == 20


@needs_c
def test_by_default_a_store_is_filled_only_once_the_signer_mints() -> None:
    key = signing_key("ES256")
    signer = jwtmint.AssertionSigner(key, CLIENT_ID, AUDIENCE)
    store = signer._state.precomputed
    assert store is not None and store.depth == DEFAULT_PRECOMPUTE
    assert store.made == 0  # nobody asked yet
    verify_assertion(signer.mint(), key, "ES256")
    assert store.direct == 1
    _wait_for(lambda: store.available == DEFAULT_PRECOMPUTE, "the fill the mint asked for")
    assert (
        jwtmint.AssertionSigner(key, CLIENT_ID, AUDIENCE, precompute=0)._state.precomputed is None
    )
    rsa = jwtmint.AssertionSigner(signing_key("RS256"), CLIENT_ID, AUDIENCE, precompute=8)
    assert rsa._state.precomputed is None


@needs_c
def test_mint_many_keeps_the_plain_signer() -> None:
    key = signing_key("ES256")
    signer = jwtmint.AssertionSigner(key, CLIENT_ID, AUDIENCE, precompute=8)
    store = signer._state.precomputed
    assert store is not None
    _wait_for(lambda: store.available == 8, "the first fill")
    tokens = signer.mint_many(24, processes=False)
    assert len(set(tokens)) == 24
    assert all(verify_assertion(token, key, "ES256") for token in tokens)
    assert (store.precomputed, store.direct, store.available) == (0, 0, 8)


@needs_c
def test_rotate_key_builds_a_new_store_and_closes_the_old() -> None:
    old_key, new_key = signing_key("ES256"), jwtmint.generate_key("ES256")
    signer = jwtmint.AssertionSigner(old_key, CLIENT_ID, AUDIENCE, precompute=8)
    old = signer._state.precomputed
    assert old is not None
    _wait_for(lambda: old.available == 8, "the first fill")
    signer.rotate_key(new_key)
    new = signer._state.precomputed
    assert new is not None and new is not old and new.depth == 8
    assert old.closed and old.on_low is None and old.available == 0 and old.discarded == 8
    _wait_for(lambda: new.available == 8, "the new store's fill")
    token = signer.mint()
    verify_assertion(token, new_key, "ES256")
    assert new.precomputed == 1
    signer.rotate_key(signing_key("RS256"))
    assert signer._state.precomputed is None
    signer.rotate_key(old_key)
    assert signer._state.precomputed is not None
    verify_assertion(signer.mint(), old_key, "ES256")


@needs_c
def test_a_refill_under_way_stops_when_rotate_key_closes_the_store() -> None:
    depth = 4096  # the refill thread fills it for ~80 ms: rotated part-way
    signer = jwtmint.AssertionSigner(signing_key("ES256"), CLIENT_ID, AUDIENCE, precompute=depth)
    old = signer._state.precomputed
    assert old is not None
    _wait_for(lambda: old.available > 0, "the refill to start")
    signer.rotate_key(jwtmint.generate_key("ES256"))
    new = signer._state.precomputed
    assert new is not None
    # the thread serves the new store once it has left the old one
    _wait_for(lambda: new.available == depth, "the new store's fill")
    assert old.closed and old.available == 0 and old.discarded == old.made


_FILLED = """
import time
import jwtmint
from jwtmint import _precompute
sign = _precompute.precomputing_ecdsa_signer(jwtmint.generate_key("ES256"), "ES256")
deadline = time.monotonic() + 30
while sign.available < sign.depth and time.monotonic() < deadline:
    time.sleep(0.002)
assert _precompute.refiller_running()
"""
_STOPPED = """
_precompute.stop_refiller()
assert not _precompute.refiller_running()
for _ in range(2 * sign.depth):
    sign(b"x")  # a store still signs, directly once empty
assert (sign.precomputed, sign.direct) == (sign.depth, sign.depth)
_precompute.precomputing_ecdsa_signer(jwtmint.generate_key("ES256"), "ES256")
assert not _precompute.refiller_running()
"""
_BUSY_AT_EXIT = """
big = _precompute.precomputing_ecdsa_signer(jwtmint.generate_key("ES256"), "ES256", depth=20000)
while big.available == 0:
    time.sleep(0.001)
"""  # then exit, the thread in the middle of ~0.3 s of filling: atexit stops it


@pytest.mark.parametrize("tail", [_STOPPED, _BUSY_AT_EXIT], ids=["stop_refiller", "exit"])
def test_the_refill_thread_stops_cleanly(tail: str) -> None:
    if SPEEDUPS is None:
        pytest.skip("C extension not built")
    code = _FILLED + tail + 'print("ok")'
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert (done.returncode, done.stdout.strip(), done.stderr) == (0, "ok", "")


# --------------------------------------------------------------------------- fork


def _in_child(fork: Callable[[], int], work: Callable[[], list[Any]]) -> list[Any]:
    """Run ``work`` in a forked child; its result (reprs of ints/bytes) comes back on a pipe."""
    read_end, write_end = os.pipe()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # fork with threads, 3.12+
        pid = fork()
    if pid == 0:  # the child: never return into pytest
        status = 1
        try:
            os.close(read_end)
            view = memoryview(repr(work()).encode())
            while view:
                view = view[os.write(write_end, view) :]
            status = 0
        finally:
            os._exit(status)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as pipe:
        data = pipe.read()
    deadline = time.monotonic() + WAIT
    while (done := os.waitpid(pid, os.WNOHANG))[0] == 0:
        if time.monotonic() > deadline:
            os.kill(pid, 9)
            os.waitpid(pid, 0)
            pytest.fail("the forked child hung")
        time.sleep(0.002)
    assert os.waitstatus_to_exitcode(done[1]) == 0
    result: list[Any] = ast.literal_eval(data.decode())
    return result


def _child_signs(store: PrecomputedEcdsa, n: int) -> Callable[[], list[Any]]:
    def work() -> list[Any]:
        available = store.available
        signed = [(b"child %d" % i, store(b"child %d" % i)) for i in range(n)]
        return [available, store.precomputed, signed]

    return work


def _check_fork(store: PrecomputedEcdsa, fork: Callable[[], int]) -> None:
    key = signing_key("ES256")
    store.fill()
    parent_used = [_r(store(b"parent %d" % i)) for i in range(4)]
    held = store.available
    available, precomputed_in_child, signed = _in_child(fork, _child_signs(store, 8))
    assert (available, precomputed_in_child) == (0, 4)  # no parent pair used in the child
    for message, der in signed:
        _verify(der, message, key)
    # what the parent still holds, used up now: these pairs were never the child's
    parent_held = [_r(store(b"parent again %d" % i)) for i in range(held)]
    assert store.precomputed == 4 + held and store.available == 0
    child = {_r(der) for _, der in signed}
    assert len(child) == 8
    assert not child & (set(parent_used) | set(parent_held))


@needs_c
@needs_fork
def test_a_forked_child_never_signs_with_its_parents_pairs() -> None:
    _check_fork(_store(32), os.fork)  # jwtmint._forksafe wipes the child's copy


@needs_c
@needs_fork
def test_the_pid_check_alone_protects_a_child_forked_without_python_at_fork() -> None:
    # libc's fork() called directly (GIL held) runs none of os.register_at_fork's handlers
    libc_fork = ctypes.PyDLL(None).fork
    libc_fork.restype = ctypes.c_int
    _check_fork(_store(32), libc_fork)


@needs_c
@needs_fork
def test_a_forked_child_refills_with_its_own_thread() -> None:
    key = signing_key("ES256")
    sign = precomputing_ecdsa_signer(key, "ES256", depth=16)
    assert sign is not None
    _wait_for(lambda: sign.available == 16, "the first fill")
    parent_used = {_r(sign(b"parent %d" % i)) for i in range(4)}

    def work() -> list[Any]:
        inherited, available = sign.precomputed, sign.available  # the counters come along
        signed = [sign(b"first")]  # the store is empty here: this asks the child's refiller
        deadline = time.monotonic() + WAIT
        while sign.precomputed == inherited and time.monotonic() < deadline:
            signed.append(sign(b"more"))
            time.sleep(0.002)
        return [available, sign.precomputed - inherited, _precompute.refiller_running(), signed]

    available, precomputed, running, signed = _in_child(os.fork, work)
    assert available == 0 and precomputed >= 1 and running
    _wait_for(lambda: sign.available >= 12, "the parent's store")
    parent_held = {_r(sign(b"parent again")) for _ in range(sign.available)}
    assert not {_r(der) for der in signed} & (parent_used | parent_held)
