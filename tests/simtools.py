"""For simulator tests: a raw client that talks bytes, and simulators run from the command line."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

from simulators.base import Simulator

REPO = Path(__file__).resolve().parent.parent


class RawClient:
    """Bytes to a simulator, and what comes back cut at a separator."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    async def upto(self, separator: bytes, timeout: float = 2.0) -> bytes:
        """Everything up to and including the next `separator`."""
        async with asyncio.timeout(timeout):
            return await self.reader.readuntil(separator)

    async def line(self) -> bytes:
        """One CR LF line, without its terminator."""
        return (await self.upto(b"\r\n"))[:-2]

    async def ask(self, line: str) -> bytes:
        self.writer.write(line.encode() + b"\r\n")
        return await self.line()

    async def closed_by_peer(self, timeout: float = 2.0) -> bool:
        try:
            async with asyncio.timeout(timeout):
                return await self.reader.read(100) == b""
        except (ConnectionResetError, BrokenPipeError):
            return True

    async def close(self) -> None:
        self.writer.close()
        with contextlib.suppress(OSError):
            await self.writer.wait_closed()


Connect = Callable[[Simulator[Any]], Awaitable[RawClient]]


@contextlib.asynccontextmanager
async def raw_clients() -> AsyncIterator[Connect]:
    """Open raw clients to simulators; all are closed on the way out."""
    clients: list[RawClient] = []

    async def open_client(sim: Simulator[Any]) -> RawClient:
        client = RawClient(*await asyncio.open_connection(*sim.address))
        clients.append(client)
        return client

    try:
        yield open_client
    finally:
        for client in clients:
            await client.close()


@contextlib.asynccontextmanager
async def simulator_process(*args: str) -> AsyncIterator[str]:
    """`python -m simulators ARGS` running; yields the first line it prints.

    Afterwards SIGTERM, and the exit must be clean (status 0, no traceback).
    """
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "simulators",
        *args,
        cwd=REPO,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        assert proc.stdout is not None
        async with asyncio.timeout(10):
            line = (await proc.stdout.readline()).decode()
        yield line
        proc.send_signal(signal.SIGTERM)
        async with asyncio.timeout(5):
            _, stderr = await proc.communicate()
        assert proc.returncode == 0, stderr
        assert b"Traceback" not in stderr and b"Task was destroyed" not in stderr
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
