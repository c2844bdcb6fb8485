"""The token endpoint of ``jwtmint bench tokens``, in a child process driven over a pipe.

:class:`jwtmint.testing.TokenEndpoint` runs in its own process, so that
``time.process_time()`` of the bench is the client's CPU alone; the child
reports its own CPU too. It accepts the token endpoint URL as assertion
``aud`` (authlib sends it; jwtmint sends the issuer) and assertions living up
to an hour (authlib's ``exp`` is ``iat`` + 3600).
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import IO, Any

from ..tokens._runner import event_loop_name
from ..tokens._runner import run as run_on_loop

__all__ = ["EndpointProcess", "MeasurementError", "Stats", "event_loops", "loop_kind", "serve"]


class MeasurementError(RuntimeError):
    """A correctness check of the measurement failed: the figures would not mean anything."""


_CHILD = "import sys; from jwtmint.bench.token_endpoint import serve; serve(sys.argv[1])"
#: the registration line holds every client's JWK or secret: a few hundred kB
_PIPE_LIMIT = 1 << 24


def loop_kind(loop: asyncio.AbstractEventLoop) -> str:
    """``"uvloop"`` or ``"asyncio"``: which kind of event loop ``loop`` is."""
    return "uvloop" if type(loop).__module__.startswith("uvloop") else "asyncio"


def event_loops(requested: Sequence[str] | None) -> list[str]:
    """The event loops to measure on: ``requested``, else asyncio, and uvloop when it is
    installed."""
    if requested is not None:
        if "uvloop" in requested and event_loop_name() != "uvloop":
            raise ValueError("uvloop is not installed (pip install 'jwtmint[uvloop]')")
        return list(requested)
    return ["asyncio", "uvloop"] if event_loop_name() == "uvloop" else ["asyncio"]


def serve(loop: str = "asyncio") -> None:
    """The child's side: registrations on stdin, then one JSON command per line until EOF.

    It answers each line on stdout with one JSON line: first ``{"url", ...}``
    when it listens, then ``stats`` (requests and issued tokens counted by
    the endpoint, its process CPU time, per-client request counts) and
    ``verify`` (how many of the given ``[client_id, token]`` pairs are live
    tokens of that client). ``stop`` or end of input ends it.
    """
    run_on_loop(_serve(), use_uvloop=loop == "uvloop")


def _reply(document: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(document) + "\n")
    sys.stdout.flush()


async def _serve() -> None:
    from ..testing import TokenEndpoint

    running = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=_PIPE_LIMIT)
    transport, _ = await running.connect_read_pipe(
        lambda: asyncio.StreamReaderProtocol(reader), sys.stdin
    )
    try:
        first = await reader.readline()
        if not first:
            return
        setup = json.loads(first)
        endpoint = TokenEndpoint(
            token_lifetime=setup.get("token_lifetime", 3600),
            max_assertion_lifetime=3600,
            accept_token_endpoint_audience=True,
        )
        for client in setup["clients"]:
            if "jwk" in client:
                endpoint.register_client(client["client_id"], public_key=client["jwk"])
            else:
                endpoint.register_client(client["client_id"], secret=client["secret"])
        async with endpoint:
            _reply(
                {
                    "url": endpoint.url,
                    "issuer": endpoint.issuer,
                    "token_url": endpoint.token_url,
                    "event_loop": loop_kind(running),
                }
            )
            while line := await reader.readline():
                command = json.loads(line)
                if command["op"] == "stop":
                    break
                if command["op"] == "stats":
                    # what /api saw is never read here: kept, it would grow by ~300 bytes a
                    # forwarded request through a whole `bench gateway` run
                    endpoint.resource_requests.clear()
                    endpoint.api_requests.clear()
                    _reply(
                        {
                            "requests": endpoint.request_count(),
                            "issued": sum(r.outcome == "issued" for r in endpoint.requests),
                            "cpu_s": time.process_time(),
                            "per_client": {c: endpoint.request_count(c) for c in command["ids"]},
                        }
                    )
                elif command["op"] == "verify":
                    live = 0
                    for client_id, token in command["tokens"]:
                        info = endpoint.token_info(token)
                        live += info is not None and info["client_id"] == client_id
                    _reply({"live": live})
                else:
                    _reply({"error": f"unknown op {command['op']!r}"})
    finally:
        transport.close()


@dataclass(frozen=True)
class Stats:
    """What the endpoint process has counted so far."""

    requests: int
    issued: int
    cpu_s: float
    per_client: dict[str, int]


class EndpointProcess:
    """A :class:`~jwtmint.testing.TokenEndpoint` in a child process, driven over a pipe.

    ``registrations`` are ``{"client_id", "secret"}`` or ``{"client_id",
    "jwk"}`` dicts. Use it as a context manager; the child stops when its
    input closes.
    """

    def __init__(
        self, registrations: Sequence[dict[str, Any]], *, loop: str, token_lifetime: int = 3600
    ) -> None:
        self._registrations = list(registrations)
        self._token_lifetime = token_lifetime
        self._loop = loop
        self._process: subprocess.Popen[bytes] | None = None
        self.url = self.issuer = self.token_url = self.event_loop = ""

    def __enter__(self) -> EndpointProcess:
        process = subprocess.Popen(
            [sys.executable, "-c", _CHILD, self._loop],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
        )
        self._process = process
        try:
            ready = self._ask(
                {"clients": self._registrations, "token_lifetime": self._token_lifetime}
            )
        except BaseException:
            self.close()
            raise
        self.url, self.issuer = ready["url"], ready["issuer"]
        self.token_url, self.event_loop = ready["token_url"], ready["event_loop"]
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _pipes(self) -> tuple[IO[bytes], IO[bytes]]:
        process = self._process
        if process is None or process.stdin is None or process.stdout is None:
            raise RuntimeError("the endpoint process is not running")
        return process.stdin, process.stdout

    def _ask(self, command: dict[str, Any]) -> dict[str, Any]:
        stdin, stdout = self._pipes()
        stdin.write(json.dumps(command).encode() + b"\n")
        stdin.flush()
        line = stdout.readline()
        if not line:
            raise MeasurementError("the token endpoint process ended unexpectedly")
        answer: dict[str, Any] = json.loads(line)
        if "error" in answer:
            raise MeasurementError(f"the token endpoint process: {answer['error']}")
        return answer

    def stats(self, ids: Iterable[str] = ()) -> Stats:
        answer = self._ask({"op": "stats", "ids": list(ids)})
        return Stats(answer["requests"], answer["issued"], answer["cpu_s"], answer["per_client"])

    def verify(self, tokens: dict[str, str]) -> int:
        """How many of ``{client_id: access_token}`` are live tokens issued to that client."""
        return self.verify_pairs(tokens.items())

    def verify_pairs(self, pairs: Iterable[tuple[str, str]]) -> int:
        """:meth:`verify` for ``(client_id, access_token)`` pairs: many tokens of one client."""
        return int(self._ask({"op": "verify", "tokens": list(pairs)})["live"])

    def close(self) -> None:
        process, self._process = self._process, None
        if process is None:
            return
        try:
            if process.stdin is not None:
                try:
                    process.stdin.write(b'{"op": "stop"}\n')
                    process.stdin.close()
                except OSError:  # it is gone already
                    pass
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        finally:
            if process.stdout is not None:
                process.stdout.close()
