"""How a ``jwtmint bench`` mode runs: progress on stderr, the tables or JSON on stdout, 0 or 1."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from typing import Any

from ..errors import ConfigurationError
from .token_endpoint import MeasurementError

__all__ = ["run_command"]


def run_command(
    name: str,
    run: Callable[..., dict[str, Any]],
    report: Callable[[dict[str, Any]], str],
    *,
    quick: bool,
    as_json: bool,
) -> int:
    """``run(progress=...)``, then its report (or JSON) on stdout; 1 with a sentence on
    stderr when it cannot run (``ConfigurationError``) or a check failed."""
    progress = None if as_json else lambda text: print(text, file=sys.stderr, flush=True)
    try:
        results = run(progress=progress)
    except ConfigurationError as exc:
        print(f"jwtmint bench {name}: cannot run: {exc}", file=sys.stderr)
        return 1
    except MeasurementError as exc:
        print(f"jwtmint bench {name}: measurement check failed: {exc}", file=sys.stderr)
        return 1
    results["settings"]["quick"] = quick
    print(json.dumps(results, indent=2) if as_json else report(results))
    return 0
