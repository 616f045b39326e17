"""PJLink class 2 over UDP: status notifications from projectors, and search."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable

from drivers.errors import ProtocolError
from drivers.pjlink.codec import MAC, NOTIFICATIONS, PORT, SEARCH, Reply, parse_message
from drivers.service import Discovery, Found

log = logging.getLogger("avhub.driver.pjlink")

Address = tuple[str, int]
Handler = Callable[[Address, Reply], None]


class _Endpoint(asyncio.DatagramProtocol):
    def __init__(self, on_reply: Handler) -> None:
        self.on_reply = on_reply

    def datagram_received(self, data: bytes, addr: tuple[str | int, ...]) -> None:
        source = (str(addr[0]), int(addr[1]))
        for line in data.replace(b"\n", b"\r").split(b"\r"):
            if not line:
                continue
            try:
                message, _ = parse_message(line)
            except ProtocolError as err:
                log.warning("PJLink UDP from %s:%d: %s", *source, err)
                continue
            if isinstance(message, Reply):
                self.on_reply(source, message)
            else:
                log.warning("PJLink UDP from %s:%d: unexpected %r", *source, line[:40])

    def error_received(self, exc: Exception) -> None:
        log.debug("PJLink UDP endpoint error: %s", exc)


class NotificationListener:
    """Receives class 2 notifications (`%2POWR=1`, ...) and hands each to `handler`."""

    def __init__(self, host: str, port: int, handler: Handler) -> None:
        self.host = host
        self.port = port
        self._handler = handler
        self._transport: asyncio.DatagramTransport | None = None

    async def start(self) -> Address:
        """Bind; returns the bound address. OSError when the port is taken."""
        loop = asyncio.get_running_loop()
        self._transport, _ = await loop.create_datagram_endpoint(
            lambda: _Endpoint(self._on_reply), local_addr=(self.host, self.port)
        )
        host, port = self._transport.get_extra_info("sockname")[:2]
        self.host, self.port = str(host), int(port)
        return self.host, self.port

    def _on_reply(self, source: Address, reply: Reply) -> None:
        if reply.pjclass != 2 or reply.body not in NOTIFICATIONS:
            log.warning("PJLink UDP from %s:%d: not a notification: %s", *source, reply)
            return
        self._handler(source, reply)

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()
            self._transport = None


async def discover(
    targets: Iterable[Address] = (("255.255.255.255", PORT),),
    listen: Address = ("0.0.0.0", PORT),
    timeout: float = 3.0,
) -> list[Found]:
    """Send `%2SRCH` to each target and collect `%2ACKN=<mac>` answers for `timeout` seconds.

    Each projector found has its MAC address as `detail`.

    Projectors answer to port 4352 of the sender, so by default the search is sent from
    (and answers are read on) local port 4352.
    """
    found: dict[Address, Found] = {}

    def on_reply(source: Address, reply: Reply) -> None:
        if reply.body == "ACKN" and MAC.match(reply.param) and source not in found:
            found[source] = Found(source[0], source[1], reply.param.lower())

    loop = asyncio.get_running_loop()
    transport, _ = await loop.create_datagram_endpoint(
        lambda: _Endpoint(on_reply), local_addr=listen, allow_broadcast=True
    )
    try:
        for host, port in targets:
            transport.sendto(SEARCH, (host, port))
        await asyncio.sleep(timeout)
    finally:
        transport.close()
    return sorted(found.values(), key=lambda f: (f.host, f.port))


SEARCH_DISCOVERY = Discovery("PJLink class 2 search (%2SRCH)", PORT, discover, "projector")
