"""``jwtmint bench pyjwt``: PyJWT's ``jwt.encode`` under ``patch_pyjwt()`` vs unpatched (#14).

For RS256, ES256 and EdDSA with the key as PEM text and as a cryptography
key object, and for HS256 with a ``str`` secret, one ``measure`` per
algorithm times, interleaved: PyJWT's own ``encode`` (the function captured
before patching, bound to PyJWT's global ``PyJWT`` as ``jwt.encode`` is),
the patched ``jwt.encode``, ``jwtmint.encode`` on the same input, and the
bare signature of a signing input of the same size with the same key:
cryptography's ``sign()`` (``adapters.floor``) and, where jwtmint signs
another way (ES256 on OpenSSL directly, Ed25519 through libsodium), jwtmint's
own signer. The ceiling of a speed-up is PyJWT's time minus the faster of the
two floors: what a wrapper around jwtmint's signer could save at most.

Every contender is checked before and after timing: its token verifies with
PyJWT's ``jwt.decode`` (not patched) and carries the expected header and
claims; for deterministic algorithms (HS256, RS256, EdDSA) the three tokens
are the same bytes; a patched call moves the patch's ``fast`` counter and no
other call moves either counter; over the whole timing ``fallback`` stays 0.
"""

from __future__ import annotations

import functools
import secrets
import time
import types
from collections.abc import Callable
from dataclasses import asdict
from typing import Any

from cryptography.hazmat.primitives import serialization

from .. import _pyjwt_patch
from .._algorithms import ed25519_backend, get_algorithm
from .._jws import encode as jwtmint_encode
from .._keys import SigningKey, generate_key, load_secret
from ..errors import ConfigurationError
from . import job
from .adapters import Floor, floor
from .command import run_command
from .environment import environment, version
from .job import AUDIENCE, CLIENT_ID
from .report import format_pyjwt_report
from .settings import PYJWT, Settings
from .timing import Timing, measure
from .token_endpoint import MeasurementError

__all__ = ["ALGORITHMS", "TARGETS", "main", "run"]

ALGORITHMS = ("RS256", "ES256", "EdDSA", "HS256")
#: issue #14: patched within 10 % of jwtmint.encode; HS256 at least 2x unpatched; ES256 and
#: EdDSA at least 80 % of the speed-up the bare signature leaves possible
TARGETS = {"patched_over_jwtmint": 1.10, "hs256_speedup": 2.0, "ceiling_fraction": 0.8}
CEILING_ALGORITHMS = ("ES256", "EdDSA")
DETERMINISTIC = ("HS256", "RS256", "EdDSA")
UNPATCHED, PATCHED, JWTMINT = "pyjwt", "patched", "jwtmint"
CRYPTO_FLOOR, SIGNER_FLOOR = "floor", "floor-jwtmint"
LABELS = {
    UNPATCHED: "jwt.encode, unpatched",
    PATCHED: "jwt.encode, patched",
    JWTMINT: "jwtmint.encode",
}
#: long enough that a full run's tokens are still valid when checked after timing
LIFETIME = 600

Progress = Callable[[str], None]
Encode = Callable[..., str]


def claims() -> dict[str, Any]:
    """The payload of every call: a client assertion's claims (RFC 7523 §3), built once, with
    a lifetime that outlasts the run."""
    payload = job.claims()
    payload["exp"] = payload["iat"] + LIFETIME
    return payload


def key_forms(algorithm: str) -> tuple[SigningKey, dict[str, Any]]:
    """A fresh key, and the forms a PyJWT caller hands it over in: PEM text and the key
    object, or a ``str`` secret (43 characters: over HS256's 32 bytes)."""
    if algorithm.startswith("HS"):
        secret = secrets.token_urlsafe(32)
        return load_secret(secret, algorithm), {"secret": secret}
    key = generate_key(algorithm)
    obj: Any = key.key
    pem = obj.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode("ascii")
    return key, {"pem": pem, "object": obj}


def _floors(key: SigningKey, algorithm: str, message: bytes) -> dict[str, Floor]:
    """cryptography's ``sign()`` (the kernel's HMAC for HS*), and jwtmint's own signer where
    it signs another way (libsodium, OpenSSL directly)."""
    base = floor(key, algorithm, message)
    floors = {CRYPTO_FLOOR: base}
    if algorithm in CEILING_ALGORITHMS:
        signer = get_algorithm(algorithm).signer(key)
        # cryptography's: the key's own bound sign(), or a partial of it
        if getattr(getattr(signer, "func", signer), "__self__", None) is not key.key:
            how = ed25519_backend() if algorithm == "EdDSA" else "OpenSSL"
            label = f"floor: jwtmint's signer ({how})"
            floors[SIGNER_FLOOR] = Floor(
                functools.partial(signer, message), base.verify, len(message), label
            )
    return floors


class _Checker:
    """Checks one algorithm's tokens, and the patch's counters around each call."""

    def __init__(self, patch: Any, jwt: Any, key: SigningKey, algorithm: str) -> None:
        self.patch, self.jwt, self.algorithm = patch, jwt, algorithm
        self.verifier: Any = key.key if isinstance(key.key, bytes) else key.key.public_key()
        self.header = {"alg": algorithm, "kid": _kid(key, algorithm), "typ": "JWT"}
        self.count = 0

    def fail(self, what: str) -> MeasurementError:
        return MeasurementError(f"{self.algorithm} {what}")

    def token(self, name: str, encode: Callable[[], str], payload: dict[str, Any]) -> str:
        """One call of ``encode``, its token verified and the counters it moved checked."""
        before = (self.patch.fast, self.patch.fallback)
        token = encode()
        moved = (self.patch.fast - before[0], self.patch.fallback - before[1])
        expected = (1, 0) if name.endswith(PATCHED) else (0, 0)
        if moved != expected:
            raise self.fail(f"{name}: (fast, fallback) moved by {moved}, not {expected}")
        jwt = self.jwt
        try:
            decoded = jwt.decode(
                token, self.verifier, algorithms=[self.algorithm], audience=AUDIENCE,
                issuer=CLIENT_ID, options={"require": list(payload)},
            )  # fmt: skip
            got_header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as exc:
            raise self.fail(f"{name}: PyJWT rejects the token: {exc}") from None
        if decoded != payload or got_header != self.header:
            raise self.fail(f"{name}: header {got_header} or claims differ from the input")
        self.count += 1
        return token


def _kid(key: SigningKey, algorithm: str) -> str:
    return key.kid or f"bench-{algorithm.lower()}"


def _contenders(
    jwt: Any, original: Any, key: SigningKey, algorithm: str, forms: dict[str, Any]
) -> tuple[dict[str, Callable[[], str]], dict[str, Any]]:
    """Per key form: PyJWT's own encode, the patched ``jwt.encode``, ``jwtmint.encode``, each
    a ``() -> token`` over the same payload, key and headers."""
    unpatched: Encode = types.MethodType(original, jwt.api_jwt._jwt_global_obj)
    patched: Encode = jwt.encode
    if patched == unpatched or jwt.api_jwt.PyJWT.encode is original:
        raise MeasurementError("jwt.encode is not patched, or the original is not PyJWT's own")
    payload = claims()
    headers = {"kid": _kid(key, algorithm)}
    calls: dict[str, Callable[[], str]] = {}
    for form, key_input in forms.items():
        for name, encode in ((UNPATCHED, unpatched), (PATCHED, patched), (JWTMINT, jwtmint_encode)):
            calls[f"{form}/{name}"] = functools.partial(
                encode, payload, key_input, algorithm=algorithm, headers=headers
            )
    return calls, payload


def _check_all(
    checker: _Checker, calls: dict[str, Callable[[], str]], payload: dict[str, Any], when: str
) -> None:
    tokens = {name: checker.token(name, call, payload) for name, call in calls.items()}
    if checker.algorithm in DETERMINISTIC and len(set(tokens.values())) != 1:
        different = sorted(
            name for name, token in tokens.items() if token != tokens[next(iter(tokens))]
        )
        raise checker.fail(f"{when}: not the same bytes as the first token: {different}")


def _figures(
    algorithm: str, form: str, timings: dict[str, Timing], floor_names: list[str]
) -> dict[str, Any]:
    """Ratios, the ceiling and the targets of one key form, from medians of one run."""
    t = {name: timings[f"{form}/{name}"].median_us for name in LABELS}
    t_floor = {name: timings[name].median_us for name in floor_names}
    used = min(t_floor, key=t_floor.__getitem__)
    achieved = t[UNPATCHED] - t[PATCHED]

    def ceiling(floor_name: str) -> dict[str, Any]:
        possible = t[UNPATCHED] - t_floor[floor_name]
        return {
            "floor": floor_name,
            "floor_us": round(t_floor[floor_name], 3),
            "possible_us": round(possible, 3),
            "achieved_us": round(achieved, 3),
            "fraction": round(achieved / possible, 3) if possible > 0 else None,
            "max_speedup": round(t[UNPATCHED] / t_floor[floor_name], 3),
        }

    ratios = {
        "patched_over_jwtmint": round(t[PATCHED] / t[JWTMINT], 3),
        "speedup": round(t[UNPATCHED] / t[PATCHED], 3),
        "jwtmint_speedup": round(t[UNPATCHED] / t[JWTMINT], 3),
    }
    fraction = ceiling(used)["fraction"]
    meets: dict[str, bool] = {
        "patched_over_jwtmint": ratios["patched_over_jwtmint"] <= TARGETS["patched_over_jwtmint"]
    }
    if algorithm == "HS256":
        meets["hs256_speedup"] = ratios["speedup"] >= TARGETS["hs256_speedup"]
    if algorithm in CEILING_ALGORITHMS:
        meets["ceiling_fraction"] = fraction is not None and fraction >= TARGETS["ceiling_fraction"]
    return {
        "contenders": {
            name: {"label": LABELS[name], **timings[f"{form}/{name}"].as_dict()} for name in LABELS
        },
        "ratios": ratios,
        "ceiling": ceiling(used),
        "ceilings": {name: ceiling(name) for name in floor_names},
        "meets": meets,
    }


def _run_algorithm(
    jwt: Any, original: Any, patch: Any, algorithm: str, settings: Settings
) -> tuple[dict[str, Any], int]:
    key, forms = key_forms(algorithm)
    checker = _Checker(patch, jwt, key, algorithm)
    calls, payload = _contenders(jwt, original, key, algorithm, forms)
    _check_all(checker, calls, payload, "before timing")
    first = calls[f"{next(iter(forms))}/{UNPATCHED}"]()
    message = first.rpartition(".")[0].encode("ascii")
    floors = _floors(key, algorithm, message)
    for base in floors.values():
        base.verify(base.sign())
    fast, fallback, class_checks = patch.fast, patch.fallback, patch.class_checks
    timings = measure(
        [*((name, base.sign) for name, base in floors.items()), *calls.items()],
        repeats=settings.rounds,
        batch_seconds=settings.batch_seconds,
    )
    patched_calls = sum(
        timings[name].batch * settings.rounds for name in calls if name.endswith(PATCHED)
    )
    if patch.fallback != fallback or patch.fast - fast < patched_calls:
        raise checker.fail(
            f"while timed: {patch.fallback - fallback} fallback calls, "
            f"{patch.fast - fast} fast of at least {patched_calls}"
        )
    for base in floors.values():
        base.verify(base.sign())
    _check_all(checker, calls, payload, "after timing")
    return {
        "message_bytes": len(message),
        "kid": _kid(key, algorithm),
        "floors": {
            name: {"label": base.label, **timings[name].as_dict()} for name, base in floors.items()
        },
        "forms": {form: _figures(algorithm, form, timings, list(floors)) for form in forms},
        "timed_patched_calls": patched_calls,
        # PyJWT's classes compared while timed: 0 when the version-tag shortcut holds
        "timed_class_checks": patch.class_checks - class_checks,
    }, checker.count


def _pyjwt() -> Any:
    try:
        import jwt
    except ImportError:
        raise ConfigurationError("PyJWT is not installed: pip install pyjwt") from None
    return jwt


def run(
    settings: Settings = PYJWT.full,
    *,
    algorithms: tuple[str, ...] = ALGORITHMS,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Patch PyJWT, check and time every contender, unpatch; the results as plain JSON data.
    Raises :class:`ConfigurationError` without PyJWT or when it is patched already,
    :class:`MeasurementError` when a check fails."""
    say = progress or (lambda _text: None)
    unknown = [alg for alg in algorithms if alg not in ALGORITHMS]
    if unknown:
        raise ValueError(f"unknown algorithm(s) {', '.join(unknown)}; known: {ALGORITHMS}")
    jwt = _pyjwt()
    if _pyjwt_patch._state is not None:
        raise ConfigurationError("PyJWT is patched already: unpatch_pyjwt() first")
    started = time.perf_counter()
    original = jwt.api_jwt.PyJWT.encode  # PyJWT's own, captured before patching
    patch = _pyjwt_patch.patch_pyjwt()
    results: dict[str, Any] = {}
    checked = 0
    try:
        for algorithm in algorithms:
            say(f"  {algorithm}: new key, check every contender, time ...")
            results[algorithm], count = _run_algorithm(jwt, original, patch, algorithm, settings)
            checked += count
        counters = {
            "fast": patch.fast,
            "fallback": patch.fallback,
            "class_checks": patch.class_checks,
        }
    finally:
        _pyjwt_patch.unpatch_pyjwt()
    if jwt.api_jwt.PyJWT.encode is not original:
        raise MeasurementError("unpatch_pyjwt() did not restore PyJWT's own encode")
    return {
        "tool": "jwtmint bench pyjwt",
        "environment": {**environment(), "pynacl": version("PyNaCl")},
        "settings": {**asdict(settings), "algorithms": list(algorithms)},
        "targets": TARGETS,
        "checked_by": "PyJWT jwt.decode (audience, issuer, every claim required, header)",
        "tokens_checked": checked,
        "patch_counters": counters,
        "results": results,
        "elapsed_s": round(time.perf_counter() - started, 1),
    }


def main(
    *,
    quick: bool,
    as_json: bool,
    repeats: int | None = None,
    batch_ms: float | None = None,
    settings: Settings | None = None,
) -> int:
    """``jwtmint bench pyjwt``: progress on stderr, the tables (or JSON) on stdout; 1 when
    PyJWT is missing or a check fails."""
    chosen = (settings or PYJWT.pick(quick)).overridden(repeats=repeats, batch_ms=batch_ms)
    return run_command(
        "pyjwt", functools.partial(run, chosen), format_pyjwt_report, quick=quick, as_json=as_json
    )
