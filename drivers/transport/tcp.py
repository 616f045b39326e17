"""TCP transport: `tcp://host:port` (also used for serial-over-IP `socket://`)."""

from __future__ import annotations

import asyncio
import errno
import threading
from typing import cast

from drivers.errors import ConnectError, ConnectionClosed, OfflineReason
from drivers.transport.base import Receiver, Transport
from drivers.transport.url import TransportUrl


class _StreamProtocol(asyncio.Protocol):
    __slots__ = ("receiver", "transport")

    def __init__(self, receiver: Receiver) -> None:
        self.receiver = receiver
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass

    def data_received(self, data: bytes) -> None:
        self.receiver.data_received(data)

    def eof_received(self) -> bool:
        return False  # close our side too

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        self.receiver.connection_lost(exc)


class _ReadBuffer(threading.local):
    """One receive buffer per thread, shared by its connections: each read is copied out
    before the event loop can start another."""

    SIZE = 64 * 1024

    def __init__(self) -> None:
        self.view = memoryview(bytearray(self.SIZE))


_READ = _ReadBuffer()


class _BufferedStreamProtocol(_StreamProtocol, asyncio.BufferedProtocol):
    """Reads into the thread's shared buffer.

    For a plain Protocol asyncio allocates a 256 KiB bytes object per read; device
    replies are a few dozen bytes, and that allocation costs several times the read.
    """

    __slots__ = ()

    def get_buffer(self, sizehint: int) -> memoryview:
        return _READ.view

    def buffer_updated(self, nbytes: int) -> None:
        self.receiver.data_received(bytes(_READ.view[:nbytes]))


def connect_error(err: OSError | TimeoutError, target: str) -> ConnectError:
    """Map an OSError from connecting to a ConnectError with an offline reason."""
    if isinstance(err, TimeoutError):
        return ConnectError(f"connect to {target} timed out", OfflineReason.TIMEOUT)
    if isinstance(err, ConnectionRefusedError) or err.errno == errno.ECONNREFUSED:
        return ConnectError(f"connection to {target} refused", OfflineReason.REFUSED)
    return ConnectError(
        f"cannot connect to {target}: {err.strerror or err}", OfflineReason.UNREACHABLE
    )


class TcpTransport(Transport):
    """A TCP connection; `open` honours the connect timeout."""

    __slots__ = ("_protocol",)

    def __init__(self, url: TransportUrl, connect_timeout: float) -> None:
        super().__init__(url, connect_timeout)
        self._protocol: _BufferedStreamProtocol | None = None

    async def open(self, receiver: Receiver) -> None:
        loop = asyncio.get_running_loop()
        target = f"{self.url.host}:{self.url.port}"
        try:
            async with asyncio.timeout(self.connect_timeout):
                _, protocol = await loop.create_connection(
                    lambda: _BufferedStreamProtocol(receiver), self.url.host, self.url.port
                )
        except (OSError, TimeoutError) as err:
            raise connect_error(err, target) from err
        self._protocol = protocol

    def write(self, data: bytes) -> None:
        if self._protocol is None or self._protocol.transport is None:
            raise ConnectionClosed("not connected")
        self._protocol.transport.write(data)

    def close(self) -> None:
        if self._protocol is not None and self._protocol.transport is not None:
            self._protocol.transport.close()

    @property
    def is_open(self) -> bool:
        return self._protocol is not None and self._protocol.transport is not None
