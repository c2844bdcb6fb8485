"""Shared fixtures: both kernel implementations, keys for every algorithm, a fixed clock,
a loopback token endpoint and throwaway loopback servers."""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator, Callable, Iterator
from types import ModuleType
from typing import Any

import jwt
import pytest
from aiohttp import web
from cryptography.hazmat.primitives.asymmetric import ec, ed448

import jwtmint
from jwtmint import _jws, _kernels, _pure
from jwtmint.testing import RedisServer, TokenEndpoint

SPEEDUPS = _kernels.load_speedups()

#: Every algorithm the library signs with.
ALL_ALGORITHMS = [
    "RS256", "RS384", "RS512",
    "PS256", "PS384", "PS512",
    "ES256", "ES384", "ES512",
    "EdDSA",
    "HS256", "HS384", "HS512",
]  # fmt: skip

AUDIENCE = "https://idp.example.com"
CLIENT_ID = "invoice"
FIXED_NOW = 1_800_000_000


def _kernel_params() -> list[Any]:
    return [
        pytest.param(
            SPEEDUPS,
            id="c",
            marks=pytest.mark.skipif(SPEEDUPS is None, reason="C extension not built"),
        ),
        pytest.param(_pure, id="py"),
    ]


@pytest.fixture(params=_kernel_params())
def kernel(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[ModuleType]:
    """Each hot-path test runs twice: with the Cython module (c) and the Python twin (py).

    Signers bind the kernel that is active when they are built, so tests
    build their signers after taking this fixture.
    """
    module = request.param
    monkeypatch.setattr(_kernels, "kernel", module)
    # encode() caches signers, and an HMAC signer comes from the kernel of its day
    _jws.clear_signer_cache()
    yield module
    _jws.clear_signer_cache()


_KEY_CACHE: dict[str, jwtmint.SigningKey] = {}


def signing_key(algorithm: str) -> jwtmint.SigningKey:
    """One key per algorithm per session (RSA generation is slow)."""
    if algorithm not in _KEY_CACHE:
        _KEY_CACHE[algorithm] = jwtmint.generate_key(algorithm)
    return _KEY_CACHE[algorithm]


def ed448_key() -> jwtmint.SigningKey:
    if "Ed448" not in _KEY_CACHE:
        _KEY_CACHE["Ed448"] = jwtmint.load_key(ed448.Ed448PrivateKey.generate())
    return _KEY_CACHE["Ed448"]


def verification_key(key: jwtmint.SigningKey) -> Any:
    """What an independent verifier needs: the public key object, or the secret."""
    if isinstance(key.key, bytes):
        return key.key
    return key.key.public_key()


def verify_assertion(token: str, key: jwtmint.SigningKey, algorithm: str) -> dict[str, Any]:
    """The claims, after PyJWT (independent code) checked signature, aud, iss and times."""
    claims: dict[str, Any] = jwt.decode(
        token, verification_key(key), algorithms=[algorithm], audience=AUDIENCE, issuer=CLIENT_ID
    )
    return claims


@pytest.fixture
def fixed_clock() -> Callable[[], float]:
    return lambda: float(FIXED_NOW)


def counter_entropy() -> Callable[[], bytes]:
    """A deterministic jti source: 16 bytes from a counter, for byte-parity tests."""
    state = {"n": 0}

    def draw() -> bytes:
        state["n"] += 1
        return state["n"].to_bytes(16, "big")

    return draw


__all__ = [
    "ALL_ALGORITHMS",
    "AUDIENCE",
    "CLIENT_ID",
    "FIXED_NOW",
    "SPEEDUPS",
    "counter_entropy",
    "ed448_key",
    "signing_key",
    "verification_key",
    "verify_assertion",
]


#: The secret of the "basic" client that the ``endpoint`` fixture registers.
TOKEN_CLIENT_SECRET = "correct horse battery staple, long enough"


@pytest.fixture
async def endpoint() -> AsyncIterator[TokenEndpoint]:
    """A loopback TokenEndpoint with an ES256 client "es" and a secret client "basic"."""
    async with TokenEndpoint() as ep:
        ep.register_client("es", public_key=signing_key("ES256"))
        ep.register_client("basic", secret=TOKEN_CLIENT_SECRET)
        yield ep


@contextlib.asynccontextmanager
async def serving(*routes: web.RouteDef) -> AsyncIterator[str]:
    """A throwaway aiohttp server on 127.0.0.1 with ``routes``; yields its base URL."""
    app = web.Application()
    app.add_routes(routes)
    runner = web.AppRunner(app)
    await runner.setup()
    try:
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        yield f"http://127.0.0.1:{runner.addresses[0][1]}"
    finally:
        await runner.cleanup()


@contextlib.asynccontextmanager
async def raw_serving(answer: bytes, received: list[bytes] | None = None) -> AsyncIterator[str]:
    """A loopback TCP server that reads each HTTP request (head and Content-Length body) and
    answers ``answer`` byte for byte, then closes: for answers aiohttp's web server would
    never send (a malformed status line, control characters in headers). Each request goes
    into ``received``. Yields its base URL."""

    async def answer_one(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n"):
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value)
            body = await reader.readexactly(length)
            if received is not None:
                received.append(head + body)
            writer.write(answer)
            await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(answer_one, "127.0.0.1", 0)
    try:
        yield f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
    finally:
        server.close()
        await server.wait_closed()


def require_redis_server() -> None:
    """Skip when redis-server is not installed; under CI (which installs it) fail instead."""
    from jwtmint.testing import redis_server_available

    if not redis_server_available():
        if os.environ.get("CI"):
            pytest.fail("redis-server is not installed, and CI must run the Redis tests")
        pytest.skip("redis-server is not installed (Debian: apt install redis-server)")


@pytest.fixture
def redis_server() -> Iterator[RedisServer]:
    """A throwaway redis-server on a free loopback port, empty, stopped afterwards."""
    require_redis_server()
    with RedisServer() as server:
        yield server


class KeptEcKey(ec.EllipticCurvePrivateKey):
    """A key that signs but never exports itself, as an HSM's or a KMS's does."""

    def __init__(self, inner: ec.EllipticCurvePrivateKey) -> None:
        self._inner = inner

    def sign(self, data: Any, signature_algorithm: Any) -> bytes:
        return self._inner.sign(data, signature_algorithm)

    def public_key(self) -> ec.EllipticCurvePublicKey:
        return self._inner.public_key()

    @property
    def curve(self) -> ec.EllipticCurve:
        return self._inner.curve

    @property
    def key_size(self) -> int:
        return self._inner.key_size

    def private_bytes(self, *args: Any, **kwargs: Any) -> bytes:
        raise NotImplementedError("this key never leaves its module")

    def private_numbers(self) -> ec.EllipticCurvePrivateNumbers:
        raise NotImplementedError("this key never leaves its module")

    def exchange(self, *args: Any, **kwargs: Any) -> bytes:
        raise NotImplementedError

    def __copy__(self) -> KeptEcKey:
        return self

    def __deepcopy__(self, memo: Any) -> KeptEcKey:
        return self
