"""Versions and machine facts, printed with every set of results."""

from __future__ import annotations

import os
import platform
from importlib import metadata
from typing import Any

from .. import _algorithms, _kernels
from .._batch import cpu_count

__all__ = ["cpu_model", "environment", "version"]


def version(distribution: str) -> str | None:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return None


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            for line in handle:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def environment() -> dict[str, Any]:
    """jwtmint's build, Python, cryptography and OpenSSL, PyJWT, orjson, CPU and cores."""
    from cryptography.hazmat.backends.openssl.backend import backend

    return {
        "jwtmint": version("jwtmint"),
        "implementation": _kernels.kernel.IMPLEMENTATION,
        "c_kernel": "built" if _kernels.load_speedups() is not None else "not built",
        "ed25519_backend": _algorithms.ed25519_backend(),
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "cryptography": version("cryptography"),
        "openssl": backend.openssl_version_text(),
        "pyjwt": version("PyJWT"),
        "orjson": version("orjson"),
        "cpu": cpu_model(),
        "cpu_count": os.cpu_count(),
        "cpu_usable": cpu_count(),
        "platform": platform.platform(),
    }
