"""The report of ``jwtmint bench dpop``: versions and machine, a table per algorithm, targets."""

from __future__ import annotations

from typing import Any

from .report import format_percent, format_us, machine_line

__all__ = ["format_dpop_report"]


def format_dpop_report(results: dict[str, Any]) -> str:
    """Interleaved medians and ratios to the floor, then the steady-rate percentiles and CPU
    per proof, then the issue's two ES256 targets, met or not."""
    env, settings, targets = results["environment"], results["settings"], results["targets"]
    lines = [
        f"jwtmint {env['jwtmint']} bench dpop: a DPoP proof per request (RFC 9449), checked "
        "and timed in one run",
        f"  {env['python']} | PyJWT {env['pyjwt']} | cryptography {env['cryptography']} "
        f"({env['openssl']}) | C kernel's libcrypto: {env['kernel_openssl']}",
        f"  jwtmint kernel: {env['implementation']} (C extension {env['c_kernel']}), "
        f"Ed25519 via {env['ed25519_backend']}",
        machine_line(env),
        f"  checked: {results['proofs_checked']} outputs, before and after timing, by "
        f"{results['checked_by']}",
        f"  call: proof('GET', {settings['url']!r}, access_token=..., nonce=...)",
        "",
        f"median µs per proof (±IQR); {settings['rounds']} interleaved batches of "
        f"{settings['batch']} calls per row (the precomputed store filled before each batch, "
        "untimed); p50/p99 of "
        f"{settings['steady_calls']} calls paced at {settings['rate']:.0f}/s; CPU: process CPU "
        f"time per proof over {settings['steady_calls']} back to back (all threads: the refill "
        "thread's work included; the store full at start and filled back to full at the end, "
        "so the pairs paid for are the pairs used)",
    ]
    for algorithm, result in results["results"].items():
        lines.append("")
        lines.append(
            f"{algorithm + ' (signing input ' + str(result['message_bytes']) + ' B)':<38}"
            f"{'µs':>9}{'±IQR':>6}{'/floor':>8}{'p50':>9}{'p99':>9}{'CPU µs':>9}{'/floor':>8}"
        )
        for cell in result["contenders"].values():
            steady = cell["steady"]
            lines.append(
                f"  {cell['label']:<36}{format_us(cell['median_us']):>9}"
                f"{format_percent(cell['iqr_fraction']):>6}{cell['over_floor']:>7.2f}x"
                f"{format_us(steady['p50_us']):>9}{format_us(steady['p99_us']):>9}"
                f"{format_us(steady['cpu_us_per_call']):>9}{cell['cpu_over_floor']:>7.2f}x"
            )
        pairs = result["cpu_run_pairs"]
        if pairs is not None:
            lines.append(
                f"  CPU run with pairs (store of 64): {pairs['precomputed']} proofs from pairs, "
                f"{pairs['direct']} signed whole (store empty), {pairs['made']} pairs made, "
                f"{pairs['discarded']} of them dropped (store full)"
            )
    es256 = results["results"].get("ES256", {}).get("contenders", {})
    fast = es256.get("jwtmint-precomputed")
    lines.append("")
    if fast is None:
        lines.append("targets: ES256 precomputation not available here (pure kernel or not timed)")
    else:
        request = fast["over_floor"] <= targets["request_path_over_floor"]
        total = fast["cpu_over_floor"] <= targets["total_cpu_over_floor"]
        lines.append(
            f"targets (issue #11), ES256: request path {fast['over_floor']:.2f}x the floor "
            f"(<= {targets['request_path_over_floor']}x: {'met' if request else 'NOT met'}); "
            f"CPU per proof {fast['cpu_over_floor']:.2f}x the floor's "
            f"(<= {targets['total_cpu_over_floor']}x: {'met' if total else 'NOT met'})"
        )
    lines.append(f"elapsed {results['elapsed_s']} s")
    return "\n".join(lines)
