"""jwtmint.bench.gateway (``jwtmint bench gateway``): it runs, every answer is checked, checks bite.

No timing is asserted. What is under test is the measurement: every variant
forwards through a real gateway process to the real API of the token
endpoint process, which answers only for a live token (and a valid DPoP
proof) and says whose token it was; the load generator checks that on every
answer, so a gateway that sent one client's token for another is caught.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from jwtmint.bench.gateway import GatewaySettings, _Child, _one_run, measure_gateway, summarise
from jwtmint.bench.gateway_plot import save_gateway_plot
from jwtmint.bench.gateway_roles import (
    AUTHLIB_RENEWING,
    CACHED,
    DPOP,
    FIXED,
    RENEWING,
    VARIANTS,
)
from jwtmint.bench.settings import BASIC
from jwtmint.bench.token_endpoint import EndpointProcess, MeasurementError
from jwtmint.bench.token_peers import make_clients

TINY = GatewaySettings(
    rounds=1, clients=3, concurrency=4, warmup_s=0.2, duration_s=0.4, paced_rate=200.0
)


def test_every_variant_forwards_checked_requests() -> None:
    pytest.importorskip("authlib")
    runs = measure_gateway(TINY, loop="asyncio")
    summary = summarise(runs, TINY)
    assert list(summary["variants"]) == list(VARIANTS)
    for variant, row in summary["variants"].items():
        assert row["rps"] > 0 and row["p99_us"] >= row["p50_us"] > 0, variant
        assert row["gateway_cpu_us"] > 0 and row["endpoint_cpu_us"] > 0, variant
        assert row["paced_p99_us"] >= row["paced_p50_us"] > 0, variant
    assert summary["variants"][FIXED]["rps_vs_fixed"] == 1.0
    # the API verified a DPoP proof per request: that costs the API far more than a lookup
    variants = summary["variants"]
    assert variants[DPOP]["endpoint_cpu_us"] > variants[CACHED]["endpoint_cpu_us"]


def test_a_token_sent_for_the_wrong_client_is_caught() -> None:
    specs = make_clients(BASIC, 2)
    secrets = {spec.client_id: str(spec.secret) for spec in specs}
    with EndpointProcess([s.registration() for s in specs], loop="asyncio") as endpoint:
        gateway = _Child(
            "gateway",
            {
                "variant": FIXED,  # the first client's token on every request
                "upstream": endpoint.url,
                "token_url": endpoint.token_url,
                "clients": secrets,
                "connections": 2,
                "loop": "asyncio",
            },
        )
        try:
            url = gateway.read()["url"]
            load = _Child(
                "load",
                {
                    "url": url,
                    "clients": list(secrets),
                    "concurrency": 2,
                    "warmup_s": 0.1,
                    "duration_s": 0.3,
                    "fixed_client": None,  # expects each path's own client
                    "loop": "asyncio",
                },
            )
            try:
                load.read(), load.read()
                result = load.read()
            finally:
                load.close()
        finally:
            gateway.close()
    assert result["failures"] > 0 and '"client_id"' in result["first_failure"]


def test_a_gateway_that_cannot_get_tokens_fails_the_run() -> None:
    specs = make_clients(BASIC, 1)
    with EndpointProcess([s.registration() for s in specs], loop="asyncio") as endpoint:
        wrong = {specs[0].client_id: "not-the-secret-" * 3}
        with pytest.raises(MeasurementError, match="ended unexpectedly"):
            _one_run(CACHED, endpoint, wrong, TINY, "asyncio")


def test_the_plot_of_a_summary_is_a_png(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    row = {
        "rps": 7000.0, "p50_us": 4000.0, "p99_us": 9000.0, "gateway_cpu_us": 120.0,
        "endpoint_cpu_us": 60.0, "load_cpu_us": 70.0, "paced_p50_us": 800.0,
        "paced_p99_us": 2000.0, "paced_gateway_cpu_us": 200.0, "token_requests": 0, "waited": 0,
    }  # fmt: skip
    summary = {
        "settings": {"clients": 3, "rounds": 1, "paced_rate": 1000.0},
        "variants": {variant: dict(row) for variant in VARIANTS},
        "environment": {"cpu": "a CPU", "cpu_count": 2, "cpu_usable": 2, "platform": "Linux"},
    }
    path = tmp_path / "gateway.png"
    save_gateway_plot(summary, path)
    data = path.read_bytes()
    assert data.startswith(b"\x89PNG\r\n\x1a\n") and 10_000 < len(data) < 300_000


def test_renewals_under_load_keep_jwtmint_from_waiting_and_not_authlib() -> None:
    pytest.importorskip("authlib")
    # 5-second tokens (the shortest jwtmint takes): a run of ~9 s outlives each client's
    # first token, so every client renews (jwtmint: in the background, at half its life;
    # authlib: when a request finds it expired, and that request waits)
    settings = GatewaySettings(
        rounds=1, clients=3, concurrency=4, warmup_s=2.0, duration_s=2.5, paced_rate=100.0
    )
    runs = measure_gateway(settings, (RENEWING, AUTHLIB_RENEWING), loop="asyncio")
    assert runs[RENEWING][0].waited == 0
    assert runs[AUTHLIB_RENEWING][0].waited > 0
