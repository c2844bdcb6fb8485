"""A loopback TCP proxy for fault tests: it can delay the server's replies, and go silent
on the connections open now (no FIN, no RST: a proxy or NAT that lost their state)."""

from __future__ import annotations

import asyncio
import contextlib


class TcpProxy:
    """Forwards 127.0.0.1:``listen_port`` to 127.0.0.1:``target_port``."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.listen_port = 0
        #: seconds each chunk from the server waits before it is passed on
        self.delay = 0.0
        self._silenced: list[dict[str, bool]] = []
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._writers: list[asyncio.StreamWriter] = []

    async def __aenter__(self) -> TcpProxy:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.listen_port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        assert self._server is not None
        self._server.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for writer in self._writers:
            writer.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(writer.wait_closed(), 1)
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self._server.wait_closed(), 1)

    def silence(self) -> None:
        """The connections open now pass nothing more, either way; new ones work."""
        for state in self._silenced:
            state["silent"] = True

    def _serve(
        self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter
    ) -> None:
        task = asyncio.get_running_loop().create_task(self._forward(client_reader, client_writer))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _forward(
        self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter
    ) -> None:
        server_reader, server_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        self._writers += [client_writer, server_writer]
        state = {"silent": False}
        self._silenced.append(state)

        async def pipe(
            reader: asyncio.StreamReader, writer: asyncio.StreamWriter, from_server: bool
        ) -> None:
            with contextlib.suppress(Exception):
                while data := await reader.read(65536):
                    if from_server and self.delay:
                        await asyncio.sleep(self.delay)
                    if not state["silent"]:
                        writer.write(data)
                        await writer.drain()
            if not state["silent"]:
                writer.close()

        await asyncio.gather(
            pipe(client_reader, server_writer, False), pipe(server_reader, client_writer, True)
        )
