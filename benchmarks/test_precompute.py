"""ES256 with precomputed (k^-1, r) pairs: the request-path signature, the setup, and the mint.

Group "ES256 sign (precomputation)": cryptography's ``sign()`` (the floor),
jwtmint's direct OpenSSL signer, a signature with a stored pair (what a
request pays), and the making of one pair (what the refill thread pays).
Setup + stored-pair signature is the total CPU per signature, to compare with
the floor (issue #11: request path at most 1/4 of the floor, total within
1.1x). Group "ES256 mint (precomputation)": ``AssertionSigner.mint`` with and
without a store. The stores are filled before timing and hold more pairs than
a run takes, with no refill thread behind them: every timed signature uses a
pair (checked after the run) and nothing else competes for the CPU.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

import jwtmint
from jwtmint._precompute import PrecomputedEcdsa
from jwtmint.bench.job import AUDIENCE, CLIENT_ID, LIFETIME

from .conftest import PedanticBenchmark, check_token, signing_floor, signing_key, speedups

ROUNDS = 200
ITERATIONS = 50
WARMUP_ROUNDS = 5
#: pairs a store holds for one timed run: pytest-benchmark's warm-up and timed rounds, and a
#: few calls it may make besides (a run once made one more call than its rounds)
TAKES = (ROUNDS + WARMUP_ROUNDS) * ITERATIONS + 16
SIGN_GROUP = "ES256 sign (precomputation)"
MINT_GROUP = "ES256 mint (precomputation)"


def _message() -> bytes:
    """A signing input of the real size (that of one of our assertions)."""
    signer = _signer(0)
    return signer.mint().rpartition(".")[0].encode("ascii")


def _sec1() -> bytes:
    private = signing_key("ES256").key
    assert isinstance(private, ec.EllipticCurvePrivateKey)
    return private.private_bytes(
        serialization.Encoding.DER,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )


def _signer(precompute: int) -> jwtmint.AssertionSigner:
    """The benchmark job's signer (bench.job): same claims as the floor's message."""
    return jwtmint.AssertionSigner(
        signing_key("ES256"), CLIENT_ID, AUDIENCE, lifetime=LIFETIME, precompute=precompute
    )


def _store(depth: int) -> PrecomputedEcdsa:
    sec1 = _sec1()
    store: PrecomputedEcdsa = speedups().ecdsa_precomputed(sec1, 256, depth, 0)
    return store


def _time(benchmark: PedanticBenchmark, target: Callable[[], object], group: str) -> object:
    benchmark.group = group
    return benchmark.pedantic(
        target, rounds=ROUNDS, iterations=ITERATIONS, warmup_rounds=WARMUP_ROUNDS
    )


def test_sign_floor_cryptography(benchmark: PedanticBenchmark) -> None:
    floor = signing_floor("ES256")
    floor.verify(floor.sign())
    signature = _time(benchmark, floor.sign, SIGN_GROUP)
    assert isinstance(signature, bytes)
    floor.verify(signature)


def test_sign_direct_openssl(benchmark: PedanticBenchmark) -> None:
    sign = speedups().ecdsa_signer(_sec1(), 256)
    message = _message()
    floor = signing_floor("ES256")
    assert floor.message_bytes == len(message)
    signature = _time(benchmark, functools.partial(sign, message), SIGN_GROUP)
    assert isinstance(signature, bytes)


def test_sign_with_a_stored_pair(benchmark: PedanticBenchmark) -> None:
    store = _store(TAKES)
    assert store.fill() == TAKES
    _time(benchmark, functools.partial(store, _message()), SIGN_GROUP)
    assert store.precomputed >= 1 and store.direct == 0  # every timed call used a pair


def test_make_one_pair(benchmark: PedanticBenchmark) -> None:
    store = _store(TAKES)
    _time(benchmark, functools.partial(store.fill, 1), SIGN_GROUP)
    assert store.made == store.available >= 1


def test_mint_without_precomputation(benchmark: PedanticBenchmark) -> None:
    speedups()
    signer = _signer(0)
    token = _time(benchmark, signer.mint, MINT_GROUP)
    assert isinstance(token, str)
    check_token(token, "ES256")


def test_mint_with_a_stored_pair(benchmark: PedanticBenchmark) -> None:
    speedups()
    signer = _signer(TAKES)
    store = signer._state.precomputed
    assert store is not None
    deadline = time.monotonic() + 60
    while store.available < TAKES:  # the refill thread's first fill
        assert time.monotonic() < deadline, "the store was not filled"
        time.sleep(0.01)
    store.on_low = None  # and no more of it while the clock runs
    token = _time(benchmark, signer.mint, MINT_GROUP)
    assert isinstance(token, str)
    check_token(token, "ES256")
    assert store.precomputed >= 1 and store.direct == 0
