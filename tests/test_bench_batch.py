"""jwtmint.bench.batch (``jwtmint bench batch``): it runs, its figures are consistent, and it
leaves the process as it found it. No timing is asserted."""

from __future__ import annotations

import os

import pytest

from jwtmint._cli import main
from jwtmint.bench.batch import BatchSettings, measure_batches

TINY = BatchSettings(rounds=1, scale=0.01)


@pytest.mark.parametrize("algorithm", ["ES256", "EdDSA", "RS256"])
def test_figures_are_consistent(algorithm: str) -> None:
    affinity = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else None
    report = measure_batches(TINY, [algorithm])
    if affinity is not None:
        assert os.sched_getaffinity(0) == affinity  # pinned runs are undone
    r = report["results"][algorithm]
    assert r["n"] >= 8 and r["loop_ms"] > 0 and r["mint_many_ms"] > 0 and r["ceiling_ms"] > 0
    assert r["speedup"] == pytest.approx(r["loop_ms"] / r["mint_many_ms"])
    assert r["fraction_of_ceiling"] == pytest.approx(r["ceiling_ms"] / r["mint_many_ms"])
    # the model: no speed-up on one core, more with more cores, never past its limit
    predicted = [r["predicted"][k] for k in ("1", "2", "8", "32")]
    assert predicted[0] == pytest.approx(1.0)
    assert predicted == sorted(predicted) and predicted[-1] < r["limit"]
    assert r["serial_us"] > 0 and r["signature_us"] > 0


def test_cli_table(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", "batch", "--quick", "--repeats", "1"]) == 0
    out = capsys.readouterr().out
    assert "fraction" in out and "ideal cores" in out and "measured" in out and "CPU:" in out
