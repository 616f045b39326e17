"""A UDP proxy on loopback between one client and a server, to make one reply arrive late."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from types import TracebackType
from typing import Self

Pick = Callable[[bytes], bool]


class UdpProxy(asyncio.DatagramProtocol):
    """Forwards datagrams between a client and `server`; holds one reply back on cue.

    Set `hold` and the next server datagram it picks is kept, not forwarded. Set
    `release` and, once something is held, the first client datagram it picks is
    preceded by the held datagrams (sent to the client) before it goes on to the
    server: a stale reply that arrives just as a new request is in flight. `sent`
    is every client datagram, in order. Use it as an async context manager.
    """

    def __init__(self, server: tuple[str, int]) -> None:
        self.server = server
        self.hold: Pick | None = None
        self.release: Pick | None = None
        self.held: list[bytes] = []
        self.released: list[bytes] = []
        self.sent: list[bytes] = []
        self._client: tuple[str, int] | None = None
        self._transport: asyncio.DatagramTransport | None = None

    async def __aenter__(self) -> Self:
        loop = asyncio.get_running_loop()
        self._transport, _ = await loop.create_datagram_endpoint(
            lambda: self, local_addr=("127.0.0.1", 0)
        )
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._transport is not None:
            self._transport.close()

    @property
    def url(self) -> str:
        """Where a client reaches the server through the proxy."""
        assert self._transport is not None, "proxy not started"
        host, port = self._transport.get_extra_info("sockname")[:2]
        return f"udp://{host}:{port}"

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        assert self._transport is not None
        if addr == self.server:
            if self.hold is not None and self.hold(data):
                self.hold = None
                self.held.append(data)
            elif self._client is not None:
                self._transport.sendto(data, self._client)
            return
        self._client = addr
        self.sent.append(data)
        if self.held and self.release is not None and self.release(data):
            self.release = None
            for stale in self.held:
                self._transport.sendto(stale, addr)
            self.released += self.held
            self.held.clear()
        self._transport.sendto(data, self.server)
