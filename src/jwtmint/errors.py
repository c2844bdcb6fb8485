"""The exceptions jwtmint raises, all under one root.

::

    JwtMintError
    ├── InvalidKeyError             (also ValueError)
    ├── UnsupportedAlgorithmError   (also ValueError)
    ├── InvalidClaimsError          (also ValueError)
    ├── InvalidHeaderError          (also ValueError)
    └── InvalidPayloadError         (also TypeError)

Messages say what went wrong and what to do about it; they never carry key
material, secrets or tokens.
"""

from __future__ import annotations

__all__ = [
    "InvalidClaimsError",
    "InvalidHeaderError",
    "InvalidKeyError",
    "InvalidPayloadError",
    "JwtMintError",
    "UnsupportedAlgorithmError",
]


class JwtMintError(Exception):
    """Raised for every error jwtmint detects; catch this to catch them all."""


class InvalidKeyError(JwtMintError, ValueError):
    """Raised when a key cannot be loaded, is too weak, or does not fit the algorithm."""


class UnsupportedAlgorithmError(JwtMintError, ValueError):
    """Raised when an algorithm name is unknown or refused (such as ``none``)."""


class InvalidClaimsError(JwtMintError, ValueError):
    """Raised when claims cannot be serialised or would override registered claims."""


class InvalidHeaderError(JwtMintError, ValueError):
    """Raised when JOSE header parameters are malformed or conflict with the signer."""


class InvalidPayloadError(JwtMintError, TypeError):
    """Raised when a payload given to ``encode`` is not a mapping of claims."""
