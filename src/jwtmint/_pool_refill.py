"""Refills an assertion store in the background: a daemon thread, or an asyncio task.

Both engines run the same round (:meth:`RefillingStore._cycle`): fill the
store batch by batch with :meth:`AssertionSigner.mint_many`, which spreads the
signatures over every core, then sleep until a ``take()`` below ``low_water``
wakes them or the oldest assertion goes stale. A failing round backs off
exponentially; meanwhile ``take()`` mints inline, so nobody waits for the
refiller. The asyncio engine runs each round in a worker thread
(:func:`asyncio.to_thread`) so that the event loop never waits for a signature.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import weakref
from collections.abc import Callable
from types import TracebackType
from typing import TypeVar

from ._pool_store import AssertionStore
from .errors import ClosedError

__all__ = ["RefillingStore"]

_log = logging.getLogger("jwtmint.pool")

_R = TypeVar("_R", bound="RefillingStore")

_MAX_WAIT = 1.0  # seconds: the refiller looks for expiry and key rotation at least this often
_MIN_WAIT = 0.01
_BACKOFF_FIRST = 0.05  # seconds after the first refill failure, doubled up to _BACKOFF_MAX
_BACKOFF_MAX = 2.0
_JOIN_TIMEOUT = 5.0


class RefillingStore(AssertionStore):
    """An :class:`AssertionStore` that a thread or an asyncio task keeps filled."""

    __slots__ = ("_async_wake", "_failures", "_stopping", "_task", "_thread", "_wake_event")

    def _new_process_state(self) -> None:
        super()._new_process_state()
        # a forked child has none of the parent's threads or tasks: nothing to stop or join
        self._wake_event = threading.Event()
        self._async_wake: Callable[[], None] | None = None
        self._thread: threading.Thread | None = None
        self._task: asyncio.Task[None] | None = None
        self._stopping = self._closed
        self._failures = 0

    @property
    def running(self) -> bool:
        """Whether a refill thread or task is running."""
        thread, task = self._thread, self._task
        return (thread is not None and thread.is_alive()) or (task is not None and not task.done())

    def _request_refill(self) -> None:
        self._wake_pending = True
        wake = self._async_wake
        if wake is not None:
            wake()
        elif self._thread is None:
            self._start_thread(raise_if_closed=False)
        else:
            self._wake_event.set()

    # ------------------------------------------------------------------ one round

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

    def _stop(self) -> None:
        with self._lock:
            self._closed = True
            self._stopping = True
        self._wake_event.set()
        wake = self._async_wake
        if wake is not None:
            wake()

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

    def __enter__(self: _R) -> _R:
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

    async def __aenter__(self: _R) -> _R:
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


def _thread_main(ref: weakref.ref[RefillingStore], wake: threading.Event) -> None:
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
