"""jwtmint: fast OAuth 2.0 client assertions, DPoP proofs and a PyJWT-compatible ``encode``.

>>> import jwtmint
>>> key = jwtmint.generate_key("ES256")
>>> signer = jwtmint.AssertionSigner(key, "invoice", "https://idp.example.com")
>>> token = signer.mint()
"""

from __future__ import annotations

from ._algorithms import ALGORITHMS, Algorithm, get_algorithm
from ._assertion import (
    CLIENT_ASSERTION_TYP,
    JWT_BEARER,
    REGISTERED_CLAIMS,
    AssertionSigner,
    ClientAssertion,
)
from ._dpop import DPoPSigner, dpop_proof
from ._jwk import jwk_thumbprint
from ._jws import encode
from ._kernels import NO_EXTENSIONS, kernel
from ._keys import SigningKey, generate_key, load_key, load_secret
from ._pool import AssertionPool, PoolStats
from ._pyjwt_patch import PyJWTPatch, patch_pyjwt, unpatch_pyjwt
from .errors import (
    ClosedError,
    ConfigurationError,
    DiscoveryError,
    InvalidClaimsError,
    InvalidHeaderError,
    InvalidKeyError,
    InvalidPayloadError,
    InvalidTokenResponseError,
    JwtMintError,
    ManagerNotRunningError,
    TokenEndpointError,
    TokenEndpointTimeout,
    TokenRequestError,
    UnknownClientError,
    UnsupportedAlgorithmError,
)

__version__ = "0.1.0"

#: "c" when the Cython extension is in use, "py" for the pure-Python twin.
IMPLEMENTATION: str = kernel.IMPLEMENTATION

__all__ = [
    "ALGORITHMS",
    "CLIENT_ASSERTION_TYP",
    "IMPLEMENTATION",
    "JWT_BEARER",
    "NO_EXTENSIONS",
    "REGISTERED_CLAIMS",
    "Algorithm",
    "AssertionPool",
    "AssertionSigner",
    "ClientAssertion",
    "ClosedError",
    "ConfigurationError",
    "DPoPSigner",
    "DiscoveryError",
    "InvalidClaimsError",
    "InvalidHeaderError",
    "InvalidKeyError",
    "InvalidPayloadError",
    "InvalidTokenResponseError",
    "JwtMintError",
    "ManagerNotRunningError",
    "PoolStats",
    "PyJWTPatch",
    "SigningKey",
    "TokenEndpointError",
    "TokenEndpointTimeout",
    "TokenRequestError",
    "UnknownClientError",
    "UnsupportedAlgorithmError",
    "__version__",
    "dpop_proof",
    "encode",
    "generate_key",
    "get_algorithm",
    "jwk_thumbprint",
    "load_key",
    "load_secret",
    "patch_pyjwt",
    "unpatch_pyjwt",
]
