"""The touch panel with lean snapshots: cards drawn from schemas sent once by id, kept across
reconnects (a snapshot then carries none), and replaced when a device's schemas change."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.async_api import Page, expect

from simulators.extron_sis import ExtronSimulator
from tests.helpers import HubRig, fast_config, hub_config, load_demo, until
from tests.test_ui_panel import open_room

pytest_plugins = ["tests.browser"]
pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="module")]

SWITCHER = {
    "rooms": {
        "studio": {
            "name": "Studio",
            "devices": {
                "matrix": {
                    "driver": "extron_sis",
                    "name": "Matrix",
                    "transport": "tcp://127.0.0.1:23",
                    "prompt_wait": 0.05,
                    "simulator": {"inputs": 6, "outputs": 2},
                }
            },
        }
    }
}


async def drawn(page: Page, rig: HubRig, room: str) -> None:
    """Every device of `room` has its card, built from exactly the hub's action schemas."""
    assert rig.hub is not None
    for device_id, driver in rig.hub.rooms[room].drivers.items():
        card = page.locator(f'article.card[data-device="{device_id}"]')
        await expect(card.locator("[data-role=status]")).to_have_text("Online")
        await expect(card.locator("section.control").first).to_be_attached()
        actions = await page.evaluate("(id) => avhub.sync.view(id).actions", device_id)
        assert actions == driver.describe_actions(), device_id


async def demo_rig() -> HubRig:
    """The demo building on simulators, every device online."""
    rig = await HubRig(fast_config(load_demo())).start()
    await rig.all_online()
    return rig


async def test_every_demo_device_is_drawn_from_schemas_sent_once(page: Page) -> None:
    rig = await demo_rig()
    try:
        assert rig.hub is not None
        for room_id in rig.config.rooms:
            await open_room(page, rig, room_id)
            await drawn(page, rig, room_id)
            held = await page.evaluate("avhub.sync.heldSchemas()")
            assert sorted(held) == sorted(rig.hub.rooms[room_id].store.snapshot()["schemas"])
    finally:
        await rig.close()


async def test_a_panel_that_keeps_its_schemas_is_sent_none_and_still_draws(page: Page) -> None:
    """After a hub restart (new epoch) the panel is sent a snapshot: without any schema, as
    it names them all, and it draws every card again; a fresh page loads them from storage."""
    rig = await demo_rig()
    try:
        await open_room(page, rig, "boardroom")
        before = await page.evaluate("avhub.stats.schemas")
        assert before > 0  # a first visit holds none
        epoch = await page.evaluate("avhub.sync.epoch")
        await rig.stop_hub()
        await rig.start_hub()
        await rig.all_online()
        await until(
            lambda: page.evaluate("(e) => avhub.sync.epoch !== e && avhub.sync.inSync", epoch),
            timeout=15,
            message="the panel back on the new epoch",
        )
        after = await page.evaluate("({...avhub.stats, snapshots: avhub.sync.stats.snapshots})")
        assert after["snapshots"] == 2 and after["schemas"] == before  # none in the second
        await drawn(page, rig, "boardroom")
        # A new tab (nothing to resume) names the schemas kept in localStorage.
        tab = await page.context.new_page()
        await open_room(tab, rig, "boardroom")
        await drawn(tab, rig, "boardroom")
        assert await tab.evaluate("[avhub.sync.stats.snapshots, avhub.stats.schemas]") == [1, 0]
        await tab.close()
    finally:
        await rig.close()


async def test_a_schema_learnt_at_login_reaches_the_open_panel(page: Page) -> None:
    """The switcher's size is read at login: the open panel's route schema narrows from SIS's
    999 ports to 6 inputs and its routing grid offers those 6 (and Off)."""
    rig = HubRig(fast_config(hub_config(SWITCHER)))
    rig.config = await rig.simulators.start_for(rig.config)
    [sim] = rig.simulators.running
    assert isinstance(sim, ExtronSimulator)
    port = sim.port
    await sim.stop()
    try:
        await rig.start_hub()
        await open_room(page, rig, "studio")
        maximum = "() => avhub.sync.view('matrix').actions.route.properties.input.anyOf[0].maximum"
        assert await page.evaluate(maximum) == 999
        await sim.start("127.0.0.1", port)
        await until(lambda: _equals(page.evaluate(maximum), 6), message="route narrowed to 6")
        grid = page.locator('article.card[data-device="matrix"] .route-grid')
        await expect(grid.locator('button[data-output="1"]')).to_have_count(7)
    finally:
        await rig.close()


async def _equals(value: Any, expected: Any) -> bool:
    return bool(await value == expected)
