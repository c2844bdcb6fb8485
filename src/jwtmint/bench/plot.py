"""``jwtmint bench --plot FILE.png``: the peer comparison as a grouped bar chart.

One group per algorithm, one bar per peer (the same colour in every group, named in the
legend), the height the median µs per mint on a log scale (the peers span two orders of
magnitude), and the signing floor, cryptography's bare ``sign()``, marked across each group:
what a library signing through cryptography cannot beat (jwtmint goes below it where it
signs otherwise: Ed25519 through libsodium, ECDSA with precomputed pairs). A peer that could
not sign an algorithm, or failed its check, leaves a gap saying so; a peer not installed is
left out and named under the chart. The title carries the machine line the text report
prints, since figures mean nothing without it.

matplotlib is optional (``pip install 'jwtmint[plot]'``); it is drawn on a bare
:class:`~matplotlib.figure.Figure` (the Agg canvas), never through ``pyplot``, so no GUI
backend is chosen and no global state is touched.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from ..errors import ConfigurationError
from .adapters import PEERS
from .report import machine_line

__all__ = ["require_matplotlib", "save_plot"]

#: the floor's key in the results (jwtmint.bench.runner.FLOOR)
_FLOOR = "floor"
#: a peer's colour by its place in the registry (jwtmint's two reds, then tab10), so that
#: a peer keeps its colour whichever --peers were chosen
_PALETTE = [
    "#d62728", "#ff9896", "#1f77b4", "#2ca02c", "#9467bd",
    "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf",
    "#aec7e8", "#ffbb78", "#98df8a", "#c5b0d5", "#c49c94",
]  # fmt: skip
_KNOWN = frozenset(peer.name for peer in PEERS)
#: what a cell's status says in its gap
_GAP = {"n/a": "n/a", "failed": "failed"}


def require_matplotlib() -> None:
    """Raise :class:`ConfigurationError` (exit 2) when matplotlib cannot be imported."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise ConfigurationError("--plot needs matplotlib: pip install 'jwtmint[plot]'") from None


def _title(results: Mapping[str, Any]) -> str:
    env, settings = results["environment"], results["settings"]
    run = "--quick run" if settings.get("quick") else "full run"
    return (
        f"jwtmint bench: µs per client assertion (RFC 7523), median of "
        f"{settings['repeats']} batches, {run}; lower is better\n"
        f"{machine_line(env).strip()}\n"
        f"{env['python']} | cryptography {env['cryptography']} ({env['openssl']}) | "
        f"jwtmint {env['jwtmint']}"
    )


def save_plot(results: Mapping[str, Any], path: str | os.PathLike[str], *, dpi: int = 100) -> None:
    """Draw :func:`jwtmint.bench.runner.run`'s ``results`` and write them to ``path`` (PNG)."""
    require_matplotlib()
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch
    from matplotlib.ticker import FuncFormatter, LogLocator

    algorithms: list[str] = list(results["settings"]["algorithms"])
    labels = {name: info["label"] for name, info in results["peers"].items()}
    every = list(results["settings"]["peers"])
    missing = [name for name in every if results["peers"][name].get("status") == "missing"]
    peers = [name for name in every if name not in missing]
    order = [peer.name for peer in PEERS] + [name for name in peers if name not in _KNOWN]
    colours = {name: _PALETTE[order.index(name) % len(_PALETTE)] for name in peers}
    # jwtmint's own figure is written on its bar: the one a reader looks for
    marked = next((name for name in peers if name.startswith("jwtmint")), None)
    width = 0.8 / max(len(peers), 1)

    figure = Figure(figsize=(max(8.0, 1.6 * len(algorithms) + 3.0), 6.0), dpi=dpi)
    axes = figure.add_subplot()
    lowest, highest = float("inf"), 0.0
    for group, algorithm in enumerate(algorithms):
        cells = results["results"][algorithm]["contenders"]
        left = group - 0.4
        for index, name in enumerate(peers):
            cell = cells.get(name, {})
            x = left + width * (index + 0.5)
            if cell.get("status") == "timed":
                value = float(cell["median_us"])
                lowest, highest = min(lowest, value), max(highest, value)
                axes.bar(x, value, width, color=colours[name], edgecolor="white", linewidth=0.4)
                if name == marked:
                    axes.annotate(
                        f"{value:.3g}", (x, value), xytext=(0, 2), textcoords="offset points",
                        ha="center", va="bottom", fontsize=7, zorder=4,
                        bbox={"facecolor": "white", "edgecolor": "none", "pad": 0.6, "alpha": 0.8},
                    )  # fmt: skip
            else:
                gap = _GAP.get(str(cell.get("status")), str(cell.get("status", "")))
                axes.text(
                    x, 0.02, gap, transform=axes.get_xaxis_transform(), rotation=90,
                    ha="center", va="bottom", fontsize=6.5, color="#888888",
                )  # fmt: skip
        base = cells.get(_FLOOR, {})
        if base.get("status") == "timed":
            value = float(base["median_us"])
            lowest, highest = min(lowest, value), max(highest, value)
            axes.hlines(value, left, left + 0.8, colors="black", linewidths=1.6, zorder=3)

    axes.set_yscale("log")
    if highest > 0:
        axes.set_ylim(lowest / 2.5, highest * 2.5)
    axes.yaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    axes.yaxis.set_major_formatter(FuncFormatter(lambda value, _pos: f"{value:g}"))
    axes.yaxis.set_minor_formatter(FuncFormatter(lambda _value, _pos: ""))
    axes.set_ylabel("µs per mint (log scale)")
    axes.set_xticks(range(len(algorithms)), algorithms)
    axes.set_xlim(-0.5, len(algorithms) - 0.5)
    axes.grid(axis="y", which="major", color="#dddddd", linewidth=0.6)
    axes.set_axisbelow(True)
    for side in ("top", "right"):
        axes.spines[side].set_visible(False)

    handles: list[Any] = [
        Patch(color=colours[name], label=labels.get(name, name)) for name in peers
    ]
    handles.append(
        Line2D([], [], color="black", linewidth=1.6, label="signing floor\n(cryptography sign)")
    )
    axes.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.0, 1.0), frameon=False,
                fontsize=8.5)  # fmt: skip
    axes.set_title(_title(results), fontsize=9, loc="left")
    notes = ["n/a: the library cannot sign with that algorithm"]
    if missing:
        notes.append("not installed, not shown: " + ", ".join(labels[name] for name in missing))
    figure.text(0.01, 0.01, "; ".join(notes), fontsize=7.5, color="#555555")
    figure.tight_layout(rect=(0.0, 0.03, 1.0, 1.0))
    figure.savefig(path, format="png", dpi=dpi)
