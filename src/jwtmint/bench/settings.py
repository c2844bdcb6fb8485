"""How much each bench command measures: one :class:`Settings`, full and quick, per command.

Also the one default algorithm list (``jwtmint bench``; ``jwtmint demo``
adds the other HMAC sizes) and the client authentication methods of
``jwtmint bench tokens``, which :class:`Settings` checks. ``jwtmint bench
redis`` has its own :class:`RedisSettings` (the fleet's size instead of the
cold-fetch workload).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Generic, TypeVar

__all__ = [
    "BASIC",
    "BENCH",
    "DEFAULT_ALGORITHMS",
    "DEMO",
    "DEMO_ALGORITHMS",
    "DPOP",
    "EVENT_LOOPS",
    "METHODS",
    "PRIVATE_KEY_JWT",
    "PYJWT",
    "REDIS",
    "TOKENS",
    "DPoPSettings",
    "Modes",
    "RedisSettings",
    "Settings",
]

#: What ``jwtmint bench`` times by default: one algorithm per family and curve.
DEFAULT_ALGORITHMS = ("RS256", "PS256", "ES256", "ES384", "ES512", "EdDSA", "HS256")
#: ``jwtmint demo`` shows every algorithm: the other HMAC sizes cost little to time.
DEMO_ALGORITHMS = (*DEFAULT_ALGORITHMS, "HS384", "HS512")

BASIC = "client_secret_basic"
PRIVATE_KEY_JWT = "private_key_jwt"
METHODS = (BASIC, PRIVATE_KEY_JWT)
EVENT_LOOPS = ("asyncio", "uvloop")


_R = TypeVar("_R", bound="_Rounds")


@dataclass(frozen=True)
class _Rounds:
    """What every command's settings share: interleaved rounds of ~``batch_seconds``."""

    rounds: int = 15
    batch_seconds: float = 0.05

    def _check_rounds(self, loops: tuple[str, ...] | None) -> None:
        if self.batch_seconds <= 0:
            raise ValueError("batch_seconds must be positive")
        bad = [name for name in loops or () if name not in EVENT_LOOPS]
        if bad:
            raise ValueError(f"unknown event loop(s) {', '.join(bad)}: asyncio or uvloop")

    def overridden(self: _R, *, repeats: int | None = None, batch_ms: float | None = None) -> _R:
        """These settings with the command line's ``--repeats`` and ``--batch-ms``, if given."""
        return replace(
            self,
            rounds=self.rounds if repeats is None else repeats,
            batch_seconds=self.batch_seconds if batch_ms is None else batch_ms / 1000,
        )


@dataclass(frozen=True)
class Settings(_Rounds):
    """How much to measure: ``rounds`` interleaved batches of ~``batch_seconds`` per contender.

    The other fields are the cold-fetch workload of ``jwtmint bench tokens``
    (the other commands ignore them): ``clients`` named clients per method,
    ``concurrency`` requests in flight, ``cold_rounds`` rounds; ``loops`` None
    means asyncio, and uvloop when it is installed.
    """

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
        unknown = [m for m in self.methods if m not in METHODS]
        if unknown:
            raise ValueError(f"unknown method(s) {', '.join(unknown)}; known: {', '.join(METHODS)}")
        self._check_rounds(self.loops)


@dataclass(frozen=True)
class RedisSettings(_Rounds):
    """``jwtmint bench redis``: ``rounds`` interleaved batches per contender and event loop,
    then ``fleet_rounds`` rounds of ``fleet_instances`` instances (processes) asking for
    the same ``fleet_keys`` cold keys at once, with the shared lock and without it."""

    fleet_instances: int = 8
    fleet_keys: int = 200
    fleet_rounds: int = 3
    loops: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        if min(self.rounds, self.fleet_instances, self.fleet_keys, self.fleet_rounds) < 1:
            raise ValueError("rounds and the fleet's instances, keys and rounds must be positive")
        self._check_rounds(self.loops)


_S = TypeVar("_S", "Settings", "RedisSettings", "DPoPSettings")


@dataclass(frozen=True)
class Modes(Generic[_S]):
    """A command's settings for a full run and for ``--quick``."""

    full: _S
    quick: _S

    def pick(self, quick: bool, *, repeats: int | None = None, batch_ms: float | None = None) -> _S:
        chosen = self.quick if quick else self.full
        return chosen.overridden(repeats=repeats, batch_ms=batch_ms)


@dataclass(frozen=True)
class DPoPSettings(_Rounds):
    """``jwtmint bench dpop``: ``rounds`` interleaved batches of ``batch`` calls per
    contender (counted, not timed: the precomputed store is filled for each batch), then
    ``steady_calls`` calls per contender paced at ``rate`` per second."""

    batch: int = 1000
    rate: float = 1000.0
    steady_calls: int = 2000

    def __post_init__(self) -> None:
        self._check_rounds(None)
        if self.batch < 1 or self.steady_calls < 1 or not self.rate > 0:
            raise ValueError("batch and steady_calls must be >= 1 and rate positive")


#: ``jwtmint bench``: every algorithm x every contender
BENCH = Modes(Settings(rounds=15, batch_seconds=0.05), Settings(rounds=7, batch_seconds=0.015))
#: ``jwtmint demo``'s minting: jwtmint C, jwtmint py and PyJWT (its fleet: token_demo.FLEET)
DEMO = Modes(Settings(rounds=9, batch_seconds=0.04), Settings(rounds=5, batch_seconds=0.01))
#: ``jwtmint bench pyjwt``: patched vs unpatched ``jwt.encode``
PYJWT = Modes(Settings(rounds=15, batch_seconds=0.05), Settings(rounds=7, batch_seconds=0.015))
#: ``jwtmint bench dpop``: proofs per request, interleaved batches, then a steady rate
DPOP = Modes(
    DPoPSettings(rounds=15, batch=1000, steady_calls=2000),
    DPoPSettings(rounds=5, batch=200, steady_calls=300),
)
#: ``jwtmint bench tokens``; quick keeps 1,000 clients but one cold round
TOKENS = Modes(Settings(), Settings(rounds=5, batch_seconds=0.01, cold_rounds=1))
#: ``jwtmint bench redis``: 8 instances in the fleet either way
REDIS = Modes(
    RedisSettings(),
    RedisSettings(rounds=5, batch_seconds=0.01, fleet_keys=20, fleet_rounds=1),
)
