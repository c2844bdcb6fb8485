"""jwtmint.bench.redis_* (``jwtmint bench redis``): it runs end to end, and its checks hold.

No timing is asserted: figures only have to exist and be positive. The
checks under test are those of the measurement: the hits made no request
(and the local hit no Redis read), every Redis-hit call was a Redis hit,
every miss one request under a lock, and the fleet's request counts.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from jwtmint._cli import main
from jwtmint.bench import redis_runner
from jwtmint.bench.environment import version
from jwtmint.bench.redis_fleet import ALONE, SHARED
from jwtmint.bench.redis_measurements import (
    CLIENTS,
    FLOOR,
    GET,
    LOCAL,
    MEMORY,
    MISS_MEMORY,
    MISS_REDIS,
    REDIS,
    SEALED,
    SEALED_GET,
)
from jwtmint.bench.report import REDIS_LABELS, format_redis_report
from jwtmint.bench.settings import REDIS as REDIS_MODES
from jwtmint.bench.settings import Modes, RedisSettings
from jwtmint.testing import redis_server_available
from jwtmint.tokens._runner import event_loop_name

pytest.importorskip("redis")
pytestmark = pytest.mark.skipif(
    not redis_server_available(), reason="redis-server is not installed"
)

#: a few seconds: 4 rounds so that IQRs are computed, a fleet of 3 on 6 keys
TINY = RedisSettings(rounds=4, batch_seconds=0.002, fleet_instances=3, fleet_keys=6, fleet_rounds=2)
LOOPS = ["asyncio", "uvloop"] if event_loop_name() == "uvloop" else ["asyncio"]
CONTENDERS = [FLOOR, MEMORY, LOCAL, REDIS, GET, SEALED, SEALED_GET, MISS_MEMORY, MISS_REDIS]


@pytest.fixture(scope="module")
def results() -> dict[str, Any]:
    return redis_runner.run(TINY)


def test_every_contender_timed_on_every_loop(results: dict[str, Any]) -> None:
    assert list(results["loops"]) == LOOPS == results["settings"]["loops"]
    assert list(REDIS_LABELS) == CONTENDERS
    for loop, cell in results["loops"].items():
        assert cell["event_loop"] == loop
        assert list(cell["contenders"]) == CONTENDERS
        for name, timing in cell["contenders"].items():
            assert timing["median_us"] > 0, name
            assert timing["iqr_us"] is not None and timing["iqr_us"] >= 0
            assert timing["rounds"] == len(timing["samples_us"]) == TINY.rounds
        assert set(cell["calls"]) == set(CONTENDERS) - {FLOOR}
        assert all(calls >= TINY.rounds for calls in cell["calls"].values())
        ratios = cell["ratios"]
        assert set(cell["meets"]) == set(results["targets"]) == set(redis_runner.TARGETS)
        for name, target in results["targets"].items():
            assert cell["meets"][name] is (ratios[name] <= target)
        assert ratios["miss_redis_over_memory"] > 0


def test_the_checks_that_held_are_reported(results: dict[str, Any]) -> None:
    for cell in results["loops"].values():
        checks, calls = cell["checks"], cell["calls"]
        requests = checks["endpoint_requests_while_timed"]
        assert set(requests) == set(CLIENTS)
        assert requests[MEMORY] == requests[LOCAL] == requests[REDIS] == requests[SEALED] == 0
        assert requests[MISS_MEMORY] == calls[MISS_MEMORY]
        assert requests[MISS_REDIS] == calls[MISS_REDIS]
        counters = checks["redis_counters_while_timed"]
        assert counters[LOCAL]["hits"] == counters[LOCAL]["misses"] == 0
        assert counters[REDIS]["hits"] == calls[REDIS]
        assert counters[SEALED]["hits"] == calls[SEALED]
        assert counters[MISS_REDIS]["locks_taken"] == calls[MISS_REDIS]
        assert not any(c["errors"] for c in counters.values())
        assert not any(checks["unexpected_results"].values())
        assert checks["miss_tokens_live"] == {n: calls[n] for n in (MISS_MEMORY, MISS_REDIS)}


def test_fleet_counts_one_request_per_key_with_the_lock(results: dict[str, Any]) -> None:
    fleet = results["fleet"]
    keys, size = TINY.fleet_keys, TINY.fleet_instances
    assert fleet["instances"] == size and fleet["keys"] == keys
    assert fleet["requests_median"] == {SHARED: keys, ALONE: keys * size}
    for mode, rounds in fleet["rounds"].items():
        assert len(rounds) == TINY.fleet_rounds
        for one in rounds:
            assert one["tokens"] == keys * size
            assert one["requests"] == one["distinct"] == one["live"]
            assert one["errors"] == 0 and one["wall_ms"] > 0
            if mode == SHARED:
                assert one["same_tokens_everywhere"] and one["locks_taken"] >= keys
            else:
                assert one["locks_taken"] == 0


def test_results_are_json_and_name_versions_and_machine(results: dict[str, Any]) -> None:
    assert json.loads(json.dumps(results)) == results
    env = results["environment"]
    assert env["redis"] == version("redis") and env["hiredis"] == version("hiredis")
    assert env["redis_server"] and env["cpu"] and env["python"] and env["jwtmint"]


def test_report_has_both_tables(results: dict[str, Any]) -> None:
    text = format_redis_report(results)
    for expected in (
        "1. await tokens.get_token(name)",
        *REDIS_LABELS.values(),
        "RedisTokenCache local hit / Memory",
        "target <= 1.10x",
        "Redis hit / bare GET",
        "target <= 1.30x",
        f"2. fleet: {TINY.fleet_instances} instances ask for the same {TINY.fleet_keys} cold",
        "shared lock (RedisTokenCache)",
        f"redis-server {results['environment']['redis_server']}",
        f"redis-py {version('redis')}",
        *(f"{loop} µs" for loop in LOOPS),
    ):
        assert expected in text, expected


def test_settings_are_checked() -> None:
    assert REDIS_MODES.full.fleet_instances == REDIS_MODES.quick.fleet_instances == 8
    assert REDIS_MODES.pick(True, repeats=3, batch_ms=2).rounds == 3
    with pytest.raises(ValueError, match="positive"):
        RedisSettings(fleet_keys=0)
    with pytest.raises(ValueError, match="event loop"):
        RedisSettings(loops=("trio",))


def test_cli_json(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    tiny = RedisSettings(
        rounds=1, batch_seconds=0.001, fleet_instances=2, fleet_keys=2, loops=("asyncio",)
    )
    monkeypatch.setattr(redis_runner, "REDIS_MODES", Modes(REDIS_MODES.full, tiny))
    assert main(["bench", "redis", "--quick", "--json"]) == 0
    document = json.loads(capsys.readouterr().out)
    assert document["tool"] == "jwtmint bench redis" and document["settings"]["quick"] is True
    assert document["fleet"]["requests_median"] == {SHARED: 2, ALONE: 4}


def test_cli_without_redis_server_says_so(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(redis_runner, "redis_server_available", lambda: False)
    assert main(["bench", "redis", "--quick"]) == 1
    assert "redis-server is not installed" in capsys.readouterr().err
