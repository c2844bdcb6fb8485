"""A one-shot aiohttp server on 127.0.0.1: start, address, pause and close, for the endpoint."""

from __future__ import annotations

import asyncio
import contextlib
from types import TracebackType
from typing import TypeVar

from aiohttp import web

__all__ = ["LoopbackServer"]

# in-flight handlers finish quickly once `_closing` is set; this only bounds a stuck one
_SHUTDOWN_TIMEOUT = 2.0
# above the default 128, so a burst of concurrent connects is queued rather than retried
_BACKLOG = 2048
_S = TypeVar("_S", bound="LoopbackServer")


class LoopbackServer:
    """Serves :meth:`_application` on a port the OS picks; it runs once."""

    def __init__(self) -> None:
        self._runner: web.AppRunner | None = None
        self._url: str | None = None
        self._started = False
        self._closing = asyncio.Event()

    def _application(self) -> web.Application:
        raise NotImplementedError

    async def start(self) -> None:
        """Listen on 127.0.0.1 at a port the OS picks. An endpoint starts only once."""
        name = type(self).__name__
        if self._started:
            raise RuntimeError(f"this {name} was already started; create a new one")
        self._started = True
        runner = web.AppRunner(
            self._application(),
            access_log=None,
            handler_cancellation=True,  # a client that gives up ends its (delayed) handler
            shutdown_timeout=_SHUTDOWN_TIMEOUT,
        )
        await runner.setup()
        try:
            await web.TCPSite(runner, "127.0.0.1", 0, backlog=_BACKLOG).start()
        except BaseException:
            await runner.cleanup()
            raise
        self._runner = runner
        port = runner.addresses[0][1]
        self._url = f"http://127.0.0.1:{port}"

    async def close(self) -> None:
        """Stop listening and close every connection; waiting faults are cut short."""
        self._started = True  # closed before it ever started: it still runs only once
        self._closing.set()
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()

    async def __aenter__(self: _S) -> _S:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()

    @property
    def url(self) -> str:
        """The base URL, ``http://127.0.0.1:PORT`` without a trailing slash."""
        if self._url is None:
            name = type(self).__name__
            raise RuntimeError(f"the {name} is not started; use `async with` or start()")
        return self._url

    async def _pause(self, seconds: float) -> None:
        """Wait ``seconds``, or less when the server closes meanwhile."""
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self._closing.wait(), seconds)
