"""mint_many through worker processes (large ECDSA batches) and its fallback to threads."""

from __future__ import annotations

import pytest

import jwtmint
from jwtmint import batch

from .conftest import AUDIENCE, CLIENT_ID, signing_key, verify_assertion

pytestmark = pytest.mark.skipif(batch.cpu_count() < 2, reason="batching needs two cores")


def _check(tokens: list[str], key: jwtmint.SigningKey, algorithm: str) -> None:
    assert len(set(tokens)) == len(tokens)
    for token in tokens:
        verify_assertion(token, key, algorithm)


@pytest.mark.parametrize("algorithm", ["ES256", "ES384", "ES512", "EdDSA", "RS256"])
def test_worker_processes_sign_for_every_asymmetric_algorithm(algorithm: str) -> None:
    key = signing_key(algorithm)
    signer = jwtmint.AssertionSigner(key, CLIENT_ID, AUDIENCE)
    _check(signer.mint_many(24, processes=True), key, algorithm)


def test_large_ecdsa_batches_choose_processes_and_small_ones_threads() -> None:
    key = signing_key("ES256")
    assert batch.use_processes(key, "ES256", batch.PROCESS_BATCH_MIN, None)
    assert not batch.use_processes(key, "ES256", batch.PROCESS_BATCH_MIN - 1, None)
    assert not batch.use_processes(signing_key("EdDSA"), "EdDSA", 10**6, None)
    assert not batch.use_processes(signing_key("HS256"), "HS256", 10**6, True)
    signer = jwtmint.AssertionSigner(key, CLIENT_ID, AUDIENCE)
    _check(signer.mint_many(batch.PROCESS_BATCH_MIN), key, "ES256")


def test_a_rotated_key_reaches_the_workers() -> None:
    first, second = jwtmint.generate_key("ES256"), jwtmint.generate_key("ES256")
    signer = jwtmint.AssertionSigner(first, CLIENT_ID, AUDIENCE)
    _check(signer.mint_many(16, processes=True), first, "ES256")
    signer.rotate_key(second)
    _check(signer.mint_many(16, processes=True), second, "ES256")


def test_a_dead_worker_falls_back_to_threads() -> None:
    key = signing_key("ES256")
    signer = jwtmint.AssertionSigner(key, CLIENT_ID, AUDIENCE)
    signer.mint_many(8, processes=True)  # workers exist now
    workers = batch._worker_pool()
    for worker in workers:
        worker._process.kill()
        worker._process.wait(timeout=10)
    _check(signer.mint_many(16, processes=True), key, "ES256")
    # the dead workers were dropped; the next batch starts fresh ones
    assert batch._worker_pool() is not workers
    _check(signer.mint_many(16, processes=True), key, "ES256")
