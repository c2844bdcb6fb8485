"""Running a coroutine on uvloop when it is installed (``jwtmint[uvloop]``)."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar

__all__ = ["event_loop_name", "run"]

_T = TypeVar("_T")


def _uvloop() -> Any:
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop


def event_loop_name() -> str:
    """``"uvloop"`` when :func:`run` would use it, else ``"asyncio"``."""
    return "uvloop" if _uvloop() is not None else "asyncio"


def run(main: Coroutine[Any, Any, _T], *, use_uvloop: bool = True) -> _T:
    """``asyncio.run(main)``, on uvloop's faster event loop when it is installed."""
    uvloop = _uvloop() if use_uvloop else None
    if uvloop is not None:
        result: _T = uvloop.run(main)
        return result
    return asyncio.run(main)
