"""mint_many through worker processes, and every way that path can fail back to threads."""

from __future__ import annotations

import functools
import os
import signal
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

import jwtmint
from jwtmint import _batch

from .conftest import AUDIENCE, CLIENT_ID, signing_key, verify_assertion

pytestmark = pytest.mark.skipif(
    _batch.cpu_count() < 2 or os.name != "posix", reason="worker processes need POSIX and 2 cores"
)

#: a batch that the calling thread cannot sign alone: every worker gets a share
BATCH = 8 * _batch.cpu_count()


@pytest.fixture(autouse=True)
def fresh_workers(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setattr(_batch, "_worker_failures", 0)
    _batch._close_workers()
    yield
    _batch._close_workers()


def _check(tokens: list[str], key: jwtmint.SigningKey, algorithm: str) -> None:
    assert len(set(tokens)) == len(tokens)
    for token in tokens:
        verify_assertion(token, key, algorithm)


def _mint_in_workers(signer: jwtmint.AssertionSigner, count: int = BATCH) -> list[str]:
    """mint_many(processes=True), asserting that the workers signed their share."""
    before = _batch.signed_by_workers
    tokens = signer.mint_many(count, processes=True)
    assert _batch.signed_by_workers > before, "the batch fell back to threads"
    return tokens


@pytest.mark.parametrize("algorithm", ["ES256", "ES384", "ES512", "EdDSA", "RS256"])
def test_worker_processes_sign_for_every_asymmetric_algorithm(algorithm: str) -> None:
    key = signing_key(algorithm)
    signer = jwtmint.AssertionSigner(key, CLIENT_ID, AUDIENCE)
    _check(_mint_in_workers(signer), key, algorithm)


def test_only_gil_holding_ecdsa_batches_choose_processes() -> None:
    key = signing_key("ES256")
    assert isinstance(key.key, ec.EllipticCurvePrivateKey)
    through_cryptography = functools.partial(
        key.key.sign, signature_algorithm=ec.ECDSA(hashes.SHA256())
    )
    large, small = _batch.PROCESS_BATCH_MIN, _batch.PROCESS_BATCH_MIN - 1
    assert _batch.use_processes(key, "ES256", large, None, through_cryptography)
    assert not _batch.use_processes(key, "ES256", small, None, through_cryptography)
    assert not _batch.use_processes(signing_key("EdDSA"), "EdDSA", 10**6, None)
    assert not _batch.use_processes(signing_key("HS256"), "HS256", 10**6, True)
    signer = jwtmint.AssertionSigner(key, CLIENT_ID, AUDIENCE)
    own = jwtmint.get_algorithm("ES256").signer(key)
    before = _batch.signed_by_workers
    _check(signer.mint_many(large), key, "ES256")
    if getattr(own, "releases_gil", False):  # the extension's ECDSA: threads suffice
        assert not _batch.use_processes(key, "ES256", 10**6, None, own)
        assert _batch.signed_by_workers == before
    else:
        assert _batch.signed_by_workers > before


def test_a_rotated_key_reaches_the_workers() -> None:
    first, second = jwtmint.generate_key("ES256"), jwtmint.generate_key("ES256")
    signer = jwtmint.AssertionSigner(first, CLIENT_ID, AUDIENCE)
    _check(_mint_in_workers(signer), first, "ES256")
    signer.rotate_key(second)
    _check(_mint_in_workers(signer), second, "ES256")


def test_a_dead_worker_falls_back_to_threads_then_new_workers_start() -> None:
    key = signing_key("ES256")
    signer = jwtmint.AssertionSigner(key, CLIENT_ID, AUDIENCE)
    _mint_in_workers(signer)
    workers = _batch._worker_pool()
    for worker in workers:
        worker._process.kill()
        worker._process.wait(timeout=10)
    before = _batch.signed_by_workers
    _check(signer.mint_many(BATCH, processes=True), key, "ES256")  # signed by threads
    assert _batch.signed_by_workers == before
    assert _batch._worker_failures == 1
    _check(_mint_in_workers(signer), key, "ES256")  # fresh workers
    assert _batch._worker_pool() is not workers


def test_a_hung_worker_is_killed_at_the_deadline(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_batch, "_REPLY_TIMEOUT_BASE", 1.0)
    key = signing_key("ES256")
    signer = jwtmint.AssertionSigner(key, CLIENT_ID, AUDIENCE)
    _mint_in_workers(signer)
    stuck = _batch._worker_pool()[0]
    os.kill(stuck._process.pid, signal.SIGSTOP)
    started = time.monotonic()
    _check(signer.mint_many(BATCH, processes=True), key, "ES256")
    assert time.monotonic() - started < 30  # bounded, not forever
    assert stuck._dead and stuck._process.poll() is not None  # killed, not left stopped


def test_concurrent_batches_survive_workers_dying_under_them() -> None:
    key = signing_key("ES256")
    signer = jwtmint.AssertionSigner(key, CLIENT_ID, AUDIENCE)
    errors: list[BaseException] = []
    results: list[list[str]] = []
    stop = threading.Event()

    def batches() -> None:
        try:
            for _ in range(6):
                results.append(signer.mint_many(BATCH, processes=True))
        except BaseException as exc:
            errors.append(exc)

    def killer() -> None:
        while not stop.wait(0.05):
            for worker in list(_batch._workers or ()):
                if worker._process.poll() is None:
                    worker._process.kill()

    threads = [threading.Thread(target=batches) for _ in range(3)]
    assassin = threading.Thread(target=killer)
    assassin.start()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    stop.set()
    assassin.join(timeout=10)
    assert not errors
    assert len(results) == 18
    _check([token for part in results for token in part], key, "ES256")


def test_the_worker_ignores_modules_planted_in_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    marker = tmp_path / "stolen"
    planted = tmp_path / "jwtmint"
    planted.mkdir()
    (planted / "__init__.py").write_text("")
    (planted / "_signworker.py").write_text(
        f"open({str(marker)!r}, 'w').write('key')\ndef main(*args):\n    return 1\n"
    )
    monkeypatch.chdir(tmp_path)
    key = signing_key("ES256")
    signer = jwtmint.AssertionSigner(key, CLIENT_ID, AUDIENCE)
    _check(_mint_in_workers(signer), key, "ES256")
    assert not marker.exists()


def test_workers_that_cannot_start_stop_being_tried(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "executable", "/nonexistent/python")
    key = signing_key("ES256")
    signer = jwtmint.AssertionSigner(key, CLIENT_ID, AUDIENCE)
    for _ in range(_batch._MAX_WORKER_FAILURES + 2):
        _check(signer.mint_many(BATCH, processes=True), key, "ES256")
    assert _batch._worker_failures == _batch._MAX_WORKER_FAILURES
    assert not _batch.use_processes(key, "ES256", 10**6, True)


def test_a_batch_queued_behind_another_does_not_time_out_a_healthy_worker(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # the deadline starts when a batch gets the worker, not while it waits for it
    monkeypatch.setattr(_batch, "_REPLY_TIMEOUT_BASE", 0.5)
    monkeypatch.setattr(_batch, "_REPLY_TIMEOUT_PER_MESSAGE", 0.001)
    key = signing_key("ES256")
    signer = jwtmint.AssertionSigner(key, CLIENT_ID, AUDIENCE)
    _mint_in_workers(signer)
    results: list[list[str]] = []
    big = threading.Thread(target=lambda: results.append(signer.mint_many(6000, processes=True)))
    big.start()
    time.sleep(0.05)
    results.append(signer.mint_many(BATCH, processes=True))
    big.join(timeout=120)
    assert _batch._worker_failures == 0
    assert len(results) == 2


@pytest.mark.parametrize("algorithm", ["ES256", "EdDSA", "RS256"])
def test_malformed_worker_signatures_fall_back_to_threads(
    algorithm: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    def garbage(self: object, algorithm: str, pem: bytes, messages: list[bytes]) -> list[bytes]:
        return [b"\x30\x06\x02\x01\x01\x02\x01" for _ in messages]  # short, and bad DER

    monkeypatch.setattr(_batch._Worker, "sign", garbage)
    key = signing_key(algorithm)
    signer = jwtmint.AssertionSigner(key, CLIENT_ID, AUDIENCE)
    _check(signer.mint_many(BATCH, processes=True), key, algorithm)
    assert _batch._worker_failures == 1
