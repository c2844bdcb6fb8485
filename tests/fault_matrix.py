"""The fault matrix: misbehaving token endpoints and discovery documents on 127.0.0.1.

Each :class:`Case` is a raw asyncio TCP server that answers the token request
(or the discovery request) as a broken, hostile or slow server would: it
refuses, resets, goes silent, drips, answers 5xx, 408, 429 with every kind of
``Retry-After``, HTML, empty, truncated, non-object or incomplete 200s, odd
``expires_in`` and ``token_type``, huge and compressed bodies, redirects, and
control characters in every field it controls. :func:`run_case` drives a real
:class:`~jwtmint.tokens.TokenManager` against it and reports what came of it
and how long it took; ``tests/test_fault_matrix.py`` asserts on that, and
``tools/fault_matrix.py`` prints it as the table in RELIABILITY.md.
"""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import json
import logging
import socket
import struct
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from email.utils import formatdate
from typing import Any

from jwtmint.errors import JwtMintError
from jwtmint.tokens import ClientCredentialsClient, RetryPolicy, TokenManager

__all__ = ["CASES", "DEADLINE", "Case", "Outcome", "run_case"]

#: the deadline every case runs under, and the per-request timeout
DEADLINE = 2.0
REQUEST_TIMEOUT = 1.0
SECRET = "fault-matrix secret, long enough to be a secret"
GOOD = {"access_token": "tok-123", "token_type": "Bearer", "expires_in": 300}
HOSTILE = "line\r\nX-Forged: 1\x1b[31mred\x00"

#: answers one request (already read) on ``writer``; ``base`` is the server's URL
Reply = Callable[[bytes, asyncio.StreamWriter, str], Awaitable[None]]


@dataclass(frozen=True)
class Case:
    """One misbehaviour: ``token`` answers token requests; ``discovery`` (when set) answers
    the metadata request, and the client is configured by issuer instead of endpoint.
    ``expect`` names the outcomes allowed: ``"token"`` or exception class names."""

    name: str
    token: Reply
    expect: tuple[str, ...]
    discovery: Reply | None = None


@dataclass
class Outcome:
    """What one case came to: ``kind`` is ``"token"`` or the exception's class name."""

    case: str
    kind: str
    seconds: float
    message: str = ""
    logs: list[str] = field(default_factory=list)
    requests: int = 0
    pending_tasks: int = 0


async def _read_request(reader: asyncio.StreamReader) -> bytes:
    head = await reader.readuntil(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":", 1)[1])
    return head + (await reader.readexactly(length) if length else b"")


def _http(
    status: int, body: bytes = b"", headers: dict[str, str] | None = None, length: int | None = None
) -> bytes:
    lines = [f"HTTP/1.1 {status} X", f"Content-Length: {len(body) if length is None else length}"]
    lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
    lines.append("Connection: close")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def answer(
    status: int,
    body: bytes | dict[str, Any] | list[Any] | str = b"",
    headers: dict[str, str] | None = None,
    *,
    length: int | None = None,
) -> Reply:
    """A reply of ``status`` with ``body`` (JSON for a dict or list)."""
    if isinstance(body, dict | list):
        data = json.dumps(body).encode()
        headers = {"Content-Type": "application/json", **(headers or {})}
    else:
        data = body.encode("latin-1") if isinstance(body, str) else body

    async def reply(request: bytes, writer: asyncio.StreamWriter, base: str) -> None:
        writer.write(_http(status, data, headers, length))
        await writer.drain()

    return reply


async def _silent(request: bytes, writer: asyncio.StreamWriter, base: str) -> None:
    await asyncio.sleep(3600)


async def _reset(request: bytes, writer: asyncio.StreamWriter, base: str) -> None:
    sock = writer.get_extra_info("socket")
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


async def _drip(request: bytes, writer: asyncio.StreamWriter, base: str) -> None:
    body = json.dumps(GOOD).encode()
    writer.write(_http(200, b"", {"Content-Type": "application/json"}, len(body)))
    for byte in body:
        writer.write(bytes([byte]))
        await writer.drain()
        await asyncio.sleep(0.3)


def _redirect(target: str) -> Reply:
    async def reply(request: bytes, writer: asyncio.StreamWriter, base: str) -> None:
        writer.write(_http(302, b"", {"Location": f"{base}{target}"}))
        await writer.drain()

    return reply


def _metadata(**override: Any) -> Reply:
    async def reply(request: bytes, writer: asyncio.StreamWriter, base: str) -> None:
        document = {"issuer": base, "token_endpoint": f"{base}/token", **override}
        document = {
            name: value.replace("BASE", base) if isinstance(value, str) else value
            for name, value in document.items()
        }
        body = json.dumps(document).encode()
        writer.write(_http(200, body, {"Content-Type": "application/json"}))
        await writer.drain()

    return reply


_ENDPOINT = ("TokenEndpointError", "TokenEndpointTimeout")
_INVALID = ("InvalidTokenResponseError",)
_REFUSED = ("TokenRequestError",)


def _expires(value: Any, expect: tuple[str, ...]) -> Case:
    return Case(f"200, expires_in {value!r}", answer(200, {**GOOD, "expires_in": value}), expect)


CASES: list[Case] = [
    Case("connection refused", answer(200, GOOD), _ENDPOINT),  # the runner closes the port
    Case("connection reset", _reset, _ENDPOINT),
    Case("silent after the request", _silent, ("TokenEndpointTimeout",)),
    Case("body dripped 1 byte / 0.3 s", _drip, ("TokenEndpointTimeout",)),
    Case("500", answer(500), _ENDPOINT),
    Case(
        "502 HTML page",
        answer(502, "<html>bad gateway</html>", {"Content-Type": "text/html"}),
        _ENDPOINT,
    ),
    Case("503, Retry-After 1", answer(503, b"", {"Retry-After": "1"}), _ENDPOINT),
    Case("408", answer(408), _ENDPOINT + _REFUSED),
    Case("429, Retry-After 1", answer(429, b"", {"Retry-After": "1"}), _ENDPOINT),
    Case("429, Retry-After 0", answer(429, b"", {"Retry-After": "0"}), _ENDPOINT),
    Case(
        "429, Retry-After in the past",
        answer(429, b"", {"Retry-After": formatdate(0, usegmt=True)}),
        _ENDPOINT,
    ),
    Case(
        "429, Retry-After as a date",
        answer(429, b"", {"Retry-After": formatdate(time.time() + 1, usegmt=True)}),
        _ENDPOINT,
    ),
    Case("429, Retry-After 86400", answer(429, b"", {"Retry-After": "86400"}), _ENDPOINT),
    Case("429, Retry-After garbage", answer(429, b"", {"Retry-After": HOSTILE[:10]}), _ENDPOINT),
    Case("200 HTML", answer(200, "<html>login</html>", {"Content-Type": "text/html"}), _INVALID),
    Case("200 empty", answer(200), _INVALID),
    Case(
        "200 truncated",
        answer(200, b'{"access_token": "t', {"Content-Type": "application/json"}, length=500),
        _ENDPOINT + _INVALID,
    ),
    Case("200 JSON array", answer(200, [GOOD]), _INVALID),
    Case("200 JSON string", answer(200, '"tok"', {"Content-Type": "application/json"}), _INVALID),
    Case("200 without access_token", answer(200, {"token_type": "Bearer"}), _INVALID),
    Case("200 without token_type", answer(200, {"access_token": "t"}), _INVALID),
    Case("200 access_token with CR LF", answer(200, {**GOOD, "access_token": "a\r\nb"}), _INVALID),
    Case("200 token_type mac", answer(200, {**GOOD, "token_type": "mac"}), _INVALID),
    Case("200 token_type DPoP, no DPoP key", answer(200, {**GOOD, "token_type": "DPoP"}), _INVALID),
    Case(
        "200 token_type bearer (lower case)",
        answer(200, {**GOOD, "token_type": "bearer"}),
        ("token",),
    ),
    _expires("300", ("token",)),
    _expires("soon", _INVALID),
    _expires(-1, _INVALID),
    _expires(0, _INVALID),
    _expires(1e-9, ("token", *_INVALID)),
    _expires(1e12, ("token", *_INVALID)),
    _expires(True, _INVALID),
    Case(
        "200 body of 2 MB",
        answer(200, b"{" + b" " * (2 << 20) + b"}", {"Content-Type": "application/json"}),
        _INVALID,
    ),
    Case(
        "200 gzip body",
        answer(
            200,
            gzip.compress(json.dumps(GOOD).encode()),
            {"Content-Type": "application/json", "Content-Encoding": "gzip"},
        ),
        ("token",),
    ),
    Case(
        "200 gzip bomb (64 MB of zeros)",
        answer(
            200,
            gzip.compress(b"0" * (64 << 20)),
            {"Content-Type": "application/json", "Content-Encoding": "gzip"},
        ),
        _INVALID + _ENDPOINT,
    ),
    Case("302 to another path", _redirect("/elsewhere"), _REFUSED),
    Case(
        "400 with control characters in error fields",
        answer(400, {"error": HOSTILE, "error_description": HOSTILE * 3, "error_uri": HOSTILE}),
        _REFUSED,
    ),
    Case(
        "400 with a 500 KB error_description",
        answer(400, {"error": "invalid_request", "error_description": "x" * 500_000}),
        _REFUSED,
    ),
    Case("401 invalid_client", answer(401, {"error": "invalid_client"}), _REFUSED),
    Case(
        "discovery silent", answer(200, GOOD), ("DiscoveryError", "TokenEndpointTimeout"), _silent
    ),
    Case("discovery 500", answer(200, GOOD), ("DiscoveryError",), answer(500)),
    Case(
        "discovery lies about its issuer",
        answer(200, GOOD),
        ("DiscoveryError",),
        _metadata(issuer="https://evil.example"),
    ),
    Case(
        "discovery points elsewhere",
        answer(200, GOOD),
        ("DiscoveryError", "ConfigurationError"),
        _metadata(token_endpoint="http://203.0.113.9/token"),
    ),
    Case(
        "discovery HTML",
        answer(200, GOOD),
        ("DiscoveryError",),
        answer(200, "<html/>", {"Content-Type": "text/html"}),
    ),
    Case(
        "discovery with control characters",
        answer(200, GOOD),
        ("DiscoveryError",),
        _metadata(issuer="BASE" + HOSTILE),
    ),
]


class _Capture(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


async def run_case(case: Case) -> Outcome:
    """Drive a TokenManager against ``case``'s server; never raises for the case itself."""
    requests = 0

    stop = asyncio.Event()
    serving: set[asyncio.Task[Any]] = set()

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal requests
        current = asyncio.current_task()
        assert current is not None
        serving.add(current)
        try:
            request = await _read_request(reader)
            is_discovery = b"/.well-known/" in request.split(b"\r\n", 1)[0]
            if not is_discovery:
                requests += 1
            handler = case.discovery if is_discovery and case.discovery else case.token
            # a silent or dripping handler outlasts the client: it ends when the case does
            answering = asyncio.ensure_future(handler(request, writer, base))
            stopped = asyncio.ensure_future(stop.wait())
            serving.update((answering, stopped))
            await asyncio.wait({answering, stopped}, return_when=asyncio.FIRST_COMPLETED)
            for task in (answering, stopped):
                task.cancel()
            await asyncio.gather(answering, stopped, return_exceptions=True)
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            pass
        finally:
            with contextlib.suppress(Exception):
                writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    base = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
    if case.name == "connection refused":
        server.close()
        await server.wait_closed()
    if case.discovery is not None:
        client = ClientCredentialsClient("c", issuer=base, client_secret=SECRET)
    else:
        client = ClientCredentialsClient("c", token_endpoint=f"{base}/token", client_secret=SECRET)
    capture = _Capture()
    logger = logging.getLogger("jwtmint")
    logger.addHandler(capture)
    level = logger.level
    logger.setLevel(logging.DEBUG)
    before = set(asyncio.all_tasks())
    started = time.monotonic()
    outcome = Outcome(case.name, "token", 0.0)
    try:
        async with TokenManager(
            {"c": client},
            retries=RetryPolicy(attempts=3, deadline=DEADLINE),
            request_timeout=REQUEST_TIMEOUT,
        ) as tokens:
            try:
                await tokens.get_token("c")
            except JwtMintError as exc:
                outcome.kind, outcome.message = type(exc).__name__, str(exc)
            outcome.seconds = time.monotonic() - started
    finally:
        logger.removeHandler(capture)
        logger.setLevel(level)
        # what jwtmint left running: every task but the server's and this one
        await asyncio.sleep(0)
        left = set(asyncio.all_tasks()) - before - serving - {asyncio.current_task()}
        outcome.pending_tasks = len(left)
        stop.set()
        server.close()
        await asyncio.gather(*serving, return_exceptions=True)
        with contextlib.suppress(Exception):
            await asyncio.wait_for(server.wait_closed(), 1)
    outcome.logs, outcome.requests = capture.lines, requests
    return outcome
