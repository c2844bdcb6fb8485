"""Holds an assertion pool's ready assertions: single-use ``take()``, batch fills and counters.

Guarantees of :meth:`~AssertionStore.take`:

* single use: each pooled assertion sits in one :class:`collections.deque`
  and ``popleft`` is atomic, so no two callers (threads or tasks) ever get
  the same assertion, hence the same ``jti`` (RFC 7523 §3);
* freshness: an assertion is handed out only while, by the signer's clock,
  at least ``min_remaining`` seconds remain before its ``exp``; older ones
  are discarded (and counted);
* key rotation: every pooled assertion carries the signer's
  ``key_generation`` at mint time; after :meth:`AssertionSigner.rotate_key`
  the older ones are discarded (and counted), never handed out;
* no waiting: when the store is empty (cold, or drained faster than the
  refill), ``take`` signs one assertion itself with :meth:`AssertionSigner.mint`
  (counted as ``minted_inline``), so a signing failure reaches the caller.

The fast path takes no lock: one ``popleft``, an ``int`` compare for the key
generation and a clock read against the entry's precomputed deadline. Who
refills the store is :mod:`jwtmint._pool_refill`'s business: ``take()`` only
calls the :meth:`~AssertionStore._request_refill` hook.
"""

from __future__ import annotations

import math
import threading
from collections import deque
from dataclasses import dataclass

from ._assertion import AssertionSigner
from ._forksafe import reset_in_child
from .errors import ClosedError, ConfigurationError

__all__ = ["AssertionStore", "PoolStats"]

#: A pooled assertion: the token, the signer-clock time after which fewer than
#: ``min_remaining`` seconds of life would be left, and the key generation.
_Entry = tuple[str, float, int]

_DEFAULT_SIZE = 256
_DEFAULT_BATCH = 64


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


class AssertionStore:
    """Up to ``size`` pre-minted, single-use assertions from ``signer``, and their counters.

    The settings are checked here (:class:`~jwtmint.errors.ConfigurationError`
    when invalid); :class:`~jwtmint.AssertionPool` documents them. A store
    never refills itself: ``take()`` mints inline when it is empty, and
    :meth:`fill` fills it in the calling thread.
    """

    __slots__ = (
        "__weakref__",
        "_added",
        "_batch",
        "_clock",
        "_closed",
        "_deadline_offset",
        "_discarded_expired",
        "_discarded_rotated",
        "_dropped",
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
        self._closed = False
        self._added = 0
        self._minted_inline = 0
        self._discarded_expired = 0
        self._discarded_rotated = 0
        self._dropped = 0
        self._refill_errors = 0
        self._last_error: BaseException | None = None
        self._new_process_state()
        reset_in_child(self, AssertionStore._forget_in_child)

    def _new_process_state(self) -> None:
        """(Re)create what belongs to one process: at construction and in a forked child.

        Subclasses that add threads, tasks or locks extend this.
        """
        # _lock guards the counters (short sections, never held while signing);
        # _fill_lock serialises refills so the store never grows past size.
        self._lock = threading.Lock()
        self._fill_lock = threading.Lock()
        self._wake_pending = False

    def _forget_in_child(self) -> None:
        # The parent keeps handing out the pooled assertions: the child must
        # never use them (one jti, two processes). Threads, tasks and locks
        # held by them do not exist here.
        self._new_process_state()
        self._drop_ready()

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
        """Whether a refill thread or task is running (never, for a bare store)."""
        return False

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
        """Called when fewer than ``low_water`` remain; a refill engine overrides it."""

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
        ``signer.mint_many`` raises, and :class:`~jwtmint.errors.ClosedError`
        on a closed pool.
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

    def _drop_ready(self) -> None:
        with self._lock:
            dropped = len(self._ready)
            self._ready.clear()
            self._dropped += dropped


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)
