"""Shared test helpers: wait on conditions, never on clocks."""

from __future__ import annotations

import os
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

import pytest
import pytest_asyncio
from hypothesis import settings
from playwright.async_api import Browser, Page, async_playwright

from hub.app import Hub
from hub.cli import demo_config_path
from hub.config import Config, load_config, load_config_text
from hub.simulate import Simulators
from hub.testkit import until
from simulators import SIMULATORS
from simulators.base import Simulator
from simulators.pjlink import PjlinkSimulator
from tests.panel import Panel

if TYPE_CHECKING:
    from tests.rig import R, Rig, RigStarter

S = TypeVar("S", bound=Simulator[Any])

# Property tests judge outcomes, not speed: a shared CI machine must not fail them on time.
settings.register_profile("avhub", deadline=None, print_blob=True)
settings.load_profile("avhub")


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


# ---- hubs with simulators, and a browser (UI and HTTP tests) ------------------------------

CHROMIUM = os.environ.get("AVHUB_CHROMIUM", "/usr/bin/chromium")
# A closed network: without the background-networking flags Chromium keeps dialling out.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = Path(__file__).resolve().parent.parent / "artifacts"
SCREENSHOTS = ARTIFACTS / "screenshots"
LOCALHOST = "127.0.0.1"

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


@pytest_asyncio.fixture(loop_scope="module")
async def demo() -> AsyncIterator[HubRig]:
    """The demo building with fast simulators, every device online (module-scoped loop)."""
    rig = await HubRig(fast_config(load_demo())).start()
    await rig.all_online()
    yield rig
    await rig.close()


def chromium_path() -> str:
    """The system Chromium; fails (never skips) the browser tests when it is missing."""
    if not Path(CHROMIUM).is_file():
        pytest.fail(f"browser tests need Chromium at {CHROMIUM}: apt-get install chromium")
    return CHROMIUM


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def browser() -> AsyncIterator[Browser]:
    """The system Chromium, once per test module (tests use `loop_scope="module"`)."""
    async with async_playwright() as playwright:
        chromium = await playwright.chromium.launch(
            executable_path=chromium_path(), args=CHROMIUM_ARGS, timeout=30_000
        )
        yield chromium
        await chromium.close()


@pytest_asyncio.fixture(loop_scope="module")
async def page(browser: Browser) -> AsyncIterator[Page]:
    """A fresh page (own storage) at 1280x800; fails the test on any JavaScript error."""
    context = await browser.new_context(viewport={"width": 1280, "height": 800})
    context.set_default_timeout(5_000)
    tab = await context.new_page()
    errors: list[Exception] = []
    tab.on("pageerror", lambda error: errors.append(error))
    yield tab
    await context.close()
    assert not errors, f"JavaScript errors on the page: {errors}"


TARGET = 48  # px, the smallest touch target


async def touch_problems(page: Page) -> list[str]:
    """Controls smaller than 48x48 px, buttons whose text can be selected, horizontal overflow."""
    problems: list[str] = await page.evaluate(
        """(target) => {
          const out = [];
          for (const el of document.querySelectorAll("button, a.btn, input")) {
            const box = el.getBoundingClientRect();
            if (box.width === 0) continue;  // not displayed
            if (box.width < target || box.height < target) {
              out.push(`${el.outerHTML.slice(0, 60)} is ${box.width}x${box.height}`);
            }
            if (el.matches("button, a.btn") && getComputedStyle(el).userSelect !== "none") {
              out.push(`${el.outerHTML.slice(0, 60)} allows text selection`);
            }
          }
          const width = document.documentElement.scrollWidth;
          if (width > innerWidth) out.push(`page is ${width}px wide in a ${innerWidth}px window`);
          return out;
        }""",
        TARGET,
    )
    return problems
