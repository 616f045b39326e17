"""A panel losing its hub and coming back in the device's true state (DESIGN.md §3).

The simulators run in the test, apart from the hub, so the hub can stop and start again on
the same port while the devices keep their state and the page stays open.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio
from playwright.async_api import BrowserContext, Page, expect

from simulators.pjlink import PjlinkSimulator
from tests.helpers import HubRig, fast_config, hub_config, until
from tests.test_door import served_by_door

pytest_plugins = ["tests.browser"]
pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="module")]

ROOM = "studio"
PROJECTOR = {
    "driver": "pjlink",
    "name": "Projector",
    "transport": "tcp://127.0.0.1:4352",
    "inputs": {"31": "Table HDMI", "32": "Wall plate"},
    "simulator": {"power": "on", "inputs": ["31", "32"], "input": "31"},
}
CONFIG = {"rooms": {ROOM: {"name": "Studio", "devices": {"proj": PROJECTOR}}}}
CARD = 'article.card[data-device="proj"]'
RECONNECT = 10_000  # ms: the panel retries with a backoff of at most 3 s


@pytest_asyncio.fixture(loop_scope="module")
async def rig() -> AsyncIterator[HubRig]:
    rig = await HubRig(fast_config(hub_config(CONFIG))).start()
    await rig.all_online()
    await until(lambda: device_state(rig).get("input") == "Table HDMI", message="first poll")
    yield rig
    await rig.close()


def projector(rig: HubRig) -> PjlinkSimulator:
    sim = rig.sims[f"{ROOM}/proj"]
    assert isinstance(sim, PjlinkSimulator)
    return sim


def device_state(rig: HubRig) -> dict[str, Any]:
    assert rig.hub is not None
    return rig.hub.rooms[ROOM].store.devices["proj"].state


async def panel_in_sync(page: Page) -> None:
    await expect(page.locator("body")).to_have_attribute("data-sync", "ok", timeout=RECONNECT)
    await expect(page.locator("#banner")).to_be_hidden()


async def shows_wall_plate_muted(page: Page) -> None:
    """What the projector was changed to while the panel was away."""
    await expect(page.locator(f'{CARD} [data-input="Wall plate"]')).to_have_attribute(
        "aria-pressed", "true", timeout=RECONNECT
    )
    await expect(page.locator(f'{CARD} [data-input="Table HDMI"]')).to_have_attribute(
        "aria-pressed", "false"
    )
    await expect(page.locator(f"{CARD} [data-toggle=video_mute]")).to_have_attribute(
        "aria-pressed", "true"
    )


async def change_projector_while_away(rig: HubRig) -> None:
    """Change input and mute at the projector; wait until the hub has committed both."""
    sim = projector(rig)
    sim.set_input("32")
    sim.set_mutes(video=True)
    hub = rig.hub
    if hub is not None:
        await until(
            lambda: (
                device_state(rig).get("input") == "Wall plate"
                and device_state(rig).get("video_mute") is True
            ),
            message="hub saw the changes",
        )
        namespace = hub.namespaces[ROOM]
        assert namespace.fanout is not None and len(namespace.fanout) == 0, "panel still here"


async def panel_matches_hub(page: Page, rig: HubRig) -> None:
    """The panel's (epoch, seq, state) is exactly the hub's, once the device is quiet."""
    assert rig.hub is not None
    room = rig.hub.rooms[ROOM].store

    async def same() -> bool:
        mine = await page.evaluate(
            "({epoch: avhub.sync.epoch, seq: avhub.sync.seq, devices: avhub.sync.devices})"
        )
        snapshot = room.snapshot()
        return bool(
            mine["epoch"] == snapshot["epoch"]
            and mine["seq"] == snapshot["seq"]
            and mine["devices"] == snapshot["devices"]
        )

    await until(same, timeout=5, message="panel state == hub state")


async def stats(page: Page) -> dict[str, Any]:
    result: dict[str, Any] = await page.evaluate(
        "({...avhub.sync.stats, ...avhub.stats, epoch: avhub.sync.epoch})"
    )
    return result


async def back_in_true_state(page: Page, rig: HubRig) -> dict[str, Any]:
    """Wait until the panel is in sync, shows the changes, equals the hub; its stats."""
    await panel_in_sync(page)
    await shows_wall_plate_muted(page)
    await panel_matches_hub(page, rig)
    return await stats(page)


async def test_resume_replays_what_the_panel_missed(rig: HubRig, page: Page) -> None:
    """Resume-replay path: the link drops while the hub keeps running (same epoch).

    The browser is taken offline, which closes the panel's websocket and holds back its
    reconnects; the projector changes meanwhile and the hub commits the changes with no
    panel connected. Back online, the panel resumes with its (epoch, seq): the hub
    replays the missed changes, so no new snapshot arrives and no sync is needed.
    """
    await page.goto(rig.url(f"/rooms/{ROOM}"))
    await panel_in_sync(page)
    before = await stats(page)
    assert before["snapshots"] == 1

    context: BrowserContext = page.context
    await context.set_offline(True)
    await expect(page.locator("#banner")).to_be_visible()
    await expect(page.locator("#banner")).to_have_text("Reconnecting…")
    await change_projector_while_away(rig)
    await context.set_offline(False)

    after = await back_in_true_state(page, rig)
    assert after["epoch"] == before["epoch"]
    assert after["snapshots"] == 1, "resumed with a snapshot, not a replay"
    assert after["syncs"] == 0
    assert after["resumes"] >= 1
    assert after["applied"] > before["applied"]


async def test_a_restarted_hub_sends_a_snapshot_of_the_true_state(rig: HubRig, page: Page) -> None:
    """New-epoch snapshot path: the hub process stops and starts again.

    The in-memory store starts a new epoch, so the panel's resume names an epoch the hub
    does not know and gets a snapshot. The projector changed while the hub was down; the
    new hub polls it, and the panel ends with its true state.
    """
    await page.goto(rig.url(f"/rooms/{ROOM}"))
    await panel_in_sync(page)
    before = await stats(page)

    await rig.stop_hub()
    await expect(page.locator("#banner")).to_have_text("Reconnecting…")
    await expect(page.locator("body")).to_have_attribute("data-link", "down")
    # What the card shows is the last known state: it says so, looks it, takes no touch.
    card = page.locator(CARD)
    await expect(card.locator("[data-role=status]")).to_have_text("Not connected to the hub")
    await expect(card).to_have_class(re.compile(r"\bstale\b"))
    assert await page.evaluate("document.querySelector('#devices').inert") is True
    # An error said meanwhile (as a command sent just then would get) is about that moment.
    await page.evaluate(
        "avhub.cards.get('proj').say('error', 'Not connected to the hub; try again in a moment.')"
    )
    await change_projector_while_away(rig)
    await rig.start_hub()

    after = await back_in_true_state(page, rig)
    await expect(page.locator(f"{CARD} [data-role=status]")).to_have_text("Online")
    await expect(card).not_to_have_class(re.compile(r"\bstale\b"))
    await expect(card.locator("[data-role=message]")).to_have_text("")
    assert await page.evaluate("document.querySelector('#devices').inert") is False
    assert after["epoch"] != before["epoch"]
    assert after["snapshots"] == before["snapshots"] + 1
    assert after["resumes"] >= 1


async def test_a_reloaded_page_resumes_from_session_storage(rig: HubRig, page: Page) -> None:
    """The tab keeps (epoch, seq, state) in sessionStorage: leaving and coming back resumes."""
    url = rig.url(f"/rooms/{ROOM}")
    await page.goto(url)
    await panel_in_sync(page)
    await until(
        lambda: page.evaluate("sessionStorage.getItem('avhub.sync.studio') !== null"),
        message="state saved",
    )
    await page.goto("about:blank")
    await change_projector_while_away(rig)
    await page.goto(url)

    after = await back_in_true_state(page, rig)
    assert after["snapshots"] == 0, "a fresh page resumed instead of loading a snapshot"
    assert after["resumes"] == 1


def door_served(rig: HubRig) -> list[bool]:
    assert rig.hub is not None
    return served_by_door(rig.hub)


async def test_the_panel_opens_a_websocket_at_once_and_comes_back_on_one(
    rig: HubRig, page: Page
) -> None:
    """WebSocket first, no long-polling request before it: the hub answers the panel at its
    door, on connect and on every reconnect (one request each, and any hub behind a load
    balancer may take it)."""
    polls: list[str] = []
    page.on("request", lambda r: polls.append(r.url) if "transport=polling" in r.url else None)
    await page.goto(rig.url(f"/rooms/{ROOM}"))
    await panel_in_sync(page)
    assert await page.evaluate("avhub.socket.io.engine.transport.name") == "websocket"
    await until(lambda: door_served(rig) == [True], message="opened through the door")
    await page.context.set_offline(True)
    await expect(page.locator("#banner")).to_have_text("Reconnecting…")
    await page.context.set_offline(False)
    await panel_in_sync(page)
    await until(lambda: door_served(rig) == [True], message="back through the door")
    assert polls == []


async def test_the_panel_falls_back_to_long_polling_without_websockets(
    rig: HubRig, page: Page
) -> None:
    """Where WebSockets do not get through (here Engine.IO refuses them), the panel connects
    by long-polling and works as before."""
    assert rig.hub is not None
    rig.hub.sio.eio.transports = ["polling"]
    try:
        await page.goto(rig.url(f"/rooms/{ROOM}"))
        await panel_in_sync(page)
        assert await page.evaluate("avhub.socket.io.engine.transport.name") == "polling"
        await until(lambda: door_served(rig) == [False], message="served by aiohttp")
        await panel_matches_hub(page, rig)
    finally:
        rig.hub.sio.eio.transports = ["polling", "websocket"]
