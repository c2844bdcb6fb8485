"""``jwtmint bench tokens``: TokenManager vs authlib's AsyncOAuth2Client, in one run (issue #4).

Two measurements, each checked before it is believed:

**Cached token.** ``await tokens.get_token(name)`` for a cached, fresh
token, against authlib's cache check for the same kind of token,
``await client.ensure_active_token(client.token)`` on an
``AsyncOAuth2Client`` whose client_credentials token was fetched and has
not expired (what every authlib API call does first: take an
``anyio.Lock``, which yields to the event loop once, then
``token.is_expired(leeway)``). Each is timed as a loop of N awaits inside
one coroutine, in batches calibrated to ``batch_seconds``, interleaved
round-robin with the order rotated each round (as
:func:`jwtmint.bench.timing.measure` does for sync calls), the cyclic GC
off during batches; ``await`` of an empty coroutine is timed alongside as
the floor. This runs on asyncio, and on uvloop when it is installed. The
token endpoint's request count per client must not move while the clock
runs, and both clients must hand back the token they had before.

**Cold fetches.** ``clients`` named clients (client_secret_basic, and
private_key_jwt with one ES256 key per client, a fresh assertion per
request) each get their first token, ``concurrency`` at a time: jwtmint
with one ``TokenManager`` for all clients (its own pooled aiohttp session),
authlib with one ``AsyncOAuth2Client`` per client, each with its own httpx
pool (authlib's default). (``Settings(authlib_shared_pool=True)``
puts them all on one ``httpx.AsyncHTTPTransport`` instead, jwtmint's layout;
with httpcore 1.0.9 that costs authlib about 4x more client CPU, because its
pool scans every connection for every queued request: encode/httpcore#1035.)
Building and closing the clients is not timed. The token endpoint
(:class:`jwtmint.testing.TokenEndpoint`) runs in a child process, so that
``time.process_time()`` of this process is the client's CPU alone; the
child reports its own CPU too. Every round must end with ``clients``
distinct tokens, each live at the endpoint for the client that asked for
it, and the endpoint must have counted exactly ``clients`` requests, all
answered with a token.

The endpoint accepts the token endpoint URL as assertion ``aud`` (authlib
sends it; jwtmint sends the issuer) and assertions living up to an hour
(authlib's ``exp`` is ``iat`` + 3600).
"""

from __future__ import annotations

import asyncio
import functools
import gc
import itertools
import json
import secrets
import ssl
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Coroutine, Iterable, Sequence
from dataclasses import asdict, dataclass, replace
from typing import IO, Any

from .._keys import SigningKey, generate_key
from ..tokens import ClientCredentialsClient, TokenManager
from ..tokens._runner import event_loop_name
from ..tokens._runner import run as run_on_loop
from .adapters import _import, _import_quietly
from .environment import environment, version
from .report import format_us
from .timing import Timing, calibrated_batch, gc_paused, iqr, rotated

__all__ = [
    "BASIC",
    "FULL",
    "METHODS",
    "PRIVATE_KEY_JWT",
    "QUICK",
    "TARGET_US",
    "EndpointProcess",
    "MeasurementError",
    "Settings",
    "check_cold_round",
    "format_tokens_report",
    "main",
    "run",
    "serve",
]

BASIC = "client_secret_basic"
PRIVATE_KEY_JWT = "private_key_jwt"
METHODS = (BASIC, PRIVATE_KEY_JWT)
#: issue #4: the median of a cached get_token
TARGET_US = 1.5
JWTMINT, AUTHLIB, FLOOR = "jwtmint", "authlib", "floor"
LABELS = {
    FLOOR: "await noop()  (the floor)",
    JWTMINT: "jwtmint  tokens.get_token(name)",
    AUTHLIB: "authlib  client.ensure_active_token(token)",
}
COLD_LABELS = {JWTMINT: "jwtmint TokenManager", AUTHLIB: "authlib AsyncOAuth2Client"}
METHOD_LABELS = {BASIC: "client_secret_basic", PRIVATE_KEY_JWT: "private_key_jwt, ES256"}
#: jwtmint's connection limit (the TokenManager default), and the shared httpx transport's
CONNECTIONS = 100
CACHED_IDS = {JWTMINT: "cached-jwtmint", AUTHLIB: "cached-authlib"}

Batch = Callable[[int], Awaitable[float]]
#: (server, clients, concurrency) -> one round of cold fetches
ColdFetcher = Callable[
    ["EndpointProcess", Sequence["ClientSpec"], int], Coroutine[Any, Any, "ColdRound"]
]
Progress = Callable[[str], None]


@dataclass(frozen=True)
class Settings:
    """How much to measure. ``loops`` None: asyncio, and uvloop when it is installed."""

    rounds: int = 15
    batch_seconds: float = 0.05
    clients: int = 1000
    cold_rounds: int = 5
    concurrency: int = 50
    methods: tuple[str, ...] = METHODS
    loops: tuple[str, ...] | None = None
    #: authlib's cold clients on one shared httpx transport instead of a pool each
    authlib_shared_pool: bool = False

    def __post_init__(self) -> None:
        if self.rounds < 1 or self.cold_rounds < 1 or self.clients < 1 or self.concurrency < 1:
            raise ValueError("rounds, cold_rounds, clients and concurrency must be positive")
        if self.batch_seconds <= 0:
            raise ValueError("batch_seconds must be positive")
        unknown = [m for m in self.methods if m not in METHODS]
        if unknown:
            raise ValueError(f"unknown method(s) {', '.join(unknown)}; known: {', '.join(METHODS)}")
        bad = [name for name in self.loops or () if name not in ("asyncio", "uvloop")]
        if bad:
            raise ValueError(f"unknown event loop(s) {', '.join(bad)}: asyncio or uvloop")


#: ~30 s on 2 cores; --quick (1,000 clients, one cold round each): ~5 s
FULL = Settings()
QUICK = Settings(rounds=5, batch_seconds=0.01, cold_rounds=1)


class MeasurementError(RuntimeError):
    """A correctness check of the measurement failed: the figures would not mean anything."""


# -- the token endpoint, in its own process -----------------------------------------------------

_CHILD = "import sys; from jwtmint.bench.tokens import serve; serve(sys.argv[1])"
#: the registration line holds every client's JWK or secret: a few hundred kB
_PIPE_LIMIT = 1 << 24


def _loop_kind(loop: asyncio.AbstractEventLoop) -> str:
    return "uvloop" if type(loop).__module__.startswith("uvloop") else "asyncio"


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
        endpoint = TokenEndpoint(
            token_lifetime=3600, max_assertion_lifetime=3600, accept_token_endpoint_audience=True
        )
        for client in json.loads(first)["clients"]:
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
                    "event_loop": _loop_kind(running),
                }
            )
            while line := await reader.readline():
                command = json.loads(line)
                if command["op"] == "stop":
                    break
                if command["op"] == "stats":
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

    def __init__(self, registrations: Sequence[dict[str, Any]], *, loop: str) -> None:
        self._registrations = list(registrations)
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
            ready = self._ask({"clients": self._registrations})
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
        return int(self._ask({"op": "verify", "tokens": list(tokens.items())})["live"])

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


# -- the clients ------------------------------------------------------------------------------


@dataclass(frozen=True)
class ClientSpec:
    """One named client: its id, and its secret or ES256 key (registered at the endpoint)."""

    client_id: str
    method: str
    secret: str | None = None
    key: SigningKey | None = None

    def registration(self) -> dict[str, Any]:
        if self.key is not None:
            return {"client_id": self.client_id, "jwk": self.key.public_jwk()}
        return {"client_id": self.client_id, "secret": self.secret}


def make_clients(method: str, count: int) -> list[ClientSpec]:
    prefix = "basic" if method == BASIC else "es256"
    if method == BASIC:
        return [
            ClientSpec(f"{prefix}-{i:05d}", method, secret=secrets.token_urlsafe(32))
            for i in range(count)
        ]
    return [
        ClientSpec(f"{prefix}-{i:05d}", method, key=generate_key("ES256")) for i in range(count)
    ]


def _jwtmint_client(spec: ClientSpec, server: EndpointProcess) -> ClientCredentialsClient:
    if spec.key is not None:
        # the recommended setup: aud = issuer; the algorithm named, so no discovery request
        return ClientCredentialsClient(
            spec.client_id,
            token_endpoint=server.token_url,
            issuer=server.issuer,
            private_key=spec.key,
            signing_algorithm="ES256",
        )
    return ClientCredentialsClient(
        spec.client_id, token_endpoint=server.token_url, client_secret=spec.secret
    )


def _authlib() -> tuple[Any, Any, Any]:
    """httpx, AsyncOAuth2Client and PrivateKeyJWT, typed Any (authlib ships no types)."""
    with _import_quietly():  # authlib 1.9 deprecates httpx (for httpx2) on import
        client = _import("authlib.integrations.httpx_client").AsyncOAuth2Client
        private_key_jwt = _import("authlib.oauth2.rfc7523").PrivateKeyJWT
    return _import("httpx"), client, private_key_jwt


def _authlib_client(spec: ClientSpec, server: EndpointProcess, **httpx_options: Any) -> Any:
    _, client_class, private_key_jwt = _authlib()
    if spec.key is not None:
        ec_key = _import("joserfc.jwk").ECKey.import_key(spec.key.key)
        client = client_class(
            spec.client_id,
            ec_key,
            token_endpoint_auth_method=PRIVATE_KEY_JWT,
            token_endpoint=server.token_url,
            grant_type="client_credentials",
            **httpx_options,
        )
        client.register_client_auth_method(private_key_jwt(server.token_url, alg="ES256"))
        return client
    return client_class(
        spec.client_id,
        spec.secret,
        token_endpoint=server.token_url,
        grant_type="client_credentials",
        **httpx_options,
    )


# -- cached tokens ----------------------------------------------------------------------------


@dataclass
class CachedResult:
    event_loop: str
    timings: dict[str, Timing]
    requests_while_timed: dict[str, int]
    token_unchanged: dict[str, bool]


async def _noop() -> None:
    return None


def get_token_batch(tokens: TokenManager, name: str) -> Batch:
    """A :data:`Batch` of ``n`` awaits of ``tokens.get_token(name)``."""

    async def batch(n: int) -> float:
        get_token = tokens.get_token
        start = time.perf_counter()
        for _ in itertools.repeat(None, n):
            await get_token(name)
        return time.perf_counter() - start

    return batch


async def measure_async(
    contenders: Sequence[tuple[str, Batch]], *, repeats: int, batch_seconds: float
) -> dict[str, Timing]:
    """:func:`jwtmint.bench.timing.measure` for awaits: each contender is ``batch(n)``, which
    awaits n calls in one coroutine and returns the seconds they took. Calibrated batches,
    round-robin with the order rotated per round, the cyclic GC off during batches."""
    with gc_paused():
        timings: dict[str, Timing] = {}
        for name, batch in contenders:
            n = 1  # calibration, which doubles as warm-up
            while (size := calibrated_batch(n, await batch(n), batch_seconds)) is None:
                n *= 2
            timings[name] = Timing(size)
        for round_no in range(repeats):
            for name, batch in rotated(contenders, round_no):
                timing = timings[name]
                timing.samples.append(await batch(timing.batch) / timing.batch)
            gc.collect()
    return timings


async def _cached(
    server: EndpointProcess, secrets_by_id: dict[str, str], s: Settings
) -> CachedResult:
    perf_counter, repeat = time.perf_counter, itertools.repeat
    jwt_client = ClientCredentialsClient(
        CACHED_IDS[JWTMINT], token_endpoint=server.token_url, client_secret=secrets_by_id[JWTMINT]
    )
    async with TokenManager({"name": jwt_client}) as tokens:
        spec = ClientSpec(CACHED_IDS[AUTHLIB], BASIC, secret=secrets_by_id[AUTHLIB])
        async with _authlib_client(spec, server, trust_env=False) as client:
            first = await tokens.get_token("name")
            await client.fetch_token(server.token_url, grant_type="client_credentials")
            authlib_first = client.token["access_token"]
            # the fair equivalent: a token that authlib really judges unexpired (an int expires_at)
            if client.token.is_expired(leeway=client.leeway) is not False:
                raise MeasurementError("authlib's token has no expiry it checks, or has expired")

            async def floor_batch(n: int) -> float:
                noop = _noop
                start = perf_counter()
                for _ in repeat(None, n):
                    await noop()
                return perf_counter() - start

            async def authlib_batch(n: int) -> float:
                ensure, token = client.ensure_active_token, client.token
                start = perf_counter()
                for _ in repeat(None, n):
                    await ensure(token)
                return perf_counter() - start

            ids = list(CACHED_IDS.values())
            before = server.stats(ids)
            timings = await measure_async(
                [
                    (FLOOR, floor_batch),
                    (JWTMINT, get_token_batch(tokens, "name")),
                    (AUTHLIB, authlib_batch),
                ],
                repeats=s.rounds,
                batch_seconds=s.batch_seconds,
            )
            after = server.stats(ids)
            again = await tokens.get_token("name")
            moved = {
                peer: after.per_client[cid] - before.per_client[cid]
                for peer, cid in CACHED_IDS.items()
            }
            unchanged = {
                JWTMINT: again.access_token == first.access_token,
                AUTHLIB: client.token["access_token"] == authlib_first,
            }
    if any(moved.values()) or not all(unchanged.values()):
        raise MeasurementError(
            f"a cached-token loop left the cache: endpoint requests while timed {moved}, "
            f"token unchanged {unchanged}"
        )
    return CachedResult(_loop_kind(asyncio.get_running_loop()), timings, moved, unchanged)


# -- cold fetches -----------------------------------------------------------------------------


@dataclass
class ColdRound:
    """One library's fetch of every client's first token."""

    wall_s: float
    client_cpu_s: float
    server_cpu_s: float
    tokens: int
    distinct: int
    requests: int
    issued: int
    live: int

    def per_request(self) -> dict[str, float]:
        return {
            "tokens_per_s": self.tokens / self.wall_s,
            "client_cpu_us": self.client_cpu_s / self.tokens * 1e6,
            "server_cpu_us": self.server_cpu_s / self.tokens * 1e6,
            # cores kept busy: near 1.0 on the endpoint's side means tokens/s measures the endpoint
            "client_busy": self.client_cpu_s / self.wall_s,
            "server_busy": self.server_cpu_s / self.wall_s,
        }


def check_cold_round(expected: int, result: ColdRound) -> None:
    """Every client got a token, all distinct, all live for their client; one request each."""
    problems = []
    if result.tokens != expected:
        problems.append(f"{result.tokens} tokens for {expected} clients")
    if result.distinct != result.tokens:
        problems.append(f"only {result.distinct} of {result.tokens} tokens are distinct")
    if result.requests != expected:
        problems.append(f"the endpoint counted {result.requests} requests, not {expected}")
    if result.issued != expected:
        problems.append(f"the endpoint issued {result.issued} tokens, not {expected}")
    if result.live != expected:
        problems.append(f"{result.live} of {expected} tokens are live for the client that got it")
    if problems:
        raise MeasurementError("cold fetches: " + "; ".join(problems))


async def _fetch_all(
    server: EndpointProcess,
    names: Sequence[str],
    fetch: Callable[[str], Awaitable[str]],
    concurrency: int,
) -> ColdRound:
    got: dict[str, str] = {}
    pending = iter(names)

    async def worker() -> None:
        for name in pending:  # one shared iterator: at most `concurrency` requests in flight
            got[name] = await fetch(name)

    gc.collect()
    before = server.stats()
    cpu, wall = time.process_time(), time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    after = server.stats()
    return ColdRound(
        wall_s=wall,
        client_cpu_s=cpu,
        server_cpu_s=after.cpu_s - before.cpu_s,
        tokens=len(got),
        distinct=len(set(got.values())),
        requests=after.requests - before.requests,
        issued=after.issued - before.issued,
        live=server.verify(got),
    )


async def _cold_jwtmint(
    server: EndpointProcess, specs: Sequence[ClientSpec], concurrency: int
) -> ColdRound:
    configs = {spec.client_id: _jwtmint_client(spec, server) for spec in specs}
    async with TokenManager(configs, connection_limit=CONNECTIONS) as tokens:

        async def fetch(name: str) -> str:
            return (await tokens.get_token(name)).access_token

        return await _fetch_all(server, list(configs), fetch, concurrency)


async def _cold_authlib(
    server: EndpointProcess,
    specs: Sequence[ClientSpec],
    concurrency: int,
    *,
    shared_pool: bool = False,
) -> ColdRound:
    """One AsyncOAuth2Client per client, each with its own httpx pool (authlib's way), or
    all on one shared transport (``shared_pool``: jwtmint's layout, but httpcore 1.0.9's
    pool then scans every connection for every queued request)."""
    httpx = _authlib()[0]
    options: dict[str, Any] = {"trust_env": False}
    transport = None
    if shared_pool:
        limits = httpx.Limits(max_connections=CONNECTIONS, max_keepalive_connections=CONNECTIONS)
        transport = options["transport"] = httpx.AsyncHTTPTransport(limits=limits)
    else:
        # one context for all: building 1,000 would load the CA bundle 1,000 times (untimed
        # either way, and nothing here is https)
        options["verify"] = ssl.create_default_context()
    clients = {spec.client_id: _authlib_client(spec, server, **options) for spec in specs}
    url = server.token_url

    async def fetch(name: str) -> str:
        token = await clients[name].fetch_token(url, grant_type="client_credentials")
        return str(token["access_token"])

    try:
        return await _fetch_all(server, list(clients), fetch, concurrency)
    finally:  # untimed
        for client in clients.values():
            await client.aclose()
        if transport is not None:
            await transport.aclose()


# -- the run ----------------------------------------------------------------------------------


def _loops(settings: Settings) -> list[str]:
    if settings.loops is not None:
        if "uvloop" in settings.loops and event_loop_name() != "uvloop":
            raise ValueError("uvloop is not installed (pip install 'jwtmint[uvloop]')")
        return list(settings.loops)
    return ["asyncio", "uvloop"] if event_loop_name() == "uvloop" else ["asyncio"]


def _spread(values: Sequence[float]) -> dict[str, float | None]:
    """Median and interquartile range (absolute and as a fraction); no IQR from < 4 values."""
    median = statistics.median(values)
    quartile_range = iqr(values)
    if quartile_range is None:
        return {"median": median, "iqr": None, "iqr_fraction": None}
    return {"median": median, "iqr": quartile_range, "iqr_fraction": quartile_range / median}


def _timing_dict(timing: Timing) -> dict[str, Any]:
    spread = _spread([sample * 1e6 for sample in timing.samples])
    return {
        "median_us": round(timing.median_us, 4),
        "iqr_us": _round(spread["iqr"], 4),
        "iqr_fraction": _round(spread["iqr_fraction"], 4),
        "calls_per_s": round(1e6 / timing.median_us),
        "batch": timing.batch,
        "rounds": len(timing.samples),
        "samples_us": [round(sample * 1e6, 4) for sample in timing.samples],
    }


def _round(value: float | None, digits: int) -> float | None:
    return None if value is None else round(value, digits)


def run(settings: Settings = FULL, *, progress: Progress | None = None) -> dict[str, Any]:
    """Check and time both measurements; the results as plain JSON data."""
    say = progress or (lambda _text: None)
    started = time.perf_counter()
    loops = _loops(settings)
    cold_loop = "uvloop" if "uvloop" in loops else loops[0]
    _authlib()  # fail early, before keys are made, when the peer is missing
    say(f"  {settings.clients} clients per method: keys and secrets ...")
    specs = {method: make_clients(method, settings.clients) for method in settings.methods}
    cached_secrets = {peer: secrets.token_urlsafe(32) for peer in CACHED_IDS}
    registrations = [
        {"client_id": CACHED_IDS[peer], "secret": secret} for peer, secret in cached_secrets.items()
    ] + [spec.registration() for group in specs.values() for spec in group]
    say(f"  token endpoint process: {len(registrations)} clients registered ...")
    with EndpointProcess(registrations, loop=cold_loop) as server:
        cached: dict[str, Any] = {}
        for loop in loops:
            say(f"  cached token on {loop}: {settings.rounds} rounds ...")
            result: CachedResult = run_on_loop(
                _cached(server, cached_secrets, settings), use_uvloop=loop == "uvloop"
            )
            jwt_us, authlib_us = (
                result.timings[JWTMINT].median_us,
                result.timings[AUTHLIB].median_us,
            )
            cached[loop] = {
                "event_loop": result.event_loop,
                "contenders": {name: _timing_dict(t) for name, t in result.timings.items()},
                "ratio_authlib_over_jwtmint": round(authlib_us / jwt_us, 3),
                "jwtmint_meets_target": jwt_us <= TARGET_US,
                "endpoint_requests_while_timed": result.requests_while_timed,
                "token_unchanged": result.token_unchanged,
            }
        cold: dict[str, Any] = {}
        for method, group in specs.items():
            rounds: dict[str, list[ColdRound]] = {JWTMINT: [], AUTHLIB: []}
            fetchers: dict[str, ColdFetcher] = {
                JWTMINT: _cold_jwtmint,
                AUTHLIB: functools.partial(_cold_authlib, shared_pool=settings.authlib_shared_pool),
            }
            for round_no in range(settings.cold_rounds):
                say(f"  cold fetches, {method}: round {round_no + 1}/{settings.cold_rounds} ...")
                order = [JWTMINT, AUTHLIB] if round_no % 2 == 0 else [AUTHLIB, JWTMINT]
                for peer in order:
                    one: ColdRound = run_on_loop(
                        fetchers[peer](server, group, settings.concurrency),
                        use_uvloop=cold_loop == "uvloop",
                    )
                    check_cold_round(settings.clients, one)
                    rounds[peer].append(one)
            cold[method] = _cold_summary(rounds)
        server_loop = server.event_loop
    return {
        "tool": "jwtmint bench tokens",
        "environment": {
            **environment(),
            **{name: version(name) for name in ("aiohttp", "Authlib", "httpx", "anyio", "uvloop")},
        },
        "settings": {**asdict(settings), "methods": list(settings.methods), "loops": loops},
        "server": {
            "process": "child process (time.process_time() of this one is the client's alone)",
            "event_loop": server_loop,
            "clients_registered": len(registrations),
        },
        "cached": {"target_us": TARGET_US, "loops": cached},
        "cold": {
            "event_loop": cold_loop,
            "clients": settings.clients,
            "concurrency": settings.concurrency,
            "rounds": settings.cold_rounds,
            "jwtmint_pool": f"one aiohttp pool (limit {CONNECTIONS}) for all clients",
            "authlib_pool": (
                f"one shared httpx transport (limit {CONNECTIONS}, all kept alive)"
                if settings.authlib_shared_pool
                else "one httpx pool per AsyncOAuth2Client (authlib's default)"
            ),
            "methods": cold,
        },
        "elapsed_s": round(time.perf_counter() - started, 1),
    }


def _cold_summary(rounds: dict[str, list[ColdRound]]) -> dict[str, Any]:
    summary: dict[str, Any] = {}
    for peer, results in rounds.items():
        figures = [r.per_request() for r in results]
        summary[peer] = {
            metric: {k: _round(v, 3) for k, v in _spread([f[metric] for f in figures]).items()}
            for metric in (
                "tokens_per_s",
                "client_cpu_us",
                "server_cpu_us",
                "client_busy",
                "server_busy",
            )
        }
        summary[peer]["rounds"] = [asdict(r) for r in results]
        summary[peer]["checked"] = all(r.live == r.tokens == r.distinct for r in results)
    jwt, peer = summary[JWTMINT], summary[AUTHLIB]
    summary["ratios"] = {
        "tokens_per_s_jwtmint_over_authlib": round(
            jwt["tokens_per_s"]["median"] / peer["tokens_per_s"]["median"], 3
        ),
        "client_cpu_authlib_over_jwtmint": round(
            peer["client_cpu_us"]["median"] / jwt["client_cpu_us"]["median"], 3
        ),
    }
    return summary


# -- the report -------------------------------------------------------------------------------


def _us(value: float | None) -> str:
    if value is None:
        return "—"
    return f"{value:.3f}" if value < 10 else format_us(value)


def _n(value: float | None) -> str:
    return "—" if value is None else f"{value:.0f}"


def format_tokens_report(results: dict[str, Any]) -> str:
    """The two tables of ``jwtmint bench tokens``, with versions, event loops and machine."""
    env, settings = results["environment"], results["settings"]
    cached, cold = results["cached"], results["cold"]
    lines = [
        f"jwtmint {env['jwtmint']} bench tokens: TokenManager vs authlib AsyncOAuth2Client, "
        "checked and timed in one run",
        f"  {env['python']} | aiohttp {env['aiohttp']} | Authlib {env['Authlib']} on httpx "
        f"{env['httpx']} (anyio {env['anyio']}) | uvloop {env['uvloop'] or 'not installed'}",
        f"  jwtmint kernel: {env['implementation']} (C extension {env['c_kernel']}) | "
        f"cryptography {env['cryptography']} ({env['openssl']})",
        f"  CPU: {env['cpu']}, {env['cpu_count']} logical ({env['cpu_usable']} usable) | "
        f"{env['platform']}",
        f"  token endpoint: jwtmint.testing.TokenEndpoint in a child process on "
        f"{results['server']['event_loop']}, 127.0.0.1, "
        f"{results['server']['clients_registered']} clients registered",
        "",
        "1. cached token: median µs per await (IQR µs), N awaits in one coroutine, "
        f"{settings['rounds']} interleaved rounds of ~{settings['batch_seconds'] * 1000:.0f} ms",
    ]
    loops = list(cached["loops"])
    lines.append(f"{'':<44}" + "".join(f"{loop + ' µs':>12}{'IQR':>8}" for loop in loops))
    for name, label in LABELS.items():
        row = f"  {label:<42}"
        for loop in loops:
            cell = cached["loops"][loop]["contenders"][name]
            row += f"{_us(cell['median_us']):>12}{_us(cell['iqr_us']):>8}"
        lines.append(row)
    lines.append(
        f"  {'authlib / jwtmint':<42}"
        + "".join(
            f"{cached['loops'][loop]['ratio_authlib_over_jwtmint']:>11.1f}x{'':>8}"
            for loop in loops
        )
    )
    verdicts = ", ".join(
        f"{loop} {'met' if cached['loops'][loop]['jwtmint_meets_target'] else 'NOT met'}"
        for loop in loops
    )
    lines += [
        f"  target: jwtmint median <= {cached['target_us']} µs: {verdicts}",
        "  checked: the endpoint counted 0 requests from either client while timed, and both "
        "returned the token they had",
        "",
        f"2. cold fetches: {cold['clients']} named clients, each its first token, "
        f"{cold['concurrency']} at a time, on {cold['event_loop']}; medians of {cold['rounds']} "
        f"round(s) (IQR)",
        f"{'':<34}{'tokens/s':>10}{'IQR':>8}{'client CPU':>12}{'IQR':>7}{'server CPU':>12}"
        f"{'busy, cores':>14}",
        f"{'':<34}{'(wall)':>10}{'':>8}{'µs/request':>12}{'':>7}{'µs/request':>12}"
        f"{'client server':>14}",
    ]
    for method, summary in cold["methods"].items():
        lines.append(f"  {METHOD_LABELS[method]}")
        for peer, label in COLD_LABELS.items():
            cell = summary[peer]
            lines.append(
                f"    {label:<30}{cell['tokens_per_s']['median']:>10.0f}"
                f"{_n(cell['tokens_per_s']['iqr']):>8}"
                f"{cell['client_cpu_us']['median']:>12.0f}{_n(cell['client_cpu_us']['iqr']):>7}"
                f"{cell['server_cpu_us']['median']:>12.0f}"
                f"{cell['client_busy']['median']:>8.2f}{cell['server_busy']['median']:>6.2f}"
            )
        ratios = summary["ratios"]
        lines.append(
            f"    ratios: tokens/s jwtmint/authlib "
            f"{ratios['tokens_per_s_jwtmint_over_authlib']:.2f}x, client CPU authlib/jwtmint "
            f"{ratios['client_cpu_authlib_over_jwtmint']:.2f}x"
        )
    lines += [
        f"  checked: every round {cold['clients']} distinct tokens, each live at the endpoint "
        f"for its client; the endpoint counted exactly {cold['clients']} requests, all issued",
        f"  jwtmint: one TokenManager, {cold['jwtmint_pool']}; authlib: one AsyncOAuth2Client "
        f"per client, {cold['authlib_pool']}",
        "  private_key_jwt: one ES256 key per client, a fresh assertion (new jti) per request; "
        "client setup and teardown untimed",
        "  busy: CPU seconds / wall seconds; a side near 1.00 is the bottleneck of tokens/s "
        "(the endpoint runs on one core)",
        "",
        f"{results['elapsed_s']:.1f} s. Contenders interleaved; client CPU is this process's "
        "process_time(), the endpoint's is its own.\nA shared or throttled machine adds noise: "
        "compare ratios from one run, not figures across runs.",
    ]
    return "\n".join(lines)


def main(
    *,
    quick: bool,
    as_json: bool,
    repeats: int | None = None,
    batch_ms: float | None = None,
    settings: Settings | None = None,
) -> int:
    """``jwtmint bench tokens``: progress on stderr, the tables (or JSON) on stdout."""
    chosen = settings or (QUICK if quick else FULL)
    overrides: dict[str, Any] = {}
    if repeats is not None:
        overrides["rounds"] = repeats
    if batch_ms is not None:
        overrides["batch_seconds"] = batch_ms / 1000
    if overrides:
        chosen = replace(chosen, **overrides)
    try:
        results = run(
            chosen,
            progress=None if as_json else lambda text: print(text, file=sys.stderr, flush=True),
        )
    except MeasurementError as exc:
        print(f"jwtmint bench tokens: measurement check failed: {exc}", file=sys.stderr)
        return 1
    results["settings"]["quick"] = quick
    print(json.dumps(results, indent=2) if as_json else format_tokens_report(results))
    return 0
