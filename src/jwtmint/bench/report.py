"""The text reports of ``jwtmint bench`` and ``jwtmint bench tokens``, from their JSON results.

``jwtmint bench``: versions and machine, then one table per algorithm and a
summary. ``jwtmint bench tokens``: the cached-token table and the
cold-fetch table.
"""

from __future__ import annotations

from typing import Any

from .settings import BASIC, PRIVATE_KEY_JWT
from .token_peers import AUTHLIB, FLOOR, JWTMINT

__all__ = ["format_report", "format_tokens_report", "format_us"]

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


def _percent(fraction: float | None) -> str:
    return "—" if fraction is None else f"{fraction * 100:.0f}%"


def format_report(results: dict[str, Any]) -> str:
    """Human-readable tables from :func:`jwtmint.bench.runner.run`'s results."""
    env, settings, peers = results["environment"], results["settings"], results["peers"]
    lines = [
        f"jwtmint {env['jwtmint']} bench: one client assertion per call (RFC 7523), "
        "every contender checked, then timed in one run",
        f"  {env['python']} | cryptography {env['cryptography']} ({env['openssl']}) | "
        f"jwtmint kernel: {env['implementation']} (C extension {env['c_kernel']}), "
        f"Ed25519 via {env['ed25519_backend']}",
        f"  CPU: {env['cpu']}, {env['cpu_count']} logical ({env['cpu_usable']} usable) | "
        f"{env['platform']}",
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
                    f"{label}{format_us(cell['median_us']):>10}{_percent(cell['iqr_fraction']):>7}"
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
        f"{results['elapsed_s']:.1f} s. Contenders interleaved round-robin, GC off during batches. "
        "A shared or throttled machine adds noise:\ncompare ratios from one run, "
        "not µs across runs. The HS* floor is the cheapest HMAC at hand (its label says which).",
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
        f"  CPU: {env['cpu']}, {env['cpu_count']} logical ({env['cpu_usable']} usable) | "
        f"{env['platform']}",
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
