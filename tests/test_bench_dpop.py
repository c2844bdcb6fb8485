"""jwtmint.bench.dpop (``jwtmint bench dpop``): it runs, figures add up, checks bite.

No timing is asserted: figures only have to exist and be positive. What is
under test is the measurement: every contender's proofs verified by PyJWT,
the precomputed contender's timed batches all signed from pairs, the steady
run's pairs made equal to the pairs used, and a run whose proofs are wrong
refused.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from jwtmint import _kernels
from jwtmint._cli import main
from jwtmint.bench import dpop
from jwtmint.bench.dpop import ALGORITHMS, TARGETS, run
from jwtmint.bench.dpop_report import format_dpop_report
from jwtmint.bench.settings import DPoPSettings
from jwtmint.bench.token_endpoint import MeasurementError

pytest.importorskip("jwt")

TINY = DPoPSettings(rounds=4, batch=20, rate=2000.0, steady_calls=40)
PRECOMPUTING = _kernels.kernel.IMPLEMENTATION == "c"


@pytest.fixture(scope="module")
def results() -> dict[str, Any]:
    return run(TINY)


def test_every_algorithm_has_checked_figures(results: dict[str, Any]) -> None:
    assert results["tool"] == "jwtmint bench dpop"
    assert list(results["results"]) == list(ALGORITHMS)
    assert results["targets"] == TARGETS
    es256 = results["results"]["ES256"]["contenders"]
    names = ["jwtmint", "jwtmint-precomputed", "pyjwt", "floor"] if PRECOMPUTING else None
    if names is not None:
        assert list(es256) == names
    contenders = sum(len(r["contenders"]) for r in results["results"].values())
    assert results["proofs_checked"] == 2 * contenders  # before and after timing
    for result in results["results"].values():
        assert result["message_bytes"] > 300
        for cell in result["contenders"].values():
            assert cell["median_us"] > 0 and cell["over_floor"] > 0
            steady = cell["steady"]
            assert 0 < steady["p50_us"] <= steady["p99_us"] <= steady["max_us"]
            assert steady["cpu_us_per_call"] >= 0


@pytest.mark.skipif(not PRECOMPUTING, reason="precomputation needs the C kernel")
def test_the_steady_run_counts_the_pairs_it_used(results: dict[str, Any]) -> None:
    store = results["results"]["ES256"]["steady_store"]
    # the paced run and the CPU run, each check_all() call once more, all signed
    used = store["precomputed"] + store["direct"]
    assert used == 2 * TINY.steady_calls
    # full before and after the CPU run: the pairs it paid for are the pairs it used
    pairs = results["results"]["ES256"]["cpu_run_pairs"]
    assert pairs["precomputed"] + pairs["direct"] == TINY.steady_calls
    assert pairs["made"] - pairs["discarded"] == pairs["precomputed"]


def test_the_report_names_the_machine_and_the_targets(results: dict[str, Any]) -> None:
    text = format_dpop_report(results)
    assert "CPU:" in text and "PyJWT" in text and "floor" in text
    assert ("targets (issue #11), ES256" in text) is PRECOMPUTING
    json.dumps(results)  # plain data


def test_a_wrong_proof_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(dpop, "URL", "https://api.example.com/other")
    real = dpop._Algorithm.__init__

    def wrong_url(self: Any, *args: Any, **kwargs: Any) -> None:
        real(self, *args, **kwargs)
        monkeypatch.setattr(dpop, "URL", "https://api.example.com/expected")

    monkeypatch.setattr(dpop._Algorithm, "__init__", wrong_url)
    with pytest.raises(MeasurementError, match="differ"):
        run(TINY, algorithms=("EdDSA",))


def test_the_command_line_runs_it(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", "dpop", "--quick", "--json", "--repeats", "2"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["settings"]["quick"] is True and printed["settings"]["rounds"] == 2
