"""PJLink class 2 notifications: one UDP listener per hub, routed to the projector that sent them."""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Iterable

from drivers.pjlink.codec import Reply
from drivers.pjlink.driver import PjlinkDriver
from drivers.pjlink.udp import Address, NotificationListener

log = logging.getLogger("avhub.hub")


class PjlinkNotifications:
    """Listens for `%2POWR=…` and friends and applies each to its projector at once.

    A notification is matched to a projector by source address: the IP first and,
    when several configured projectors share an IP (simulators on one host), the
    source port equal to the projector's PJLink port.
    """

    def __init__(self, drivers: Iterable[PjlinkDriver]) -> None:
        self.drivers = list(drivers)
        self.address: Address | None = None
        self._routes: dict[str, list[PjlinkDriver]] = {}
        self._listener: NotificationListener | None = None
        self._unknown: set[Address] = set()

    async def start(self, host: str, port: int) -> Address | None:
        """Listen on UDP host:port; on failure log once and carry on (polling still works)."""
        if not self.drivers:
            return None
        self._routes = await _resolve(self.drivers)
        listener = NotificationListener(host, port, self._deliver)
        try:
            self.address = await listener.start()
        except OSError as err:
            log.warning(
                "PJLink notifications off: cannot listen on UDP %s:%d (%s); projectors are still polled",
                host,
                port,
                err.strerror or err,
            )
            return None
        self._listener = listener
        log.info("PJLink class 2 notifications on udp://%s:%d", *self.address)
        return self.address

    def close(self) -> None:
        if self._listener is not None:
            self._listener.close()
            self._listener = None

    def _deliver(self, source: Address, reply: Reply) -> None:
        candidates = self._routes.get(source[0], [])
        if len(candidates) > 1:
            candidates = [d for d in candidates if d.config.transport.port == source[1]]
        if len(candidates) != 1:
            if source not in self._unknown:
                self._unknown.add(source)
                log.warning(
                    "PJLink notification from %s:%d matches no configured projector", *source
                )
            return
        candidates[0].apply_notification(reply)


async def _resolve(drivers: list[PjlinkDriver]) -> dict[str, list[PjlinkDriver]]:
    loop = asyncio.get_running_loop()
    routes: dict[str, list[PjlinkDriver]] = {}
    for driver in drivers:
        host = driver.config.transport.host
        try:
            infos = await loop.getaddrinfo(host, None, type=socket.SOCK_DGRAM)
            addresses = {str(info[4][0]) for info in infos}
        except OSError as err:
            log.warning("%s: cannot resolve %s for notifications: %s", driver.label, host, err)
            addresses = {host}
        for address in addresses:
            routes.setdefault(address, []).append(driver)
    return routes
