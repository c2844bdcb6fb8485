"""ECDSA precomputation: single-use (k^-1, r) pairs made ahead of time by one background thread.

An ECDSA signature (RFC 7518 §3.4, FIPS 186-5 §6.4.1) is s = k^-1 (h + r d)
mod n with r = (k G).x for a fresh secret k. Everything but the hash h and
two modular operations is independent of the message, so it can be made
before the request arrives. :func:`precomputing_ecdsa_signer` returns a signer
with a bounded store of such pairs (OpenSSL's ``ECDSA_sign_setup``); one
daemon thread per process, shared by every such signer, refills a store when
it falls below its low-water mark, in turns of 8 pairs per store (one deep
store does not hold up the others). On the request path a signature then costs
a hash and a few modular multiplications (``ECDSA_do_sign_ex``), made with the
GIL held: releasing it for ~1.5 us would gain nothing and could leave the
caller waiting a whole switch interval for it. With the store empty it is an
ordinary signature (the GIL released), never a wait. ES256 and ES512 (see
``PRECOMPUTED_ALGORITHMS``).

What is promised:

* k comes from OpenSSL's DRBG, never from Python; the scalar multiplication,
  the inversion and the signature are OpenSSL's constant-time code.
* Each pair signs once: it is taken under the GIL, then freed (BN_clear_free)
  whatever the outcome. A pair OpenSSL refuses (s = 0) is dropped and the
  message signed normally.
* No pair crosses a process boundary: a forked child wipes the store it
  inherited (:mod:`jwtmint._forksafe`), every take checks the owning process
  id besides, and the child starts its own refill thread when it needs one.

What is not: pairs wait in ordinary process memory until used, for as long
as the signer lives (they are wiped when used, on ``clear()``, on ``close()``
(key rotation closes the old key's store) and when the signer is freed).
Anyone who can read that memory can read the private key too. The refill
thread spends the CPU the request path saves (the total stays about one
signature per signature), on another core where there is one.
"""

from __future__ import annotations

import atexit
import logging
import queue
import threading
import weakref
from types import ModuleType

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from . import _kernels
from ._algorithms import get_algorithm
from ._forksafe import reset_in_child
from ._keys import SigningKey
from ._pure_signers import PrecomputedEcdsa
from .errors import ConfigurationError

__all__ = [
    "DEFAULT_DEPTH",
    "MAX_DEPTH",
    "PRECOMPUTED_ALGORITHMS",
    "PrecomputedEcdsa",
    "check_precompute",
    "precomputing_ecdsa_signer",
    "refiller_running",
    "signer_store",
    "stop_refiller",
]

_log = logging.getLogger("jwtmint")

#: Pairs a signer holds by default: a burst of this many signatures needs no setup.
DEFAULT_DEPTH = 64
#: The most pairs a store holds (the compiled kernel's bound): about 10 MB of pairs.
MAX_DEPTH = 65536
#: Algorithms with a precomputed path (on the compiled kernel with OpenSSL), chosen by
#: measurement (tools/precompute_timing.py): on the system OpenSSL 3.0 the extension
#: links, a P-256 or P-521 pair plus its signature costs what cryptography's sign() does
#: (0.99x, 1.02x), but a P-384 pair costs 3.5x (3.0 has no fast P-384 code): ES384 stays
#: on cryptography, which signs it with its own, newer OpenSSL.
PRECOMPUTED_ALGORITHMS = frozenset({"ES256", "ES512"})
_BITS = {"ES256": 256, "ES384": 384, "ES512": 512}
# pairs per fill() call: the refill loop checks for shutdown between calls
_FILL_STEP = 8
_JOIN_TIMEOUT = 2.0


class _Refiller:
    """The process's refill thread: fills every store that asked, then sleeps until woken.

    A store asks (``on_low``) in the middle of a signature, on whatever thread
    signs: perhaps in a signal handler or a ``__del__`` that interrupted that
    same thread inside ``request``. So ``request`` never waits: the wake is a
    ``queue.SimpleQueue.put`` (re-entrant, safe from ``__del__`` and signal
    handlers, as its documentation says), and the thread is started by whoever
    takes a lock with ``acquire(blocking=False)``: a caller that finds it taken
    leaves the start to its holder, which will find the queued wake.
    """

    def __init__(self) -> None:
        self._new_process_state()

    def _new_process_state(self) -> None:
        # a forked child has none of the parent's threads, and a lock a parent
        # thread held at the fork would stay held in the child: start afresh
        self._wakes: queue.SimpleQueue[weakref.ref[PrecomputedEcdsa] | None] = queue.SimpleQueue()
        self._starting = threading.Lock()
        self._thread: threading.Thread | None = None
        self._stopping = False
        self.failures = 0

    @property
    def running(self) -> bool:
        thread = self._thread
        return thread is not None and thread.is_alive()

    def request(self, signer: PrecomputedEcdsa) -> None:
        """Queue ``signer`` for a refill (each store's ``on_low``); never blocks."""
        if self._stopping:
            return  # stopped: signers sign directly from now on
        self._wakes.put(weakref.ref(signer))
        thread = self._thread
        if thread is None or not thread.is_alive():
            self._start()

    def _start(self) -> None:
        if not self._starting.acquire(blocking=False):
            return  # being started, perhaps by the frame this call interrupted
        try:
            thread = self._thread
            if not self._stopping and (thread is None or not thread.is_alive()):
                thread = threading.Thread(target=self._run, name="jwtmint-precompute", daemon=True)
                self._thread = thread
                thread.start()
        finally:
            self._starting.release()

    def _run(self) -> None:
        # the stores being filled, in turns of _FILL_STEP pairs each: one deep store
        # cannot hold up the others. Weak references: the thread keeps no signer alive
        active: dict[int, weakref.ref[PrecomputedEcdsa]] = {}
        while not self._stopping:
            if not self._admit(active):
                return
            for key, ref in list(active.items()):
                if self._stopping:
                    return
                if not self._step(ref):
                    del active[key]

    def _admit(self, active: dict[int, weakref.ref[PrecomputedEcdsa]]) -> bool:
        """Add the queued wakes to ``active``, sleeping until one comes if it is empty;
        False when told to stop."""
        try:
            ref = self._wakes.get(block=not active)
            while True:
                if ref is None:
                    return False
                signer = ref()
                if signer is not None:  # a signer queued twice is served once
                    active[id(signer)] = ref
                ref = self._wakes.get_nowait()
        except queue.Empty:
            return True

    def _step(self, ref: weakref.ref[PrecomputedEcdsa]) -> bool:
        """One turn for one store: whether it needs another."""
        signer = ref()  # held only in this frame
        if signer is None or signer.closed:
            return False
        try:
            # 0: full (another thread filled it meanwhile) or closed
            return signer.fill(_FILL_STEP) > 0 and signer.available < signer.depth
        except Exception as exc:  # the signer signs directly meanwhile: log, never die
            self.failures += 1
            if self.failures == 1:
                _log.warning("ECDSA precomputation failed (%s)", type(exc).__name__, exc_info=exc)
            return False

    def stop(self, timeout: float | None = _JOIN_TIMEOUT) -> None:
        self._stopping = True
        thread = self._thread
        self._wakes.put(None)
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)


_REFILLER = _Refiller()
reset_in_child(_REFILLER, _Refiller._new_process_state)
# stopped before the interpreter finalises, so the thread never wakes into a dying runtime
atexit.register(_REFILLER.stop)


def refiller_running() -> bool:
    """Whether this process's refill thread runs (it starts at the first request)."""
    return _REFILLER.running


def stop_refiller(timeout: float | None = _JOIN_TIMEOUT) -> None:
    """Stop this process's refill thread, for the rest of this process (done at interpreter
    exit), joining it for up to ``timeout`` seconds.

    Signers keep working afterwards: they sign directly once their stores run
    dry. A child forked afterwards is a new process: it starts its own refill
    thread when one of its signers asks, as any forked child does. So stopping
    the thread before forking workers is how to fork with no thread running
    and still have refills in the workers.
    """
    _REFILLER.stop(timeout)


def precomputing_ecdsa_signer(
    key: SigningKey,
    algorithm_name: str,
    *,
    depth: int = DEFAULT_DEPTH,
    low_water: int | None = None,
    prefill: bool = True,
    _kernel: ModuleType | None = None,
) -> PrecomputedEcdsa | None:
    """A ``sign(signing_input) -> DER`` callable backed by precomputed pairs, or None.

    Same output as :meth:`Algorithm.signer` for ECDSA: a DER ECDSA-Sig-Value,
    which ``kernel.compact(signing_input, der, ec_size)`` turns into R||S. It
    holds up to ``depth`` pairs; when fewer than ``low_water`` (default: half
    the depth) remain, the shared refill thread fills it back to ``depth``.
    ``prefill`` asks for that fill now; otherwise the first signature asks.
    The callable also has ``fill(n)``, ``clear()``, ``close()`` (for a store
    that will not sign again: wiped, and filled never again, by the refill
    thread included), and counters: ``available``, ``precomputed``,
    ``direct``, ``made``, ``discarded``.

    None when ``algorithm_name`` has no precomputed path (see
    ``PRECOMPUTED_ALGORITHMS``) or the kernel has no OpenSSL (the pure
    twin): sign with ``get_algorithm(name).signer(key)`` instead. Raises
    InvalidKeyError when ``key`` cannot sign with the algorithm.
    """
    algorithm = get_algorithm(algorithm_name)
    algorithm.check_key(key)
    if type(depth) is not int or not 1 <= depth <= MAX_DEPTH:
        raise ConfigurationError(f"depth must be an int from 1 to {MAX_DEPTH}, got {depth!r}")
    low = (depth + 1) // 2 if low_water is None else low_water
    if type(low) is not int or not 0 <= low <= depth:
        raise ConfigurationError(f"low_water must be an int from 0 to depth, got {low_water!r}")
    if algorithm.name not in PRECOMPUTED_ALGORITHMS:
        return None
    kernel = _kernels.kernel if _kernel is None else _kernel
    private = key.key
    assert isinstance(private, ec.EllipticCurvePrivateKey)
    sec1 = private.private_bytes(
        serialization.Encoding.DER,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )
    signer: PrecomputedEcdsa | None = kernel.ecdsa_precomputed(
        sec1, _BITS[algorithm.name], depth, low
    )
    if signer is None:
        return None
    signer.on_low = _REFILLER.request
    if prefill:
        _REFILLER.request(signer)
    return signer


def check_precompute(precompute: object) -> int | None:
    """A signer's ``precompute=``: None (the signer's default depth, made from its first
    signature on), 0 (off) or a depth made at once; else ConfigurationError."""
    if precompute is not None and (type(precompute) is not int or not 0 <= precompute <= MAX_DEPTH):
        raise ConfigurationError(
            f"precompute must be None, 0 (off) or a number of pairs up to {MAX_DEPTH}, "
            f"got {precompute!r}"
        )
    return precompute


def signer_store(
    key: SigningKey,
    algorithm_name: str,
    precompute: int | None,
    default_depth: int,
    *,
    _kernel: ModuleType | None = None,
) -> PrecomputedEcdsa | None:
    """The store a signer's (checked) ``precompute=`` asks for, or None: none for 0; for
    None ``default_depth`` pairs, made only once the signer first signs (a signer that never
    signs spends no CPU on pairs); for a number that many, made at once."""
    if precompute == 0:
        return None
    return precomputing_ecdsa_signer(
        key,
        algorithm_name,
        depth=default_depth if precompute is None else precompute,
        prefill=precompute is not None,
        _kernel=_kernel,
    )
