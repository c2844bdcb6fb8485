"""Print the fault matrix (tests/fault_matrix.py) as the Markdown table of RELIABILITY.md.

    .venv/bin/python tools/fault_matrix.py

Runs every case once against a real TokenManager (the same runs as
tests/test_fault_matrix.py), in this process, and prints what each came to:
the outcome, the seconds it took, and the token requests the server saw.
"""

from __future__ import annotations

import asyncio
import platform
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.fault_matrix import CASES, DEADLINE, REQUEST_TIMEOUT, run_case


async def main() -> None:
    print(
        f"RetryPolicy(attempts=3, deadline={DEADLINE}), request_timeout={REQUEST_TIMEOUT}; "
        f"{platform.python_implementation()} {platform.python_version()}, {platform.machine()}"
    )
    print()
    print("| misbehaviour | outcome | s | token requests | pending tasks |")
    print("|---|---|---|---|---|")
    for case in CASES:
        outcome = await run_case(case)
        expected = outcome.kind in case.expect
        verdict = outcome.kind if expected else f"**{outcome.kind}** (unexpected)"
        print(
            f"| {case.name} | {verdict} | {outcome.seconds:.2f} | {outcome.requests} | "
            f"{outcome.pending_tasks} |"
        )


if __name__ == "__main__":
    asyncio.run(main())
