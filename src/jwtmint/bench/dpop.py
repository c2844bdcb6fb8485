"""``jwtmint bench dpop``: a DPoP proof per API request (RFC 9449), timed against peers (#11).

For ES256, EdDSA and PS256 it times, in one run and interleaved: jwtmint's
``DPoPSigner.proof`` signing each proof whole, the same with precomputed
ECDSA pairs (ES256: the request-path cost), PyJWT building the same proof
(claims dict, ``jwt.encode`` with the ``jwk`` header, ``ath`` hashed per call
as such code does), and the floor: cryptography's bare ``sign()`` of a signing
input of the same size with the same key.

The precomputed contender's batches are timed from a store filled before each
batch (the fill is not timed, and no timed call may find the store empty), so
its figure is what a request pays while the refill thread keeps up. Whether it
keeps up, and what the whole costs, shows in the second part: every contender
at a steady request rate, per-call latency percentiles, and the process's CPU
time per proof (the refill thread's included) against the floor's.

Every proof is verified with PyJWT against the ``jwk`` its header carries,
before and after timing.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import secrets
import ssl
import statistics
import time
from collections.abc import Callable
from dataclasses import asdict
from typing import Any

from .. import _kernels
from .._dpop import DPoPSigner
from .._keys import SigningKey, generate_key
from .._precompute import DEFAULT_DEPTH, PrecomputedEcdsa
from .adapters import floor
from .command import run_command
from .dpop_report import format_dpop_report
from .environment import environment
from .settings import DPOP, DPoPSettings
from .timing import gc_paused, percentile, rotated, run_batch, summarize
from .token_endpoint import MeasurementError

__all__ = ["ALGORITHMS", "TARGETS", "main", "run"]

ALGORITHMS = ("ES256", "EdDSA", "PS256")
#: issue #11: an ES256 proof on the request path at most a quarter of the floor, and its
#: total CPU (precomputation included) within 1.1x of the floor
TARGETS = {"request_path_over_floor": 0.25, "total_cpu_over_floor": 1.10}
URL = "https://api.example.com/v1/invoices/4711"
NONCE = "eyJ7S_zG.eyJH0-Z.HX4w-7v"
JWTMINT, PRECOMPUTED, PYJWT, FLOOR = "jwtmint", "jwtmint-precomputed", "pyjwt", "floor"
LABELS = {
    JWTMINT: "jwtmint DPoPSigner.proof",
    PRECOMPUTED: "jwtmint, precomputed pairs",
    PYJWT: "PyJWT jwt.encode, same proof",
    FLOOR: "floor: cryptography sign()",
}

Progress = Callable[[str], None]
Call = Callable[[], object]


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _pyjwt() -> Any:
    try:
        import jwt
    except ImportError:
        from ..errors import ConfigurationError

        raise ConfigurationError("jwtmint bench dpop needs PyJWT: pip install pyjwt") from None
    return jwt


class _Algorithm:
    """One algorithm's contenders: bound zero-argument calls, each checked by PyJWT."""

    def __init__(self, jwt: Any, algorithm: str, token: str, depth: int) -> None:
        self.jwt, self.algorithm, self.token = jwt, algorithm, token
        key: SigningKey = generate_key(algorithm)
        plain = DPoPSigner(key, precompute=0)
        self.calls: dict[str, Call] = {
            JWTMINT: functools.partial(plain.proof, "GET", URL, access_token=token, nonce=NONCE)
        }
        self.store: PrecomputedEcdsa | None = None
        #: the steady run's precomputing signer: the default depth, as a deployment has
        self.steady_store: PrecomputedEcdsa | None = None
        self.steady_calls = dict(self.calls)
        fast = DPoPSigner(key, precompute=depth)
        steady = DPoPSigner(key, precompute=DEFAULT_DEPTH)
        if fast.precomputed is not None and steady.precomputed is not None:
            self.store, self.steady_store = fast.precomputed, steady.precomputed
            self.calls[PRECOMPUTED] = functools.partial(
                fast.proof, "GET", URL, access_token=token, nonce=NONCE
            )
            self.steady_calls[PRECOMPUTED] = functools.partial(
                steady.proof, "GET", URL, access_token=token, nonce=NONCE
            )
        header = {"typ": "dpop+jwt", "jwk": plain.public_jwk}
        obj = key.key

        def pyjwt_proof() -> str:
            claims = {
                "jti": secrets.token_urlsafe(16),
                "htm": "GET",
                "htu": URL,
                "iat": int(time.time()),
                "ath": _b64(hashlib.sha256(token.encode("ascii")).digest()),
                "nonce": NONCE,
            }
            return jwt.encode(claims, obj, algorithm=algorithm, headers=header)  # type: ignore[no-any-return]

        self.calls[PYJWT] = self.steady_calls[PYJWT] = pyjwt_proof
        message = plain.proof("GET", URL, access_token=token, nonce=NONCE).rpartition(".")[0]
        bare = floor(key, algorithm, message.encode("ascii"))
        self.floor_check = bare.verify
        self.calls[FLOOR] = self.steady_calls[FLOOR] = bare.sign
        self.message_bytes = bare.message_bytes
        self.floor_label = bare.label

    def check(self, name: str) -> None:
        """One call of ``name``, its output verified (a proof by PyJWT with its own ``jwk``)."""
        output = self.calls[name]()
        if name == FLOOR:
            assert isinstance(output, bytes)
            self.floor_check(output)
            return
        jwt = self.jwt
        try:
            header = jwt.get_unverified_header(output)
            public = jwt.PyJWK(header["jwk"], algorithm=self.algorithm)
            claims = jwt.decode(output, public.key, algorithms=[self.algorithm])
        except (jwt.PyJWTError, KeyError) as exc:
            raise MeasurementError(
                f"{self.algorithm} {name}: PyJWT rejects the proof: {exc}"
            ) from None
        expected_ath = _b64(hashlib.sha256(self.token.encode("ascii")).digest())
        if (
            header.get("typ") != "dpop+jwt"
            or "d" in header["jwk"]
            or (claims["htm"], claims["htu"], claims["ath"], claims["nonce"])
            != ("GET", URL, expected_ath, NONCE)
        ):
            raise MeasurementError(f"{self.algorithm} {name}: the proof's header or claims differ")

    def check_all(self) -> int:
        for name in self.calls:
            self.check(name)
        return len(self.calls)


def _interleaved(subject: _Algorithm, settings: DPoPSettings) -> dict[str, list[float]]:
    """``rounds`` batches per contender, the order rotated per round; the precomputed store
    is filled (untimed) before each of its batches, and must not run dry during one."""
    names = list(subject.calls)
    samples: dict[str, list[float]] = {name: [] for name in names}
    batch = settings.batch
    store = subject.store
    with gc_paused():
        for name in names:  # warm-up
            run_batch(subject.calls[name], max(1, batch // 10))
        for round_no in range(settings.rounds):
            for name in rotated(names, round_no):
                if name == PRECOMPUTED and store is not None:
                    store.fill(batch)
                    direct = store.direct
                    samples[name].append(run_batch(subject.calls[name], batch) / batch)
                    if store.direct != direct:
                        raise MeasurementError(
                            f"{subject.algorithm}: the precomputed store ran dry mid-batch"
                        )
                else:
                    samples[name].append(run_batch(subject.calls[name], batch) / batch)
    return samples


def _steady(call: Call, rate: float, count: int) -> dict[str, Any]:
    """``count`` calls paced at ``rate`` per second: latency percentiles (µs)."""
    period = 1.0 / rate
    latencies: list[float] = []
    with gc_paused():
        start = time.perf_counter()
        for i in range(count):
            wait = start + i * period - time.perf_counter()
            if wait > 0:
                time.sleep(wait)
            began = time.perf_counter()
            call()
            latencies.append(time.perf_counter() - began)
        elapsed = time.perf_counter() - start
    latencies.sort()
    return {
        "p50_us": round(percentile(latencies, 0.50) * 1e6, 2),
        "p99_us": round(percentile(latencies, 0.99) * 1e6, 2),
        "max_us": round(latencies[-1] * 1e6, 2),
        "achieved_rate": round(count / elapsed, 1),
    }


def _cpu_per_call(
    call: Call, count: int, store: PrecomputedEcdsa | None = None
) -> tuple[float, dict[str, int] | None]:
    """The process's CPU time (every thread's: a refill thread's work is counted) per call
    over ``count`` calls back to back, in µs. A precomputing ``store`` starts full and is
    filled back to full before the CPU time is read: the pairs paid for are the pairs used,
    none made ahead for later, none left over from before."""
    if store is not None:
        store.fill(-1)
    before = _counters(store)
    with gc_paused():
        start = time.process_time()
        for _ in range(count):
            call()
        if store is not None:
            store.fill(-1)
        cpu = (time.process_time() - start) / count * 1e6
    after = _counters(store)
    if before is None or after is None:
        return cpu, None
    return cpu, {name: after[name] - before[name] for name in after}


def _counters(store: PrecomputedEcdsa | None) -> dict[str, int] | None:
    if store is None:
        return None
    return {
        "made": store.made,
        "discarded": store.discarded,
        "precomputed": store.precomputed,
        "direct": store.direct,
    }


def _run_algorithm(jwt: Any, algorithm: str, settings: DPoPSettings) -> tuple[dict[str, Any], int]:
    token = secrets.token_urlsafe(48)
    subject = _Algorithm(jwt, algorithm, token, depth=max(settings.batch, 64))
    checked = subject.check_all()
    samples = _interleaved(subject, settings)
    steady = {}
    pairs = None
    for name, call in subject.steady_calls.items():
        figures = _steady(call, settings.rate, settings.steady_calls)
        store = subject.steady_store if name == PRECOMPUTED else None
        cpu, counted = _cpu_per_call(call, settings.steady_calls, store)
        figures["cpu_us_per_call"] = round(cpu, 2)
        steady[name] = figures
        pairs = counted if counted is not None else pairs
    checked += subject.check_all()
    floor_median = statistics.median(samples[FLOOR])
    floor_cpu = steady[FLOOR]["cpu_us_per_call"]
    contenders = {}
    for name, values in samples.items():
        figures = summarize([v * 1e6 for v in values], 3)
        contenders[name] = {
            "label": subject.floor_label if name == FLOOR else LABELS[name],
            "median_us": figures["median"],
            "iqr_fraction": figures["iqr_fraction"],
            "over_floor": round(statistics.median(values) / floor_median, 3),
            "steady": steady[name],
            "cpu_over_floor": round(steady[name]["cpu_us_per_call"] / floor_cpu, 3),
        }
    store = subject.steady_store
    return {
        "message_bytes": subject.message_bytes,
        "contenders": contenders,
        "steady_store": None
        if store is None
        else {"precomputed": store.precomputed, "direct": store.direct, "made": store.made},
        #: over the CPU run alone: pairs made, made but not kept, signed from, signed whole
        "cpu_run_pairs": pairs,
    }, checked


def run(
    settings: DPoPSettings = DPOP.full,
    *,
    algorithms: tuple[str, ...] = ALGORITHMS,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Check and time every contender per algorithm; the results as plain JSON data.
    Raises :class:`ConfigurationError` without PyJWT, :class:`MeasurementError` when a
    check fails."""
    say = progress or (lambda _text: None)
    unknown = [alg for alg in algorithms if alg not in ALGORITHMS]
    if unknown:
        raise ValueError(f"unknown algorithm(s) {', '.join(unknown)}; known: {ALGORITHMS}")
    jwt = _pyjwt()
    started = time.perf_counter()
    results: dict[str, Any] = {}
    checked = 0
    for algorithm in algorithms:
        say(f"  {algorithm}: new key, check every contender, time, then a steady rate ...")
        results[algorithm], count = _run_algorithm(jwt, algorithm, settings)
        checked += count
    return {
        "tool": "jwtmint bench dpop",
        "environment": {**environment(), "kernel_openssl": _kernel_openssl()},
        "settings": {**asdict(settings), "algorithms": list(algorithms), "url": URL},
        "targets": TARGETS,
        "checked_by": "PyJWT jwt.decode with the proof's own jwk (typ, htm, htu, ath, nonce)",
        "proofs_checked": checked,
        "results": results,
        "elapsed_s": round(time.perf_counter() - started, 1),
    }


def _kernel_openssl() -> str:
    """The system libcrypto, which the C kernel's ECDSA paths link (as Python's ssl does),
    not cryptography's own OpenSSL."""
    if _kernels.kernel.IMPLEMENTATION != "c":
        return "n/a (pure-Python kernel)"
    return ssl.OPENSSL_VERSION


def main(
    *,
    quick: bool,
    as_json: bool,
    repeats: int | None = None,
    batch_ms: float | None = None,
    settings: DPoPSettings | None = None,
) -> int:
    """``jwtmint bench dpop``: progress on stderr, the tables (or JSON) on stdout; 1 when
    PyJWT is missing or a check fails. ``batch_ms`` is ignored: batches are counted in calls
    (the precomputed store is filled for each)."""
    chosen = (settings or DPOP.pick(quick)).overridden(repeats=repeats)
    return run_command(
        "dpop", functools.partial(run, chosen), format_dpop_report, quick=quick, as_json=as_json
    )
