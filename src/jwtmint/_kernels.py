"""Chooses the hot-path implementation: the Cython ``_speedups`` or its twin ``_pure``.

The Python twin is used when ``JWTMINT_NO_EXTENSIONS`` is set to a non-empty
value, off CPython, or when the compiled module cannot be imported. Type
checkers always see the Python twin; both define the same names.
"""

from __future__ import annotations

import importlib.util
import os
import platform
import warnings
from types import ModuleType
from typing import TYPE_CHECKING

from . import _pure

__all__ = ["NO_EXTENSIONS", "kernel", "load_speedups"]


def _is_built() -> bool:
    try:
        return importlib.util.find_spec(f"{__package__}._speedups") is not None
    except (ImportError, ValueError):  # a None placed in sys.modules, as tests do
        return False


def load_speedups() -> ModuleType | None:
    """The compiled module, or None when it is not built (or stale) for this interpreter."""
    try:
        from . import _speedups  # type: ignore[attr-defined,unused-ignore]
    except ImportError as exc:
        if _is_built():
            # built but not loadable (e.g. libcrypto missing at run time): say so
            warnings.warn(
                f"jwtmint._speedups is built but cannot be imported ({exc}); "
                "using the pure-Python kernels",
                RuntimeWarning,
                stacklevel=2,
            )
        return None
    missing = set(_pure.__all__) - set(dir(_speedups))
    if missing:
        # an extension built from an older .pyx: say so rather than fail mid-mint
        warnings.warn(
            f"jwtmint._speedups is stale (lacks {', '.join(sorted(missing))}); "
            "rebuild it (pip install -e .) — using the pure-Python kernels",
            RuntimeWarning,
            stacklevel=2,
        )
        return None
    return _speedups  # type: ignore[no-any-return,unused-ignore]


_disabled = bool(os.environ.get("JWTMINT_NO_EXTENSIONS")) or (
    platform.python_implementation() != "CPython"
)

if TYPE_CHECKING:
    kernel = _pure
else:
    kernel = (None if _disabled else load_speedups()) or _pure

#: True when the pure-Python twin is in use (the C extension is disabled or missing).
NO_EXTENSIONS: bool = kernel is _pure
