"""AssertionSigner.rotate_key and mint_many across threads: no token mixes two keys."""

from __future__ import annotations

import threading
from types import ModuleType

import jwt
import pytest

import jwtmint
from jwtmint import InvalidKeyError

from .conftest import ALL_ALGORITHMS, AUDIENCE, CLIENT_ID, signing_key, verify_assertion


def _verifies(token: str, key: jwtmint.SigningKey, algorithm: str) -> bool:
    try:
        verify_assertion(token, key, algorithm)
    except jwt.InvalidSignatureError:
        return False
    return True


def test_rotate_key_switches_kid_and_signature(kernel: ModuleType) -> None:
    old, new = jwtmint.generate_key("ES256"), jwtmint.generate_key("ES256")
    signer = jwtmint.AssertionSigner(old, CLIENT_ID, AUDIENCE)
    before = signer.mint()
    assert signer.key_generation == 0
    signer.rotate_key(new)
    after = signer.mint()
    assert signer.key_generation == 1
    assert signer.key is new
    assert jwt.get_unverified_header(before)["kid"] == old.kid
    assert jwt.get_unverified_header(after)["kid"] == new.kid
    assert _verifies(after, new, "ES256") and not _verifies(after, old, "ES256")


def test_rotate_key_can_change_the_algorithm(kernel: ModuleType) -> None:
    signer = jwtmint.AssertionSigner(signing_key("ES256"), CLIENT_ID, AUDIENCE)
    signer.rotate_key(signing_key("EdDSA"))
    token = signer.mint()
    assert jwt.get_unverified_header(token)["alg"] == "EdDSA"
    assert signer.algorithm == "EdDSA"
    assert _verifies(token, signing_key("EdDSA"), "EdDSA")


def test_a_refused_rotation_keeps_the_old_key(kernel: ModuleType) -> None:
    key = signing_key("ES256")
    signer = jwtmint.AssertionSigner(key, CLIENT_ID, AUDIENCE)
    with pytest.raises(InvalidKeyError):
        signer.rotate_key(signing_key("ES384"), algorithm="ES256")
    assert signer.key is key and signer.key_generation == 0
    assert _verifies(signer.mint(), key, "ES256")


def test_concurrent_rotation_never_mixes_header_and_signature(kernel: ModuleType) -> None:
    # HS256 keeps the loop fast; kid tells which key a token claims to be from
    keys = [jwtmint.generate_key("HS256", kid=f"k{index}") for index in range(2)]
    by_kid = {key.kid: key for key in keys}
    signer = jwtmint.AssertionSigner(keys[0], CLIENT_ID, AUDIENCE)
    tokens: list[str] = []
    stop = threading.Event()

    def mint_loop() -> None:
        while not stop.is_set() and len(tokens) < 20_000:
            tokens.append(signer.mint())

    threads = [threading.Thread(target=mint_loop) for _ in range(3)]
    for thread in threads:
        thread.start()
    for index in range(400):
        signer.rotate_key(keys[index % 2])
    stop.set()
    for thread in threads:
        thread.join(timeout=30)
    assert signer.key_generation == 400
    assert tokens
    for token in tokens:
        kid = jwt.get_unverified_header(token)["kid"]
        assert _verifies(token, by_kid[kid], "HS256")


@pytest.mark.parametrize("algorithm", ALL_ALGORITHMS)
def test_mint_many_across_the_thread_pool_gives_distinct_valid_tokens(
    kernel: ModuleType, algorithm: str
) -> None:
    key = signing_key(algorithm)
    signer = jwtmint.AssertionSigner(key, CLIENT_ID, AUDIENCE)
    count = 40 if algorithm.startswith(("RS", "PS")) else 200
    tokens = signer.mint_many(count)
    assert len(tokens) == count
    assert len({jwt.decode(t, options={"verify_signature": False})["jti"] for t in tokens}) == count
    for token in tokens:
        assert _verifies(token, key, algorithm)


def test_mint_many_from_several_threads_at_once(kernel: ModuleType) -> None:
    key = signing_key("EdDSA")
    signer = jwtmint.AssertionSigner(key, CLIENT_ID, AUDIENCE)
    results: list[list[str]] = [[] for _ in range(4)]

    def batch(slot: int) -> None:
        results[slot] = signer.mint_many(100)

    threads = [threading.Thread(target=batch, args=(slot,)) for slot in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    tokens = [token for part in results for token in part]
    assert len(tokens) == len(set(tokens)) == 400
    assert all(_verifies(token, key, "EdDSA") for token in tokens)


def test_mint_many_works_in_a_forked_child_after_the_parent_used_its_pool() -> None:
    import os

    key = signing_key("EdDSA")
    signer = jwtmint.AssertionSigner(key, CLIENT_ID, AUDIENCE)
    signer.mint_many(16)  # the parent's per-core thread pool now exists
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: its copy of the pool has no threads; it must make new ones
        code = 1
        try:
            tokens = signer.mint_many(16)
            os.write(write_end, "\n".join(tokens).encode())
            code = 0
        finally:
            os._exit(code)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as pipe:
        data = pipe.read()
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    tokens = data.decode().split("\n")
    assert len(set(tokens)) == 16
    assert all(_verifies(token, key, "EdDSA") for token in tokens)


def test_rotation_keeps_a_chosen_algorithm_the_new_key_can_use(kernel: ModuleType) -> None:
    # a server that registered PS256 for this client must keep getting PS256
    signer = jwtmint.AssertionSigner(signing_key("RS256"), CLIENT_ID, AUDIENCE, algorithm="PS256")
    new = jwtmint.generate_key("RS256")
    signer.rotate_key(new.key)  # a bare key object: no algorithm of its own
    assert signer.algorithm == "PS256"
    assert _verifies(signer.mint(), new, "PS256")
    signer.rotate_key(signing_key("ES256").key)  # another kind of key signs its own way
    assert signer.algorithm == "ES256"


def test_a_key_that_names_its_algorithm_gets_it(kernel: ModuleType) -> None:
    signer = jwtmint.AssertionSigner(signing_key("RS256"), CLIENT_ID, AUDIENCE)
    raw = jwtmint.generate_key("RS256").key
    signer.rotate_key(jwtmint.load_key(raw, algorithm="PS256"))
    assert signer.algorithm == "PS256"
    signer.rotate_key(jwtmint.load_key(raw), algorithm="RS512")
    assert signer.algorithm == "RS512"


def test_rotation_refuses_to_weaken_an_hmac_algorithm(kernel: ModuleType) -> None:
    signer = jwtmint.AssertionSigner(signing_key("HS512"), CLIENT_ID, AUDIENCE)
    with pytest.raises(InvalidKeyError, match="at least 64 bytes"):
        signer.rotate_key(b"s" * 32)  # enough for HS256, not for HS512: no quiet downgrade
    assert signer.algorithm == "HS512" and signer.key_generation == 0


@pytest.mark.parametrize("lifetime", [jwtmint._assertion.MAX_LIFETIME + 1, 2**63])
def test_lifetimes_beyond_a_year_are_refused(kernel: ModuleType, lifetime: int) -> None:
    with pytest.raises(jwtmint.InvalidClaimsError, match="lifetime"):
        jwtmint.AssertionSigner(signing_key("HS256"), CLIENT_ID, AUDIENCE, lifetime=lifetime)
