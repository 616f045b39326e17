"""UDP transport over real loopback sockets: datagram boundaries, ICMP errors, fixed local port."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from drivers.errors import ConnectError, ConnectionClosed, OfflineReason
from drivers.transport import create_transport, parse_transport_url
from drivers.transport.udp import UdpTransport
from tests.helpers import free_udp_port, until


class Inbox:
    """A transport Receiver that keeps every chunk and every loss."""

    def __init__(self) -> None:
        self.chunks: asyncio.Queue[bytes] = asyncio.Queue()
        self.lost: list[Exception | None] = []

    def data_received(self, data: bytes) -> None:
        self.chunks.put_nowait(data)

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost.append(exc)

    async def next(self, timeout: float = 1.0) -> bytes:
        return await asyncio.wait_for(self.chunks.get(), timeout)


async def open_udp(port: int, query: str = "") -> tuple[UdpTransport, Inbox]:
    """A UdpTransport to 127.0.0.1:port, opened, with the Inbox it delivers to."""
    transport = create_transport(parse_transport_url(f"udp://127.0.0.1:{port}{query}"), 1.0)
    assert isinstance(transport, UdpTransport)
    inbox = Inbox()
    await transport.open(inbox)
    return transport, inbox


class _Echo(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.sources: list[Any] = []
        self.transport: Any = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport

    def datagram_received(self, data: bytes, addr: Any) -> None:
        self.sources.append(addr)
        self.transport.sendto(data, addr)


@pytest.fixture
async def echo() -> AsyncIterator[tuple[int, _Echo]]:
    loop = asyncio.get_running_loop()
    transport, protocol = await loop.create_datagram_endpoint(_Echo, local_addr=("127.0.0.1", 0))
    yield transport.get_extra_info("sockname")[1], protocol
    transport.close()


async def test_each_write_is_one_datagram_and_each_datagram_one_chunk(
    echo: tuple[int, _Echo],
) -> None:
    port, _ = echo
    transport, inbox = await open_udp(port)
    assert transport.datagram and transport.is_open
    transport.write(b"\x81\x09\x04\x00\xff")
    transport.write(b"\x81\x01\x04\x00\x02\xff")
    assert await inbox.next() == b"\x81\x09\x04\x00\xff"  # never merged with the next one
    assert await inbox.next() == b"\x81\x01\x04\x00\x02\xff"
    transport.close()
    transport.close()  # idempotent
    await until(lambda: inbox.lost == [None])
    assert not transport.is_open
    with pytest.raises(ConnectionClosed):
        transport.write(b"late")


async def test_port_unreachable_closes_with_refused_and_reopening_works(
    echo: tuple[int, _Echo],
) -> None:
    transport, inbox = await open_udp(free_udp_port())  # nothing listens there
    transport.write(b"hello")
    await until(lambda: inbox.lost, message="ICMP port unreachable reported")
    [err] = inbox.lost
    assert isinstance(err, ConnectError) and err.reason is OfflineReason.REFUSED
    assert not transport.is_open
    # Not closed for good: the same transport object opens a fresh endpoint.
    port, _ = echo
    transport.url = transport.url.with_address("127.0.0.1", port)
    again = Inbox()
    await transport.open(again)
    transport.write(b"back")
    assert await again.next() == b"back"
    transport.close()


async def test_fixed_local_port_is_the_source_of_every_datagram(echo: tuple[int, _Echo]) -> None:
    port, server = echo
    local = free_udp_port()
    transport, inbox = await open_udp(port, f"?local_port={local}")
    transport.write(b"one")
    assert await inbox.next() == b"one"
    assert server.sources == [("127.0.0.1", local)]
    # A second endpoint cannot take the same port: a clear error, not a crash.
    with pytest.raises(ConnectError, match=f"local UDP port {local}"):
        await open_udp(port, f"?local_port={local}")
    transport.close()
