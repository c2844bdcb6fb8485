"""`jwtmint demo`'s token-manager part runs end to end and shows what it claims."""

from __future__ import annotations

import pytest

from jwtmint.bench.token_demo import run_token_demo


def test_token_demo(capsys: pytest.CaptureFixture[str]) -> None:
    result = run_token_demo(quick=True)
    assert result["methods"] == {
        "invoice": "private_key_jwt",
        "billing": "client_secret_jwt",
        "reports": "client_secret_basic",
    }
    assert (result["crowd_requests"], result["crowd_distinct"]) == (1, 1)
    assert result["api"][0] == 200 and result["api"][1]["client_id"] == "invoice"
    assert result["requests"] == 4
    out = capsys.readouterr().out
    assert "single-flight" in out and "cached get_token" in out
