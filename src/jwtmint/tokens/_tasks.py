"""Shared asyncio tasks: waiting on one without cancelling it, and entering a lock in time."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from typing import Any, TypeVar

from ..errors import ManagerNotRunningError

__all__ = ["enter_within", "enter_within_legacy", "failed", "wait_shared"]

_T = TypeVar("_T")


def failed(task: asyncio.Task[Any]) -> bool:
    """A done task that did not produce a result."""
    return task.cancelled() or task.exception() is not None


def _cancelling() -> int:
    """How many cancellations the current task has pending (0 before Python 3.11)."""
    task = asyncio.current_task()
    cancelling = getattr(task, "cancelling", None)
    return int(cancelling()) if cancelling is not None else 0


async def wait_shared(
    task: asyncio.Task[_T], closed: Callable[[], bool], timeout: float | None = None
) -> _T:
    """Await a task other callers share; shield it, since one impatient caller's
    cancellation must not cancel the request everyone else waits for.

    A caller that was not cancelled itself but finds the task cancelled because
    its owner closed (``closed()``) gets :class:`ManagerNotRunningError`. With
    ``timeout`` (seconds), TimeoutError once it has passed: the task goes on.
    """
    try:
        if timeout is not None:
            return await asyncio.wait_for(asyncio.shield(task), max(0.0, timeout))
        return await asyncio.shield(task)
    except asyncio.CancelledError:
        if task.cancelled() and closed() and not _cancelling():
            raise ManagerNotRunningError(
                "the TokenManager was closed while this request was in flight"
            ) from None
        raise


async def enter_within(manager: AbstractAsyncContextManager[object], seconds: float) -> None:
    """``await manager.__aenter__()`` in the current task, or TimeoutError after ``seconds``."""
    if sys.version_info >= (3, 11):
        async with asyncio.timeout(seconds):
            await manager.__aenter__()
    else:  # pragma: no cover - exercised directly by the tests on every version
        await enter_within_legacy(manager, seconds)


async def enter_within_legacy(manager: AbstractAsyncContextManager[object], seconds: float) -> None:
    """Python 3.10 has no asyncio.timeout: cancel this task when time is up (as
    async-timeout does), rather than wait_for, which would enter in another task."""
    task = asyncio.current_task()
    assert task is not None
    expired = False

    def expire() -> None:
        nonlocal expired
        expired = True
        task.cancel()

    handle = asyncio.get_running_loop().call_later(seconds, expire)
    try:
        await manager.__aenter__()
    except asyncio.CancelledError:
        if expired:
            raise asyncio.TimeoutError from None
        raise
    finally:
        handle.cancel()
