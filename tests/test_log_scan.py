"""The log scan (issue #9): a representative run of the token scenarios (every auth method,
DPoP with nonces through both HTTP adapters, refusals, retries, timeouts, malformed answers,
background renewal failures, Redis going away) with jwtmint's loggers at DEBUG, searching
every log record, every exception (its whole graph), every repr and ``stats()`` for the
secrets, private keys, client assertions, DPoP proofs and access tokens used. What was
used is read off the wire (a middleware in the loopback servers), not guessed. Two planted
leaks prove the scan can fail."""

from __future__ import annotations

import base64
import logging
import secrets
from collections.abc import Awaitable, Callable, Iterator
from typing import Any
from urllib.parse import parse_qsl, quote_plus

import aiohttp
import httpx
import orjson
import pytest
from aiohttp import web
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

import jwtmint
from jwtmint.errors import JwtMintError
from jwtmint.testing import Fault, RedisServer, TokenEndpoint
from jwtmint.tokens import (
    ClientCredentialsClient,
    RedisTokenCache,
    RetryPolicy,
    TokenManager,
    TokenRequestParameters,
    _exchange,
)

from .conftest import raw_serving, require_redis_server
from .test_error_graph import MALFORMED, graph
from .test_token_manager import FakeClock, wait_for

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
FAST = RetryPolicy(attempts=3, backoff=0.01, max_backoff=0.02, deadline=5.0)


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _int(value: int) -> str:
    return _b64url(value.to_bytes((value.bit_length() + 7) // 8, "big"))


class Scan:
    """What must never show, and everything shown; :meth:`leaks` says where one shows."""

    def __init__(self) -> None:
        self.secrets: set[str] = set()
        self.shown: list[tuple[str, str]] = []
        self._wire: list[tuple[str, bytes]] = []  # ("header"/"form"/"json", value)

    # -- what must never show
    def secret(self, *values: str) -> None:
        for value in values:
            self.secrets.update({value, quote_plus(value)})
            if "." in value:  # a JWS: its signature alone is secret enough
                self.secrets.add(value.rsplit(".", 1)[1])
            elif len(value) >= 24:  # an opaque value: a cut-short copy leaks too
                self.secrets.add(value[:16])

    def key(self, key: jwtmint.SigningKey) -> None:
        private = key.key
        assert not isinstance(private, bytes)
        pem = private.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode()
        self.secrets.add(pem)
        self.secrets.update(line for line in pem.splitlines() if "-----" not in line and line)
        if isinstance(private, ec.EllipticCurvePrivateKey):
            d = private.private_numbers().private_value
            self.secrets.update({_int(d), str(d), format(d, "x")})
        elif isinstance(private, rsa.RSAPrivateKey):
            n = private.private_numbers()
            for value in (n.d, n.p, n.q, n.dmp1, n.dmq1, n.iqmp):
                self.secrets.update({_int(value), str(value)[:40]})
        elif isinstance(private, ed25519.Ed25519PrivateKey):
            raw = private.private_bytes_raw()
            self.secrets.update({_b64url(raw), raw.hex()})

    # -- what was used, read off the wire
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        """Records each request's credentials and each answer's tokens as they cross the wire
        (an aiohttp server middleware in front of the endpoint's own handlers)."""
        for name in ("Authorization", "DPoP"):
            for value in request.headers.getall(name, ()):
                self._wire.append(("header", value.encode()))
        if request.can_read_body:
            self._wire.append(("form", await request.read()))
        response = await handler(request)
        if isinstance(response, web.Response) and isinstance(response.body, bytes):
            self._wire.append(("json", response.body))
        return response

    def raw(self, requests: list[bytes]) -> None:
        """Requests a raw loopback server received: their headers and forms."""
        for request in requests:
            head, _, body = request.partition(b"\r\n\r\n")
            for line in head.split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                if name.strip().lower() in (b"authorization", b"dpop"):
                    self._wire.append(("header", value.strip()))
            self._wire.append(("form", body))

    def wire_seen(self) -> int:
        return len(self._wire)

    def _learn_from_wire(self) -> None:
        for kind, raw in self._wire:
            if kind == "header":
                value = raw.decode()
                self.secret(value, value.split(" ", 1)[-1])
            elif kind == "form":
                for name, value in parse_qsl(raw.decode("ascii", "replace")):
                    if name in ("client_secret", "client_assertion"):
                        self.secret(value)
            else:
                try:
                    document = orjson.loads(raw)
                except orjson.JSONDecodeError:
                    continue
                if isinstance(document, dict) and isinstance(document.get("access_token"), str):
                    self.secret(document["access_token"])

    # -- everything shown
    def show(self, where: str, *objects: object) -> None:
        for number, obj in enumerate(objects):
            self.shown.append((f"{where}[{number}] repr", repr(obj)))
            self.shown.append((f"{where}[{number}] str", str(obj)))

    def error(self, where: str, error: BaseException) -> None:
        for path, node in graph(error):
            self.show(f"{where}: {path}", node)

    def records(self, records: list[logging.LogRecord]) -> None:
        formatter = logging.Formatter()
        for record in records:
            where = f"log {record.name}:{record.lineno}"
            self.shown.append((f"{where} message", record.getMessage()))
            self.shown.append((f"{where} args", repr(record.args)))
            if record.exc_info:
                self.shown.append((f"{where} exc_info", formatter.formatException(record.exc_info)))
                if record.exc_info[1] is not None:
                    self.error(where, record.exc_info[1])

    def leaks(self) -> list[str]:
        self._learn_from_wire()
        found = sorted(self.secrets)
        return [
            f"{where} shows {secret[:12]!r}...: {text[:160]!r}"
            for where, text in self.shown
            for secret in found
            if secret in text
        ]


class RecordingEndpoint(TokenEndpoint):
    """jwtmint.testing's endpoint with a :class:`Scan` recording what crosses its wire."""

    def __init__(self, scan: Scan, **options: Any) -> None:
        super().__init__(**options)
        self._scan = scan

    def _application(self) -> web.Application:
        app = super()._application()

        @web.middleware
        async def record(request: web.Request, handler: Handler) -> web.StreamResponse:
            return await self._scan.middleware(request, handler)

        app.middlewares.append(record)
        return app


@pytest.fixture
def scan(caplog: pytest.LogCaptureFixture) -> Iterator[Scan]:
    """A Scan of the test's log records at DEBUG (checked after the test) and whatever the
    test hands it; the test fails on any secret shown."""
    found = Scan()
    with caplog.at_level(logging.DEBUG, logger="jwtmint"):
        yield found
    records = caplog.get_records("call")
    assert any(r.levelno == logging.DEBUG for r in records), "DEBUG was not captured"
    found.records(records)
    leaks = found.leaks()
    assert found.wire_seen(), "nothing was recorded on the wire: the scan would be vacuous"
    assert not leaks, "\n".join(leaks[:20])


def private_jwk(key: jwtmint.SigningKey) -> dict[str, str]:
    """An RSA key's private JWK (RFC 7518 §6.3.2), built here with cryptography's numbers."""
    assert isinstance(key.key, rsa.RSAPrivateKey)
    n = key.key.private_numbers()
    members = {"d": n.d, "p": n.p, "q": n.q, "dp": n.dmp1, "dq": n.dmq1, "qi": n.iqmp}
    return {**key.public_jwk(), **{name: _int(value) for name, value in members.items()}}


def new_secret() -> str:
    return secrets.token_urlsafe(48)


async def exercise(scan: Scan, tokens: TokenManager, name: str) -> None:
    """Tokens as callers ask for them (cached, renewed, scoped), and what they show."""
    token = await tokens.get_token(name)
    renewed = await tokens.get_token(name, force_renewal=True)
    scoped = await tokens.get_token(name, scope="other")
    assert len({token.access_token, renewed.access_token, scoped.access_token}) == 3
    scan.show(name, token, renewed, scoped, tokens, tokens.cache, tokens.stats())
    scan.show(name, tokens.token_source(name), tokens.httpx_auth(name))


async def test_every_auth_method(scan: Scan) -> None:
    es, rsa_key, ed = (jwtmint.generate_key(a) for a in ("ES256", "RS256", "EdDSA"))
    es = jwtmint.load_key(es.key.private_bytes(  # type: ignore[union-attr]
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ))  # fmt: skip
    rsa_jwk = private_jwk(rsa_key)  # loaded from a JWK dict, as a clients file would
    basic, post, hmac = new_secret(), new_secret(), new_secret()
    for key in (es, rsa_key, ed):
        scan.key(key)
    scan.secret(basic, post, hmac, base64.b64encode(f"basic:{basic}".encode()).decode())
    caller = jwtmint.generate_key("ES256")
    scan.key(caller)

    class Service:
        async def get_client_assertion(
            self, client_name: str, parameters: TokenRequestParameters
        ) -> jwtmint.ClientAssertion | None:
            if client_name != "service":
                return None
            return jwtmint.AssertionSigner(caller, "service", ep.issuer).client_assertion()

    async with RecordingEndpoint(scan) as ep:
        ep.register_client("basic", secret=basic)
        ep.register_client("post", secret=post, auth_method="client_secret_post")
        ep.register_client("hmac", secret=hmac, auth_method="client_secret_jwt")
        for name, key in (("es", es), ("rsa", rsa_key), ("ed", ed), ("service", caller)):
            ep.register_client(name, public_key=key)
        ep.register_client("caller", public_key=caller)
        clients = {
            "basic": ClientCredentialsClient("basic", issuer=ep.issuer, client_secret=basic),
            "post": ClientCredentialsClient(
                "post", token_endpoint=ep.token_url, client_secret=post,
                auth_method="client_secret_post",
            ),
            "hmac": ClientCredentialsClient(
                "hmac", issuer=ep.issuer, client_secret=hmac, auth_method="client_secret_jwt"
            ),
            "es": ClientCredentialsClient("es", issuer=ep.issuer, private_key=es),
            "rsa": ClientCredentialsClient("rsa", issuer=ep.issuer, private_key=rsa_jwk),
            "ed": ClientCredentialsClient(
                "ed", token_endpoint=ep.token_url, audience=ep.issuer, private_key=ed
            ),
            "service": ClientCredentialsClient(
                "service", issuer=ep.issuer, auth_method="private_key_jwt"
            ),
            "caller": ClientCredentialsClient(
                "caller", issuer=ep.issuer, auth_method="private_key_jwt"
            ),
        }  # fmt: skip
        # a borrowed session (its pool is used) for this scenario; the others own theirs
        async with (
            aiohttp.ClientSession() as borrowed,
            TokenManager(clients, session=borrowed, assertion_service=Service()) as tokens,
        ):
            for name in ("basic", "post", "hmac", "es", "rsa", "ed", "service"):
                await exercise(scan, tokens, name)
            mine = jwtmint.AssertionSigner(caller, "caller", ep.issuer).client_assertion()
            scan.secret(mine.value)
            token = await tokens.get_token("caller", client_assertion=mine)
            scan.show("caller", token, *clients.values(), mine, es, rsa_key, ed)


async def test_dpop_through_both_adapters_with_nonces(scan: Scan) -> None:
    key, dpop_key = jwtmint.generate_key("ES256"), jwtmint.generate_key("EdDSA")
    scan.key(key)
    scan.key(dpop_key)
    async with RecordingEndpoint(scan, dpop_nonce=True) as ep:
        ep.register_client("d", public_key=key, dpop_bound_access_tokens=True)
        client = ClientCredentialsClient("d", issuer=ep.issuer, private_key=key, dpop_key=dpop_key)
        async with TokenManager({"d": client}) as tokens:
            await exercise(scan, tokens, "d")
            middleware = tokens.middleware("d", origins=[ep.url])
            async with aiohttp.ClientSession(middlewares=[middleware]) as api:
                async with api.get(f"{ep.url}/api/x") as response:
                    assert response.status == 200
                ep.revoke_all()  # the API refuses: a renewal after the 401, then the call again
                async with api.get(f"{ep.url}/api/y") as response:
                    assert response.status == 200
            auth = tokens.httpx_auth("d", origins=[ep.url])
            async with httpx.AsyncClient(auth=auth) as hx:
                assert (await hx.get(f"{ep.url}/api/z")).status_code == 200
            scan.show("dpop", client, tokens, tokens.stats(), auth, dpop_key)
    # what the scan looks for includes proofs sent to the API by both adapters
    assert [r.path for r in ep.resource_requests if r.status == 200] == ["x", "y", "z"]
    assert all(r.dpop is not None for r in ep.resource_requests)


async def test_refusals_retries_timeouts_and_garbage(scan: Scan) -> None:
    secret, wrong = new_secret(), new_secret()
    scan.secret(secret, wrong)

    async def failing(tokens: TokenManager, name: str = "c") -> None:
        with pytest.raises(JwtMintError) as caught:
            await tokens.get_token(name, force_renewal=True)
        scan.error(name, caught.value)

    async with RecordingEndpoint(scan) as ep:
        ep.register_client("c", secret=secret)
        ep.register_client("w", secret=secret)
        clients = {
            "c": ClientCredentialsClient("c", issuer=ep.issuer, client_secret=secret),
            "w": ClientCredentialsClient("w", issuer=ep.issuer, client_secret=wrong),
        }
        async with TokenManager(clients, retries=FAST, request_timeout=0.3) as tokens:
            await failing(tokens, "w")  # invalid_client
            ep.fail_next(2, Fault(status=503))
            await tokens.get_token("c", force_renewal=True)  # retried, then a token
            for fault in (Fault(status=503), Fault(status=200, garbage=True), Fault(delay=1.0)):
                ep.set_fault(fault)
                await failing(tokens)
            ep.set_fault(Fault(status=200, drop=True))
            await failing(tokens)
            ep.set_fault(None)
            scan.show("failures", tokens, tokens.stats())
    received: list[bytes] = []
    async with raw_serving(MALFORMED, received) as url:
        client = ClientCredentialsClient("c", token_endpoint=f"{url}/t", client_secret=secret)
        async with TokenManager({"c": client}, retries=FAST) as tokens:
            await failing(tokens)
    scan.raw(received)


async def test_background_renewal_failures(scan: Scan) -> None:
    clock = FakeClock()
    secret = new_secret()
    scan.secret(secret)
    async with RecordingEndpoint(scan, clock=clock, token_lifetime=3600) as ep:
        ep.register_client("c", secret=secret)
        client = ClientCredentialsClient("c", token_endpoint=ep.token_url, client_secret=secret)
        async with TokenManager(
            {"c": client}, clock=clock, renewal_jitter=0, retries=FAST
        ) as tokens:
            first = await tokens.get_token("c")
            ep.set_fault(Fault(status=400, body={"error": "invalid_client"}))
            clock.now += 3600 - 30
            assert await tokens.get_token("c") is first
            await wait_for(lambda: tokens.stats().background_failures == 1)
            scan.show("background", tokens, tokens.stats())


async def test_redis_cache_sealed_then_gone(scan: Scan) -> None:
    require_redis_server()
    secret, seal = new_secret(), secrets.token_bytes(32)
    scan.secret(secret, seal.hex(), _b64url(seal), base64.b64encode(seal).decode())
    async with RecordingEndpoint(scan) as ep:
        ep.register_client("c", secret=secret)
        client = ClientCredentialsClient("c", token_endpoint=ep.token_url, client_secret=secret)
        with RedisServer() as redis:
            cache = RedisTokenCache(redis.url, encryption_keys=[seal], operation_timeout=0.2)
            async with cache, TokenManager({"c": client}, cache=cache) as tokens:
                await exercise(scan, tokens, "c")
                redis.stop()
                token = await tokens.get_token("c", force_renewal=True)  # Redis down: direct
                scan.show("redis", token, cache, tokens, tokens.stats())


# ---- the scan can fail -------------------------------------------------------------------


async def planted(scan: Scan) -> None:
    secret = new_secret()
    scan.secret(secret)
    async with RecordingEndpoint(scan) as ep:
        ep.register_client("c", secret=secret, auth_method="client_secret_post")
        client = ClientCredentialsClient(
            "c", token_endpoint=ep.token_url, client_secret=secret, auth_method="client_secret_post"
        )
        async with TokenManager({"c": client}) as tokens:
            scan.show("planted", await tokens.get_token("c"), client)


async def test_a_leak_planted_in_a_log_call_is_found(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    original = _exchange.post_token_request

    async def leaky(*args: Any, **kwargs: Any) -> Any:
        logging.getLogger("jwtmint.tokens").debug("sending %s", args[2])  # the whole form
        return await original(*args, **kwargs)

    monkeypatch.setattr("jwtmint.tokens._requester.post_token_request", leaky)
    found = Scan()
    with caplog.at_level(logging.DEBUG, logger="jwtmint"):
        await planted(found)
    found.records(caplog.records)
    leaks = found.leaks()
    assert leaks and all(leak.startswith("log jwtmint.tokens") for leak in leaks)


async def test_a_leak_planted_in_a_repr_is_found(monkeypatch: pytest.MonkeyPatch) -> None:
    def leaky(self: ClientCredentialsClient) -> str:
        return f"ClientCredentialsClient(secret={self.client_secret!r})"

    monkeypatch.setattr(ClientCredentialsClient, "__repr__", leaky)
    found = Scan()
    await planted(found)
    assert any("repr" in leak for leak in found.leaks())
