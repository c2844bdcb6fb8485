"""`jwtmint demo` runs end to end: its summary adds up, every auth method is seen, a verdict."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys

import pytest

from jwtmint.bench.demo import run_demo
from jwtmint.bench.token_demo import KINDS, FleetSettings, stepped
from jwtmint.testing import TokenEndpoint

SMALL = FleetSettings(clients_per_kind=1, stampede=3, calls=300, workers=4, seed=7)


def test_quick_demo_adds_up_and_says_ok(capsys: pytest.CaptureFixture[str]) -> None:
    assert run_demo(["HS256", "ES256"], quick=True, as_json=True) == 0
    result = json.loads(capsys.readouterr().out)
    fleet, verdict = result["fleet"], result["verdict"]
    assert verdict["ok"] and verdict["problems"] == []
    assert verdict["line"].startswith("verdict: OK — ")
    sums = fleet["sums"]
    # calls = hits + requests started by callers + joins
    started_by_callers = sums["requests"] - sums["renewals"]
    assert sums["calls"] == sums["hits"] + started_by_callers + sums["joins"]
    assert sums["calls"] == sums["hits"] + sums["misses"]
    assert sums["calls"] == fleet["settings"]["calls"] + fleet["clients"] * 4  # the stampede
    assert sums["joins"] >= fleet["clients"] * 3 and sums["hits"] > sums["misses"]
    # every kind of client authenticated at the endpoint, and every token it returned checked
    assert fleet["endpoint"]["kinds"] == sorted(kind for kind, _, _ in KINDS)
    assert fleet["endpoint"]["issued"] == fleet["endpoint"]["recorded"] == sums["requests"]
    tokens = fleet["tokens"]
    assert tokens["verified"] == tokens["distinct"] > 0 and tokens["fetched"] == sums["requests"]
    # a renewal finishing as the load ends may fetch a token nobody has asked for yet
    assert tokens["fetched"] - sums["renewals"] <= tokens["distinct"] <= tokens["fetched"]
    assert f"all {tokens['verified']:,} tokens verified" in verdict["line"]
    assert fleet["endpoint"]["assertions"] == fleet["endpoint"]["distinct_jti"] > 0
    assert set(result["results"]) == {"HS256", "ES256"}
    latency = fleet["latency"]
    assert latency["cached"]["calls"] + latency["uncached"]["calls"] == fleet["settings"]["calls"]


def test_the_command_prints_a_summary_and_the_verdict_last() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "jwtmint", "demo", "--quick", "--algorithms", "EdDSA"],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "TERM": "dumb"},
        check=False,
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.strip().splitlines()
    assert lines[-1].startswith("verdict: OK — ")
    assert any(line.strip().startswith("calls ") and "hits" in line for line in lines)
    assert any("single-flight joins" in line for line in lines)
    for _kind, method, algorithm in KINDS:
        label = f"{method} {algorithm}" if algorithm else method
        assert any(line.strip().startswith(label + " ") for line in lines), label
    # the live line and the bar: plain lines on a pipe, never a carriage return
    assert "minting: done" in done.stderr and "\r" not in done.stderr


def test_the_verdict_fails_when_the_endpoint_refuses_a_client(
    capsys: pytest.CaptureFixture[str],
) -> None:
    def register_again(endpoint: TokenEndpoint) -> None:
        # no mock: the real endpoint now knows another secret than the manager's client
        endpoint.register_client("basic-000", secret="not the one the manager sends")

    code = run_demo(["HS256"], quick=True, as_json=True, fleet=SMALL, after_setup=register_again)
    result = json.loads(capsys.readouterr().out)
    assert code == 1
    line = result["verdict"]["line"]
    assert line.startswith("verdict: FAILED — ") and "invalid_client" in line
    # the counters add up all the same: a refused call is a miss
    sums = result["fleet"]["sums"]
    assert sums["calls"] == sums["hits"] + sums["misses"]


async def test_stepped_tells_a_call_that_waited_from_one_that_did_not() -> None:
    async def at_once() -> int:
        return 1

    async def later() -> int:
        await asyncio.sleep(0)
        return 2

    async def refused() -> int:
        await asyncio.sleep(0)
        raise LookupError("no")

    assert await stepped(at_once()) == (1, False)
    assert await stepped(later()) == (2, True)
    with pytest.raises(LookupError):
        await stepped(refused())
    waiting = asyncio.ensure_future(stepped(asyncio.sleep(10)))
    await asyncio.sleep(0)
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
