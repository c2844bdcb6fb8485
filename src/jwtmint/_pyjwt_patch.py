"""``patch_pyjwt()``: PyJWT's ``jwt.encode``, accelerated in place, with PyJWT's behaviour.

Like ``uvloop.install()``, :func:`patch_pyjwt` changes the running process:
``jwt.encode``, ``jwt.api_jwt.encode`` and ``jwt.PyJWT.encode`` then take
jwtmint's signer (parsed-key cache, C kernel) for the inputs where the result
is provably what PyJWT would return: a plain ``PyJWT`` (not a subclass, whose
``_encode_payload`` and other hooks must run), PyJWT's own algorithm objects
(none replaced with ``jwt.register_algorithm``), a ``dict`` payload, a key that
is a ``str``/``bytes`` secret, a single PEM private key or a cryptography
private key object, and inputs jwtmint accepts at all. Everything else, and
every input jwtmint refuses (``none``, short secrets PyJWT warns about, small
RSA keys, PyJWK keys, ES256K, unknown algorithms, ...), goes to PyJWT's own
code, which returns, warns or raises exactly as it always did.
"""

from __future__ import annotations

import functools
import threading
from dataclasses import dataclass, field
from typing import Any

from ._jws import sign_jws
from ._keytypes import PRIVATE_KEY_TYPES
from .errors import ConfigurationError

__all__ = ["PyJWTPatch", "patch_pyjwt", "unpatch_pyjwt"]

#: the PyJWT releases whose encode path this mirrors (tested with 2.15.1)
SUPPORTED = ((2, 10), (3, 0))

#: PEM blocks PyJWT's algorithms load as private keys (cryptography's load_pem_private_key)
_PRIVATE_PEM = (b"-----BEGIN PRIVATE KEY-----", b"-----BEGIN RSA PRIVATE KEY-----",
                b"-----BEGIN EC PRIVATE KEY-----")  # fmt: skip


@dataclass
class PyJWTPatch:
    """The patch in force: how many ``encode`` calls took jwtmint's path (``fast``) and how
    many went to PyJWT's own code (``fallback``). The counters are not atomic across
    threads: they are for tests and curiosity, not accounting."""

    fast: int = 0
    fallback: int = 0
    _originals: dict[str, Any] = field(default_factory=dict, repr=False)


_state: PyJWTPatch | None = None
_lock = threading.Lock()


def patch_pyjwt() -> PyJWTPatch:
    """Accelerate PyJWT's ``encode`` in this process; patching again returns the same patch.

    Raises :class:`~jwtmint.errors.ConfigurationError` when PyJWT is missing or of a
    release this does not mirror.
    """
    global _state
    with _lock:
        if _state is not None:
            return _state
        jwt, api_jwt, api_jws = _pyjwt_modules()
        patch = PyJWTPatch()
        original = api_jwt.PyJWT.encode
        patch._originals = {
            "method": original,
            "jwt.encode": jwt.encode,
            "api_jwt.encode": api_jwt.encode,
        }
        method = _accelerated(original, patch, api_jwt, api_jws)
        api_jwt.PyJWT.encode = method
        bound = api_jwt._jwt_global_obj.encode  # the patched method, bound to PyJWT's own
        jwt.encode = bound
        api_jwt.encode = bound
        _state = patch
        return patch


def unpatch_pyjwt() -> None:
    """Put PyJWT's own ``encode`` back (harmless when not patched)."""
    global _state
    with _lock:
        if _state is None:
            return
        jwt, api_jwt, _ = _pyjwt_modules()
        originals = _state._originals
        api_jwt.PyJWT.encode = originals["method"]
        jwt.encode = originals["jwt.encode"]
        api_jwt.encode = originals["api_jwt.encode"]
        _state = None


def _pyjwt_modules() -> tuple[Any, Any, Any]:
    try:
        import jwt
        import jwt.api_jws as api_jws
        import jwt.api_jwt as api_jwt
    except ImportError:
        raise ConfigurationError("patch_pyjwt needs PyJWT: pip install pyjwt") from None
    version = getattr(jwt, "__version__", "")
    try:
        release = tuple(int(part) for part in version.split(".")[:2])
    except ValueError:
        release = ()
    low, high = SUPPORTED
    if not (low <= release < high) or not hasattr(api_jws, "_ALGORITHM_UNSET"):
        raise ConfigurationError(
            f"patch_pyjwt mirrors PyJWT {low[0]}.{low[1]} to {high[0] - 1}.x; this is PyJWT "
            f"{version or '(unknown)'}: use jwtmint.encode directly, or a supported PyJWT"
        )
    return jwt, api_jwt, api_jws


def _accelerated(original: Any, patch: PyJWTPatch, api_jwt: Any, api_jws: Any) -> Any:
    from jwt.algorithms import get_default_algorithms

    pyjwt_class, pyjws_class, unset = api_jwt.PyJWT, api_jws.PyJWS, api_jws._ALGORITHM_UNSET
    defaults = get_default_algorithms()
    # per name, the algorithm object found to be PyJWT's own (held: an identity check can
    # then never match a new object that reused a dead one's id)
    verified: dict[str, Any] = {}

    def is_own_algorithm(jws: Any, name: str, registered: Any) -> bool:
        """Whether ``registered`` is PyJWT's own algorithm object for ``name``, as it comes
        (not one put in its place with ``register_algorithm``)."""
        default = defaults.get(name)
        own = (
            name in jws._valid_algs
            and type(registered) is type(default)
            and vars(registered) == vars(default)
        )
        if own and len(verified) < 64:
            verified[name] = registered
        return own

    @functools.wraps(original)
    def encode(
        self: Any,
        payload: Any,
        key: Any,
        algorithm: Any = unset,
        headers: Any = None,
        json_encoder: Any = None,
        sort_headers: bool = True,
    ) -> str:
        # every check is cheap and inline: the fast path costs little more than jwtmint's
        name = "HS256" if algorithm is unset else algorithm
        if headers:
            chosen = headers.get("alg") if type(headers) is dict else None
            name = chosen or name if type(headers) is dict else None
        jws = self._jws
        if (
            type(name) is str
            and type(self) is pyjwt_class
            and type(jws) is pyjws_class
            and jws.header_typ == "JWT"
            and isinstance(payload, dict)
            and (headers is None or type(headers) is dict)
        ):
            registered = jws._algorithms.get(name)
            hmac = name[:2] == "HS"
            if (
                registered is not None
                and (verified.get(name) is registered or is_own_algorithm(jws, name, registered))
                and (
                    (hmac and type(key) is str and "-----BEGIN" not in key)
                    or _plain_key(key, hmac=hmac)
                )
            ):
                try:
                    token = sign_jws(payload, key, name, headers, json_encoder, sort_headers)
                except Exception:  # jwtmint refused: PyJWT answers as it would
                    pass
                else:
                    patch.fast += 1
                    return token
        patch.fallback += 1
        result: str = original(self, payload, key, algorithm, headers, json_encoder, sort_headers)
        return result

    return encode


def _plain_key(key: Any, *, hmac: bool) -> bool:
    """A key PyJWT and jwtmint read the same way: for HMAC a ``str``/``bytes`` secret; else
    one PEM private key, or a cryptography private key object (jwtmint also reads JWKs,
    DER, PKCS#12 and more, which PyJWT refuses)."""
    if isinstance(key, str):
        if "-----BEGIN" not in key:
            return hmac
        key = key.encode("utf-8", "surrogatepass")
    elif isinstance(key, bytes):
        if b"-----BEGIN" not in key:
            return hmac
    else:
        # after the str/bytes checks: isinstance against these ABCs is the slow part
        return not hmac and isinstance(key, PRIVATE_KEY_TYPES)
    return not hmac and key.count(b"-----BEGIN") == 1 and key.lstrip().startswith(_PRIVATE_PEM)
