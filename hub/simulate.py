"""`--simulate`: a simulator on loopback for every device, and a config aimed at them."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from drivers.config import DeviceConfig
from drivers.errors import ConfigError
from drivers.service import DriverService
from drivers.transport.url import TransportUrl
from hub.config import Config, simulator_for, simulator_options
from simulators.base import PTY_BAUD_RATES, Simulator

log = logging.getLogger("avhub.simulate")


class Simulators:
    """The simulators one hub process started; stopped together."""

    def __init__(self) -> None:
        self.running: list[Simulator[Any]] = []
        # "room/device" -> (its config in the file, the config aimed at its simulator, simulator)
        self._devices: dict[str, tuple[DeviceConfig, DeviceConfig, Simulator[Any]]] = {}

    def __len__(self) -> int:
        return len(self.running)

    async def start_for(self, config: Config) -> Config:
        """A simulator per device; the config with transports pointing at them.

        Called again (a reload), a device whose config did not change keeps its simulator
        (and so its aimed config, which the hub then sees unchanged); a new or changed
        device gets a new one, and simulators of devices no longer there stop.
        """
        rooms = {}
        kept: dict[str, tuple[DeviceConfig, DeviceConfig, Simulator[Any]]] = {}
        for room_id, room in config.rooms.items():
            devices = {}
            for device_id, device in room.devices.items():
                label = f"{room_id}/{device_id}"
                known = self._devices.get(label)
                if known is None or known[0] != device:
                    known = (device, *await self._start_one(label, device))
                kept[label] = known
                devices[device_id] = known[1]
            rooms[room_id] = room.model_copy(update={"devices": devices})
        for label, (_, _, sim) in self._devices.items():
            if kept.get(label, (None, None, None))[2] is not sim:
                log.info("%s: stopping its simulator", label)
                await sim.stop()
                self.running.remove(sim)
        self._devices = kept
        return config.model_copy(update={"rooms": rooms})

    async def _start_one(
        self, label: str, device: DeviceConfig
    ) -> tuple[DeviceConfig, Simulator[Any]]:
        try:
            sim = simulator_for(device.driver).from_options(simulator_options(device))
        except ConfigError as err:
            raise ConfigError(f"{label}: cannot simulate: {err}") from None
        if device.transport.scheme == "serial":
            url = await _serve_on_pty(label, sim, device.transport)
        else:
            url = await _serve_on_loopback(label, sim, device.transport)
        self.running.append(sim)
        log.info("%s: %s simulator on %s", label, device.driver, url)
        return device.model_copy(update={"transport": url}), sim

    def aim_at(self, services: Mapping[str, DriverService[Any]]) -> None:
        """Give each simulator the knobs that point it at its driver kind's service, if any.

        For example a simulated PJLink projector sends its class 2 notifications to the
        hub's listener.
        """
        for sim in self.running:
            service = services.get(sim.kind)
            if service is not None:
                for knob, value in service.simulator_knobs().items():
                    setattr(sim.knobs, knob, value)

    async def stop(self) -> None:
        for sim in self.running:
            await sim.stop()
        self.running.clear()
        self._devices.clear()


async def _serve_on_pty(label: str, sim: Simulator[Any], url: TransportUrl) -> TransportUrl:
    """Start `sim` on a pty at the URL's baud rate; the URL with the pty as its path."""
    if not sim.serial:
        log.info("%s: %s has no RS-232 variant; simulating it on a pty anyway", label, sim.kind)
    params = dict(url.params)
    pty_only = (("bytesize", 8), ("parity", "N"))  # Linux ptys refuse or ignore other values
    dropped = [f"{k}={params.pop(k)}" for k, ok in pty_only if params.get(k, ok) != ok]
    if dropped:
        log.info(
            "%s: a pty carries only 8 data bits, no parity; simulating without %s",
            label,
            ", ".join(dropped),
        )
    baudrate = int(params.get("baudrate", 9600))
    if baudrate not in PTY_BAUD_RATES:
        log.info(
            "%s: a pty cannot run at %d baud (not a standard rate); simulating at 9600",
            label,
            baudrate,
        )
        baudrate = params["baudrate"] = 9600
    path = await sim.start_pty(baudrate=baudrate)
    return TransportUrl("serial", path=path, params=params)


async def _serve_on_loopback(label: str, sim: Simulator[Any], url: TransportUrl) -> TransportUrl:
    """Start `sim` on a loopback port; the URL aimed at it (rfc2217:// becomes socket://)."""
    if url.scheme == "rfc2217":
        log.info("%s: simulators do not speak RFC 2217; simulating %s as socket://", label, url)
        url = TransportUrl("socket", url.host, url.port)
    await sim.start("127.0.0.1", 0)
    return url.with_address("127.0.0.1", sim.port)
