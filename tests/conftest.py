"""Shared test helpers: wait on conditions, never on clocks."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from functools import partial
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

import pytest

from hub.app import Hub
from hub.config import load_config_text
from simulators.base import Simulator
from simulators.pjlink import PjlinkSimulator
from tests.panel import Panel

if TYPE_CHECKING:  # tests.rig imports `until` from here
    from tests.rig import R, Rig, RigStarter

S = TypeVar("S", bound=Simulator[Any])


async def until(
    predicate: Callable[[], object | Awaitable[object]],
    timeout: float = 5.0,
    interval: float = 0.01,
    message: str = "",
) -> None:
    """Wait until `predicate()` is truthy; fail the test after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {message or predicate}")
        await asyncio.sleep(interval)


@pytest.fixture
async def hub_factory() -> AsyncIterator[Callable[..., Awaitable[Hub]]]:
    """Start hubs from YAML text on 127.0.0.1, any free port; stops them after the test."""
    hubs: list[Hub] = []

    async def start(text: str, env: dict[str, str] | None = None) -> Hub:
        hub = Hub(load_config_text(text, "test.yaml", env or {}))
        hubs.append(hub)
        await hub.start("127.0.0.1", 0)
        return hub

    yield start
    for hub in hubs:
        await hub.stop()


@pytest.fixture
async def panels() -> AsyncIterator[Callable[..., Panel]]:
    """Make test panels; every one still connected is disconnected after the test."""
    made: list[Panel] = []

    def make(hub: Hub, room: str, **kw: object) -> Panel:
        assert hub.address is not None
        panel = Panel(f"http://{hub.address[0]}:{hub.address[1]}", room, **kw)  # type: ignore[arg-type]
        made.append(panel)
        return panel

    yield make
    for panel in made:
        await panel.disconnect()


def free_udp_port() -> int:
    """A UDP port on 127.0.0.1 that nothing listens on (at the time of asking)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class SimulatorStarter(Protocol):
    """The `simulators` fixture: `await simulators(SimulatorClass, **knobs)` is a started one."""

    def __call__(self, kind: type[S], /, **knobs: Any) -> Awaitable[S]: ...


@pytest.fixture
async def simulators() -> AsyncIterator[SimulatorStarter]:
    """Start simulators from knobs on loopback, any free port; stops them after the test."""
    started: list[Simulator[Any]] = []

    async def start(kind: type[S], /, **knobs: Any) -> S:
        sim = kind.from_options(knobs)
        await sim.start()
        started.append(sim)
        return sim

    yield start
    for sim in started:
        await sim.stop()


@pytest.fixture
def pjlink_sims(simulators: SimulatorStarter) -> Callable[..., Awaitable[PjlinkSimulator]]:
    """Start PJLink simulators on loopback (fast warm-up); stops them after the test."""
    return partial(simulators, PjlinkSimulator, warmup=0.2, cooldown=0.2)


@pytest.fixture
async def rigs() -> AsyncIterator[RigStarter]:
    """Start rigs (tests/rig.py): `await rigs(RigClass, **knobs)`; all stopped after the test."""
    started: list[Rig[Any, Any]] = []

    async def start(make: Callable[..., R], /, **knobs: Any) -> R:
        rig = make(**knobs)
        started.append(rig)
        await rig.start()
        return rig

    yield start
    for rig in started:
        await rig.stop()
