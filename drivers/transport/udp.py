"""UDP transport: `udp://host:port[?local_port=N]`, one datagram per write and per chunk received.

There is no connection: `open` binds a socket aimed at the device and `online` is
decided by replies. An ICMP error (port or host unreachable) closes the endpoint
with a ConnectError as the reason, so the driver counts a failure and opens a
fresh endpoint on its next try.
"""

from __future__ import annotations

import asyncio
import errno
import ipaddress
import logging
from typing import cast

from drivers.errors import ConnectError, ConnectionClosed, OfflineReason
from drivers.transport.base import Receiver, Transport
from drivers.transport.tcp import connect_error

log = logging.getLogger("avhub.transport.udp")


class _DatagramProtocol(asyncio.DatagramProtocol):
    def __init__(self, receiver: Receiver, target: str) -> None:
        self.receiver = receiver
        self.target = target
        self.transport: asyncio.DatagramTransport | None = None
        self._error: ConnectError | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # the selector loop's datagram transport does not subclass DatagramTransport
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: object) -> None:
        self.receiver.data_received(data)

    def error_received(self, exc: Exception) -> None:
        # The kernel reports ICMP errors on a connected UDP socket here (ECONNREFUSED for
        # "port unreachable"). The socket stays usable, but the device said no: close
        # with that reason rather than waiting for timeouts.
        if self.transport is None or self.transport.is_closing():
            return
        err = exc if isinstance(exc, OSError) else OSError(str(exc))
        self._error = connect_error(err, self.target)
        log.debug("%s: %s", self.target, self._error)
        self.transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        self.receiver.connection_lost(self._error or exc)


def _local_host(remote: str) -> str:
    """Where to bind a fixed local port: loopback for a loopback peer, else any address."""
    try:
        addr = ipaddress.ip_address(remote)
    except ValueError:
        return "127.0.0.1" if remote == "localhost" else "0.0.0.0"
    if addr.is_loopback:
        return str(addr)
    return "::" if addr.version == 6 else "0.0.0.0"


class UdpTransport(Transport):
    """A UDP socket connected to one device; each write is one datagram."""

    datagram = True
    _protocol: _DatagramProtocol | None = None

    async def open(self, receiver: Receiver) -> None:
        loop = asyncio.get_running_loop()
        target = f"udp {self.url.host}:{self.url.port}"
        local_port = int(self.url.params.get("local_port", 0))
        local = (_local_host(self.url.host), local_port) if local_port else None
        try:
            async with asyncio.timeout(self.connect_timeout):
                _, protocol = await loop.create_datagram_endpoint(
                    lambda: _DatagramProtocol(receiver, target),
                    remote_addr=(self.url.host, self.url.port),
                    local_addr=local,
                )
        except OSError as err:
            if err.errno == errno.EADDRINUSE:
                raise ConnectError(
                    f"cannot bind local UDP port {local_port}: another program uses it",
                    OfflineReason.UNREACHABLE,
                ) from err
            raise connect_error(err, target) from err  # TimeoutError too: resolving hung
        self._protocol = protocol

    def write(self, data: bytes) -> None:
        if self._protocol is None or self._protocol.transport is None:
            raise ConnectionClosed("UDP endpoint is closed")
        self._protocol.transport.sendto(data)

    def close(self) -> None:
        if self._protocol is not None and self._protocol.transport is not None:
            self._protocol.transport.close()

    @property
    def is_open(self) -> bool:
        transport = None if self._protocol is None else self._protocol.transport
        return transport is not None and not transport.is_closing()
