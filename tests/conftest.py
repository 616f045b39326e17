"""Fixtures shared by every test; helpers are in tests/helpers.py, browser fixtures in
tests/browser.py."""

from __future__ import annotations

import gc
import importlib.util
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping
from functools import partial
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from hypothesis import settings

from hub.app import Hub
from hub.config import Config
from simulators.base import Simulator
from simulators.pjlink import PjlinkSimulator
from tests.helpers import HubRig, S, SimulatorStarter, fast_config, hub_config, load_demo
from tests.panel import Panel
from tests.rig import R, Rig, RigStarter

HubFactory = Callable[..., Awaitable[Hub]]

# Property tests judge outcomes, not speed: a shared CI machine must not fail them on time.
settings.register_profile("avhub", deadline=None, print_blob=True)
settings.load_profile("avhub")


@pytest.fixture
async def hub_factory() -> AsyncIterator[HubFactory]:
    """Start hubs from a config, or its plain data (tests/helpers.py `hub_config`), on
    127.0.0.1, any free port; stops them after the test."""
    hubs: list[Hub] = []

    async def start(config: Config | Mapping[str, Any], env: dict[str, str] | None = None) -> Hub:
        hub = Hub(config if isinstance(config, Config) else hub_config(config, env))
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


@pytest_asyncio.fixture(loop_scope="module")
async def demo() -> AsyncIterator[HubRig]:
    """The demo building with fast simulators, every device online (module-scoped loop)."""
    rig = await HubRig(fast_config(load_demo())).start()
    await rig.all_online()
    yield rig
    await rig.close()


@pytest.fixture
def no_loop_errors(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    """Fail the test if asyncio reported an unhandled error ("Exception in callback", ...)."""
    yield
    gc.collect()  # "Task exception was never retrieved" is reported when the task is freed
    records = caplog.get_records("setup") + caplog.get_records("call") + caplog.records
    errors = [r for r in records if r.name == "asyncio" and r.levelno >= logging.ERROR]
    assert not errors, [r.getMessage() for r in errors]


# ---- the browser tests without Playwright ------------------------------------------------

PLAYWRIGHT = importlib.util.find_spec("playwright") is not None
# The browser tests import tests.browser before pytest loads it as their plugin.
pytest.register_assert_rewrite("tests.browser")


class _NoPlaywright(pytest.File):
    """A browser test module that cannot be imported: one failing `browser` test instead."""

    def collect(self) -> Iterator[pytest.Item]:
        item = _NeedsPlaywright.from_parent(self, name="needs_playwright")
        item.add_marker(pytest.mark.browser)
        yield item


class _NeedsPlaywright(pytest.Item):
    def runtest(self) -> None:
        pytest.fail("the browser tests need Playwright: pip install -e '.[test]'")

    def reportinfo(self) -> tuple[Path, int, str]:
        return self.path, 0, self.name


def pytest_pycollect_makemodule(module_path: Path, parent: pytest.Collector) -> pytest.File | None:
    """Without Playwright, `-m 'not browser'` deselects the browser tests; any run that
    selects them fails (never skips)."""
    if module_path.name.startswith("test_ui_") and not PLAYWRIGHT:
        return _NoPlaywright.from_parent(parent, path=module_path)
    return None
