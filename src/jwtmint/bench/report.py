"""The text reports of ``jwtmint bench``, ``bench tokens`` and ``bench redis``, from their JSON.

``jwtmint bench``: versions and machine, then one table per algorithm and a
summary. ``jwtmint bench tokens``: the cached-token table and the
cold-fetch table. ``jwtmint bench redis``: the hit/miss table with its
ratios and targets, and the fleet's request counts. ``jwtmint bench pyjwt``:
one table per algorithm, then each target of issue #14 with its ceiling.
"""

from __future__ import annotations

from typing import Any

from .settings import BASIC, PRIVATE_KEY_JWT
from .token_peers import AUTHLIB, FLOOR, JWTMINT

__all__ = [
    "format_percent",
    "format_pyjwt_report",
    "format_redis_report",
    "format_report",
    "format_tokens_report",
    "format_us",
    "machine_line",
]

LABELS = {
    FLOOR: "await noop()  (the floor)",
    JWTMINT: "jwtmint  tokens.get_token(name)",
    AUTHLIB: "authlib  client.ensure_active_token(token)",
}
COLD_LABELS = {JWTMINT: "jwtmint TokenManager", AUTHLIB: "authlib AsyncOAuth2Client"}
METHOD_LABELS = {BASIC: "client_secret_basic", PRIVATE_KEY_JWT: "private_key_jwt, ES256"}


def format_us(value: float) -> str:
    """Microseconds with as many decimals as are worth reading at that size."""
    return f"{value:.2f}" if value < 10 else f"{value:.1f}" if value < 1000 else f"{value:.0f}"


def _ratio(value: float | None) -> str:
    return "—" if value is None else f"{value:.2f}x"


def format_percent(fraction: float | None) -> str:
    return "—" if fraction is None else f"{fraction * 100:.0f}%"


def machine_line(env: dict[str, Any]) -> str:
    """The CPU and platform line every report prints beside its figures."""
    return (
        f"  CPU: {env['cpu']}, {env['cpu_count']} logical ({env['cpu_usable']} usable) | "
        f"{env['platform']}"
    )


def format_report(results: dict[str, Any]) -> str:
    """Human-readable tables from :func:`jwtmint.bench.runner.run`'s results."""
    env, settings, peers = results["environment"], results["settings"], results["peers"]
    lines = [
        f"jwtmint {env['jwtmint']} bench: one client assertion per call (RFC 7523), "
        "every contender checked, then timed in one run",
        f"  {env['python']} | cryptography {env['cryptography']} ({env['openssl']}) | "
        f"jwtmint kernel: {env['implementation']} (C extension {env['c_kernel']}), "
        f"Ed25519 via {env['ed25519_backend']}",
        machine_line(env),
    ]
    present = [f"{p['label']} {p['version']}" for p in peers.values() if p["status"] == "ok"]
    lines.append("  versions: " + ", ".join(present))
    for name, peer in peers.items():
        if peer["status"] != "ok":
            lines.append(f"  missing: {name}: {peer['reason']}")
    lines += [
        f"  checked: {results['tokens_checked']} tokens verified with {results['checked_by']}, "
        "each contender before and after timing",
        "  job: header {alg, kid, typ: client-authentication+jwt}; claims iss = sub, aud, "
        "128-bit jti, iat = nbf = now, exp = now + 60; key objects loaded beforehand",
        "",
        f"median µs per call (±IQR as % of median); {settings['repeats']} interleaved batches "
        f"of ~{settings['batch_seconds'] * 1000:.0f} ms per cell; ratios divide medians of "
        "this run",
    ]
    failures: list[str] = []
    for algorithm, result in results["results"].items():
        lines.append("")
        lines.append(
            f"{algorithm + ' (signing input ' + str(result['message_bytes']) + ' B)':<38}"
            f"{'µs':>10}{'±IQR':>7}{'vs floor':>10}{'vs PyJWT':>10}"
        )
        for cell in result["contenders"].values():
            status = cell["status"]
            if status == "missing":
                continue
            label = f"  {cell['label']:<36}"
            if status == "timed":
                lines.append(
                    f"{label}{format_us(cell['median_us']):>10}{format_percent(cell['iqr_fraction']):>7}"
                    f"{_ratio(cell['vs_floor']):>10}{_ratio(cell['vs_pyjwt']):>10}"
                )
            elif status == "n/a":
                lines.append(f"{label}{'n/a':>10}")
            else:
                lines.append(f"{label}{'failed':>10}  (not timed, see below)")
                failures.append(f"  {algorithm} {cell['label']}: {cell['reason']}")
    lines += _summary(results)
    if failures:
        lines += ["", "failed the correctness check (not timed):", *failures]
    lines += [
        "",
        _closing(results, " The HS* floor is the cheapest HMAC at hand (its label says which)."),
    ]
    return "\n".join(lines)


def _summary(results: dict[str, Any]) -> list[str]:
    """One line per contender, one column per algorithm: the medians side by side."""
    algorithms = list(results["results"])
    rows: dict[str, list[str]] = {}
    labels: dict[str, str] = {}
    for index, result in enumerate(results["results"].values()):
        for name, cell in result["contenders"].items():
            if cell["status"] == "missing":
                continue
            labels.setdefault(name, "floor" if name == "floor" else cell["label"])
            row = rows.setdefault(name, ["—"] * len(algorithms))
            row[index] = format_us(cell["median_us"]) if cell["status"] == "timed" else (
                "n/a" if cell["status"] == "n/a" else "failed"
            )  # fmt: skip
    lines = ["", "summary, median µs", f"{'':<14}" + "".join(f"{a:>9}" for a in algorithms)]
    for name, row in rows.items():
        lines.append(f"{labels[name]:<14}" + "".join(f"{cell:>9}" for cell in row))
    return lines


def _us(value: float | None) -> str:
    if value is None:
        return "—"
    return f"{value:.3f}" if value < 10 else format_us(value)


def _n(value: float | None) -> str:
    return "—" if value is None else f"{value:.0f}"


def format_tokens_report(results: dict[str, Any]) -> str:
    """The two tables of ``jwtmint bench tokens``, with versions, event loops and machine."""
    env, settings = results["environment"], results["settings"]
    cached, cold = results["cached"], results["cold"]
    lines = [
        f"jwtmint {env['jwtmint']} bench tokens: TokenManager vs authlib AsyncOAuth2Client, "
        "checked and timed in one run",
        f"  {env['python']} | aiohttp {env['aiohttp']} | Authlib {env['Authlib']} on httpx "
        f"{env['httpx']} (anyio {env['anyio']}) | uvloop {env['uvloop'] or 'not installed'}",
        f"  jwtmint kernel: {env['implementation']} (C extension {env['c_kernel']}) | "
        f"cryptography {env['cryptography']} ({env['openssl']})",
        machine_line(env),
        f"  token endpoint: jwtmint.testing.TokenEndpoint in a child process on "
        f"{results['server']['event_loop']}, 127.0.0.1, "
        f"{results['server']['clients_registered']} clients registered",
        "",
        "1. cached token: median µs per await (IQR µs), N awaits in one coroutine, "
        f"{settings['rounds']} interleaved rounds of ~{settings['batch_seconds'] * 1000:.0f} ms",
    ]
    loops = list(cached["loops"])
    lines.append(f"{'':<44}" + "".join(f"{loop + ' µs':>12}{'IQR':>8}" for loop in loops))
    for name, label in LABELS.items():
        row = f"  {label:<42}"
        for loop in loops:
            cell = cached["loops"][loop]["contenders"][name]
            row += f"{_us(cell['median_us']):>12}{_us(cell['iqr_us']):>8}"
        lines.append(row)
    lines.append(
        f"  {'authlib / jwtmint':<42}"
        + "".join(
            f"{cached['loops'][loop]['ratio_authlib_over_jwtmint']:>11.1f}x{'':>8}"
            for loop in loops
        )
    )
    verdicts = ", ".join(
        f"{loop} {'met' if cached['loops'][loop]['jwtmint_meets_target'] else 'NOT met'}"
        for loop in loops
    )
    lines += [
        f"  target: jwtmint median <= {cached['target_us']} µs: {verdicts}",
        "  checked: the endpoint counted 0 requests from either client while timed, and both "
        "returned the token they had",
        "",
        f"2. cold fetches: {cold['clients']} named clients, each its first token, "
        f"{cold['concurrency']} at a time, on {cold['event_loop']}; medians of {cold['rounds']} "
        f"round(s) (IQR)",
        f"{'':<34}{'tokens/s':>10}{'IQR':>8}{'client CPU':>12}{'IQR':>7}{'server CPU':>12}"
        f"{'busy, cores':>14}",
        f"{'':<34}{'(wall)':>10}{'':>8}{'µs/request':>12}{'':>7}{'µs/request':>12}"
        f"{'client server':>14}",
    ]
    for method, summary in cold["methods"].items():
        lines.append(f"  {METHOD_LABELS[method]}")
        for peer, label in COLD_LABELS.items():
            cell = summary[peer]
            lines.append(
                f"    {label:<30}{cell['tokens_per_s']['median']:>10.0f}"
                f"{_n(cell['tokens_per_s']['iqr']):>8}"
                f"{cell['client_cpu_us']['median']:>12.0f}{_n(cell['client_cpu_us']['iqr']):>7}"
                f"{cell['server_cpu_us']['median']:>12.0f}"
                f"{cell['client_busy']['median']:>8.2f}{cell['server_busy']['median']:>6.2f}"
            )
        ratios = summary["ratios"]
        lines.append(
            f"    ratios: tokens/s jwtmint/authlib "
            f"{ratios['tokens_per_s_jwtmint_over_authlib']:.2f}x, client CPU authlib/jwtmint "
            f"{ratios['client_cpu_authlib_over_jwtmint']:.2f}x"
        )
    lines += [
        f"  checked: every round {cold['clients']} distinct tokens, each live at the endpoint "
        f"for its client; the endpoint counted exactly {cold['clients']} requests, all issued",
        f"  jwtmint: one TokenManager, {cold['jwtmint_pool']}; authlib: one AsyncOAuth2Client "
        f"per client, {cold['authlib_pool']}",
        "  private_key_jwt: one ES256 key per client, a fresh assertion (new jti) per request; "
        "client setup and teardown untimed",
        "  busy: CPU seconds / wall seconds; a side near 1.00 is the bottleneck of tokens/s "
        "(the endpoint runs on one core)",
        "",
        f"{results['elapsed_s']:.1f} s. Contenders interleaved; client CPU is this process's "
        "process_time(), the endpoint's is its own.\nA shared or throttled machine adds noise: "
        "compare ratios from one run, not figures across runs.",
    ]
    return "\n".join(lines)


#: the rows of ``jwtmint bench redis``'s first table, by contender (redis_measurements' names)
REDIS_LABELS = {
    "floor": "await noop()  (the floor)",
    "memory": "local hit, MemoryTokenCache",
    "redis-local": "local hit, RedisTokenCache",
    "redis-hit": "Redis hit (local tier misses)",
    "redis-get": "bare redis.asyncio GET, same value",
    "redis-hit-sealed": "Redis hit, sealed (AES-256-GCM)",
    "redis-get-sealed": "bare GET, same sealed value",
    "miss-memory": "miss: request, MemoryTokenCache",
    "miss-redis": "miss: request under the Redis lock",
}
_REDIS_RATIOS = (
    ("local_over_memory", "RedisTokenCache local hit / Memory"),
    ("redis_over_get", "Redis hit / bare GET"),
    ("sealed_over_get", "sealed Redis hit / bare GET"),
    ("miss_redis_over_memory", "miss with Redis / miss Memory"),
)


def _redis_header(results: dict[str, Any]) -> list[str]:
    env = results["environment"]
    hiredis = f"hiredis {env['hiredis']} ({'in use' if env['hiredis_in_use'] else 'not used'})"
    return [
        f"jwtmint {env['jwtmint']} bench redis: RedisTokenCache vs MemoryTokenCache and a bare "
        "redis.asyncio GET, checked and timed in one run",
        f"  {env['python']} | redis-server {env['redis_server']} | redis-py {env['redis']}, "
        f"{hiredis} | aiohttp {env['aiohttp']} | uvloop {env['uvloop'] or 'not installed'}",
        machine_line(env),
        f"  {results['server']['redis']}; token endpoint: jwtmint.testing.TokenEndpoint in a "
        f"child process on {results['server']['event_loop']}",
    ]


def format_redis_report(results: dict[str, Any]) -> str:
    """The two tables of ``jwtmint bench redis``, with versions, event loops and machine."""
    settings, by_loop, targets = results["settings"], results["loops"], results["targets"]
    loops = list(by_loop)
    lines = [
        *_redis_header(results),
        "",
        "1. await tokens.get_token(name): median µs per call (IQR µs), N calls in one coroutine, "
        f"{settings['rounds']} interleaved rounds of ~{settings['batch_seconds'] * 1000:.0f} ms",
        f"{'':<40}" + "".join(f"{loop + ' µs':>12}{'IQR':>8}" for loop in loops),
    ]
    for name, label in REDIS_LABELS.items():
        row = f"  {label:<38}"
        for loop in loops:
            cell = by_loop[loop]["contenders"][name]
            row += f"{_us(cell['median_us']):>12}{_us(cell['iqr_us']):>8}"
        lines.append(row)
    for key, label in _REDIS_RATIOS:
        row = f"  {label:<38}" + "".join(
            f"{_ratio(by_loop[loop]['ratios'][key]):>12}{'':>8}" for loop in loops
        )
        if key in targets:
            verdicts = ", ".join(
                f"{loop} {'met' if by_loop[loop]['meets'][key] else 'NOT met'}" for loop in loops
            )
            row += f"  target <= {targets[key]:.2f}x: {verdicts}"
        elif key == "miss_redis_over_memory":
            extra = ", ".join(
                f"+{by_loop[loop]['ratios']['miss_redis_extra_us']:.0f}" for loop in loops
            )
            row += f"  ({extra} µs)"
        lines.append(row)
    lines += [
        "  checked: no hit reached the endpoint while timed; the local hits made no Redis read;",
        "    every Redis-hit call was counted a Redis hit by the cache and returned the expected",
        "    token, every GET the expected bytes; every miss made one request (under a lock it",
        "    took, with Redis) and got a distinct token, live at the endpoint",
        "  Redis hit: a RedisTokenCache(local_entries=1) asked for two keys in turn, so the key",
        "    asked for was always just evicted from the local tier; the bare GETs alternate over",
        "    the same two values on the same client (the caches' own pool and timeouts)",
        "  miss: a new cache key per call: the lock (a Lua SET NX), GET, the token request,",
        "    SET + PUBLISH, release; vs the same request with MemoryTokenCache",
        "",
        *_fleet_lines(results["fleet"]),
        "",
        _closing(results),
    ]
    return "\n".join(lines)


def _fleet_lines(fleet: dict[str, Any]) -> list[str]:
    size, keys = fleet["instances"], fleet["keys"]
    lines = [
        f"2. fleet: {size} instances ask for the same {keys} cold keys at once; token requests "
        "counted at the endpoint",
        f"  ({fleet['processes']})",
        f"{'':<40}{'requests':>10}{'per round':>16}{'expected':>10}{'wall ms':>10}"
        f"{'lock waits':>12}",
    ]
    labels = {"shared": "shared lock (RedisTokenCache)", "alone": "each alone (MemoryTokenCache)"}
    for mode, label in labels.items():
        rounds = fleet["rounds"][mode]
        expected = keys if mode == "shared" else keys * size
        per_round = ",".join(str(r["requests"]) for r in rounds)
        walls = sorted(r["wall_ms"] for r in rounds)
        lines.append(
            f"  {label:<38}{fleet['requests_median'][mode]:>10}{per_round:>16}{expected:>10}"
            f"{format_us(walls[len(walls) // 2]):>10}"
            f"{sum(r['lock_waits'] for r in rounds) // len(rounds):>12}"
        )
    lines.append(
        "  checked: with the lock, every instance got the same token per key; alone, each its "
        "own; all live at the endpoint"
    )
    return lines


FORM_LABELS = {"pem": "PEM text (str)", "object": "key object", "secret": "str secret"}


def _met(value: bool) -> str:
    return "met" if value else "NOT met"


def format_pyjwt_report(results: dict[str, Any]) -> str:
    """``jwtmint bench pyjwt``: versions and machine, a table per algorithm, the targets."""
    env, settings, targets = results["environment"], results["settings"], results["targets"]
    counters = results["patch_counters"]
    lines = [
        f"jwtmint {env['jwtmint']} bench pyjwt: PyJWT's jwt.encode under jwtmint.patch_pyjwt() "
        "vs unpatched, checked and timed in one run",
        f"  {env['python']} | PyJWT {env['pyjwt']} | cryptography {env['cryptography']} "
        f"({env['openssl']}) | PyNaCl {env['pynacl'] or 'not installed'}",
        f"  jwtmint kernel: {env['implementation']} (C extension {env['c_kernel']}), "
        f"Ed25519 via {env['ed25519_backend']}",
        machine_line(env),
        f"  checked: {results['tokens_checked']} tokens verified with {results['checked_by']}, "
        "before and after timing;",
        "    HS256, RS256, EdDSA: unpatched, patched and jwtmint.encode tokens the same bytes; "
        f"patch counters fast {counters['fast']}, fallback {counters['fallback']}",
        f"    PyJWT's classes compared {counters.get('class_checks', '?')} times in all, "
        f"{sum(r.get('timed_class_checks', 0) for r in results['results'].values())} of them "
        "while timed (the extension compares a class again only after it changed)",
        "  call: encode(claims, key, algorithm=ALG, headers={'kid': kid}), the same 7 claims "
        "every call; unpatched = PyJWT's own PyJWT.encode bound as jwt.encode is",
        "",
        f"median µs per call (±IQR as % of median); {settings['rounds']} interleaved batches "
        f"of ~{settings['batch_seconds'] * 1000:.0f} ms per row; ratios divide medians of this run",
    ]
    for algorithm, result in results["results"].items():
        lines.append("")
        lines.append(
            f"{algorithm + ' (signing input ' + str(result['message_bytes']) + ' B)':<40}"
            f"{'µs':>10}{'±IQR':>7}{'speed-up':>10}{'vs jwtmint':>12}"
        )
        for cell in result["floors"].values():
            lines.append(
                f"  {cell['label']:<38}{format_us(cell['median_us']):>10}"
                f"{format_percent(cell['iqr_fraction']):>7}"
            )
        for form, figures in result["forms"].items():
            lines.append(f"  {FORM_LABELS.get(form, form)}")
            unpatched = figures["contenders"]["pyjwt"]["median_us"]
            jwtmint = figures["contenders"]["jwtmint"]["median_us"]
            for cell in figures["contenders"].values():
                lines.append(
                    f"    {cell['label']:<36}{format_us(cell['median_us']):>10}"
                    f"{format_percent(cell['iqr_fraction']):>7}"
                    f"{_ratio(unpatched / cell['median_us']):>10}"
                    f"{_ratio(cell['median_us'] / jwtmint):>12}"
                )
    lines += ["", "targets (issue #14)", *_pyjwt_targets(results["results"], targets)]
    lines += [
        "",
        _closing(results),
    ]
    return "\n".join(lines)


def _pyjwt_targets(results: dict[str, Any], targets: dict[str, float]) -> list[str]:
    within = f"{(targets['patched_over_jwtmint'] - 1) * 100:.0f} %"
    lines = [f"  patched jwt.encode within {within} of jwtmint.encode (patched / jwtmint):"]
    hs, ceilings = [], []
    for algorithm, result in results.items():
        for form, figures in result["forms"].items():
            name, ratios, meets = f"{algorithm} {form}", figures["ratios"], figures["meets"]
            lines.append(
                f"    {name:<16}{_ratio(ratios['patched_over_jwtmint']):>8}  "
                f"{_met(meets['patched_over_jwtmint'])}"
            )
            if "hs256_speedup" in meets:
                hs.append(
                    f"    {name:<16}{_ratio(ratios['speedup']):>8}  {_met(meets['hs256_speedup'])}"
                )
            if "ceiling_fraction" in meets:
                ceilings += _ceiling_lines(name, figures, meets["ceiling_fraction"])
    lines += [f"  HS256: patched at least {targets['hs256_speedup']:.0f}x unpatched:", *hs]
    lines += [
        f"  ES256, EdDSA: at least {targets['ceiling_fraction'] * 100:.0f} % of the possible "
        "speed-up; possible = unpatched - floor (the faster floor),",
        "    achieved = unpatched - patched; the same against cryptography's sign() in brackets",
        *ceilings,
    ]
    return lines


def _ceiling_lines(name: str, figures: dict[str, Any], met: bool) -> list[str]:
    ceiling, by_floor = figures["ceiling"], figures["ceilings"]
    crypto = by_floor.get("floor", ceiling)
    return [
        f"    {name:<16}achieved {format_us(ceiling['achieved_us'])} of possible "
        f"{format_us(ceiling['possible_us'])} µs = {format_percent(ceiling['fraction'])} "
        f"({format_percent(crypto['fraction'])})  {_met(met)}",
        f"    {'':<16}speed-up {_ratio(figures['ratios']['speedup'])} of at most "
        f"{_ratio(ceiling['max_speedup'])} ({_ratio(crypto['max_speedup'])}); floor used: "
        f"{ceiling['floor']}, {format_us(ceiling['floor_us'])} µs",
    ]


def _closing(results: dict[str, Any], note: str = "") -> str:
    """The last line of the timed reports: how long, how timed, and how to read it."""
    return (
        f"{results['elapsed_s']:.1f} s. Contenders interleaved round-robin, GC off during batches. "
        "A shared or throttled machine adds noise:\ncompare ratios from one run, "
        f"not µs across runs.{note}"
    )
