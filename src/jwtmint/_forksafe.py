"""Resets registered objects in a forked child, so no two processes share per-process state.

A forked child inherits a copy of every buffered ``jti`` and pooled
assertion, and locks that a parent thread may have held, but none of the
parent's threads or tasks. Anything handed out by both processes would be
used twice (RFC 7519 §4.1.7: a ``jti`` must be unique), so objects holding
such state register a reset that runs in the child
(``os.register_at_fork``), before the child's own code continues.
"""

from __future__ import annotations

import logging
import os
import weakref
from collections.abc import Callable
from typing import Any, TypeVar

__all__ = ["reset_in_child"]

_log = logging.getLogger("jwtmint")

_T = TypeVar("_T")

# Weak keys: registering must not keep an abandoned pool alive.
_resets: weakref.WeakKeyDictionary[Any, Callable[[Any], None]] = weakref.WeakKeyDictionary()


def reset_in_child(obj: _T, reset: Callable[[_T], None]) -> None:
    """Call ``reset(obj)`` in every child forked while ``obj`` is alive."""
    _resets[obj] = reset


def _reset_all() -> None:
    for obj, reset in list(_resets.items()):
        try:
            reset(obj)
        except Exception:  # one failed reset must not leave the others shared with the parent
            _log.exception("resetting %s in a forked child failed", type(obj).__name__)


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reset_all)
