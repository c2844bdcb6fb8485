"""AssertionPool: single use, freshness, refill, key rotation, asyncio mode, failures.

Most tests inject a fake clock into the signer, so "time passes" only when a
test says so. Waits for the background refiller poll a condition for at most
5 s; nothing here asserts on timings.
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import gc
import json
import math
import os
import sys
import threading
import time
import warnings
from collections.abc import Callable
from types import ModuleType
from typing import Any

import jwt
import pytest
from jwt.types import Options

import jwtmint
from jwtmint import AssertionPool, AssertionSigner, ClosedError, ConfigurationError, PoolStats
from tests.conftest import AUDIENCE, CLIENT_ID, FIXED_NOW, signing_key, verification_key

NO_TIME_CHECKS: Options = {"verify_exp": False, "verify_nbf": False, "verify_iat": False}
WAIT = 5.0  # seconds: the longest any test waits for the refiller


class FakeClock:
    """Epoch seconds that move only when the test moves them."""

    def __init__(self, now: float = FIXED_NOW) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class FlakySigner(AssertionSigner):
    """A signer whose batch and single mints can be made to fail, like an HSM going away."""

    fail_batches: bool
    fail_single: bool

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fail_batches = False
        self.fail_single = False

    def mint_many(self, n: int, **kwargs: Any) -> list[str]:
        if self.fail_batches:
            raise RuntimeError("signing device offline")
        return super().mint_many(n, **kwargs)

    def mint(self) -> str:
        if self.fail_single:
            raise RuntimeError("signing device offline")
        return super().mint()


def make_signer(
    algorithm: str = "HS256",
    clock: Callable[[], float] | None = None,
    key: jwtmint.SigningKey | None = None,
) -> AssertionSigner:
    return AssertionSigner(
        key if key is not None else signing_key(algorithm),
        CLIENT_ID,
        AUDIENCE,
        lifetime=60,
        clock=clock if clock is not None else FakeClock(),
    )


def decode(
    token: str, key: jwtmint.SigningKey, algorithm: str, options: Options | None = None
) -> dict[str, Any]:
    return jwt.decode(
        token,
        verification_key(key),
        algorithms=[algorithm],
        audience=AUDIENCE,
        issuer=CLIENT_ID,
        options=NO_TIME_CHECKS if options is None else options,
    )


def raw_claims(token: str) -> dict[str, Any]:
    segment = token.split(".")[1]
    claims: dict[str, Any] = json.loads(
        base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))
    )
    return claims


def wait_for(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + WAIT
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {WAIT} s: {what}")
        time.sleep(0.005)


async def async_wait_for(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + WAIT
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {WAIT} s: {what}")
        await asyncio.sleep(0.005)


def check_books(stats: PoolStats) -> None:
    """Every assertion minted ahead is served, discarded, dropped or still ready."""
    assert stats.taken == stats.served_from_pool + stats.minted_inline
    assert stats.minted_in_background == (
        stats.served_from_pool
        + stats.discarded_expired
        + stats.discarded_rotated
        + stats.dropped
        + stats.ready
    )


# --------------------------------------------------------------------------- construction


@pytest.mark.parametrize(
    "kwargs",
    [
        {"min_remaining": 60},  # = lifetime
        {"min_remaining": 59.5},  # exp is whole seconds: nothing could be handed out
        {"min_remaining": 120},
        {"min_remaining": -1},
        {"min_remaining": math.nan},
        {"min_remaining": math.inf},
        {"min_remaining": True},
        {"min_remaining": "15"},
        {"size": 0},
        {"size": -4},
        {"size": 8.0},
        {"size": True},
        {"size": 8, "low_water": 0},
        {"size": 8, "low_water": 9},
        {"batch_size": 0},
        {"batch_size": 2.5},
    ],
    ids=repr,
)
def test_bad_arguments_are_refused(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ConfigurationError) as info:
        AssertionPool(make_signer(), **kwargs)
    assert isinstance(info.value, ValueError)  # callers that catch ValueError keep working


def test_defaults_and_limits() -> None:
    signer = make_signer()
    pool = AssertionPool(signer)
    assert (pool.size, pool.min_remaining, pool.low_water) == (256, 15, 128)
    assert pool.batch_size == 64
    assert pool.signer is signer
    assert AssertionPool(signer, min_remaining=59).min_remaining == 59
    assert AssertionPool(signer, min_remaining=0.5, size=1).low_water == 1
    assert jwtmint.AssertionPool is AssertionPool
    assert {"AssertionPool", "PoolStats"} <= set(jwtmint.__all__)


def test_stats_are_a_frozen_snapshot() -> None:
    pool = AssertionPool(make_signer(), size=4)
    assert pool.fill() == 4
    stats = pool.stats()
    assert (stats.ready, stats.size, stats.minted_in_background, stats.running) == (4, 4, 4, False)
    with pytest.raises(dataclasses.FrozenInstanceError):
        stats.ready = 0  # type: ignore[misc]
    pool.take()
    assert stats.ready == 4
    assert pool.stats().ready == 3
    assert pool.fill() == 1
    assert pool.fill() == 0


def test_repr_shows_no_assertion() -> None:
    pool = AssertionPool(make_signer(), size=2)
    pool.fill()
    token = pool.take()
    text = repr(pool)
    assert "ready=1" in text
    assert CLIENT_ID in text
    assert token not in text
    assert token.split(".")[2] not in text


# --------------------------------------------------------------------------- single use, validity


@pytest.mark.parametrize("algorithm", ["HS256", "ES256", "EdDSA"])
def test_every_assertion_verifies_and_none_repeats(kernel: ModuleType, algorithm: str) -> None:
    key = signing_key(algorithm)
    signer = make_signer(algorithm, clock=time.time)  # real time: full exp/iat/nbf checks
    takes = 300
    with AssertionPool(signer, size=64) as pool:
        wait_for(lambda: pool.stats().ready == 64, "the pool fills")
        tokens = [pool.take() for _ in range(takes)]
        stats = pool.stats()
    assert len(set(tokens)) == takes
    claims = [
        decode(token, key, algorithm, options={"require": ["exp", "iat", "jti"]})
        for token in tokens
    ]
    assert len({c["jti"] for c in claims}) == takes
    assert all(c["sub"] == CLIENT_ID and c["exp"] - c["iat"] == 60 for c in claims)
    assert jwt.get_unverified_header(tokens[0])["typ"] == jwtmint.CLIENT_ASSERTION_TYP
    assert stats.taken == takes
    assert stats.served_from_pool >= 64  # warm: at least the first 64 came from the pool
    check_books(stats)


def test_concurrent_takers_never_get_the_same_assertion(kernel: ModuleType) -> None:
    key = signing_key("HS256")
    pool = AssertionPool(make_signer(), size=32, batch_size=8)  # small: refills race with takes
    threads, per_thread = 6, 400
    barrier = threading.Barrier(threads)
    results: list[list[str]] = [[] for _ in range(threads)]
    errors: list[BaseException] = []

    def work(out: list[str]) -> None:
        try:
            barrier.wait(timeout=WAIT)
            for i in range(per_thread):
                if out is results[0] and i == per_thread // 2:
                    # the others take on while this one waits for a refill: refills race
                    # with takes however the machine schedules the threads (no timing)
                    wait_for(lambda: pool.stats().minted_in_background > 32, "a refill")
                out.append(pool.take())
        except BaseException as exc:
            errors.append(exc)

    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-5)
    try:
        pool.start()
        # full first: every pop below leaves room, so a refill must come (however late)
        wait_for(lambda: pool.stats().ready == 32, "the pool fills")
        workers = [threading.Thread(target=work, args=(out,)) for out in results]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join(timeout=60)
    finally:
        sys.setswitchinterval(interval)
        pool.close()
    assert not errors
    tokens = [token for out in results for token in out]
    assert len(tokens) == threads * per_thread
    assert len(set(tokens)) == len(tokens)
    assert len({decode(token, key, "HS256")["jti"] for token in tokens}) == len(tokens)
    stats = pool.stats()
    assert stats.taken == len(tokens)
    assert stats.minted_in_background > 32  # refilled while the others took
    check_books(stats)


# --------------------------------------------------------------------------- freshness


def test_min_remaining_boundary(kernel: ModuleType) -> None:
    clock = FakeClock(FIXED_NOW)
    pool = AssertionPool(make_signer(clock=clock), size=4, low_water=1, min_remaining=15)
    pool.fill()  # exp = FIXED_NOW + 60 for all four

    clock.now = FIXED_NOW + 45  # exactly 15 s left: still good
    token = pool.take()
    assert raw_claims(token)["exp"] - clock.now == 15
    assert pool.stats().served_from_pool == 1

    clock.now = FIXED_NOW + 45.25  # 14.75 s left: the other three are stale
    try:
        token = pool.take()
        assert raw_claims(token)["exp"] == FIXED_NOW + 45 + 60  # minted now
        stats = pool.stats()
        assert (stats.discarded_expired, stats.minted_inline, stats.taken) == (3, 1, 2)
    finally:
        pool.close()


def test_min_remaining_is_honoured_as_the_clock_advances(kernel: ModuleType) -> None:
    key = signing_key("HS256")
    clock = FakeClock(FIXED_NOW + 0.5)
    min_remaining = 15
    with AssertionPool(make_signer(clock=clock), size=16, min_remaining=min_remaining) as pool:
        wait_for(lambda: pool.stats().ready == 16, "the pool fills")
        jtis = set()
        for _ in range(60):  # 300 s of signer time: five lifetimes
            clock.advance(5)
            token = pool.take()
            claims = decode(token, key, "HS256")
            assert claims["exp"] - clock.now >= min_remaining
            jtis.add(claims["jti"])
        stats = pool.stats()
    assert len(jtis) == 60
    # the first batch went stale (t+45) before 16 takes (t+80) could use it up
    assert stats.discarded_expired >= 1
    check_books(stats)


# --------------------------------------------------------------------------- refill


def test_pool_refills_in_the_background(kernel: ModuleType) -> None:
    pool = AssertionPool(make_signer(), size=32, low_water=16)
    with pool:
        wait_for(lambda: pool.stats().ready == 32, "the pool fills")
        before = pool.stats()
        for _ in range(20):  # below the low-water mark: wakes the refiller
            pool.take()
        wait_for(lambda: pool.stats().ready == 32, "the pool refills")
        after = pool.stats()
    assert after.served_from_pool == before.served_from_pool + 20
    assert after.minted_inline == before.minted_inline
    assert after.minted_in_background == before.minted_in_background + 20
    check_books(after)


def test_an_empty_pool_mints_inline_and_starts_refilling(kernel: ModuleType) -> None:
    key = signing_key("HS256")
    pool = AssertionPool(make_signer(), size=8)
    assert not pool.stats().running
    try:
        token = pool.take()  # cold: nothing pooled yet
        decode(token, key, "HS256")
        stats = pool.stats()
        assert (stats.taken, stats.minted_inline, stats.served_from_pool) == (1, 1, 0)
        assert stats.running  # the first take started the refill thread
        wait_for(lambda: pool.stats().ready == 8, "the pool fills after the first take")
    finally:
        pool.close()


def test_close_stops_and_joins_the_thread() -> None:
    with AssertionPool(make_signer(), size=8) as pool:
        thread = pool._thread
        assert thread is not None and thread.is_alive()
        assert thread.daemon
        wait_for(lambda: pool.stats().ready == 8, "the pool fills")
    assert not thread.is_alive()
    stats = pool.stats()
    assert not stats.running
    assert (stats.ready, stats.dropped) == (0, 8)  # unused assertions are not kept
    check_books(stats)
    pool.close()  # idempotent


def test_a_closed_pool_refuses_work() -> None:
    pool = AssertionPool(make_signer(), size=4)
    pool.close()
    assert pool.closed
    with pytest.raises(ClosedError, match="closed") as info:
        pool.take()
    assert isinstance(info.value, RuntimeError) and isinstance(info.value, jwtmint.JwtMintError)
    with pytest.raises(ClosedError, match="closed"):
        pool.start()
    with pytest.raises(ClosedError, match="closed"):
        pool.fill()

    async def enter() -> None:
        async with pool:
            pass

    with pytest.raises(ClosedError, match="closed"):
        asyncio.run(enter())


def test_an_abandoned_pool_lets_its_thread_end() -> None:
    pool = AssertionPool(make_signer(), size=4)
    pool.start()
    thread = pool._thread
    assert thread is not None
    del pool
    gc.collect()
    thread.join(timeout=WAIT)  # the thread looks at least once a second
    assert not thread.is_alive()


# --------------------------------------------------------------------------- key rotation


def test_rotation_discards_old_assertions(kernel: ModuleType) -> None:
    old_key = signing_key("ES256")
    new_key = jwtmint.generate_key("ES256")
    signer = make_signer(key=old_key)
    pool = AssertionPool(signer, size=16, low_water=1)
    pool.fill()
    signer.rotate_key(new_key)
    try:
        tokens = [pool.take() for _ in range(100)]
        stats = pool.stats()
    finally:
        pool.close()
    assert stats.discarded_rotated == 16
    assert stats.taken == 100
    for token in tokens:
        assert jwt.get_unverified_header(token)["kid"] == new_key.kid
        decode(token, new_key, "ES256")
        with pytest.raises(jwt.InvalidSignatureError):
            decode(token, old_key, "ES256")


def test_rotation_while_refilling_never_hands_out_an_old_key(kernel: ModuleType) -> None:
    keys = [signing_key("ES256"), jwtmint.generate_key("ES256"), jwtmint.generate_key("ES256")]
    signer = make_signer(key=keys[0])
    with AssertionPool(signer, size=32, batch_size=8) as pool:
        for round_ in range(1, 16):
            key = keys[round_ % 3]
            signer.rotate_key(key)  # while the refiller may be mid-batch
            for _ in range(10):
                token = pool.take()
                assert jwt.get_unverified_header(token)["kid"] == key.kid
                decode(token, key, "ES256")
        wait_for(lambda: pool.stats().ready == 32, "the pool refills with the last key")
        stats = pool.stats()
    assert stats.discarded_rotated >= 1
    check_books(stats)


# --------------------------------------------------------------------------- asyncio mode


def test_async_mode_refills_with_a_task(kernel: ModuleType) -> None:
    key = signing_key("HS256")
    pool = AssertionPool(make_signer(), size=32, low_water=16)

    async def main() -> list[str]:
        async with pool as entered:
            assert entered is pool
            assert pool._task is not None and pool._thread is None
            await async_wait_for(lambda: pool.stats().ready == 32, "the task fills the pool")
            tokens = [pool.take() for _ in range(20)]  # wakes the task from the loop thread
            await async_wait_for(lambda: pool.stats().ready == 32, "the task refills")
            # and from another thread (call_soon_threadsafe)
            tokens += await asyncio.to_thread(lambda: [pool.take() for _ in range(20)])
            await async_wait_for(lambda: pool.stats().ready == 32, "the task refills again")
            assert pool.stats().running
        assert pool._task is not None and pool._task.done()
        return tokens

    tokens = asyncio.run(main())
    assert pool._thread is None  # no refill thread was ever started
    stats = pool.stats()
    assert not stats.running
    assert (stats.taken, stats.served_from_pool, stats.minted_inline) == (40, 40, 0)
    assert stats.minted_in_background >= 32 + 40
    assert len({decode(token, key, "HS256")["jti"] for token in tokens}) == 40
    check_books(stats)


def test_aclose_stops_a_thread_started_before_async_with() -> None:
    pool = AssertionPool(make_signer(), size=8)
    pool.take()  # first use: starts a refill thread
    thread = pool._thread
    assert thread is not None

    async def main() -> None:
        async with pool:
            assert pool._task is None  # the thread keeps the job
            await async_wait_for(lambda: pool.stats().ready == 8, "the thread fills the pool")
            pool.take()

    asyncio.run(main())
    assert not thread.is_alive()
    assert pool.closed


# --------------------------------------------------------------------------- failures


def test_refill_failure_is_recorded_and_take_still_works(kernel: ModuleType) -> None:
    key = signing_key("HS256")
    signer = FlakySigner(key, CLIENT_ID, AUDIENCE, clock=FakeClock())
    signer.fail_batches = True
    pool = AssertionPool(signer, size=8)
    with pytest.raises(RuntimeError, match="offline"):
        pool.fill()
    try:
        pool.start()
        wait_for(lambda: pool.stats().refill_errors >= 1, "the failure is counted")
        stats = pool.stats()
        assert isinstance(stats.last_error, RuntimeError)
        assert "offline" in str(stats.last_error)
        assert stats.ready == 0
        assert stats.running  # the refiller keeps trying

        decode(pool.take(), key, "HS256")  # falls back to signing inline
        assert pool.stats().minted_inline == 1

        signer.fail_single = True  # signing really fails: the caller gets the real error
        with pytest.raises(RuntimeError, match="offline"):
            pool.take()
        assert pool.stats().minted_inline == 1

        signer.fail_batches = signer.fail_single = False  # the device is back
        wait_for(lambda: pool.stats().ready == 8, "the pool recovers")
        decode(pool.take(), key, "HS256")
        stats = pool.stats()
        assert stats.served_from_pool == 1
        check_books(stats)
    finally:
        pool.close()


def test_async_refill_failure_is_recorded() -> None:
    signer = FlakySigner(signing_key("HS256"), CLIENT_ID, AUDIENCE, clock=FakeClock())
    signer.fail_batches = True
    pool = AssertionPool(signer, size=8)

    async def main() -> None:
        async with pool:
            await async_wait_for(lambda: pool.stats().refill_errors >= 1, "the failure is counted")
            assert pool.take()  # inline
            signer.fail_batches = False
            await async_wait_for(lambda: pool.stats().ready == 8, "the pool recovers")

    asyncio.run(main())
    stats = pool.stats()
    assert isinstance(stats.last_error, RuntimeError)
    assert stats.minted_inline == 1


# --------------------------------------------------------------------------- fork


@pytest.mark.skipif(not hasattr(os, "fork"), reason="os.fork is POSIX-only")
@pytest.mark.timeout(60)
def test_a_forked_child_never_uses_the_parents_assertions() -> None:
    pool = AssertionPool(make_signer(), size=16, low_water=1)
    pool.fill()  # no thread: the pooled assertions are all the parent has
    read_end, write_end = os.pipe()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # fork with threads, 3.12+
        pid = os.fork()
    if pid == 0:  # the child: never return into pytest
        status = 1
        try:
            os.close(read_end)
            data = "\n".join(pool.take() for _ in range(4)).encode()
            view = memoryview(data)
            while view:
                view = view[os.write(write_end, view) :]
            status = 0
        finally:
            os._exit(status)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as pipe:
        child = pipe.read().decode().split("\n")
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    parent = [pool.take() for _ in range(16)]
    assert len(child) == 4
    assert not set(child) & set(parent)
    assert pool.stats().served_from_pool == 16
    pool.close()
