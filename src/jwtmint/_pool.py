"""AssertionPool: pre-minted, single-use client assertions, ready before they are asked for.

A gateway that authenticates every outgoing token request with a fresh
client assertion (RFC 7523 §3: a ``jti`` the server has not seen, a short
``exp``) pays for one signature per request. An :class:`AssertionPool` moves
that signature off the request path: a refiller mints assertions in batches
and :meth:`AssertionPool.take` pops one ready assertion. The pool is built
from one module per concern:

* :mod:`jwtmint._pool_store`: the ready assertions, ``take()``, ``fill()``,
  the counters (:class:`PoolStats`) and the checks of the settings;
* :mod:`jwtmint._pool_refill`: the refill engines, a daemon thread or an
  asyncio task;
* :mod:`jwtmint._forksafe`: a forked child drops the parent's assertions.
"""

from __future__ import annotations

from ._pool_refill import RefillingStore
from ._pool_store import PoolStats

__all__ = ["AssertionPool", "PoolStats"]


class AssertionPool(RefillingStore):
    """Keeps up to ``size`` pre-minted, single-use assertions from ``signer`` ready.

    ``pool.take()`` returns a ready assertion without signing; see
    :mod:`jwtmint._pool_store` for its guarantees. Refilling runs in the background:

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
    Invalid settings raise :class:`~jwtmint.errors.ConfigurationError`.
    A closed pool cannot be restarted; ``take()`` on it raises
    :class:`~jwtmint.errors.ClosedError` once its ready assertions are gone
    (``close`` drops them). A forked child never hands out the parent's
    assertions: they are dropped, and the child starts its own refiller.
    """

    __slots__ = ()

    def __repr__(self) -> str:
        return (
            f"AssertionPool(client_id={self._signer.client_id!r}, size={self._size}, "
            f"ready={len(self._ready)}, min_remaining={self._min_remaining}, "
            f"running={self.running}, closed={self._closed})"
        )
