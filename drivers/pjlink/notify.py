"""PJLink class 2 notifications: one UDP listener per hub, routed to the projector that sent them."""

from __future__ import annotations

import asyncio
import logging
import socket
from typing import Any

from pydantic import Field, field_validator

from drivers.base import Driver
from drivers.config import parse_address
from drivers.pjlink.codec import PORT, Reply
from drivers.pjlink.driver import PjlinkDriver
from drivers.pjlink.udp import Address, NotificationListener
from drivers.service import DriverService, DriverSettings

log = logging.getLogger("avhub.driver.pjlink")


class PjlinkSettings(DriverSettings):
    """`hub.drivers.pjlink`: where the hub listens for class 2 notifications."""

    notify: str = Field(
        "auto",
        description="UDP HOST:PORT for PJLink class 2 notifications; "
        "auto: the hub's listen host, port 4352; off: none",
    )

    @field_validator("notify")
    @classmethod
    def _notify(cls, value: str) -> str:
        if value not in ("auto", "off"):
            parse_address(value)
        return value

    def address(self, host: str) -> Address | None:
        """Where to listen when the hub listens on `host`, or None when off."""
        if self.notify == "off":
            return None
        if self.notify == "auto":
            return host, PORT
        return parse_address(self.notify)


class PjlinkNotifications(DriverService[PjlinkSettings]):
    """Listens for `%2POWR=…` and friends and applies each to its projector at once.

    A notification is matched to a projector by source address: the IP first and,
    when several configured projectors share an IP (simulators on one host), the
    source port equal to the projector's PJLink port.
    """

    def __init__(self, settings: PjlinkSettings) -> None:
        super().__init__(settings)
        self.address: Address | None = None
        self._routes: dict[str, list[PjlinkDriver]] = {}
        self._listener: NotificationListener | None = None
        self._unknown: set[Address] = set()
        self._resolving: set[asyncio.Task[None]] = set()

    def attach(self, driver: Driver[Any]) -> None:
        super().attach(driver)
        if self._listener is not None and isinstance(driver, PjlinkDriver):
            task = asyncio.get_running_loop().create_task(self._route(driver))
            self._resolving.add(task)
            task.add_done_callback(self._resolving.discard)

    def detach(self, driver: Driver[Any]) -> None:
        super().detach(driver)
        for address, drivers in list(self._routes.items()):
            self._routes[address] = [d for d in drivers if d is not driver]

    async def start(self, host: str) -> None:
        """Listen on UDP; on failure log once and carry on (polling still works)."""
        target = self.settings.address(host)
        if target is None or not self.drivers:
            return
        for driver in self.drivers:
            if isinstance(driver, PjlinkDriver):
                await self._route(driver)
        listener = NotificationListener(*target, self._deliver)
        try:
            self.address = await listener.start()
        except OSError as err:
            log.warning(
                "PJLink notifications off: cannot listen on UDP %s:%d (%s); projectors are still polled",
                *target,
                err.strerror or err,
            )
            return
        self._listener = listener
        log.info("PJLink class 2 notifications on udp://%s:%d", *self.address)

    async def stop(self) -> None:
        for task in list(self._resolving):
            task.cancel()
        if self._listener is not None:
            self._listener.close()
            self._listener = None

    def simulator_knobs(self) -> dict[str, Any]:
        """Simulated projectors send their notifications to this listener."""
        if self.address is None:
            return {}
        return {"notify": f"{self.address[0]}:{self.address[1]}"}

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

    async def _route(self, driver: PjlinkDriver) -> None:
        """Add `driver` to the routes under every address its host resolves to."""
        host = driver.config.transport.host
        if not host:  # serial://: a notification comes from a network address, never from it
            log.info(
                "%s: no class 2 notifications on %s (they come over the network); it is polled",
                driver.label,
                driver.config.transport,
            )
            return
        loop = asyncio.get_running_loop()
        try:
            infos = await loop.getaddrinfo(host, None, type=socket.SOCK_DGRAM)
            addresses = {str(info[4][0]) for info in infos}
        except OSError as err:
            log.warning("%s: cannot resolve %s for notifications: %s", driver.label, host, err)
            addresses = {host}
        if driver not in self.drivers:  # detached while resolving
            return
        for address in addresses:
            self._routes.setdefault(address, []).append(driver)
