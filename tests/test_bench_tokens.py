"""jwtmint.bench.token_* (``jwtmint bench tokens``): it runs, both peers give figures, checks hold.

No timing is asserted: figures only have to exist and be positive. The
checks under test are those of the measurement itself: the cached loops
never reach the token endpoint, every cold round ends with one distinct,
live token per client and exactly one request each, and a harness whose
cache does not hit refuses to report.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from jwtmint._cli import main
from jwtmint.bench import token_runner as bench_tokens
from jwtmint.bench.environment import version
from jwtmint.bench.report import format_tokens_report
from jwtmint.bench.settings import BASIC, METHODS, PRIVATE_KEY_JWT, TOKENS, Settings
from jwtmint.bench.token_endpoint import EndpointProcess, MeasurementError
from jwtmint.bench.token_measurements import ColdRound, check_cold_round
from jwtmint.bench.token_peers import AUTHLIB, JWTMINT
from jwtmint.bench.token_runner import run
from jwtmint.tokens import MemoryTokenCache
from jwtmint.tokens._runner import event_loop_name

pytest.importorskip("httpx")
pytest.importorskip("authlib")

CLIENTS = 60
#: small enough to run in a few seconds; 4 rounds so that IQRs are computed
TINY = Settings(rounds=4, batch_seconds=0.002, clients=CLIENTS, cold_rounds=2, concurrency=8)
LOOPS = ["asyncio", "uvloop"] if event_loop_name() == "uvloop" else ["asyncio"]


@pytest.fixture(scope="module")
def results() -> dict[str, Any]:
    return run(TINY)


def test_cached_figures_for_both_peers_on_every_loop(results: dict[str, Any]) -> None:
    cached = results["cached"]
    assert cached["target_us"] == 1.5
    assert list(cached["loops"]) == LOOPS == results["settings"]["loops"]
    for loop, cell in cached["loops"].items():
        assert cell["event_loop"] == loop
        for name in ("floor", JWTMINT, AUTHLIB):
            timing = cell["contenders"][name]
            assert timing["median_us"] > 0
            assert timing["iqr_us"] is not None and timing["iqr_us"] >= 0
            assert timing["rounds"] == len(timing["samples_us"]) == TINY.rounds
            assert timing["batch"] >= 1
        assert cell["ratio_authlib_over_jwtmint"] > 0
        assert isinstance(cell["jwtmint_meets_target"], bool)
        # the measurement's own checks: both were cache hits
        assert cell["endpoint_requests_while_timed"] == {JWTMINT: 0, AUTHLIB: 0}
        assert cell["token_unchanged"] == {JWTMINT: True, AUTHLIB: True}


def test_cold_rounds_fetch_one_distinct_live_token_per_client(results: dict[str, Any]) -> None:
    cold = results["cold"]
    assert cold["clients"] == CLIENTS and cold["concurrency"] == TINY.concurrency
    assert cold["event_loop"] == LOOPS[-1] == results["server"]["event_loop"]
    assert set(cold["methods"]) == {BASIC, PRIVATE_KEY_JWT}
    for summary in cold["methods"].values():
        for peer in (JWTMINT, AUTHLIB):
            cell = summary[peer]
            assert cell["checked"] is True
            assert len(cell["rounds"]) == TINY.cold_rounds
            for one in cell["rounds"]:
                assert one["tokens"] == one["distinct"] == one["live"] == CLIENTS
                assert one["requests"] == one["issued"] == CLIENTS
                assert one["wall_s"] > 0 and one["client_cpu_s"] >= 0
            assert cell["tokens_per_s"]["median"] > 0
            assert cell["client_cpu_us"]["median"] >= 0
            assert cell["tokens_per_s"]["iqr"] is None  # two rounds: too few for quartiles
        assert summary["ratios"]["tokens_per_s_jwtmint_over_authlib"] > 0


def test_results_are_json_and_name_versions_and_machine(results: dict[str, Any]) -> None:
    assert json.loads(json.dumps(results)) == results
    env = results["environment"]
    assert env["Authlib"] == version("Authlib") and env["httpx"] == version("httpx")
    assert env["cpu"] and env["python"] and env["jwtmint"]
    assert results["server"]["clients_registered"] == 2 + CLIENTS * len(METHODS)


def test_report_has_both_tables(results: dict[str, Any]) -> None:
    text = format_tokens_report(results)
    for expected in (
        "1. cached token",
        "tokens.get_token(name)",
        "client.ensure_active_token(token)",
        "authlib / jwtmint",
        "2. cold fetches",
        "client_secret_basic",
        "private_key_jwt, ES256",
        "jwtmint TokenManager",
        "authlib AsyncOAuth2Client",
        f"Authlib {version('Authlib')} on httpx {version('httpx')}",
        *(f"{loop} µs" for loop in LOOPS),
    ):
        assert expected in text, expected


def test_cli_quick_prints_both_tables(capsys: pytest.CaptureFixture[str]) -> None:
    assert TOKENS.quick.clients == 1000
    assert main(["bench", "tokens", "--quick"]) == 0
    out, err = capsys.readouterr()
    assert "1. cached token" in out and "2. cold fetches: 1000 named clients" in out
    assert "jwtmint  tokens.get_token(name)" in out
    assert "authlib  client.ensure_active_token(token)" in out
    assert "every round 1000 distinct tokens" in out
    assert "the endpoint counted 0 requests from either client while timed" in out
    assert "cold fetches, private_key_jwt" in err  # progress goes to stderr


def test_a_cache_that_never_hits_is_refused(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # every get_token now asks the endpoint: the harness must not report that as a cache hit
    monkeypatch.setattr(MemoryTokenCache, "peek", lambda self, key: None)
    broken = Settings(
        rounds=1, batch_seconds=0.001, clients=1, methods=(BASIC,), loops=("asyncio",)
    )
    with pytest.raises(MeasurementError, match="left the cache"):
        run(broken)
    assert bench_tokens.main(quick=False, as_json=True, settings=broken) == 1
    assert "measurement check failed" in capsys.readouterr().err


def _round(**changes: int) -> ColdRound:
    fields = dict(tokens=10, distinct=10, requests=10, issued=10, live=10)
    fields.update(changes)
    return ColdRound(wall_s=1.0, client_cpu_s=0.5, server_cpu_s=0.5, **fields)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"tokens": 9, "distinct": 9, "live": 9}, "9 tokens for 10 clients"),
        ({"distinct": 9}, "only 9 of 10 tokens are distinct"),
        ({"requests": 11}, "counted 11 requests"),
        ({"issued": 9}, "issued 9 tokens"),
        ({"live": 8}, "8 of 10 tokens are live"),
    ],
)
def test_cold_round_checks(changes: dict[str, int], message: str) -> None:
    check_cold_round(10, _round())
    with pytest.raises(MeasurementError, match=message):
        check_cold_round(10, _round(**changes))


def test_an_endpoint_process_that_dies_is_reported() -> None:
    # an empty client_id is refused by register_client: the child exits before it listens
    endpoint = EndpointProcess([{"client_id": "", "secret": "x"}], loop="asyncio")
    with pytest.raises(MeasurementError, match="ended unexpectedly"), endpoint:
        pass


@pytest.mark.parametrize(
    "bad",
    [
        {"methods": ("client_secret_post",)},
        {"loops": ("trio",)},
        {"clients": 0},
        {"batch_seconds": 0.0},
    ],
)
def test_settings_are_checked(bad: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        Settings(**bad)


def test_authlib_on_one_shared_transport() -> None:
    shared = Settings(
        rounds=1,
        batch_seconds=0.001,
        clients=20,
        cold_rounds=1,
        methods=(PRIVATE_KEY_JWT,),
        loops=("asyncio",),
        authlib_shared_pool=True,
    )
    cold = run(shared)["cold"]
    assert "one shared httpx transport" in cold["authlib_pool"]
    assert cold["event_loop"] == "asyncio"
    assert cold["methods"][PRIVATE_KEY_JWT][AUTHLIB]["checked"] is True
