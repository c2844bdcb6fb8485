"""The refill thread of ECDSA precomputation: woken without blocking, fair between stores.

Each scenario that could hang runs in a subprocess with a deadline, so a
regression fails the test instead of hanging the suite.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable

import pytest

import jwtmint
from jwtmint import _precompute
from jwtmint._precompute import MAX_DEPTH, precomputing_ecdsa_signer
from tests.conftest import SPEEDUPS, signing_key

needs_c = pytest.mark.skipif(SPEEDUPS is None, reason="C extension not built")
DEADLINE = 60.0  # seconds: only a deadlock reaches it
WAIT = 30.0  # seconds: a deadline for the refill thread that only a broken build reaches


def _wait_for(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + WAIT
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.002)


def _run(code: str) -> str:
    """Run ``code`` in a fresh interpreter (a fresh refill thread); its stdout."""
    try:
        done = subprocess.run(
            [sys.executable, "-c", textwrap.dedent(code)],
            capture_output=True,
            text=True,
            timeout=DEADLINE,
            check=False,
        )
    except subprocess.TimeoutExpired as expired:
        pytest.fail(f"the subprocess hung (a deadlock?); its stderr: {expired.stderr!r}")
    assert (done.returncode, done.stderr) == (0, ""), done.stdout
    return done.stdout


# A signal lands while the main thread is inside _Refiller.request, at the point named by
# HOOK; its handler signs a proof whose store is empty, so on_low calls request again on
# the same thread. HOOK "ref": as request makes the wake's weak reference (the old code
# held a lock there); "thread": as request creates the refill thread (under its start lock).
_SIGNAL_IN_REQUEST = """
import faulthandler, signal, sys, threading, types, weakref
from cryptography.hazmat.primitives.asymmetric import ec
from jwtmint import DPoPSigner, _precompute

faulthandler.dump_traceback_later(20, exit=True)  # a deadlock shows where, then exits 1
HOOK = sys.argv[1]
s1 = DPoPSigner(ec.generate_private_key(ec.SECP256R1()))  # stores start empty
s2 = DPoPSigner(ec.generate_private_key(ec.SECP256R1()))
armed = [True]

def fire():
    if armed[0]:
        armed[0] = False
        signal.raise_signal(signal.SIGUSR1)  # its handler runs at the next bytecode

def ref_then_signal(obj):
    made = weakref.ref(obj)
    if HOOK == "ref":
        fire()
    return made

def thread_then_signal(*args, **kwargs):
    made = threading.Thread(*args, **kwargs)
    if HOOK == "thread":
        fire()
    return made

_precompute.weakref = types.SimpleNamespace(ref=ref_then_signal)
_precompute.threading = types.SimpleNamespace(
    Thread=thread_then_signal, Lock=threading.Lock, current_thread=threading.current_thread
)
handled = []

def on_sigusr1(signum, frame):
    handled.append(s2.proof("GET", "https://api.example.com/"))

signal.signal(signal.SIGUSR1, on_sigusr1)
s1.proof("GET", "https://api.example.com/")
assert handled and not armed[0]
for signer in (s1, s2):  # both stores asked, and the thread serves both
    store = signer.precomputed
    while store.available < store.depth:
        pass
print("ok")
"""


@needs_c
@pytest.mark.parametrize("hook", ["ref", "thread"])
def test_a_signal_handler_signing_inside_a_wake_does_not_deadlock(hook: str) -> None:
    assert _run(_SIGNAL_IN_REQUEST.replace("sys.argv[1]", repr(hook))).strip() == "ok"


@needs_c
def test_the_refill_thread_serves_stores_in_turns() -> None:
    big = precomputing_ecdsa_signer(signing_key("ES256"), "ES256", depth=MAX_DEPTH)
    small = precomputing_ecdsa_signer(jwtmint.generate_key("ES256"), "ES256", depth=16)
    assert big is not None and small is not None  # both asked the thread, big first
    try:
        # filling the big one takes about a second; the small one is served meanwhile
        _wait_for(lambda: small.available == small.depth, "the small store's fill")
        assert big.available < big.depth
    finally:
        big.close()  # and the thread leaves it
    assert _precompute.refiller_running()


_STOP_THEN_FORK = """
import os, time
import jwtmint
from jwtmint import _precompute
sign = _precompute.precomputing_ecdsa_signer(jwtmint.generate_key("ES256"), "ES256", depth=8)
while sign.available < sign.depth:
    time.sleep(0.002)
_precompute.stop_refiller()
pid = os.fork()
if pid == 0:  # a new process: its signers' wakes start its own thread
    sign.clear()
    sign(b"below low water")
    deadline = time.monotonic() + 30
    while sign.available < sign.depth and time.monotonic() < deadline:
        time.sleep(0.002)
    os._exit(0 if sign.available == sign.depth and _precompute.refiller_running() else 3)
_, status = os.waitpid(pid, 0)
assert os.waitstatus_to_exitcode(status) == 0
sign.clear()
sign(b"below low water")  # this process stays stopped: signed whole from now on
time.sleep(0.05)
assert not _precompute.refiller_running() and sign.available == 0
print("ok")
"""


@needs_c
@pytest.mark.skipif(not hasattr(os, "fork"), reason="os.fork is POSIX-only")
def test_stop_refiller_is_for_this_process_and_a_forked_child_starts_its_own() -> None:
    assert _run(_STOP_THEN_FORK).strip() == "ok"
