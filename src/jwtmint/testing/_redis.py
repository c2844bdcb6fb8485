"""Throwaway Redis servers on 127.0.0.1 for tests and benchmarks: one node, or a 3-node cluster.

They run Debian's (or any) ``redis-server`` binary from ``PATH`` on free
loopback ports, with no persistence, in a temporary directory, and are
stopped (and can be stopped and restarted mid-test) by the object that
started them. Nothing here is used by jwtmint itself.
"""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType
from typing import TypeVar

from ..errors import ConfigurationError

__all__ = ["RedisClusterServers", "RedisServer", "redis_server_available"]

_START_TIMEOUT = 10.0
_S = TypeVar("_S", bound="_Servers")


def redis_server_available() -> bool:
    """Whether ``redis-server`` and ``redis-cli`` are on PATH."""
    return shutil.which("redis-server") is not None and shutil.which("redis-cli") is not None


def _free_port(*, bus: bool = False) -> int:
    """A free loopback port; with ``bus``, one whose cluster bus port (+10000) is free too."""
    for _ in range(200):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port: int = probe.getsockname()[1]
        if not bus:
            return port
        if port + 10000 <= 65535:
            with socket.socket() as probe:
                try:
                    probe.bind(("127.0.0.1", port + 10000))
                except OSError:
                    continue
            return port
    raise RuntimeError("found no free loopback port pair for a Redis Cluster node")


def _answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2) as conn:
            conn.sendall(b"PING\r\n")
            return conn.recv(16).startswith(b"+PONG")
    except OSError:
        return False


class _Servers:
    """``with`` starts them, and stops them (and removes their files) at the end."""

    def start(self) -> None:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError

    def __enter__(self: _S) -> _S:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class RedisServer(_Servers):
    """A ``redis-server`` on 127.0.0.1 (``url``), started by ``with`` or :meth:`start`.

    ``stop()`` and ``start()`` again simulate an outage: the same port, an
    empty database. ``extra`` adds ``redis-server`` arguments.
    """

    def __init__(self, *, port: int | None = None, extra: tuple[str, ...] = ()) -> None:
        if not redis_server_available():
            raise ConfigurationError(
                "redis-server is not installed (Debian: apt install redis-server)"
            )
        self.port = port or _free_port(bus="--cluster-enabled" in extra)
        self._extra = extra
        self._directory = tempfile.TemporaryDirectory(prefix="jwtmint-redis-")
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def directory(self) -> Path:
        return Path(self._directory.name)

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def start(self) -> None:
        if self.running:
            return
        # save "" and appendonly no: nothing is written to disk, so a restart starts empty
        self._process = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1",
             "--save", "", "--appendonly", "no", "--dir", str(self.directory), *self._extra],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        deadline = time.monotonic() + _START_TIMEOUT
        while not _answers(self.port):
            if self._process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"redis-server did not start on port {self.port}")
            time.sleep(0.02)

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.kill()
            process.wait(timeout=_START_TIMEOUT)

    def close(self) -> None:
        self.stop()
        with contextlib.suppress(OSError):
            self._directory.cleanup()

    def __repr__(self) -> str:
        return f"RedisServer(port={self.port}, running={self.running})"


class RedisClusterServers(_Servers):
    """Three ``redis-server --cluster-enabled yes`` nodes joined by ``redis-cli --cluster
    create`` (no replicas); ``startup_nodes`` are their ``(host, port)`` pairs."""

    def __init__(self, nodes: int = 3) -> None:
        if nodes < 3:
            raise ConfigurationError("a Redis Cluster needs at least 3 primary nodes")
        self.nodes = []
        for _ in range(nodes):
            node = RedisServer(extra=("--cluster-enabled", "yes", "--cluster-node-timeout", "2000"))
            # each node keeps its cluster state file in its own directory
            node._extra += ("--cluster-config-file", str(node.directory / "nodes.conf"))
            self.nodes.append(node)

    @property
    def startup_nodes(self) -> list[tuple[str, int]]:
        return [("127.0.0.1", node.port) for node in self.nodes]

    def start(self) -> None:
        for node in self.nodes:
            node.start()
        subprocess.run(
            ["redis-cli", "--cluster", "create",
             *(f"127.0.0.1:{node.port}" for node in self.nodes),
             "--cluster-replicas", "0", "--cluster-yes"],
            check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            timeout=_START_TIMEOUT,
        )  # fmt: skip
        deadline = time.monotonic() + _START_TIMEOUT
        while not all(self._ok(node.port) for node in self.nodes):
            if time.monotonic() > deadline:
                self.close()
                raise RuntimeError("the Redis Cluster did not reach cluster_state:ok")
            time.sleep(0.05)

    @staticmethod
    def _ok(port: int) -> bool:
        reply = subprocess.run(
            ["redis-cli", "-p", str(port), "cluster", "info"],
            capture_output=True, timeout=_START_TIMEOUT, check=False,
        )  # fmt: skip
        return b"cluster_state:ok" in reply.stdout

    def close(self) -> None:
        for node in self.nodes:
            node.close()
