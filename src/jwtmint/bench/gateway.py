"""``jwtmint bench gateway``: the job jwtmint exists for, an API gateway adding tokens, under load.

Three kinds of process on 127.0.0.1, each with its own CPU time:

* the **authorization server and API** (:class:`~jwtmint.testing.TokenEndpoint`
  in :class:`~jwtmint.bench.token_endpoint.EndpointProcess`): it issues the
  tokens and answers ``/api/...`` only for a live token (and, for DPoP, a
  valid proof), saying whose token it was: every forwarded request is checked
  by code independent of the gateway's;
* the **gateway** (:func:`jwtmint.bench.gateway_roles.gateway`), one per run:
  an aiohttp server forwarding ``GET /c/{client}/...`` to the API through one
  pooled aiohttp session, authenticated one of the :data:`VARIANTS` ways for
  one of many named clients;
* the **load generator** (:func:`jwtmint.bench.gateway_roles.load`): a fixed
  number of requests in flight, clients in turn, every answer checked.

Runs are interleaved (each round runs every variant, in a rotated order) and
the report gives medians over rounds, the gateway's CPU per forwarded
request (the figure that scales: on N cores a gateway process serves about
1/that requests a second), and each variant against the fixed header.
"""

from __future__ import annotations

import dataclasses
import json
import select
import statistics
import subprocess
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import IO, Any

from .environment import environment
from .gateway_roles import AUTHLIB_RENEWING, FIXED, RENEWING, VARIANTS
from .report import machine_line
from .settings import BASIC
from .token_endpoint import EndpointProcess, MeasurementError, event_loops
from .token_peers import authlib_modules, make_clients

__all__ = ["GatewayRun", "main", "measure_gateway"]

_ROLE = "import sys; from jwtmint.bench.gateway_roles import {0}; {0}(sys.argv[1])"
#: the renewal variants' token lifetime: renewals happen many times within a run
SHORT_LIFETIME = 5
#: seconds any process of a run may take to say its next line (a phase is seconds long)
_ANSWER_TIMEOUT = 120.0


@dataclass(frozen=True)
class GatewaySettings:
    rounds: int
    clients: int
    concurrency: int
    warmup_s: float
    duration_s: float
    #: requests a second of the paced phase, well under what the slowest variant forwards
    paced_rate: float = 1000.0


FULL = GatewaySettings(
    rounds=3, clients=100, concurrency=32, warmup_s=2.0, duration_s=5.0, paced_rate=1000.0
)
QUICK = GatewaySettings(
    rounds=1, clients=20, concurrency=16, warmup_s=0.5, duration_s=1.5, paced_rate=500.0
)


@dataclass(frozen=True)
class GatewayRun:
    """One variant's run: throughput and latency seen by the load generator, CPU per request."""

    variant: str
    rps: float
    p50_us: float
    p99_us: float
    gateway_cpu_us: float
    endpoint_cpu_us: float
    load_cpu_us: float
    token_requests: int
    #: forwarded requests that waited for a token request (target for renewals: none)
    waited: int
    #: latency at ``paced_rate`` requests a second (no queue of the load's own making)
    paced_p50_us: float = 0.0
    paced_p99_us: float = 0.0
    #: the gateway's CPU per request at that rate: the same load for every variant
    paced_gateway_cpu_us: float = 0.0


class _Child:
    """A gateway or load-generator process, talking one JSON line at a time."""

    def __init__(self, role: str, config: dict[str, Any]) -> None:
        self._process = subprocess.Popen(
            [sys.executable, "-c", _ROLE.format(role), json.dumps(config)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
        )

    def _pipes(self) -> tuple[IO[bytes], IO[bytes]]:
        stdin, stdout = self._process.stdin, self._process.stdout
        assert stdin is not None and stdout is not None
        return stdin, stdout

    def read(self) -> dict[str, Any]:
        stdout = self._pipes()[1]
        ready, _, _ = select.select([stdout], [], [], _ANSWER_TIMEOUT)
        if not ready:
            self._process.kill()
            raise MeasurementError(
                f"a gateway benchmark process did not answer within {_ANSWER_TIMEOUT:.0f} s"
            )
        line = stdout.readline()
        if not line:
            raise MeasurementError("a gateway benchmark process ended unexpectedly")
        answer: dict[str, Any] = json.loads(line)
        return answer

    def sample(self) -> dict[str, Any]:
        """The gateway's CPU seconds so far (``cpu_s``), and the forwarded requests that
        waited for a token (``waits``)."""
        stdin = self._pipes()[0]
        stdin.write(b"cpu\n")
        stdin.flush()
        return self.read()

    def close(self) -> None:
        stdin, stdout = self._pipes()
        if not stdin.closed:
            stdin.close()
        try:
            self._process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
        stdout.close()


def _load(
    url: str,
    secrets: dict[str, str],
    s: GatewaySettings,
    variant: str,
    loop: str,
    rate: float | None,
) -> _Child:
    return _Child(
        "load",
        {
            "url": url,
            "clients": list(secrets),
            "concurrency": s.concurrency,
            "warmup_s": s.warmup_s,
            "duration_s": s.duration_s,
            "fixed_client": next(iter(secrets)) if variant == FIXED else None,
            "loop": loop,
            "rate": rate,
        },
    )  # fmt: skip


def _checked(variant: str, result: dict[str, Any]) -> dict[str, Any]:
    if result["failures"] or not result["requests"]:
        raise MeasurementError(
            f"{variant}: {result['failures']} of the answers were wrong or refused, the first: "
            f"{result['first_failure']}"
        )
    return result


def _one_run(
    variant: str, endpoint: EndpointProcess, secrets: dict[str, str], s: GatewaySettings, loop: str
) -> GatewayRun:
    """One gateway process: flat out (throughput, CPU per request), then paced (latency)."""
    gateway = _Child(
        "gateway",
        {
            "variant": variant,
            "upstream": endpoint.url,
            "token_url": endpoint.token_url,
            "clients": secrets,
            "connections": s.concurrency,
            "loop": loop,
        },
    )
    try:
        url = gateway.read()["url"]
        ready = gateway.sample()  # every client's first token fetched: none is waited for
        load = _load(url, secrets, s, variant, loop, None)
        try:
            load.read()  # measuring from now
            gateway_before, endpoint_before = gateway.sample(), endpoint.stats()
            load.read()  # measured
            gateway_after, endpoint_after = gateway.sample(), endpoint.stats()
            result = _checked(variant, load.read())
        finally:
            load.close()
        paced = _load(url, secrets, s, variant, loop, s.paced_rate)
        try:
            paced.read()  # measuring from now
            calm_before = gateway.sample()
            paced.read()  # measured
            calm_after = gateway.sample()
            calm = _checked(variant, paced.read())
        finally:
            paced.close()
    finally:
        gateway.close()
    forwarded = result["requests"]
    gateway_cpu = gateway_after["cpu_s"] - gateway_before["cpu_s"]
    return GatewayRun(
        variant=variant,
        rps=result["rps"],
        p50_us=result["p50_us"],
        p99_us=result["p99_us"],
        gateway_cpu_us=gateway_cpu / forwarded * 1e6,
        endpoint_cpu_us=(endpoint_after.cpu_s - endpoint_before.cpu_s) / forwarded * 1e6,
        load_cpu_us=result["cpu_s"] / forwarded * 1e6,
        token_requests=endpoint_after.requests - endpoint_before.requests,
        # every forwarded request of the run, warm-ups included
        waited=calm_after["waits"] - ready["waits"],
        paced_p50_us=calm["p50_us"],
        paced_p99_us=calm["p99_us"],
        paced_gateway_cpu_us=(calm_after["cpu_s"] - calm_before["cpu_s"]) / calm["requests"] * 1e6,
    )


def measure_gateway(
    settings: GatewaySettings, variants: tuple[str, ...] = VARIANTS, *, loop: str | None = None
) -> dict[str, list[GatewayRun]]:
    """Every variant's runs, ``settings.rounds`` each, interleaved round by round."""
    if any(v in (AUTHLIB_RENEWING, "authlib") for v in variants):
        authlib_modules()  # fail early when the peer is missing
    loop = loop or event_loops(None)[-1]
    specs = make_clients(BASIC, settings.clients)
    registrations = [spec.registration() for spec in specs]
    secrets = {spec.client_id: str(spec.secret) for spec in specs}
    runs: dict[str, list[GatewayRun]] = {variant: [] for variant in variants}
    with (
        EndpointProcess(registrations, loop=loop) as hour,
        EndpointProcess(registrations, loop=loop, token_lifetime=SHORT_LIFETIME) as short,
    ):
        for round_number in range(settings.rounds):
            shift = round_number % len(variants)
            for variant in variants[shift:] + variants[:shift]:
                endpoint = short if variant in (RENEWING, AUTHLIB_RENEWING) else hour
                runs[variant].append(_one_run(variant, endpoint, secrets, settings, loop))
    return runs


def _median(runs: list[GatewayRun], field: str) -> float:
    return float(statistics.median(getattr(run, field) for run in runs))


def summarise(runs: dict[str, list[GatewayRun]], settings: GatewaySettings) -> dict[str, Any]:
    """Medians per variant, and each against the fixed header (``vs_fixed``: rps and p99)."""
    fields = (
        "rps", "p50_us", "p99_us", "gateway_cpu_us", "endpoint_cpu_us", "load_cpu_us",
        "paced_p50_us", "paced_p99_us", "paced_gateway_cpu_us",
    )  # fmt: skip
    table: dict[str, dict[str, float]] = {}
    for variant, variant_runs in runs.items():
        row = {field: round(_median(variant_runs, field), 1) for field in fields}
        row["token_requests"] = statistics.median(r.token_requests for r in variant_runs)
        row["waited"] = max(r.waited for r in variant_runs)
        table[variant] = row
    base = table.get(FIXED)
    if base is not None:
        for row in table.values():
            row["rps_vs_fixed"] = round(row["rps"] / base["rps"], 3)
            row["p99_vs_fixed"] = round(row["p99_us"] / base["p99_us"], 3)
            row["paced_p99_vs_fixed"] = round(row["paced_p99_us"] / base["paced_p99_us"], 3)
            row["paced_cpu_vs_fixed"] = round(
                row["paced_gateway_cpu_us"] / base["paced_gateway_cpu_us"], 3
            )
    return {
        "settings": asdict(settings),
        "variants": table,
        "runs": {v: [asdict(r) for r in rs] for v, rs in runs.items()},
        "environment": environment(),
    }


def _print_table(summary: dict[str, Any]) -> None:
    s = summary["settings"]
    print(
        f"gateway: {s['clients']} named clients; flat out: {s['concurrency']} requests in "
        f"flight, then paced: {s['paced_rate']:,.0f} requests/s; each {s['duration_s']:g} s "
        f"measured after {s['warmup_s']:g} s; medians of {s['rounds']} interleaved round(s)"
    )
    print(f"{'':<14}{'flat out':-^35}{'paced':-^24}{'CPU µs per request':-^30}{'token':>10}{'':>8}")
    print(
        f"{'variant':<14}{'req/s':>9}{'vs fixed':>9}{'p50 µs':>9}{'p99 µs':>8}"
        f"{'p50 µs':>8}{'p99 µs':>8}{'p99 vs':>8}{'gw CPU':>8}{'vs':>8}"
        f"{'gateway':>10}{'AS+API':>10}{'load':>10}"
        f"{'requests':>10}{'waited':>8}"
    )
    for variant, row in summary["variants"].items():
        print(
            f"{variant:<14}{row['rps']:>9,.0f}{row.get('rps_vs_fixed', 0):>9.3f}"
            f"{row['p50_us']:>9,.0f}{row['p99_us']:>8,.0f}"
            f"{row['paced_p50_us']:>8,.0f}{row['paced_p99_us']:>8,.0f}"
            f"{row.get('paced_p99_vs_fixed', 0):>8.3f}{row['paced_gateway_cpu_us']:>8.1f}"
            f"{row.get('paced_cpu_vs_fixed', 0):>8.3f}"
            f"{row['gateway_cpu_us']:>10.1f}{row['endpoint_cpu_us']:>10.1f}"
            f"{row['load_cpu_us']:>10.1f}{row['token_requests']:>10,.0f}{row['waited']:>8,}"
        )
    print(
        "CPU µs: CPU seconds of that process per forwarded request (the gateway's bounds what "
        "one gateway core forwards: 1e6 / it requests a second); flat out, three processes "
        "share the machine's cores, so its latencies are mostly queueing, and a process does "
        "less per request the busier it is; paced, every variant has the same load, and the "
        "latencies are the forwarding's own. token requests: what the endpoint received while "
        "measuring flat out; waited: forwarded requests that waited for a token request, "
        "of all the run's (the most in any round)"
    )
    print(machine_line(summary["environment"]))


def main(
    *, quick: bool, as_json: bool, repeats: int | None = None, plot: Path | None = None
) -> int:
    settings = QUICK if quick else FULL
    if repeats is not None:
        settings = dataclasses.replace(settings, rounds=repeats)
    summary = summarise(measure_gateway(settings), settings)
    if as_json:
        print(json.dumps(summary, indent=2))
    else:
        _print_table(summary)
    if plot is not None:
        from .gateway_plot import save_gateway_plot

        save_gateway_plot(summary, plot)
    return 0
