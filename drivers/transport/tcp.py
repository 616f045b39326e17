"""TCP transport: `tcp://host:port` (also used for serial-over-IP `socket://`)."""

from __future__ import annotations

import asyncio
import errno
from typing import cast

from drivers.errors import ConnectError, ConnectionClosed, OfflineReason
from drivers.transport.base import Receiver, Transport


class _StreamProtocol(asyncio.Protocol):
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

    _protocol: _StreamProtocol | None = None

    async def open(self, receiver: Receiver) -> None:
        loop = asyncio.get_running_loop()
        target = f"{self.url.host}:{self.url.port}"
        try:
            async with asyncio.timeout(self.connect_timeout):
                _, protocol = await loop.create_connection(
                    lambda: _StreamProtocol(receiver), self.url.host, self.url.port
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
