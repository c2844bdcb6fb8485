"""Versions and machine facts, printed with every set of results."""

from __future__ import annotations

import os
import platform
from importlib import metadata
from typing import Any

from .. import _kernels, algorithms

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

    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        usable = os.cpu_count() or 1
    ed25519_backend = getattr(algorithms, "ed25519_backend", None)
    return {
        "jwtmint": version("jwtmint"),
        "implementation": _kernels.kernel.IMPLEMENTATION,
        "c_kernel": "built" if _kernels.load_speedups() is not None else "not built",
        "ed25519_backend": ed25519_backend() if callable(ed25519_backend) else "cryptography",
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "cryptography": version("cryptography"),
        "openssl": backend.openssl_version_text(),
        "pyjwt": version("PyJWT"),
        "orjson": version("orjson"),
        "cpu": cpu_model(),
        "cpu_count": os.cpu_count(),
        "cpu_usable": usable,
        "platform": platform.platform(),
    }
