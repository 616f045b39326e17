"""Shared test helpers: wait on conditions, never on clocks."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeVar

import pytest

from hub.app import Hub
from hub.config import load_config_text
from simulators.pjlink import PjlinkKnobs, PjlinkSimulator
from tests.panel import Panel

if TYPE_CHECKING:  # tests.rig imports `until` from here
    from tests.rig import Rig, RigStarter

R = TypeVar("R", bound="Rig[Any, Any]")


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


@pytest.fixture
async def pjlink_sims() -> AsyncIterator[Callable[..., Awaitable[PjlinkSimulator]]]:
    """Start PJLink simulators on loopback (fast warm-up); stops them after the test."""
    sims: list[PjlinkSimulator] = []

    async def start(**knobs: object) -> PjlinkSimulator:
        sim = PjlinkSimulator(PjlinkKnobs.model_validate({"warmup": 0.2, "cooldown": 0.2, **knobs}))
        await sim.start()
        sims.append(sim)
        return sim

    yield start
    for sim in sims:
        await sim.stop()


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
