"""The peer-comparison harness: ``jwtmint bench`` (and ``jwtmint demo``) as a library.

Modules by concern: :mod:`~jwtmint.bench.settings` (how much each command
measures, the default algorithms), :mod:`~jwtmint.bench.job` (the assertion
every contender mints, and its check), :mod:`~jwtmint.bench.adapters` (one
``mint()`` per peer, and the signing floor), :mod:`~jwtmint.bench.timing`
(interleaved batches of calls or awaits, medians), :mod:`~jwtmint.bench.runner`
(check, time, ratios, JSON), :mod:`~jwtmint.bench.report` (the tables),
:mod:`~jwtmint.bench.environment` (versions, machine), :mod:`~jwtmint.bench.demo`,
:mod:`~jwtmint.bench.token_demo` (its fleet of clients) and
:mod:`~jwtmint.bench.fleet_check` (the fleet's sums and checks) for ``jwtmint demo``.
``jwtmint bench tokens``:
:mod:`~jwtmint.bench.token_endpoint` (the endpoint process),
:mod:`~jwtmint.bench.token_peers` (the clients, as jwtmint and as authlib),
:mod:`~jwtmint.bench.token_measurements` (cached token, cold fetches) and
:mod:`~jwtmint.bench.token_runner` (the run). ``jwtmint bench redis``:
:mod:`~jwtmint.bench.redis_measurements` (hits and misses on one loop),
:mod:`~jwtmint.bench.redis_fleet` (instances in child processes) and
:mod:`~jwtmint.bench.redis_runner` (the run). ``jwtmint bench pyjwt``:
:mod:`~jwtmint.bench.pyjwt_patch` (``jwt.encode`` under ``patch_pyjwt()`` vs
unpatched). :mod:`~jwtmint.bench.command` runs each mode.

>>> from jwtmint.bench import run
>>> results = run(["ES256"], ["jwtmint-c", "oxyjwt"], repeats=5, batch_seconds=0.02)
>>> results["results"]["ES256"]["contenders"]["jwtmint-c"]["vs_pyjwt"]  # doctest: +SKIP
"""

from __future__ import annotations

from .adapters import PEERS, REFERENCE, Floor, NotSupported, Peer, floor, get_peer, quiet
from .environment import environment
from .job import Minter, TokenCheckError, check_token
from .report import format_report
from .runner import run
from .settings import DEFAULT_ALGORITHMS
from .timing import Timing, measure

__all__ = [
    "DEFAULT_ALGORITHMS",
    "PEERS",
    "REFERENCE",
    "Floor",
    "Minter",
    "NotSupported",
    "Peer",
    "Timing",
    "TokenCheckError",
    "check_token",
    "environment",
    "floor",
    "format_report",
    "get_peer",
    "measure",
    "quiet",
    "run",
]
