"""``jwtmint bench gateway --plot FILE.png``: the gateway benchmark's summary as two bar charts.

Left, latency at the paced rate (p50 and p99, log scale: a renewal that
makes requests wait shows as a p99 ten times the others); right, the
gateway's CPU per forwarded request, flat out and paced. One bar group per
variant, the fixed header first (the baseline). matplotlib (``jwtmint[plot]``)
on a bare ``Figure``, no pyplot.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from .plot import require_matplotlib
from .report import machine_line

__all__ = ["save_gateway_plot"]

_COLOURS = ("#1f77b4", "#ff7f0e")


def save_gateway_plot(
    summary: Mapping[str, Any], path: str | os.PathLike[str], *, dpi: int = 100
) -> None:
    """Draw :func:`jwtmint.bench.gateway.summarise`'s ``summary`` and write it to ``path``."""
    require_matplotlib()
    from matplotlib.figure import Figure
    from matplotlib.ticker import FuncFormatter

    variants = list(summary["variants"])
    rows = [summary["variants"][v] for v in variants]
    settings = summary["settings"]
    figure = Figure(figsize=(12.0, 5.2), dpi=dpi)
    latency, cpu = figure.subplots(1, 2)
    positions = range(len(variants))
    width = 0.38
    panels = (
        (latency, ("paced_p50_us", "paced_p99_us"), ("p50", "p99"), 1e-3),  # in ms
        (cpu, ("gateway_cpu_us", "paced_gateway_cpu_us"), ("flat out", "paced"), 1.0),  # in µs
    )
    for axes, fields, labels, scale in panels:
        for index, (field, label) in enumerate(zip(fields, labels, strict=True)):
            values = [row[field] * scale for row in rows]
            xs = [x + (index - 0.5) * width for x in positions]
            bars = axes.bar(xs, values, width, label=label, color=_COLOURS[index])
            axes.bar_label(bars, fmt="%.3g", fontsize=7, padding=1)
        axes.set_xticks(list(positions), variants, rotation=20, ha="right", fontsize=8.5)
        axes.grid(axis="y", color="#dddddd", linewidth=0.6)
        axes.set_axisbelow(True)
        for side in ("top", "right"):
            axes.spines[side].set_visible(False)
        axes.legend(frameon=False, fontsize=8.5)
    latency.set_yscale("log")
    latency.yaxis.set_major_formatter(FuncFormatter(lambda value, _pos: f"{value:g}"))
    latency.set_ylabel("ms per forwarded request (log scale)")
    latency.set_title(
        f"latency at {settings['paced_rate']:,.0f} requests/s (paced)", fontsize=9.5, loc="left"
    )
    cpu.set_ylabel("gateway CPU µs per forwarded request")
    cpu.set_title("gateway process CPU per request", fontsize=9.5, loc="left")
    figure.suptitle(
        f"jwtmint bench gateway: {settings['clients']} named clients, medians of "
        f"{settings['rounds']} interleaved rounds; lower is better\n"
        f"{machine_line(summary['environment']).strip()}",
        fontsize=9,
        x=0.01,
        ha="left",
    )
    figure.tight_layout(rect=(0.0, 0.0, 1.0, 0.92))
    figure.savefig(os.fspath(path), format="png", dpi=dpi)
