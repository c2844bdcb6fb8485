"""``patch_pyjwt()``: PyJWT's ``jwt.encode``, accelerated in place, with PyJWT's behaviour.

Like ``uvloop.install()``, :func:`patch_pyjwt` changes the running process:
``jwt.encode``, ``jwt.api_jwt.encode`` and ``jwt.PyJWT.encode`` then take
jwtmint's signer (parsed-key cache, C kernel) for the inputs where the result
is provably what PyJWT would return: a plain ``PyJWT`` whose methods and
algorithm objects are all PyJWT's own as it comes (none replaced on the class,
on the instance or with ``register_algorithm``), a ``dict`` payload, a key that
is a ``str``/``bytes`` secret, a single ASCII PEM private key or a
cryptography private key object, and inputs jwtmint accepts at all.
Everything else, and every input jwtmint refuses (``none``, short secrets
PyJWT warns about, small RSA keys, PyJWK keys, ES256K, unknown algorithms,
...), goes to PyJWT's own code, which returns, warns or raises exactly as it
always did. jwtmint's refusals come before any JSON is written, so a
``json_encoder`` runs once either way.
"""

from __future__ import annotations

import functools
import threading
from dataclasses import dataclass, field
from typing import Any

from ._jws import sign_jws
from ._keytypes import PRIVATE_KEY_TYPES
from .errors import (
    ConfigurationError,
    InvalidKeyError,
    JwtMintError,
    UnsupportedAlgorithmError,
)

__all__ = ["PyJWTPatch", "patch_pyjwt", "unpatch_pyjwt"]

#: the PyJWT releases whose encode path this mirrors, lowest included, highest not: a
#: later release may check more on encode, so it is refused until tested (2.15.1 is)
SUPPORTED = ((2, 10), (2, 16))

#: PEM blocks PyJWT's algorithms load as private keys (cryptography's load_pem_private_key)
_PRIVATE_PEM = (b"-----BEGIN PRIVATE KEY-----", b"-----BEGIN RSA PRIVATE KEY-----",
                b"-----BEGIN EC PRIVATE KEY-----")  # fmt: skip
#: inputs jwtmint refused, by value (secrets, PEM text): PyJWT's code, without a second parse
_REFUSED_LIMIT = 256


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

    Raises :class:`~jwtmint.errors.ConfigurationError` when PyJWT is missing, of a release
    this does not mirror, or its ``encode`` is already wrapped by something else.
    """
    global _state
    with _lock:
        if _state is not None:
            return _state
        jwt, api_jwt, api_jws = _pyjwt_modules()
        original = api_jwt.PyJWT.encode
        code = getattr(original, "__code__", None)
        if code is None or code.co_filename != api_jwt.__file__:
            raise ConfigurationError(
                "PyJWT.encode is already replaced by something else (instrumentation, another "
                "patch): call jwtmint.patch_pyjwt() first, at start-up"
            )
        patch = PyJWTPatch()
        method = _accelerated(original, patch, api_jwt, api_jws)
        api_jwt.PyJWT.encode = method
        bound = api_jwt._jwt_global_obj.encode  # the patched method, bound to PyJWT's own
        patch._originals = {
            "modules": (jwt, api_jwt),
            "method": (original, method),
            "jwt.encode": (jwt.encode, bound),
            "api_jwt.encode": (api_jwt.encode, bound),
        }
        jwt.encode = bound
        api_jwt.encode = bound
        _state = patch
        return patch


def unpatch_pyjwt() -> None:
    """Put PyJWT's own ``encode`` back (harmless when not patched); a name someone else
    replaced since the patch is left as they set it."""
    global _state
    with _lock:
        if _state is None:
            return
        originals = _state._originals
        jwt, api_jwt = originals["modules"]
        for owner, attribute, slot in (
            (api_jwt.PyJWT, "encode", "method"),
            (jwt, "encode", "jwt.encode"),
            (api_jwt, "encode", "api_jwt.encode"),
        ):
            before, ours = originals[slot]
            if getattr(owner, attribute) == ours:
                setattr(owner, attribute, before)
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
            f"patch_pyjwt mirrors PyJWT {low[0]}.{low[1]} to {high[0]}.{high[1] - 1}; this is "
            f"PyJWT {version or '(unknown)'}: use jwtmint.encode directly, or a supported PyJWT"
        )
    return jwt, api_jwt, api_jws


def _accelerated(original: Any, patch: PyJWTPatch, api_jwt: Any, api_jws: Any) -> Any:
    from jwt.algorithms import get_default_algorithms

    pyjwt_class, pyjws_class, unset = api_jwt.PyJWT, api_jws.PyJWS, api_jws._ALGORITHM_UNSET
    defaults = get_default_algorithms()
    # the methods PyJWT's encode goes through, as they are now: replaced later (on the class,
    # or on an instance), PyJWT's own code runs instead, so the replacement takes effect
    jwt_methods, jws_methods = pyjwt_class.__dict__, pyjws_class.__dict__
    encode_payload = jwt_methods["_encode_payload"]
    jws_encode = jws_methods["encode"]
    validate_headers = jws_methods["_validate_headers"]
    by_name = jws_methods["get_algorithm_by_name"]
    # per algorithm name, PyJWT's own: its class, that class's methods and its attributes
    expected = {
        name: (kind, kind.sign, kind.prepare_key, kind.check_key_length, dict(vars(default)))
        for name, default in defaults.items()
        for kind in (type(default),)
    }
    jws_instance_hooks = frozenset({"encode", "_validate_headers", "get_algorithm_by_name"})
    refused: dict[tuple[Any, str], bool] = {}

    def own_algorithm(registered: Any, name: str) -> bool:
        """``registered`` is PyJWT's own object for ``name``, unchanged, methods and all."""
        own = expected.get(name)
        if own is None or type(registered) is not own[0]:
            return False
        kind, sign, prepare_key, check_key_length, state = own
        return (
            kind.sign is sign
            and kind.prepare_key is prepare_key
            and kind.check_key_length is check_key_length
            and registered.__dict__ == state
        )

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
        name = "HS256" if algorithm is unset else algorithm
        if headers:
            name = (headers.get("alg") or name) if type(headers) is dict else None
        jws = self._jws
        if (
            type(name) is str
            and type(self) is pyjwt_class
            and type(jws) is pyjws_class
            and type(payload) is dict
            and (headers is None or type(headers) is dict)
            and jws.header_typ == "JWT"
            and jwt_methods["_encode_payload"] is encode_payload
            and jws_methods["encode"] is jws_encode
            and jws_methods["_validate_headers"] is validate_headers
            and jws_methods["get_algorithm_by_name"] is by_name
            and "_encode_payload" not in self.__dict__
            and jws_instance_hooks.isdisjoint(jws.__dict__)
            and name in jws._valid_algs
            and own_algorithm(jws._algorithms.get(name), name)
            and (
                # the common case inline (a str secret); every other key asks _plain_key
                (type(key) is str and name[:2] == "HS" and "----" not in key and key[:1] != "0")
                or _plain_key(key, hmac=name[:2] == "HS")
            )
        ):
            remembered = (key, name) if isinstance(key, (str, bytes)) else None
            if not refused or remembered is None or remembered not in refused:
                try:
                    token = sign_jws(payload, key, name, headers, json_encoder, sort_headers)
                except JwtMintError as exc:  # refused: PyJWT answers as it would
                    # remembered when the key or the algorithm was the reason (not claims
                    # or headers, which the next call may have right)
                    if (
                        remembered is not None
                        and isinstance(exc, InvalidKeyError | UnsupportedAlgorithmError)
                        and len(refused) < _REFUSED_LIMIT
                    ):
                        refused[remembered] = True
                else:
                    patch.fast += 1
                    return token
        patch.fallback += 1
        result: str = original(self, payload, key, algorithm, headers, json_encoder, sort_headers)
        return result

    return encode


def _plain_key(key: Any, *, hmac: bool) -> bool:
    """A key PyJWT and jwtmint read the same way: for HMAC a ``str``/``bytes`` secret with no
    armour (PyJWT refuses PEM, RFC 4716 and SSH keys) and no leading ASN.1 SEQUENCE byte
    (PyJWT parses those as DER, and may warn); else one ASCII PEM private key, or a
    cryptography private key object (jwtmint also reads JWKs, DER, PKCS#12 and more)."""
    if isinstance(key, str):
        if hmac:
            return "----" not in key and key[:1] != "0"
        if not key.isascii():
            return False
        key = key.encode("ascii")
    elif isinstance(key, bytes):
        if hmac:
            return b"----" not in key and key[:1] != b"0"
        if not key.isascii():
            return False
    else:
        # after the str/bytes checks: isinstance against these ABCs is the slow part
        return not hmac and isinstance(key, PRIVATE_KEY_TYPES)
    pem: bytes = key
    return pem.count(b"-----BEGIN") == 1 and pem.lstrip().startswith(_PRIVATE_PEM)
