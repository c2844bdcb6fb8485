"""The token-manager half of ``jwtmint demo``: a few hundred named clients under concurrency.

A real :class:`~jwtmint.testing.TokenEndpoint` on 127.0.0.1 (discovery, client
authentication verified with its own JOSE code, tokens issued and remembered) and
a :class:`~jwtmint.tokens.TokenManager` with clients of every authentication
method: ``private_key_jwt`` with each asymmetric family (ES256/384/512, RS256,
PS256, EdDSA), ``client_secret_jwt`` (HS256/384/512), ``client_secret_basic`` and
``client_secret_post``. Two phases drive it: a stampede (several callers ask for
each client's first token at once: one request, the others join it), then many
workers asking for tokens of random clients, some with another scope, a few with
``force_renewal``. Tokens live a few seconds, so the manager renews them in the
background while it serves the cached ones. A live line shows the manager's
counters; each distinct token is looked up in the endpoint's record when it is
first returned. :func:`run_fleet` returns what the driver saw and what the endpoint
recorded, for :mod:`~jwtmint.bench.fleet_check` to verify and add up.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import secrets
import time
import types
from collections.abc import Callable, Coroutine, Generator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, TypeVar

from .._keys import SigningKey, generate_key
from .._progress import LiveLine
from ..testing import RecordedRequest, TokenEndpoint
from ..tokens import ClientCredentialsClient, TokenManager, TokenManagerStats

__all__ = [
    "DEFAULT_SCOPE",
    "FLEET",
    "KINDS",
    "SCOPES",
    "DemoClient",
    "FleetRun",
    "FleetSettings",
    "Tally",
    "run_fleet",
    "stepped",
]

_T = TypeVar("_T")

#: (kind, auth method, signing algorithm): every client authentication method, and
#: private_key_jwt with every asymmetric family the endpoint verifies
KINDS: tuple[tuple[str, str, str | None], ...] = (
    *((alg.lower(), "private_key_jwt", alg) for alg in ("ES256", "ES384", "ES512")),
    *((alg.lower(), "private_key_jwt", alg) for alg in ("RS256", "PS256", "EdDSA")),
    *((alg.lower(), "client_secret_jwt", alg) for alg in ("HS256", "HS384", "HS512")),
    ("basic", "client_secret_basic", None),
    ("post", "client_secret_post", None),
)
#: every client's own scope; a call may ask for one of :data:`SCOPES` instead
DEFAULT_SCOPE = "read"
SCOPES = ("write", "read write")


@dataclass(frozen=True)
class FleetSettings:
    """How big the fleet and its load are.

    ``clients_per_kind`` clients of each of the :data:`KINDS`; ``stampede`` callers ask
    for each client's first token at once; then ``workers`` tasks make ``calls`` calls
    between them, each for a random client (a few clients far more often than the rest,
    as in a gateway), with another scope in ``scope_share`` of them and
    ``force_renewal`` in ``force_share``. The endpoint issues tokens for
    ``token_lifetime`` seconds: the manager renews them at half their life.
    """

    clients_per_kind: int = 30
    stampede: int = 4
    calls: int = 600_000
    workers: int = 100
    token_lifetime: int = 5
    scope_share: float = 0.2
    force_share: float = 0.0005
    seed: int | None = None

    def __post_init__(self) -> None:
        if min(self.clients_per_kind, self.stampede, self.calls, self.workers) < 1:
            raise ValueError("clients_per_kind, stampede, calls and workers must be positive")
        if self.token_lifetime < 5:
            # the manager takes no lifetime under 5 s (tokens.MIN_LIFETIME): it would keep
            # a token longer than the endpoint does
            raise ValueError("token_lifetime must be 5 s or more")
        if not (0 <= self.scope_share <= 1 and 0 <= self.force_share <= 1):
            raise ValueError("scope_share and force_share are fractions, 0 to 1")

    @property
    def clients(self) -> int:
        return self.clients_per_kind * len(KINDS)


#: ``jwtmint demo`` (330 clients) and ``--quick`` (44 clients)
FLEET = {
    False: FleetSettings(),
    True: FleetSettings(clients_per_kind=4, calls=10_000, workers=32, force_share=0.002),
}


@dataclass(frozen=True)
class DemoClient:
    """One named client: its kind, authentication method and signing algorithm."""

    name: str
    kind: str
    auth_method: str
    algorithm: str | None


@dataclass
class Tally:
    """What the driver saw, counted apart from the manager's own counters."""

    calls: int = 0
    #: calls that completed without suspending: served from process memory
    unsuspended: int = 0
    errors: list[str] = field(default_factory=list)
    #: ns per call of the load phase, cached (never waited) and not
    cached_ns: list[int] = field(default_factory=list)
    uncached_ns: list[int] = field(default_factory=list)
    #: ns per call of the stampede (every one waits for its client's first request)
    stampede_ns: list[int] = field(default_factory=list)
    #: every distinct access token returned, and the (client, scope) it was asked for
    tokens: dict[str, tuple[str, str]] = field(default_factory=dict)
    #: tokens returned for two different (client, scope) pairs
    crossed: int = 0
    #: the endpoint's record of each distinct token, looked up when it was first returned
    #: (None: unknown to the endpoint, revoked or expired)
    token_info: dict[str, dict[str, Any] | None] = field(default_factory=dict)


@dataclass
class FleetRun:
    """One run: the clients, the driver's tally, the manager's stats, the endpoint's records."""

    settings: FleetSettings
    clients: dict[str, DemoClient]
    tally: Tally
    stats: TokenManagerStats
    records: list[RecordedRequest]
    event_loop: str
    keys_s: float
    stampede_s: float
    load_s: float


@types.coroutine
def stepped(coro: Coroutine[Any, Any, _T]) -> Generator[Any, Any, tuple[_T, bool]]:
    """Await ``coro``; also say whether it ever suspended (yielded to the event loop).

    A cached ``get_token`` returns without suspending (no I/O, no lock, no task switch);
    every call that starts or joins a request waits for it. So the driver tells hits
    from misses on its own, to check the manager's counters against.
    """
    try:
        waiting = coro.send(None)
    except StopIteration as done:
        return done.value, False
    while True:
        try:
            sent = yield waiting
        except GeneratorExit:
            coro.close()
            raise
        except BaseException as exc:  # cancellation included: the coroutine decides
            try:
                waiting = coro.throw(exc)
            except StopIteration as done:
                return done.value, True
        else:
            try:
                waiting = coro.send(sent)
            except StopIteration as done:
                return done.value, True


def _keys(algorithms: list[str]) -> list[SigningKey]:
    """A fresh key per client; RSA ones (~35 ms each) on two threads: OpenSSL drops the GIL."""
    with ThreadPoolExecutor(max_workers=2) as pool:
        return list(pool.map(generate_key, algorithms))


def _register(
    server: TokenEndpoint, settings: FleetSettings
) -> tuple[dict[str, DemoClient], dict[str, ClientCredentialsClient]]:
    demo: dict[str, DemoClient] = {}
    for kind, method, algorithm in KINDS:
        for i in range(settings.clients_per_kind):
            name = f"{kind}-{i:03d}"
            demo[name] = DemoClient(name, kind, method, algorithm)
    jwt_keys = [c for c in demo.values() if c.auth_method == "private_key_jwt"]
    keys = dict(zip(jwt_keys, _keys([c.algorithm or "" for c in jwt_keys]), strict=True))
    configs: dict[str, ClientCredentialsClient] = {}
    for name, client in demo.items():
        common: dict[str, Any] = {"issuer": server.issuer, "scope": DEFAULT_SCOPE}
        if client.auth_method == "private_key_jwt":
            key = keys[client]
            server.register_client(name, public_key=key, auth_method=client.auth_method)
            configs[name] = ClientCredentialsClient(name, private_key=key, **common)
            continue
        # 64 bytes and more: long enough for HS512 (RFC 7518 §3.2)
        secret = secrets.token_urlsafe(64 if client.algorithm else 24)
        server.register_client(name, secret=secret, auth_method=client.auth_method)
        configs[name] = ClientCredentialsClient(
            name,
            client_secret=secret,
            auth_method=client.auth_method,
            signing_algorithm=client.algorithm,
            **common,
        )
    return demo, configs


class _Driver:
    """Callers of ``get_token``: each call timed, classified and its token remembered."""

    def __init__(
        self,
        tokens: TokenManager,
        settings: FleetSettings,
        token_info: Callable[[str], dict[str, Any] | None],
    ) -> None:
        self.tokens = tokens
        self.settings = settings
        self.token_info = token_info
        self.tally = Tally()
        #: calls the load phase has left to make; -1 during the stampede
        self.remaining = -1
        self.phase = "stampede"
        #: when the phase began, and the calls made before it (for the live line's rate)
        self.phase_started = time.perf_counter()
        self.calls_before = 0

    async def call(self, name: str, scope: str | None, force: bool) -> bool:
        """One call; whether it suspended."""
        tally = self.tally
        tally.calls += 1
        started = time.perf_counter_ns()
        try:
            token, suspended = await stepped(
                self.tokens.get_token(name, scope=scope, force_renewal=force)
            )
        except Exception as exc:
            tally.errors.append(f"{name}: {type(exc).__name__}")
            return True
        elapsed = time.perf_counter_ns() - started
        if not suspended:
            tally.unsuspended += 1
        if self.remaining < 0:
            tally.stampede_ns.append(elapsed)
        else:
            (tally.uncached_ns if suspended else tally.cached_ns).append(elapsed)
        asked = (name, scope or DEFAULT_SCOPE)
        seen = tally.tokens.setdefault(token.access_token, asked)
        if seen is asked:
            # now, while it is live: a few seconds on, the endpoint forgets it (expired)
            tally.token_info[token.access_token] = self.token_info(token.access_token)
        elif seen != asked:
            tally.crossed += 1
        return suspended

    async def stampede(self, names: list[str]) -> None:
        """Every client's first token, asked by ``stampede`` callers at once."""
        callers = self.settings.stampede
        await asyncio.gather(*(self.call(n, None, False) for n in names for _ in range(callers)))

    async def load(self, names: list[str]) -> None:
        """``calls`` calls from ``workers`` tasks, until the shared count runs out."""
        self.remaining = self.settings.calls
        self.phase = "load"
        self.phase_started = time.perf_counter()
        self.calls_before = self.tally.calls
        seed = self.settings.seed
        await asyncio.gather(
            *(self._worker(names, random.Random(None if seed is None else seed + i)) for i in
              range(self.settings.workers))
        )  # fmt: skip

    async def _worker(self, names: list[str], rng: random.Random) -> None:
        settings = self.settings
        while self.remaining > 0:
            self.remaining -= 1
            # squared: a few clients far more often than the rest
            name = names[int(len(names) * rng.random() ** 2)]
            scope = rng.choice(SCOPES) if rng.random() < settings.scope_share else None
            force = rng.random() < settings.force_share
            if not await self.call(name, scope, force):
                # a cached call never yields: a worker serving a request would, and so the
                # other workers and the server run in between, as in a gateway
                await asyncio.sleep(0)


def _status(tokens: TokenManager, driver: _Driver, phase: str | None = None) -> str:
    """The live line: the driver's calls and tokens, the manager's own counters."""
    stats, tally = tokens.stats(), driver.tally
    seconds = max(time.perf_counter() - driver.phase_started, 1e-9)
    rate = (tally.calls - driver.calls_before) / seconds
    # short enough for an 80-column terminal at the full run's figures
    return (
        f"{phase or driver.phase}: {tally.calls:,} calls  {stats.hits:,} hits  "
        f"{len(tally.tokens):,} tokens  {stats.requests:,} req  {stats.coalesced:,} joins  "
        f"{rate / 1000:,.0f}k/s"
    )


async def _show(line: LiveLine, render: Callable[[], str]) -> None:
    while True:
        await asyncio.sleep(0.1)
        line.status(render())


async def _fleet(
    settings: FleetSettings,
    line: LiveLine,
    after_setup: Callable[[TokenEndpoint], None] | None,
    event_loop: str,
) -> FleetRun:
    async with TokenEndpoint(token_lifetime=settings.token_lifetime) as server:
        started = time.perf_counter()
        clients, configs = _register(server, settings)
        keys_s = time.perf_counter() - started
        if after_setup is not None:
            after_setup(server)
        names = list(clients)
        random.Random(settings.seed).shuffle(names)
        async with TokenManager(configs) as tokens:
            driver = _Driver(tokens, settings, server.token_info)
            shown = asyncio.ensure_future(_show(line, lambda: _status(tokens, driver)))
            try:
                begun = time.perf_counter()
                await driver.stampede(names)
                stampede_s = time.perf_counter() - begun
                begun = time.perf_counter()
                await driver.load(names)
                load_s = time.perf_counter() - begun
                # renewals still in flight finish, so that the endpoint's record and the
                # manager's counters describe the same requests
                for _ in range(500):
                    if not tokens.stats().in_flight:
                        break
                    await asyncio.sleep(0.01)
            finally:
                shown.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await shown
                line.status(_status(tokens, driver, "done"), force=True)
                line.close()
            stats = tokens.stats()
        return FleetRun(
            settings=settings,
            clients=clients,
            tally=driver.tally,
            stats=stats,
            records=list(server.requests),
            event_loop=event_loop,
            keys_s=keys_s,
            stampede_s=stampede_s,
            load_s=load_s,
        )


def run_fleet(
    settings: FleetSettings,
    *,
    quiet: bool = False,
    after_setup: Callable[[TokenEndpoint], None] | None = None,
) -> FleetRun:
    """Run the fleet on uvloop when installed; the live line goes to stderr unless ``quiet``.

    ``after_setup`` is called with the endpoint once the clients are registered, before
    any token is asked for (a test registers a client again with another secret, to see
    the verdict fail).
    """
    from ..tokens._runner import event_loop_name, run

    loop = event_loop_name()
    with LiveLine(quiet=quiet, plain_interval=2.0) as line:
        return run(_fleet(settings, line, after_setup, loop))
