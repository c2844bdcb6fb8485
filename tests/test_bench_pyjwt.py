"""jwtmint.bench.pyjwt_patch (``jwtmint bench pyjwt``): it runs, figures add up, checks bite.

No timing is asserted: figures only have to exist and be positive. What is
under test is the measurement: every contender's tokens verified, the same
bytes where the algorithm is deterministic, every patched call on the fast
path and none on the fallback, PyJWT unpatched afterwards, and a run whose
patch falls back, or whose tokens differ, refused.
"""

from __future__ import annotations

import json
import sys
from typing import Any

import pytest

import jwtmint
from jwtmint import _pyjwt_patch
from jwtmint._cli import main
from jwtmint.bench import pyjwt_patch
from jwtmint.bench.pyjwt_patch import ALGORITHMS, TARGETS, run
from jwtmint.bench.report import format_pyjwt_report
from jwtmint.bench.settings import Settings
from jwtmint.bench.timing import Timing
from jwtmint.bench.token_endpoint import MeasurementError
from jwtmint.errors import ConfigurationError

jwt = pytest.importorskip("jwt")

#: a few seconds at most; 4 rounds so that IQRs are computed
TINY = Settings(rounds=4, batch_seconds=0.002)
FORMS = {"RS256": ["pem", "object"], "ES256": ["pem", "object"], "EdDSA": ["pem", "object"]}
FORMS["HS256"] = ["secret"]


@pytest.fixture(scope="module")
def results() -> dict[str, Any]:
    return run(TINY)


def test_every_algorithm_and_key_form_has_checked_figures(results: dict[str, Any]) -> None:
    assert results["tool"] == "jwtmint bench pyjwt"
    assert list(results["results"]) == list(ALGORITHMS) == results["settings"]["algorithms"]
    assert results["settings"]["rounds"] == TINY.rounds
    assert results["targets"] == TARGETS
    assert results["environment"]["pyjwt"] and "pynacl" in results["environment"]
    # 3 contenders x 7 (algorithm, form) cells, each checked before and after timing
    assert results["tokens_checked"] == 3 * 7 * 2
    counters = results["patch_counters"]
    assert counters["fallback"] == 0 and counters["fast"] > 0
    assert counters["class_checks"] > 0  # at least once, on the first call
    if results["environment"]["implementation"] == "c" and sys.version_info >= (3, 11):
        # PyJWT's classes do not change while timed: the extension does not compare them
        assert all(result["timed_class_checks"] == 0 for result in results["results"].values())
    for algorithm, result in results["results"].items():
        assert result["message_bytes"] > 200
        assert "floor" in result["floors"]
        assert list(result["forms"]) == FORMS[algorithm]
        assert result["timed_patched_calls"] >= TINY.rounds * len(FORMS[algorithm])
        for timing in result["floors"].values():
            assert timing["median_us"] > 0 and timing["rounds"] == TINY.rounds
        for figures in result["forms"].values():
            assert list(figures["contenders"]) == ["pyjwt", "patched", "jwtmint"]
            for timing in figures["contenders"].values():
                assert timing["median_us"] > 0 and timing["iqr_us"] is not None
                assert timing["rounds"] == len(timing["samples_us"]) == TINY.rounds
            assert set(figures["ratios"]) == {"patched_over_jwtmint", "speedup", "jwtmint_speedup"}
            assert set(figures["ceilings"]) == set(result["floors"])
            assert figures["ceiling"] in figures["ceilings"].values()
            expected = {"patched_over_jwtmint"}
            expected |= {"hs256_speedup"} if algorithm == "HS256" else set()
            expected |= {"ceiling_fraction"} if algorithm in ("ES256", "EdDSA") else set()
            assert set(figures["meets"]) == expected
            assert all(isinstance(met, bool) for met in figures["meets"].values())


def test_the_ceiling_uses_the_faster_floor(results: dict[str, Any]) -> None:
    for result in results["results"].values():
        fastest = min(result["floors"], key=lambda name: result["floors"][name]["median_us"])
        for figures in result["forms"].values():
            ceiling = figures["ceiling"]
            assert ceiling["floor"] == fastest
            unpatched = figures["contenders"]["pyjwt"]["median_us"]
            patched = figures["contenders"]["patched"]["median_us"]
            assert ceiling["achieved_us"] == pytest.approx(unpatched - patched, abs=1e-2)
            assert ceiling["possible_us"] == pytest.approx(
                unpatched - result["floors"][fastest]["median_us"], abs=1e-2
            )


def test_pyjwt_is_unpatched_afterwards(results: dict[str, Any]) -> None:
    assert _pyjwt_patch._state is None
    assert jwt.encode.__func__ is jwt.api_jwt.PyJWT.encode
    assert not hasattr(jwt.api_jwt.PyJWT.encode, "__wrapped__")


def test_the_report_shows_every_table_and_target(results: dict[str, Any]) -> None:
    text = format_pyjwt_report(json.loads(json.dumps(results)))
    for algorithm in ALGORITHMS:
        assert f"{algorithm} (signing input" in text
    assert "targets (issue #14)" in text
    assert "floor: cryptography sign()" in text
    assert "PEM text (str)" in text and "key object" in text and "str secret" in text
    assert text.count("achieved") >= 4  # ES256 and EdDSA, both key forms
    assert "fallback 0" in text


def test_figures_from_known_medians() -> None:
    def timing(us: float) -> Timing:
        return Timing(1, [us / 1e6] * 4)

    timings = {
        "floor": timing(30.0),
        "floor-jwtmint": timing(20.0),
        "pem/pyjwt": timing(60.0),
        "pem/patched": timing(27.0),
        "pem/jwtmint": timing(25.0),
    }
    figures = pyjwt_patch._figures("ES256", "pem", timings, ["floor", "floor-jwtmint"])
    assert figures["ceiling"]["floor"] == "floor-jwtmint"
    assert figures["ceiling"]["possible_us"] == pytest.approx(40.0)
    assert figures["ceiling"]["achieved_us"] == pytest.approx(33.0)
    assert figures["ceiling"]["fraction"] == pytest.approx(0.825)
    assert figures["ceilings"]["floor"]["fraction"] == pytest.approx(1.1)
    assert figures["ratios"]["patched_over_jwtmint"] == pytest.approx(1.08)
    assert figures["meets"] == {"patched_over_jwtmint": True, "ceiling_fraction": True}


def test_cli_json(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["bench", "pyjwt", "--quick", "--json", "--repeats", "2", "--batch-ms", "1"]
    assert main(argv) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["settings"]["quick"] is True and data["settings"]["rounds"] == 2
    assert data["patch_counters"]["fallback"] == 0


def test_refused_while_pyjwt_is_patched(capsys: pytest.CaptureFixture[str]) -> None:
    _pyjwt_patch.patch_pyjwt()
    try:
        with pytest.raises(ConfigurationError, match="patched already"):
            run(TINY, algorithms=("HS256",))
        assert main(["bench", "pyjwt", "--repeats", "1", "--batch-ms", "1"]) == 1
        assert "cannot run: PyJWT is patched already" in capsys.readouterr().err
    finally:
        _pyjwt_patch.unpatch_pyjwt()


def test_a_patch_that_falls_back_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: Any) -> str:
        raise jwtmint.InvalidKeyError("refused, so that PyJWT's own code signs")

    monkeypatch.setattr(_pyjwt_patch, "sign_jws", refuse)
    with pytest.raises(MeasurementError, match=r"patched: \(fast, fallback\) moved by \(0, 1\)"):
        run(TINY, algorithms=("HS256",))
    assert _pyjwt_patch._state is None


def test_tokens_that_differ_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    def unsorted(payload: Any, key: Any, algorithm: str, headers: Any) -> str:
        # the same header and claims, other bytes: the header's members in insertion order
        return jwtmint.encode(payload, key, algorithm, headers, sort_headers=False)

    monkeypatch.setattr(pyjwt_patch, "jwtmint_encode", unsorted)
    with pytest.raises(MeasurementError, match="not the same bytes"):
        run(TINY, algorithms=("HS256",))
    assert _pyjwt_patch._state is None
