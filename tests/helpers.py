"""Test helpers: wait on conditions (never on clocks), free ports, hub configs from plain data,
and hubs started with a simulator for every device. Fixtures are in tests/conftest.py.

`until` is the test kit's (hub/testkit.py), re-exported so every test imports its helpers
from here.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Protocol, TypeVar

import yaml

from hub.app import Hub
from hub.cli import demo_config_path
from hub.config import Config, load_config, load_config_text
from hub.simulate import Simulators
from hub.testkit import until as until  # re-exported
from simulators import SIMULATORS
from simulators.base import Simulator

S = TypeVar("S", bound=Simulator[Any])
LOCALHOST = "127.0.0.1"


async def seconds_until(
    predicate: Callable[[], object | Awaitable[object]], timeout: float = 5.0, message: str = ""
) -> float:
    """How long it took until `predicate()` was truthy; fails after `timeout` as `until` does."""
    started = time.monotonic()
    await until(predicate, timeout, message=message)
    return time.monotonic() - started


def free_udp_port() -> int:
    """A UDP port on 127.0.0.1 that nothing listens on (at the time of asking)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind((LOCALHOST, 0))
        return int(sock.getsockname()[1])


def closed_tcp_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on (at the time of asking)."""
    with socket.socket() as sock:
        sock.bind((LOCALHOST, 0))
        return int(sock.getsockname()[1])


def hub_config(data: Mapping[str, Any], env: Mapping[str, str] | None = None) -> Config:
    """A deployment given as plain data, validated by the real loader as if read from a file."""
    return load_config_text(yaml.safe_dump(dict(data), sort_keys=False), "test.yaml", env or {})


# Device settings for hubs whose tests watch polls: every 0.1 s, quick to give up and retry.
FAST_POLLS: dict[str, Any] = {
    "poll_interval": 0.1,
    "timeout": 0.5,
    "connect_timeout": 0.5,
    "reconnect_min": 0.05,
    "reconnect_max": 0.2,
}


def pjlink_at(port: int, **settings: Any) -> dict[str, Any]:
    """A PJLink projector's config at 127.0.0.1:`port`, polled fast (`FAST_POLLS`);
    `settings` add to or override those."""
    return {
        "driver": "pjlink",
        "transport": f"tcp://{LOCALHOST}:{port}",
        **FAST_POLLS,
        **settings,
    }


class SimulatorStarter(Protocol):
    """The `simulators` fixture: `await simulators(SimulatorClass, **knobs)` is a started one."""

    def __call__(self, kind: type[S], /, **knobs: Any) -> Awaitable[S]: ...


# ---- hubs with a simulator for every device (UI and end-to-end tests) --------------------

# Short device timings, applied to every device config or simulator that has the setting.
FAST_DEVICE: dict[str, Any] = {
    "poll_interval": 0.2,
    "timeout": 1.0,
    "connect_timeout": 1.0,
    "reconnect_min": 0.05,
    "reconnect_max": 0.3,
    "transition_poll": 0.05,
    "power_settle": 0.0,
}
FAST_SIMULATOR: dict[str, Any] = {"warmup": 0.8, "cooldown": 0.8}


def fast_config(config: Config, **device: Any) -> Config:
    """`config` with short poll/retry times and simulator warm-ups for every device."""
    rooms = {}
    for room_id, room in config.rooms.items():
        devices = {}
        for device_id, dev in room.devices.items():
            knobs = SIMULATORS[dev.driver].knobs_model.model_fields
            fields = type(dev).model_fields
            update = {k: v for k, v in {**FAST_DEVICE, **device}.items() if k in fields}
            sim = {k: v for k, v in FAST_SIMULATOR.items() if k in knobs}
            update["simulator"] = {**(dev.simulator or {}), **sim}
            devices[device_id] = dev.model_copy(update=update)
        rooms[room_id] = room.model_copy(update={"devices": devices})
    return config.model_copy(update={"rooms": rooms})


class HubRig:
    """A simulator for every device of a config, and a hub aimed at them.

    The simulators outlive the hub: `stop_hub()` and `start_hub()` restart the hub (a new
    `Hub`, so a new epoch, as after a process restart) on the same port, with the devices
    keeping their state.
    """

    def __init__(self, config: Config) -> None:
        self.config = config
        self.simulators = Simulators()
        self.sims: dict[str, Simulator[Any]] = {}  # "room/device" -> simulator
        self.hub: Hub | None = None
        self.port = 0

    async def start(self) -> HubRig:
        self.config = await self.simulators.start_for(self.config)
        labels = [f"{r}/{d}" for r, room in self.config.rooms.items() for d in room.devices]
        self.sims = dict(zip(labels, self.simulators.running, strict=True))  # started in order
        await self.start_hub()
        return self

    async def start_hub(self) -> Hub:
        hub = Hub(self.config)
        _, self.port = await hub.start(LOCALHOST, self.port)
        self.simulators.aim_at(hub.services)
        self.hub = hub
        return hub

    async def stop_hub(self) -> None:
        if self.hub is not None:
            await self.hub.stop()
            self.hub = None

    async def close(self) -> None:
        await self.stop_hub()
        await self.simulators.stop()

    def url(self, path: str = "") -> str:
        return f"http://{LOCALHOST}:{self.port}{path}"

    async def all_online(self, timeout: float = 10.0) -> None:
        hub = self.hub
        assert hub is not None
        await until(
            lambda: all(d.online for d in hub.all_drivers()), timeout, message="devices online"
        )


def load_demo() -> Config:
    """The embedded demo building (`avhub demo`)."""
    return load_config(demo_config_path())


def assert_same_snapshot(got: Mapping[str, Any], expected: Mapping[str, Any]) -> None:
    """`got` is the snapshot `expected` is, but for what polls move on meanwhile: the seq
    and the devices' entries (the same devices)."""
    assert {**got, "devices": None, "seq": None} == {**expected, "devices": None, "seq": None}
    assert got["devices"].keys() == expected["devices"].keys()
