"""The fault matrix (tests/fault_matrix.py): every misbehaving endpoint ends in a token or a
typed error within the deadline, with nothing left pending and nothing unescaped shown."""

from __future__ import annotations

import re

import pytest

from .fault_matrix import CASES, DEADLINE, HOSTILE, Case, run_case

#: time allowed past the deadline: the last attempt's connection teardown, a loaded machine
SLACK = 1.0
#: what a message or log line may hold: no control characters (CR/LF forge log lines, ESC
#: drives terminals), and a bounded length
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
MAX_MESSAGE = 2000


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
async def test_each_fault_ends_in_a_token_or_a_typed_error_within_the_deadline(case: Case) -> None:
    outcome = await run_case(case)
    assert outcome.kind in case.expect, outcome
    assert outcome.seconds <= DEADLINE + SLACK, outcome
    assert outcome.pending_tasks == 0, outcome
    for text in (outcome.message, *outcome.logs):
        assert not _CONTROL.search(text), text[:300]
        assert len(text) <= MAX_MESSAGE, text[:300]
        assert HOSTILE not in text
