"""The text report of ``jwtmint bench``: versions and machine, then one table per algorithm."""

from __future__ import annotations

from typing import Any

__all__ = ["format_report", "format_us"]


def format_us(value: float) -> str:
    return f"{value:.2f}" if value < 10 else f"{value:.1f}" if value < 1000 else f"{value:.0f}"


def _ratio(value: float | None) -> str:
    return "—" if value is None else f"{value:.2f}x"


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
                    f"{label}{format_us(cell['median_us']):>10}{cell['iqr_fraction'] * 100:>6.0f}%"
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
