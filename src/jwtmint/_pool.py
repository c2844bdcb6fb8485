"""A pool of pre-minted, single-use client assertions that refills itself.

A gateway that authenticates every outgoing token request with a fresh
client assertion (RFC 7523 §3: a ``jti`` the server has not seen, a short
``exp``) pays for one signature per request. An :class:`AssertionPool` moves
that signature off the request path: a refiller (a daemon thread, or an
asyncio task under ``async with``) mints assertions in batches with
:meth:`AssertionSigner.mint_many`, which spreads the signatures over every
core, and :meth:`AssertionPool.take` pops one ready assertion.

Guarantees of :meth:`~AssertionPool.take`:

* single use: each pooled assertion sits in one :class:`collections.deque`
  and ``popleft`` is atomic, so no two callers (threads or tasks) ever get
  the same assertion, hence the same ``jti``;
* freshness: an assertion is handed out only while, by the signer's clock,
  at least ``min_remaining`` seconds remain before its ``exp``; older ones
  are discarded (and counted);
* key rotation: every pooled assertion carries the signer's
  ``key_generation`` at mint time; after :meth:`AssertionSigner.rotate_key`
  the older ones are discarded (and counted), never handed out;
* no waiting: when the pool is empty (cold, or drained faster than the
  refill), ``take`` signs one assertion itself with :meth:`AssertionSigner.mint`
  (counted as ``minted_inline``), so a signing failure reaches the caller.

The fast path takes no lock: one ``popleft``, an ``int`` compare for the key
generation and a clock read against the entry's precomputed deadline.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import os
import threading
import weakref
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from types import TracebackType
from typing import TypeVar

from ._assertion import AssertionSigner
from .errors import ClosedError, ConfigurationError

__all__ = ["AssertionPool", "PoolStats"]

_log = logging.getLogger("jwtmint.pool")

_P = TypeVar("_P", bound="AssertionPool")

#: A pooled assertion: the token, the signer-clock time after which fewer than
#: ``min_remaining`` seconds of life would be left, and the key generation.
_Entry = tuple[str, float, int]

_DEFAULT_SIZE = 256
_DEFAULT_BATCH = 64
_MAX_WAIT = 1.0  # seconds: the refiller looks for expiry and key rotation at least this often
_MIN_WAIT = 0.01
_BACKOFF_FIRST = 0.05  # seconds after the first refill failure, doubled up to _BACKOFF_MAX
_BACKOFF_MAX = 2.0
_JOIN_TIMEOUT = 5.0


@dataclass(frozen=True, slots=True)
class PoolStats:
    """A snapshot of an :class:`AssertionPool`'s counters (``pool.stats()``).

    ``taken`` = ``served_from_pool`` + ``minted_inline``. The counters are
    exact when no ``take()`` is running; under concurrent takes
    ``served_from_pool`` may briefly include an assertion that a taker has
    just found stale and is about to count as discarded.
    """

    #: assertions returned by ``take()``
    taken: int
    #: of those, pre-minted ones popped from the pool
    served_from_pool: int
    #: of those, minted by ``take()`` itself because the pool had none
    minted_inline: int
    #: assertions minted ahead of use (by the refiller or ``fill()``)
    minted_in_background: int
    #: discarded with fewer than ``min_remaining`` seconds of life left
    discarded_expired: int
    #: discarded because the signer's key changed (``rotate_key``)
    discarded_rotated: int
    #: dropped unused by ``close()`` or in a forked child
    dropped: int
    #: assertions ready in the pool now
    ready: int
    #: the pool's capacity
    size: int
    #: refill attempts that raised
    refill_errors: int
    #: the exception of the latest failed refill, None if none failed
    last_error: BaseException | None
    #: whether a refill thread or task is running
    running: bool


class AssertionPool:
    """Keeps up to ``size`` pre-minted, single-use assertions from ``signer`` ready.

    ``pool.take()`` returns a ready assertion without signing; see the module
    docstring for its guarantees. Refilling runs in the background:

    * a daemon thread, started by :meth:`start`, ``with pool:``, or the first
      ``take()``, stopped and joined by :meth:`close` (or leaving ``with``);
    * an asyncio task, with ``async with pool:`` (stopped by :meth:`aclose`),
      which mints in a worker thread (:func:`asyncio.to_thread`) so the event
      loop never waits for a signature. If a refill thread was already
      started, it keeps that role and ``aclose()`` stops it.

    When fewer than ``low_water`` (default ``size // 2``) assertions remain,
    ``take()`` wakes the refiller, which mints ``batch_size`` (default
    ``min(size, 64)``) at a time until the pool is full again. The refiller
    also looks at the oldest assertion at least once a second, and discards
    assertions that went stale or belong to a replaced key. ``fill()`` fills
    the pool in the calling thread, for a warm start.

    ``min_remaining`` (seconds) must be at most ``signer.lifetime - 1``: ``exp``
    is whole seconds, so an assertion minted now may have up to a second less
    than ``lifetime`` to live. Each pooled assertion is usable for about
    ``lifetime - min_remaining`` seconds; after that the refiller replaces it.
    A closed pool cannot be restarted; ``take()`` on it raises
    :class:`~jwtmint.errors.ClosedError` once its ready assertions are gone (``close`` drops
    them). Invalid settings raise :class:`~jwtmint.errors.ConfigurationError`.
    """

    __slots__ = (
        "__weakref__",
        "_added",
        "_async_wake",
        "_batch",
        "_clock",
        "_closed",
        "_deadline_offset",
        "_discarded_expired",
        "_discarded_rotated",
        "_dropped",
        "_failures",
        "_fill_lock",
        "_last_error",
        "_lock",
        "_low_water",
        "_min_remaining",
        "_minted_inline",
        "_ready",
        "_refill_errors",
        "_signer",
        "_size",
        "_stopping",
        "_task",
        "_thread",
        "_wake_event",
        "_wake_pending",
    )

    def __init__(
        self,
        signer: AssertionSigner,
        *,
        size: int = _DEFAULT_SIZE,
        min_remaining: float = 15,
        low_water: int | None = None,
        batch_size: int | None = None,
    ) -> None:
        if not _is_int(size) or size < 1:
            raise ConfigurationError(f"size must be a positive int, got {size!r}")
        if (
            isinstance(min_remaining, bool)
            or not isinstance(min_remaining, (int, float))
            or not math.isfinite(min_remaining)
            or min_remaining < 0
        ):
            raise ConfigurationError(
                f"min_remaining must be a non-negative number of seconds, got {min_remaining!r}"
            )
        lifetime = signer.lifetime
        if min_remaining > lifetime - 1:
            raise ConfigurationError(
                f"min_remaining ({min_remaining}) must be at most the signer's lifetime "
                f"({lifetime}) minus 1 second: exp is whole seconds, so no assertion "
                "could be handed out"
            )
        if low_water is None:
            low_water = max(1, size // 2)
        elif not _is_int(low_water) or not 1 <= low_water <= size:
            raise ConfigurationError(
                f"low_water must be an int from 1 to size ({size}), got {low_water!r}"
            )
        if batch_size is None:
            batch_size = min(size, _DEFAULT_BATCH)
        elif not _is_int(batch_size) or batch_size < 1:
            raise ConfigurationError(f"batch_size must be a positive int, got {batch_size!r}")

        self._signer = signer
        self._clock = signer.clock
        self._size = size
        self._min_remaining = min_remaining
        self._deadline_offset = lifetime - min_remaining
        self._low_water = low_water
        self._batch = batch_size
        self._ready: deque[_Entry] = deque()
        # _lock guards the counters (short sections, never held while signing);
        # _fill_lock serialises refills so the pool never grows past size.
        self._lock = threading.Lock()
        self._fill_lock = threading.Lock()
        self._wake_event = threading.Event()
        self._wake_pending = False
        self._async_wake: Callable[[], None] | None = None
        self._thread: threading.Thread | None = None
        self._task: asyncio.Task[None] | None = None
        self._closed = False
        self._stopping = False
        self._failures = 0
        self._added = 0
        self._minted_inline = 0
        self._discarded_expired = 0
        self._discarded_rotated = 0
        self._dropped = 0
        self._refill_errors = 0
        self._last_error: BaseException | None = None
        _pools.add(self)

    # ------------------------------------------------------------------ properties

    @property
    def signer(self) -> AssertionSigner:
        return self._signer

    @property
    def size(self) -> int:
        return self._size

    @property
    def min_remaining(self) -> float:
        return self._min_remaining

    @property
    def low_water(self) -> int:
        return self._low_water

    @property
    def batch_size(self) -> int:
        return self._batch

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def running(self) -> bool:
        """Whether a refill thread or task is running."""
        thread, task = self._thread, self._task
        return (thread is not None and thread.is_alive()) or (task is not None and not task.done())

    def __repr__(self) -> str:
        return (
            f"AssertionPool(client_id={self._signer.client_id!r}, size={self._size}, "
            f"ready={len(self._ready)}, min_remaining={self._min_remaining}, "
            f"running={self.running}, closed={self._closed})"
        )

    # ------------------------------------------------------------------ taking

    def take(self) -> str:
        """A fresh, never handed out assertion: from the pool, or minted now if it is empty.

        Never returns an assertion with less than ``min_remaining`` seconds of
        life by the signer's clock, or one signed with a replaced key. Raises
        what ``signer.mint()`` raises when it has to mint and signing fails,
        and :class:`~jwtmint.errors.ClosedError` once the pool is closed and empty.
        """
        ready = self._ready
        try:
            token, deadline, generation = ready.popleft()
        except IndexError:
            return self._take_slow(0, 0)
        if generation == self._signer.key_generation:
            if self._clock() <= deadline:
                if len(ready) < self._low_water and not self._wake_pending:
                    self._request_refill()
                return token
            return self._take_slow(1, 0)
        return self._take_slow(0, 1)

    def _take_slow(self, expired: int, rotated: int) -> str:
        ready, signer, clock = self._ready, self._signer, self._clock
        token: str | None = None
        while True:
            try:
                entry = ready.popleft()
            except IndexError:
                break
            # entries are in mint order, so stale or old-key ones come first
            if entry[2] != signer.key_generation:
                rotated += 1
            elif clock() > entry[1]:
                expired += 1
            else:
                token = entry[0]
                break
        if expired or rotated:
            with self._lock:
                self._discarded_expired += expired
                self._discarded_rotated += rotated
        if token is not None:
            if len(ready) < self._low_water and not self._wake_pending:
                self._request_refill()
            return token
        if self._closed:
            raise ClosedError("the assertion pool is closed")
        if not self._wake_pending:
            self._request_refill()
        token = signer.mint()
        with self._lock:
            self._minted_inline += 1
        return token

    def _request_refill(self) -> None:
        self._wake_pending = True
        wake = self._async_wake
        if wake is not None:
            wake()
        elif self._thread is None:
            self._start_thread(raise_if_closed=False)
        else:
            self._wake_event.set()

    # ------------------------------------------------------------------ stats

    def stats(self) -> PoolStats:
        """A snapshot of the counters and the number of ready assertions."""
        with self._lock:
            ready = len(self._ready)
            gone = self._discarded_expired + self._discarded_rotated + self._dropped
            served = self._added - gone - ready
            return PoolStats(
                taken=served + self._minted_inline,
                served_from_pool=served,
                minted_inline=self._minted_inline,
                minted_in_background=self._added,
                discarded_expired=self._discarded_expired,
                discarded_rotated=self._discarded_rotated,
                dropped=self._dropped,
                ready=ready,
                size=self._size,
                refill_errors=self._refill_errors,
                last_error=self._last_error,
                running=self.running,
            )

    # ------------------------------------------------------------------ filling

    def fill(self) -> int:
        """Mint in the calling thread until ``size`` assertions are ready; return how many.

        For a warm start (``pool.fill()`` before serving traffic). Raises what
        ``signer.mint_many`` raises, and :class:`~jwtmint.errors.ClosedError` on a closed pool.
        """
        added = 0
        while True:
            if self._closed:
                raise ClosedError("the assertion pool is closed")
            step = self._fill_step()
            if step is None:
                return added
            added += step

    def _fill_step(self) -> int | None:
        """Purge, then mint one batch if there is room: the number added, None when full."""
        with self._fill_lock:
            self._purge()
            room = self._size - len(self._ready)
            if room <= 0:
                return None
            return self._mint_into_pool(min(room, self._batch))

    def _purge(self) -> None:
        """Drop stale and old-key assertions from the front (under the counter lock,
        so that ``stats()`` never sees an assertion in flight)."""
        ready, signer, clock = self._ready, self._signer, self._clock
        with self._lock:
            while True:
                try:
                    entry = ready.popleft()
                except IndexError:
                    return
                if entry[2] != signer.key_generation:
                    self._discarded_rotated += 1
                elif clock() > entry[1]:
                    self._discarded_expired += 1
                else:
                    ready.appendleft(entry)
                    return

    def _mint_into_pool(self, n: int) -> int:
        signer, clock = self._signer, self._clock
        # The generation is read before minting: if the key changes meanwhile,
        # the batch is dropped below rather than labelled with the new generation.
        generation = signer.key_generation
        before = clock()
        tokens = signer.mint_many(n)
        after = clock()
        # exp = floor(clock at mint) + lifetime, and the mint read the clock
        # between these two reads: the earlier one gives a lower bound.
        deadline = math.floor(min(before, after)) + self._deadline_offset
        with self._lock:
            self._added += len(tokens)
            if signer.key_generation != generation:
                self._discarded_rotated += len(tokens)
                return 0
            if self._closed:
                self._dropped += len(tokens)
                return 0
            self._ready.extend([(token, deadline, generation) for token in tokens])
        return len(tokens)

    def _cycle(self) -> float:
        """One refill round (refiller thread or worker thread): seconds to wait after it."""
        self._wake_pending = False  # from here on, a take() below low water wakes us again
        try:
            while not self._stopping and self._fill_step() is not None:
                pass
        except Exception as exc:
            self._record_error(exc)
            # takers need not wake us during the back-off: they mint inline meanwhile
            self._wake_pending = True
            return min(_BACKOFF_FIRST * (1 << min(self._failures - 1, 16)), _BACKOFF_MAX)
        if self._failures:
            _log.info(
                "assertion pool refill for %r recovered after %d failures",
                self._signer.client_id,
                self._failures,
            )
            self._failures = 0
        try:
            deadline = self._ready[0][1]
        except IndexError:
            return _MAX_WAIT
        # wake when the oldest assertion goes stale (signer-clock seconds)
        return min(max(deadline - self._clock(), _MIN_WAIT), _MAX_WAIT)

    def _record_error(self, exc: Exception) -> None:
        self._failures += 1
        with self._lock:
            self._refill_errors += 1
            self._last_error = exc
        if self._failures == 1:
            _log.warning(
                "assertion pool refill for %r failed (%s); take() mints inline until it recovers",
                self._signer.client_id,
                type(exc).__name__,
                exc_info=exc,
            )

    # ------------------------------------------------------------------ thread mode

    def start(self) -> None:
        """Start the refill thread (a no-op if a refiller already runs)."""
        self._start_thread(raise_if_closed=True)

    def _start_thread(self, *, raise_if_closed: bool) -> None:
        with self._lock:
            if self._closed:
                if raise_if_closed:
                    raise ClosedError("the assertion pool is closed; make a new one")
                return
            if self._thread is not None or self._task is not None:
                return
            thread = threading.Thread(
                target=_thread_main,
                args=(weakref.ref(self), self._wake_event),
                name=f"jwtmint-pool[{self._signer.client_id}]",
                daemon=True,
            )
            self._thread = thread
            # started under the lock, so close() never sees a thread it cannot join
            thread.start()

    def close(self, timeout: float | None = _JOIN_TIMEOUT) -> None:
        """Stop the refiller, wait up to ``timeout`` s for the thread, drop ready assertions.

        Idempotent. An asyncio refill task is told to stop but not awaited:
        use :meth:`aclose` in async code.
        """
        self._stop()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)
        self._drop_ready()

    def _stop(self) -> None:
        with self._lock:
            self._closed = True
            self._stopping = True
        self._wake_event.set()
        wake = self._async_wake
        if wake is not None:
            wake()

    def _drop_ready(self) -> None:
        with self._lock:
            dropped = len(self._ready)
            self._ready.clear()
            self._dropped += dropped

    def __enter__(self: _P) -> _P:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # ------------------------------------------------------------------ asyncio mode

    async def __aenter__(self: _P) -> _P:
        self._start_task()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    def _start_task(self) -> None:
        loop = asyncio.get_running_loop()
        with self._lock:
            if self._closed:
                raise ClosedError("the assertion pool is closed; make a new one")
            if self._thread is not None or self._task is not None:
                return
            event = asyncio.Event()

            def wake() -> None:
                with contextlib.suppress(RuntimeError):  # a closed loop: nobody to wake
                    loop.call_soon_threadsafe(event.set)

            self._async_wake = wake
            self._task = loop.create_task(
                self._run_task(event), name=f"jwtmint-pool[{self._signer.client_id}]"
            )

    async def _run_task(self, event: asyncio.Event) -> None:
        while not self._stopping:
            event.clear()
            try:
                timeout = await asyncio.to_thread(self._cycle)
            except Exception as exc:  # the executor is shutting down
                self._record_error(exc)
                return
            if self._stopping:
                return
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(event.wait(), timeout)

    async def aclose(self, timeout: float | None = _JOIN_TIMEOUT) -> None:
        """Stop the refiller and wait up to ``timeout`` s for it; drop ready assertions.

        The event loop never blocks here: a refill thread is joined in a worker thread.
        """
        self._stop()
        task = self._task
        if task is not None and not task.done():
            done, _ = await asyncio.wait({task}, timeout=timeout)
            if not done:
                task.cancel()
                await asyncio.wait({task})
        if task is not None and task.done() and not task.cancelled():
            task.result()  # _run_task handles its errors; this only re-raises bugs
        thread = self._thread
        if thread is not None:
            await asyncio.to_thread(thread.join, timeout)
        self._drop_ready()

    # ------------------------------------------------------------------ fork

    def _after_fork_in_child(self) -> None:
        # The parent keeps handing out the pooled assertions: the child must
        # never use them (one jti, two processes). Threads, tasks and locks
        # held by them do not exist here.
        self._lock = threading.Lock()
        self._fill_lock = threading.Lock()
        self._wake_event = threading.Event()
        self._wake_pending = False
        self._async_wake = None
        self._thread = None
        self._task = None
        self._stopping = self._closed
        self._dropped += len(self._ready)
        self._ready.clear()


def _thread_main(ref: weakref.ref[AssertionPool], wake: threading.Event) -> None:
    """The refill thread. It holds the pool only during a round, so an
    abandoned pool is collected and its thread ends within a second."""
    while True:
        pool = ref()
        if pool is None or pool._stopping:
            return
        wake.clear()
        timeout = pool._cycle()
        del pool
        wake.wait(timeout)


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


_pools: weakref.WeakSet[AssertionPool] = weakref.WeakSet()


def _reset_after_fork() -> None:
    for pool in list(_pools):
        pool._after_fork_in_child()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reset_after_fork)
