"""jwtmint.tokens.run: uvloop when installed, asyncio when not or when asked."""

from __future__ import annotations

import asyncio

import uvloop

from jwtmint.tokens import run
from jwtmint.tokens._runner import event_loop_name


async def _loop_type() -> type:
    return type(asyncio.get_running_loop())


def test_run_uses_uvloop_when_installed() -> None:
    assert event_loop_name() == "uvloop"
    assert run(_loop_type()) is uvloop.Loop


def test_run_can_stay_on_asyncio() -> None:
    assert not issubclass(run(_loop_type(), use_uvloop=False), uvloop.Loop)
