"""``patch_pyjwt()``: PyJWT's ``jwt.encode``, accelerated in place, with PyJWT's behaviour.

Like ``uvloop.install()``, :func:`patch_pyjwt` changes the running process:
``jwt.encode``, ``jwt.api_jwt.encode`` and ``jwt.PyJWT.encode`` then take
jwtmint's signer (parsed-key cache, C kernel) for the inputs where the result
is provably what PyJWT would return: a plain ``PyJWT`` whose classes (PyJWT,
PyJWS, the algorithm's class and its bases) are exactly as they were at patch
time, with no class attribute shadowed on an instance and PyJWT's own algorithm
objects (none replaced with ``register_algorithm``), a ``dict`` payload, a key
that is a ``str``/``bytes`` secret, a single ASCII PEM private key or a key
object of cryptography's own classes, and inputs jwtmint accepts at all.
Module-level functions PyJWT's methods call are not watched (README).
Everything else, and every input jwtmint refuses (``none``, short secrets
PyJWT warns about, small RSA keys, PyJWK keys, ES256K, unknown algorithms,
...), goes to PyJWT's own code, which returns, warns or raises exactly as it
always did. jwtmint's refusals come before any JSON is written, so a
``json_encoder`` runs once either way.
"""

from __future__ import annotations

import functools
import threading
import types
from typing import Any

from . import _kernels
from ._jws import sign_jws
from ._keytypes import PRIVATE_KEY_TYPES, is_cryptographys_own
from ._pure_pyjwt import (
    SECRET_LEADS,
    PathCounts,
    PyJWTSpec,
    RefusedKeys,
    plain_text_secret,
)
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
#: classes of the cryptography private keys _plain_key has seen (isinstance on their ABCs
#: is slow; a class, once registered with an ABC, stays registered)
_KEY_CLASSES: set[type] = set()
#: SECRET_LEADS as bytes, and the first bytes of the BOMs json.loads reads (UTF-8, -16)
_SECRET_BYTE_LEADS = frozenset(
    [*(lead.encode() for lead in SECRET_LEADS if lead.isascii()), b"\xef", b"\xff", b"\xfe"]
)


class PyJWTPatch:
    """The patch in force: how many ``encode`` calls took jwtmint's path (``fast``) and how
    many went to PyJWT's own code (``fallback``). The counters are not atomic across
    threads: they are for tests and curiosity, not accounting."""

    __slots__ = ("_counts", "_originals", "implementation")

    def __init__(self, counts: PathCounts, implementation: str) -> None:
        self._counts = counts
        self._originals: dict[str, Any] = {}
        #: whose encoder is in place: "c" (the extension) or "py" (its pure-Python twin)
        self.implementation = implementation

    @property
    def fast(self) -> int:
        return int(self._counts.fast)

    @property
    def fallback(self) -> int:
        return int(self._counts.fallback)

    @property
    def class_checks(self) -> int:
        """How many times one of PyJWT's classes was compared with its patch-time copy: with
        the extension on CPython 3.11+, only after a class changed; else on every call."""
        return int(self._counts.class_checks)

    def __repr__(self) -> str:
        return (
            f"PyJWTPatch(implementation={self.implementation!r}, fast={self.fast}, "
            f"fallback={self.fallback}, class_checks={self.class_checks})"
        )


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
        # PyJWT's own function: a forwarding proxy (wrapt's, say) reports PyJWT's file too
        code = getattr(original, "__code__", None)
        if (
            type(original) is not types.FunctionType
            or original.__globals__ is not vars(api_jwt)
            or code is None
            or code.co_filename != api_jwt.__file__
        ):
            raise ConfigurationError(
                "PyJWT.encode is already replaced by something else (instrumentation, another "
                "patch): call jwtmint.patch_pyjwt() first, at start-up"
            )
        kernel = _kernels.kernel
        patch = PyJWTPatch(kernel.path_counts(), kernel.IMPLEMENTATION)
        spec = _spec(original, api_jwt, api_jws)
        method = _with_pyjwts_signature(kernel.pyjwt_encoder(spec, patch._counts), spec.unset)
        functools.update_wrapper(method, original)
        api_jwt.PyJWT.encode = method
        for cls, namespace, _ in spec.classes:  # PyJWT's namespace as patched: this encode in it
            if cls is api_jwt.PyJWT:
                namespace["encode"] = method
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


def _with_pyjwts_signature(encoder: Any, unset: object) -> Any:
    """``encoder`` behind ``PyJWT.encode``'s own signature: Python parses the arguments, so a
    call with wrong ones fails with PyJWT's words (the function takes PyJWT's name)."""

    def encode(
        self: Any,
        payload: Any,
        key: Any,
        algorithm: Any = unset,
        headers: Any = None,
        json_encoder: Any = None,
        sort_headers: bool = True,
    ) -> str:
        result: str = encoder(self, payload, key, algorithm, headers, json_encoder, sort_headers)
        return result

    return encode


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


def _spec(original: Any, api_jwt: Any, api_jws: Any) -> PyJWTSpec:
    """PyJWT's objects as they are now: changed later (a class attribute, one shadowed on an
    instance, an algorithm), PyJWT's own code runs instead, so the change takes effect."""
    from jwt.algorithms import get_default_algorithms

    pyjwt_class, pyjws_class = api_jwt.PyJWT, api_jws.PyJWS
    jwt_names, jws_names = _names(pyjwt_class), _names(pyjws_class)
    # the extension reads these from the instances' dicts: no class may define them, and
    # the tokens' typ is the class's (an instance may not shadow it: a class name)
    if (
        {"_jws"} & jwt_names
        or {"_valid_algs", "_algorithms"} & jws_names
        or (vars(pyjws_class).get("header_typ") != "JWT")
    ):
        raise ConfigurationError(
            "this PyJWT keeps its state where patch_pyjwt does not look for it: use "
            "jwtmint.encode directly, or a supported PyJWT"
        )
    algorithms = {
        name: (type(own), _namespaces(type(own)), dict(vars(own)))
        for name, own in get_default_algorithms().items()
    }
    return PyJWTSpec(
        original=original,
        pyjwt_class=pyjwt_class,
        pyjws_class=pyjws_class,
        unset=api_jws._ALGORITHM_UNSET,
        classes=(*_namespaces(pyjwt_class), *_namespaces(pyjws_class)),
        jwt_names=jwt_names,
        jws_names=jws_names,
        algorithms=algorithms,
        plain_key=_plain_key,
        key_classes=_KEY_CLASSES,
        sign=sign_jws,
        declined=JwtMintError,
        remember=(InvalidKeyError, UnsupportedAlgorithmError),
        refused=RefusedKeys(_REFUSED_LIMIT),
    )


def _namespaces(cls: type) -> tuple[tuple[type, dict[str, Any], tuple[type, ...]], ...]:
    """The class and its bases (``object`` aside), each with a copy of its namespace and its
    method resolution order (``__bases__`` can be assigned)."""
    return tuple(
        (each, dict(vars(each)), each.__mro__) for each in cls.__mro__ if each is not object
    )


def _names(cls: type) -> frozenset[str]:
    return frozenset(name for each in cls.__mro__ if each is not object for name in vars(each))


def _plain_key(key: Any, hmac: bool) -> bool:
    """A key PyJWT and jwtmint read the same way: for HMAC a ``str``/``bytes`` secret with no
    armour (PyJWT refuses PEM, RFC 4716 and SSH keys), no leading ASN.1 SEQUENCE byte (PyJWT
    parses those as DER, and may warn) and nothing PyJWT could read as JSON (it refuses a JWK
    anywhere inside); else one ASCII PEM private key, or a key object of cryptography's own
    classes (jwtmint also reads JWKs, DER, PKCS#12 and more)."""
    if isinstance(key, str):
        if hmac:
            return plain_text_secret(key)
        if not key.isascii():
            return False
        key = key.encode("ascii")
    elif isinstance(key, bytes):
        if hmac:
            return (
                key[:1] not in _SECRET_BYTE_LEADS and b"\x00" not in key[:4] and b"----" not in key
            )
        if not key.isascii():
            return False
    else:
        # after the str/bytes checks: isinstance against these ABCs is the slow part, so a
        # class found to be one (and not posing as another through __class__) is remembered
        if hmac or not isinstance(key, PRIVATE_KEY_TYPES):
            return False
        if not is_cryptographys_own(key):
            return False  # a Python subclass (an HSM's key, say) is PyJWT's to use
        if key.__class__ is type(key) and len(_KEY_CLASSES) < _REFUSED_LIMIT:
            _KEY_CLASSES.add(type(key))
        return True
    pem: bytes = key
    return pem.count(b"-----BEGIN") == 1 and pem.lstrip().startswith(_PRIVATE_PEM)
