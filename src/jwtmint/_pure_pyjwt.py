"""The pure-Python twin of the extension's ``pyjwt_encoder``: the function that
``patch_pyjwt()`` puts in place of ``PyJWT.encode``.

It signs with jwtmint (``spec.sign``) only when every object PyJWT's own
``encode`` would go through is still as PyJWT made it (see :class:`PyJWTSpec`),
and calls PyJWT's own ``encode`` for everything else, including every input
jwtmint declines. ``_speedups.pyx`` defines the same decisions in C; the
suite runs both.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "SECRET_LEADS",
    "PathCounts",
    "PyJWTSpec",
    "RefusedKeys",
    "path_counts",
    "plain_text_secret",
    "pyjwt_encoder",
]


class PathCounts:
    """How many calls took jwtmint's path (``fast``) and how many PyJWT's (``fallback``);
    ``class_checks``: how many times a class was compared with its patch-time copy (here each
    class on every call; the extension compares a class again only after it changed)."""

    __slots__ = ("class_checks", "fallback", "fast")

    def __init__(self) -> None:
        self.fast = 0
        self.fallback = 0
        self.class_checks = 0


def path_counts() -> PathCounts:
    """New counters of the calls that took jwtmint's path (``fast``) and PyJWT's (``fallback``)."""
    return PathCounts()


class RefusedKeys:
    """(key type, key, algorithm name) that jwtmint refused, at most ``limit`` of them. The
    keys are secrets: never shown, not even where a debugger or an error reporter prints
    the locals of a frame (the type first: a str is never compared with bytes)."""

    __slots__ = ("entries", "limit")

    def __init__(self, limit: int) -> None:
        self.entries: dict[tuple[type, Any, str], bool] = {}
        self.limit = limit

    def __contains__(self, item: object) -> bool:
        return item in self.entries

    def __len__(self) -> int:
        return len(self.entries)

    def add(self, item: tuple[type, Any, str]) -> None:
        if len(self.entries) < self.limit:
            self.entries[item] = True

    def __repr__(self) -> str:
        return f"<RefusedKeys: {len(self.entries)} (not shown)>"


@dataclass(frozen=True)
class PyJWTSpec:
    """What the accelerated ``encode`` compares against on every call, captured at patch time."""

    #: PyJWT's own ``PyJWT.encode``: every call jwtmint does not sign goes there
    original: Callable[..., str]
    pyjwt_class: type
    pyjws_class: type
    #: PyJWT's "algorithm not given" default
    unset: object
    #: PyJWT and PyJWS with a copy of each one's namespace and its MRO at patch time: an
    #: attribute of either replaced, added or removed since (or a base class swapped), PyJWT's
    #: code runs, so the change takes effect
    classes: tuple[tuple[type, dict[str, Any], tuple[type, ...]], ...]
    #: the attribute names of PyJWT's and of PyJWS's class: none may be set on the instance
    jwt_names: frozenset[str]
    jws_names: frozenset[str]
    #: per algorithm name: PyJWT's class for it, that class and its bases (``object`` aside)
    #: as in ``classes``, and the attributes of PyJWT's object for it
    algorithms: Mapping[
        str, tuple[type, tuple[tuple[type, dict[str, Any], tuple[type, ...]], ...], dict[str, Any]]
    ]
    #: ``plain_key(key, hmac)``: PyJWT and jwtmint read ``key`` the same way
    plain_key: Callable[[Any, bool], bool]
    #: classes of private key objects ``plain_key`` accepted (for the asymmetric algorithms)
    key_classes: set[type]
    #: ``sign(payload, key, name, headers, json_encoder, sort_headers)``: jwtmint's token
    sign: Callable[..., str]
    #: jwtmint's refusals: PyJWT answers instead
    declined: type[Exception]
    #: the refusals (of the key or the algorithm) worth remembering for a str/bytes key
    remember: tuple[type[Exception], ...]
    #: keys jwtmint refused before: straight to PyJWT, without a second parse
    refused: RefusedKeys = field(repr=False)


def _algorithm_name(spec: PyJWTSpec, algorithm: Any, headers: Any) -> Any:
    """The name PyJWT signs with, when it is a ``str`` from a plain call; else None."""
    name = "HS256" if algorithm is spec.unset else algorithm
    if type(headers) is dict:
        from_headers = headers.get("alg")
        if from_headers is not None:
            if type(from_headers) is not str:
                return None
            if from_headers:
                name = from_headers
    elif headers is not None:
        return None
    return name if type(name) is str else None


def _unchanged(
    classes: tuple[tuple[type, dict[str, Any], tuple[type, ...]], ...], counts: PathCounts
) -> bool:
    """Each class's namespace holds exactly the objects it held at patch time, and its
    bases are the same."""
    for cls, namespace, mro in classes:
        counts.class_checks += 1
        now = cls.__dict__
        if cls.__mro__ != mro or len(now) != len(namespace):
            return False
        for name, value in namespace.items():
            if now.get(name, _MISSING) is not value:
                return False
    return True


_MISSING = object()


def _as_pyjwt_made_it(
    spec: PyJWTSpec, counts: PathCounts, obj: Any, payload: Any, name: str
) -> bool:
    """``obj``, its PyJWS and PyJWT's algorithm object for ``name`` are PyJWT's own: their
    classes as they were at patch time, no class attribute shadowed on an instance, and the
    payload a plain dict. The classes are looked at first: an attribute added to one since
    (a property, say) is never run here. Once they are known unchanged, the instances' own
    dicts answer as ``getattr`` would (the spec holds no descriptor for these names, and
    ``PyJWS.header_typ`` is "JWT")."""
    if type(obj) is not spec.pyjwt_class or type(payload) is not dict:
        return False
    if not _unchanged(spec.classes, counts):
        return False
    attributes = obj.__dict__
    if type(attributes) is not dict or not spec.jwt_names.isdisjoint(attributes):
        return False  # a __dict__ replaced by a mapping of another class: PyJWT's
    jws = attributes.get("_jws")
    if type(jws) is not spec.pyjws_class:
        return False
    attributes = jws.__dict__
    if type(attributes) is not dict or not spec.jws_names.isdisjoint(attributes):
        return False
    valid, algorithms = attributes.get("_valid_algs"), attributes.get("_algorithms")
    if type(valid) is not set or name not in valid or type(algorithms) is not dict:
        return False
    own = spec.algorithms.get(name)
    registered = algorithms.get(name)
    if own is None or type(registered) is not own[0]:
        return False
    if not _unchanged(own[1], counts):
        return False
    return bool(registered.__dict__ == own[2])


#: first characters of secrets PyJWT reads as something else first: DER (0x30), JSON
#: (PyJWT refuses a JWK inside any JSON it can parse), whitespace or a BOM before JSON
SECRET_LEADS = frozenset("0{[ \t\r\n\ufeff")


def plain_text_secret(key: str) -> bool:
    """A ``str`` HMAC secret PyJWT reads as jwtmint does: no armour, nothing it could parse
    as DER or JSON (UTF-16 and -32 JSON have a zero byte in their first four)."""
    return key[:1] not in SECRET_LEADS and "\x00" not in key[:4] and "----" not in key


def _plain_secret(key: Any, name: str) -> bool:
    """A ``str`` HMAC secret for an HS algorithm that :func:`plain_text_secret` accepts."""
    return type(key) is str and name[:2] == "HS" and plain_text_secret(key)


def pyjwt_encoder(spec: PyJWTSpec, counts: PathCounts) -> Callable[..., str]:
    """``encode(self, payload, key, algorithm, headers, json_encoder, sort_headers)``, every
    argument given, with ``PyJWT.encode``'s outcome; ``counts`` counts the two paths.
    ``patch_pyjwt`` puts it behind ``PyJWT.encode``'s own signature."""
    original, sign, refused = spec.original, spec.sign, spec.refused

    def encode(
        self: Any,
        payload: Any,
        key: Any,
        algorithm: Any,
        headers: Any,
        json_encoder: Any,
        sort_headers: bool,
    ) -> str:
        name = _algorithm_name(spec, algorithm, headers)
        if (
            name is not None
            and _as_pyjwt_made_it(spec, counts, self, payload, name)
            and (
                _plain_secret(key, name)
                or (type(key) in spec.key_classes and name[:2] != "HS")
                or spec.plain_key(key, name[:2] == "HS")
            )
        ):
            # a str/bytes key jwtmint refused for this algorithm goes straight to PyJWT
            by_value = type(key) is str or type(key) is bytes
            if not (refused and by_value and (type(key), key, name) in refused):
                try:
                    token = sign(payload, key, name, headers, json_encoder, sort_headers)
                except spec.declined as exc:
                    # remembered when the key or the algorithm was the reason (not the claims
                    # or the headers, which the next call may have right)
                    if by_value and isinstance(exc, spec.remember):
                        refused.add((type(key), key, name))
                else:
                    counts.fast += 1
                    return token
        counts.fallback += 1
        return original(self, payload, key, algorithm, headers, json_encoder, sort_headers)

    return encode
