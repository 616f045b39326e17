"""The touch panel in Chromium across a reload, and pages of other origins kept out.

A reload that changes a room's devices sends its panels a fresh snapshot with the same
epoch and seq: the page redraws in place, without reconnecting. A room that leaves the
deployment tells its panels (`closing`) and the page says so and stops reconnecting. A
page of another origin cannot power a projector on; the hub's own page still can.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
import yaml
from aiohttp import web
from playwright.async_api import Page, expect

from hub.app import Hub
from hub.config import load_config
from hub.reload import Reloader
from hub.simulate import Simulators
from simulators.pjlink import PjlinkSimulator
from tests.browser import SCREENSHOTS
from tests.helpers import LOCALHOST, until

pytest_plugins = ["tests.browser"]
pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="module")]

FAST = {
    "poll_interval": 0.2,
    "timeout": 1,
    "connect_timeout": 1,
    "reconnect_min": 0.05,
    "reconnect_max": 0.3,
}
SETTLE = 10_000  # ms


def deployment(rooms: dict[str, list[str]]) -> str:
    """The deployment file's text: a PJLink projector (simulated) per device."""

    def device(name: str) -> dict[str, Any]:
        return {
            "driver": "pjlink",
            "name": name.title(),
            "transport": "tcp://127.0.0.1:4352",
            **FAST,
        }

    config = {
        "rooms": {
            room: {"name": room.title(), "devices": {d: device(d) for d in devices}}
            for room, devices in rooms.items()
        }
    }
    return yaml.safe_dump(config, sort_keys=False)


class Site:
    """A hub run from a file with a simulator per device (as `avhub run --simulate`)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.sims = Simulators()
        self.hub: Hub | None = None

    async def start(self, rooms: dict[str, list[str]]) -> Hub:
        self.path.write_text(deployment(rooms))
        hub = Hub(await self.sims.start_for(load_config(self.path)))
        await hub.start(LOCALHOST, 0)
        self.sims.aim_at(hub.services)
        hub.reloader = Reloader(hub, self.path, self.sims)
        self.hub = hub
        return hub

    async def reload(self, rooms: dict[str, list[str]]) -> None:
        assert self.hub is not None and self.hub.reloader is not None
        self.path.write_text(deployment(rooms))
        outcome = await self.hub.reloader.reload()
        assert outcome.ok, outcome.answer()

    def url(self, path: str) -> str:
        assert self.hub is not None and self.hub.address is not None
        return f"http://{self.hub.address[0]}:{self.hub.address[1]}{path}"

    async def close(self) -> None:
        if self.hub is not None:
            await self.hub.stop()
        await self.sims.stop()


@pytest_asyncio.fixture(loop_scope="module")
async def site(tmp_path: Path) -> AsyncIterator[Site]:
    site = Site(tmp_path / "site.yaml")
    yield site
    await site.close()


def card(device: str) -> str:
    return f'article.card[data-device="{device}"]'


async def link(page: Page) -> dict[str, Any]:
    result: dict[str, Any] = await page.evaluate(
        "({connects: avhub.stats.connects, epoch: avhub.sync.epoch, seq: avhub.sync.seq,"
        " snapshots: avhub.sync.stats.snapshots, connected: avhub.socket.connected,"
        " active: avhub.socket.active, schemas: avhub.stats.schemas})"
    )
    return result


async def test_the_panel_redraws_in_place_when_devices_come_and_go(site: Site, page: Page) -> None:
    hub = await site.start({"lobby": ["proj"], "hall": ["left"]})
    await page.goto(site.url("/rooms/lobby"))
    await expect(page.locator("body")).to_have_attribute("data-sync", "ok", timeout=SETTLE)
    await expect(page.locator(f"{card('proj')}[data-online=true]")).to_be_visible(timeout=SETTLE)
    before = await link(page)

    await site.reload({"lobby": ["proj", "screen"], "hall": ["left"]})
    await expect(page.locator(f"{card('screen')}[data-online=true]")).to_be_visible(timeout=SETTLE)
    await expect(page.locator(card("screen")).locator("h2")).to_have_text("Screen")
    # Its schemas are the projector's, which the page holds: the redraw carried none.
    await expect(page.locator(card("screen")).locator("[data-action=power_on]")).to_be_visible()
    assert (await link(page))["schemas"] == before["schemas"] > 0
    await site.reload({"lobby": ["screen"], "hall": ["left"]})
    await expect(page.locator(card("proj"))).to_have_count(0)
    await expect(page.locator(card("screen"))).to_be_visible()
    await expect(page.locator("#banner")).to_be_hidden()

    after = await link(page)
    assert after["connects"] == before["connects"] == 1, "the panel reconnected"
    assert after["epoch"] == before["epoch"]
    assert after["snapshots"] == before["snapshots"] + 2
    devices = await page.evaluate("avhub.sync.devices")
    assert set(devices) == set(hub.rooms["lobby"].store.devices) == {"screen"}
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(SCREENSHOTS / "reload-redrawn.png"))


async def test_a_removed_room_tells_its_panel_which_stops_reconnecting(
    site: Site, page: Page
) -> None:
    await site.start({"lobby": ["proj"], "hall": ["left"]})
    await page.goto(site.url("/rooms/hall"))
    await expect(page.locator("body")).to_have_attribute("data-sync", "ok", timeout=SETTLE)

    await site.reload({"lobby": ["proj"]})
    await expect(page.locator("body")).to_have_attribute("data-gone", "yes")
    await expect(page.locator("#banner")).to_have_text("This room is no longer on the hub.")
    await expect(page.locator(card("left"))).to_have_count(0)
    state = await link(page)
    assert state["connected"] is False and state["active"] is False, "it would reconnect"
    assert await page.evaluate("sessionStorage.getItem('avhub.sync.hall')") is None
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(SCREENSHOTS / "reload-room-removed.png"))


# ---- other origins ----------------------------------------------------------------------------

ATTACK = """<!doctype html><html><body>
<form id="form" method="post" enctype="text/plain" action="{target}">
  <input name='{{"x":"' value='"}}'>
</form>
<script>
  window.sent = fetch("{target}", {{
    method: "POST", mode: "no-cors", body: "{{}}", headers: {{"Content-Type": "text/plain"}}
  }}).then(() => "sent", (e) => "failed: " + e);
</script></body></html>"""


async def test_a_page_of_another_origin_cannot_power_the_projector_on(
    site: Site, page: Page
) -> None:
    hub = await site.start({"lobby": ["proj"]})
    await until(lambda: hub.rooms["lobby"].drivers["proj"].online, timeout=10)
    sim = site.sims.running[0]
    assert isinstance(sim, PjlinkSimulator)
    target = site.url("/api/rooms/lobby/devices/proj/power_on")
    seen: list[str] = []
    page.on(
        "response", lambda r: seen.append(f"{r.status} {r.url}") if "power_on" in r.url else None
    )

    async def attack_page(request: web.Request) -> web.Response:
        return web.Response(text=ATTACK.format(target=target), content_type="text/html")

    attacker = web.Application()
    attacker.router.add_get("/", attack_page)
    runner = web.AppRunner(attacker)
    await runner.setup()
    other = web.TCPSite(runner, LOCALHOST, 0)
    await other.start()
    try:
        port = runner.addresses[0][1]
        await page.goto(f"http://{LOCALHOST}:{port}/")
        assert await page.evaluate("window.sent") == "sent"
        async with page.expect_navigation():
            await page.evaluate("document.getElementById('form').submit()")
        await until(lambda: len(seen) >= 1, message="the hub answered the form")
    finally:
        await runner.cleanup()
    assert sim.power == "off"
    assert hub.rooms["lobby"].counters.commands["ok"] == 0
    assert all(line.startswith("403 ") for line in seen), seen

    # The hub's own page: the panel works, and so does a JSON command from its origin.
    await page.goto(site.url("/rooms/lobby"))
    await expect(page.locator("body")).to_have_attribute("data-sync", "ok", timeout=SETTLE)
    status = await page.evaluate(
        """async (url) => (await fetch(url, {method: "POST", body: "{}",
             headers: {"Content-Type": "application/json"}})).status""",
        target,
    )
    assert status == 200
    await until(lambda: sim.power in ("warming", "on"), message="the projector powers on")
    await expect(page.locator(f"{card('proj')} [data-role=status]")).to_have_text("Online")
