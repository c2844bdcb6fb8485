"""What ``jwtmint demo``'s token-manager run shows: its figures, their sums, and every check.

:func:`fleet_result` turns a :class:`~jwtmint.bench.token_demo.FleetRun` into
figures (calls, hits, misses, requests, renewals, joins, latencies, per
authentication method) and a list of problems, empty when all of this holds:

- the manager's counters add up: ``calls = hits + misses`` and
  ``misses = (requests - renewals) + joins``, in total and for every client; its calls
  are the driver's own count, and its hits the calls that never waited (suspended), but
  for joins of a request that had just finished;
- the stampede joined: every caller but the first of each client waited on one request;
- the endpoint recorded one request per HTTP attempt, every one authenticated and
  answered with a token, each with the client's own method and algorithm and a jti
  never used before, and every kind of client among them;
- every distinct access token the manager returned was live in the endpoint's record
  when first returned, issued to the client and for the scope it was asked for, and
  the manager fetched those tokens (and, at most, renewals no caller had asked for yet).
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from .timing import percentile
from .token_demo import KINDS, FleetRun

__all__ = ["fleet_lines", "fleet_result", "percentile_us"]

_JWT_METHODS = ("private_key_jwt", "client_secret_jwt")


def percentile_us(values: list[int], fraction: float) -> float | None:
    """The ``fraction`` percentile (nearest rank) of nanosecond values, in µs."""
    return percentile(sorted(values), fraction) / 1000 if values else None


def _latency(values: list[int]) -> dict[str, Any]:
    return {
        "calls": len(values),
        "p50_us": percentile_us(values, 0.50),
        "p99_us": percentile_us(values, 0.99),
    }


def _sums(run: FleetRun, problems: list[str]) -> dict[str, int]:
    stats, tally = run.stats, run.tally
    sums = {
        "calls": tally.calls,
        "hits": stats.hits,
        "misses": stats.misses,
        "requests": stats.requests,
        "renewals": stats.background_renewals,
        "joins": stats.coalesced,
        "unsuspended": tally.unsuspended,
    }
    if stats.hits + stats.misses != tally.calls:
        problems.append(
            f"hits {stats.hits:,} + misses {stats.misses:,} != {tally.calls:,} calls made"
        )
    if stats.misses != stats.requests - stats.background_renewals + stats.coalesced:
        problems.append("misses != (requests - renewals) + joins")
    # a hit never waits; a join waits too, unless the request it joins has just finished
    # (its token ready, its done callback, which ends the flight, not run yet)
    if not stats.hits <= tally.unsuspended <= stats.hits + stats.coalesced:
        problems.append(
            f"the manager counted {stats.hits:,} hits, the driver saw {tally.unsuspended:,} "
            "calls that never waited"
        )
    for name, client in stats.clients.items():
        if client.misses != client.requests - client.renewals + client.joins:
            problems.append(f"client {name}: misses != (requests - renewals) + joins")
    least = len(run.clients) * (run.settings.stampede - 1)
    if stats.coalesced < least:
        problems.append(f"only {stats.coalesced:,} joins; the stampede alone makes {least:,}")
    if tally.errors or stats.failures:
        codes: Counter[str] = Counter()
        for client in stats.clients.values():
            codes.update(client.failures)
        first = f" (first: {tally.errors[0]})" if tally.errors else ""
        by_code = ", ".join(f"{code}: {n}" for code, n in codes.items())
        problems.append(
            f"{stats.failures:,} token requests failed ({by_code}), "
            f"{len(tally.errors):,} calls raised{first}"
        )
    return sums


def _records(run: FleetRun, problems: list[str]) -> dict[str, Any]:
    """Every request as the endpoint recorded it: authenticated the client's own way."""
    refused = Counter(r.outcome for r in run.records if r.outcome != "issued")
    if refused:
        answers = ", ".join(f"{outcome}: {n}" for outcome, n in refused.items())
        problems.append(f"the endpoint refused requests ({answers})")
    if len(run.records) != run.stats.attempts:
        problems.append(
            f"the endpoint recorded {len(run.records):,} requests, the manager sent "
            f"{run.stats.attempts:,}"
        )
    wrong: list[str] = []
    jtis: list[str] = []
    kinds: set[str] = set()
    for record in run.records:
        client = run.clients.get(record.client_id or "")
        if client is None or record.auth_method != client.auth_method:
            wrong.append(f"{record.client_id}: {record.auth_method}")
            continue
        if client.auth_method in _JWT_METHODS:
            alg = (record.assertion_header or {}).get("alg")
            if alg != client.algorithm or record.jti is None:
                wrong.append(f"{record.client_id}: alg {alg}, jti {record.jti}")
                continue
            jtis.append(record.jti)
        kinds.add(client.kind)
    if wrong:
        problems.append(f"{len(wrong)} requests not as configured, e.g. {wrong[0]}")
    if len(set(jtis)) != len(jtis):
        problems.append(f"{len(jtis) - len(set(jtis))} assertions reused a jti")
    missing = [kind for kind, _, _ in KINDS if kind not in kinds]
    if missing:
        problems.append(f"no request from the {', '.join(missing)} clients")
    return {
        "recorded": len(run.records),
        "issued": len(run.records) - sum(refused.values()),
        "assertions": len(jtis),
        "distinct_jti": len(set(jtis)),
        "kinds": sorted(kinds),
    }


def _tokens(run: FleetRun, problems: list[str]) -> dict[str, int]:
    """Every distinct token returned: live at the endpoint, for that client and scope."""
    unknown = wrong = 0
    for token, (client, scope) in run.tally.tokens.items():
        info = run.tally.token_info.get(token)
        if info is None:
            unknown += 1
        elif info["client_id"] != client or info["scope"] != scope:
            wrong += 1
    distinct = len(run.tally.tokens)
    if unknown:
        problems.append(f"{unknown:,} of {distinct:,} tokens unknown to the endpoint")
    if wrong:
        problems.append(f"{wrong:,} tokens issued to another client or scope than asked")
    if run.tally.crossed:
        problems.append(f"{run.tally.crossed} tokens returned for two different clients/scopes")
    # every token a caller's request fetched was returned; a background renewal's may
    # not have been asked for yet when the load ended
    fetched, renewals = run.stats.tokens, run.stats.background_renewals
    if not fetched - renewals <= distinct <= fetched:
        problems.append(f"{distinct:,} distinct tokens returned, {fetched:,} fetched")
    return {
        "distinct": distinct,
        "fetched": run.stats.tokens,
        "verified": distinct - unknown - wrong,
    }


def _by_method(run: FleetRun) -> dict[str, dict[str, int]]:
    rows: dict[str, dict[str, int]] = {}
    for kind, method, algorithm in KINDS:
        label = f"{method} {algorithm}" if algorithm else method
        row = dict.fromkeys(("clients", "calls", "hits", "requests", "joins"), 0)
        for name, client in run.clients.items():
            if client.kind != kind:
                continue
            stats = run.stats.clients[name]
            row["clients"] += 1
            row["calls"] += stats.hits + stats.misses
            row["hits"] += stats.hits
            row["requests"] += stats.requests
            row["joins"] += stats.joins
        rows[label] = row
    return rows


def fleet_result(run: FleetRun) -> dict[str, Any]:
    """The run's figures and checks (``problems`` is empty when everything holds)."""
    problems: list[str] = []
    return {
        "clients": len(run.clients),
        "settings": {
            "clients_per_kind": run.settings.clients_per_kind,
            "stampede": run.settings.stampede,
            "calls": run.settings.calls,
            "workers": run.settings.workers,
        },
        "event_loop": run.event_loop,
        "sums": _sums(run, problems),
        "endpoint": _records(run, problems),
        "tokens": _tokens(run, problems),
        "by_method": _by_method(run),
        "latency": {
            "cached": _latency(run.tally.cached_ns),
            "uncached": _latency(run.tally.uncached_ns),
            "stampede": _latency(run.tally.stampede_ns),
        },
        "seconds": {
            "keys": round(run.keys_s, 2),
            "stampede": round(run.stampede_s, 2),
            "load": round(run.load_s, 2),
        },
        "problems": problems,
    }


def _us(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:,.1f} µs" if value < 1000 else f"{value / 1000:,.1f} ms"


def _unasked(renewed: int) -> str:
    return f" ({renewed:,} renewed, not asked for yet)" if renewed > 0 else ""


def fleet_lines(result: dict[str, Any]) -> list[str]:
    """The token-manager part of the summary, as printed lines."""
    s, endpoint, tokens = result["sums"], result["endpoint"], result["tokens"]
    latency, seconds = result["latency"], result["seconds"]
    cached, uncached, stampede = latency["cached"], latency["uncached"], latency["stampede"]
    lines = [
        f"  {'auth method':<26}{'clients':>8}{'calls':>9}{'hits':>9}{'requests':>9}{'joins':>7}",
        *(
            f"  {label:<26}{row['clients']:>8,}{row['calls']:>9,}{row['hits']:>9,}"
            f"{row['requests']:>9,}{row['joins']:>7,}"
            for label, row in result["by_method"].items()
        ),
        f"  calls     {s['calls']:,} = {s['hits']:,} hits (served from cache) + "
        f"{s['misses']:,} misses",
        f"  misses    {s['misses']:,} = ({s['requests']:,} requests - {s['renewals']:,} "
        f"renewals) + {s['joins']:,} single-flight joins",
        f"  driver    {s['calls']:,} calls made; {s['unsuspended']:,} never waited: "
        f"{s['hits']:,} hits, {s['unsuspended'] - s['hits']:,} joined a request just done",
        f"  requests  {endpoint['recorded']:,} at the endpoint, {endpoint['issued']:,} answered "
        f"with a token; {endpoint['assertions']:,} client assertions, "
        f"{endpoint['distinct_jti']:,} distinct jti, each verified there",
        f"  tokens    {tokens['fetched']:,} fetched; {tokens['verified']:,} of "
        f"{tokens['distinct']:,} returned to callers found in the endpoint's record for that "
        f"client and scope{_unasked(tokens['fetched'] - tokens['distinct'])}",
        f"  get_token cached p50 {_us(cached['p50_us'])}, p99 {_us(cached['p99_us'])} "
        f"({cached['calls']:,} calls); uncached p50 {_us(uncached['p50_us'])}, "
        f"p99 {_us(uncached['p99_us'])} ({uncached['calls']:,}) among "
        f"{result['settings']['workers']} workers",
        f"  time      {seconds['keys']:.1f} s for keys and registration; the stampede "
        f"{seconds['stampede']:.1f} s ({stampede['calls']:,} calls at once, p50 "
        f"{_us(stampede['p50_us'])}); the load {seconds['load']:.1f} s "
        f"({result['settings']['calls'] / max(seconds['load'], 1e-3):,.0f} calls/s)",
    ]
    return lines
