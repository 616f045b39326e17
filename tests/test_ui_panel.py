"""The touch panel in headless Chromium against the demo building, with simulators on loopback."""

from __future__ import annotations

from typing import Any, TypeVar

import pytest
from playwright.async_api import Page, expect

from simulators.base import Simulator
from simulators.extron_sis import ExtronSimulator
from simulators.pjlink import PjlinkSimulator
from simulators.tesira import TesiraSimulator
from tests.browser import SCREENSHOTS, touch_problems
from tests.helpers import HubRig, until

pytest_plugins = ["tests.browser"]
pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="module")]

SIZES = [(800, 480), (1280, 800)]
S = TypeVar("S", bound=Simulator[Any])


def simulator(rig: HubRig, label: str, kind: type[S]) -> S:
    """The simulator of `room/device`, as the kind the test drives."""
    sim = rig.sims[label]
    assert isinstance(sim, kind), sim
    return sim


def card(page: Page, device: str) -> str:
    return f'article.card[data-device="{device}"]'


async def switched_on(sim: PjlinkSimulator) -> None:
    """Power a projector on at its front panel (it answers input queries only when on)."""
    sim.press_power(True)
    await until(lambda: sim.power == "on", message="projector on")


async def open_room(page: Page, rig: HubRig, room: str) -> None:
    await page.goto(rig.url(f"/rooms/{room}"))
    await expect(page.locator("body")).to_have_attribute("data-sync", "ok")
    await expect(page.locator("#banner")).to_be_hidden()


async def test_room_list_links_every_room(demo: HubRig, page: Page) -> None:
    await page.goto(demo.url("/"))
    links = page.locator("a.room")
    await expect(links).to_have_count(len(demo.config.rooms))
    for room_id, room in demo.config.rooms.items():
        await expect(page.locator(f'a.room[data-room="{room_id}"]')).to_contain_text(room.name)
    first = next(iter(demo.config.rooms))
    await page.locator(f'a.room[data-room="{first}"]').click()
    await expect(page).to_have_url(demo.url(f"/rooms/{first}"))
    await expect(page.locator("#room-name")).to_have_text(demo.config.rooms[first].name)


async def test_every_device_of_every_demo_room_has_a_card(demo: HubRig, page: Page) -> None:
    for room_id, room in demo.config.rooms.items():
        await open_room(page, demo, room_id)
        await expect(page.locator("article.card")).to_have_count(len(room.devices))
        for device_id, device in room.devices.items():
            sel = card(page, device_id)
            await expect(page.locator(f"{sel} h2")).to_have_text(device.name or device_id)
            await expect(page.locator(f"{sel} [data-role=status]")).to_have_text("Online")


async def test_actions_a_device_cannot_do_are_not_offered(demo: HubRig, page: Page) -> None:
    """The demo's right projector is PJLink class 1: no freeze or volume buttons."""
    await open_room(page, demo, "lecture-hall")
    class1, class2 = card(page, "projector-right"), card(page, "projector-left")
    await expect(page.locator(f"{class2} [data-action=volume_up]")).to_have_count(1)
    await expect(page.locator(f"{class2} [data-toggle=freeze]")).to_have_count(1)
    await expect(page.locator(f"{class1} [data-action=power_on]")).to_have_count(1)
    await expect(page.locator(f"{class1} [data-toggle=video_mute]")).to_have_count(1)
    await expect(page.locator(f"{class1} [data-toggle=freeze]")).to_have_count(0)
    for action in ("volume_up", "mic_volume_down"):
        await expect(page.locator(f"{class1} [data-action={action}]")).to_have_count(0)


async def test_power_on_shows_warming_then_on_with_buttons_locked(demo: HubRig, page: Page) -> None:
    sim = simulator(demo, "boardroom/projector", PjlinkSimulator)
    await open_room(page, demo, "boardroom")
    sel = card(page, "projector")
    state = page.locator(f"{sel} [data-role=power-state]")
    on, off = (
        page.locator(f"{sel} [data-action=power_on]"),
        page.locator(f"{sel} [data-action=power_off]"),
    )
    await expect(state).to_have_attribute("data-power", "off")
    await on.click()
    await expect(state).to_have_attribute("data-power", "warming")
    await expect(state).to_have_text("Warming up…")
    await expect(on).to_be_disabled()
    await expect(off).to_be_disabled()
    message = page.locator(f"{sel} [data-role=message]")
    await expect(message).to_have_attribute("data-state", "done")
    await expect(message).to_have_text("Power on: accepted, warming up")  # not "done": not on yet
    await expect(state).to_have_attribute("data-power", "on")
    assert sim.power == "on"
    await expect(on).to_have_attribute("aria-pressed", "true")
    await expect(off).to_be_enabled()


async def test_input_and_mute_buttons_follow_the_projector(demo: HubRig, page: Page) -> None:
    sim = simulator(demo, "boardroom/projector", PjlinkSimulator)
    await switched_on(sim)
    await open_room(page, demo, "boardroom")
    sel = card(page, "projector")
    wall = page.locator(f'{sel} [data-input="Wall plate"]')
    await wall.click()
    await expect(wall).to_have_attribute("aria-pressed", "true")
    assert sim.input == "32"
    mute = page.locator(f"{sel} [data-toggle=video_mute]")
    await mute.click()
    await expect(mute).to_have_attribute("aria-pressed", "true")
    assert sim.video_mute
    sim.set_mutes(video=False)  # from the projector's own remote: the panel follows
    await expect(mute).to_have_attribute("aria-pressed", "false")


async def test_a_slider_moves_the_simulated_dsps_level(demo: HubRig, page: Page) -> None:
    dsp = simulator(demo, "boardroom/dsp", TesiraSimulator)
    await open_room(page, demo, "boardroom")
    sel = card(page, "dsp")
    slider = page.locator(f"{sel} [data-level=program]")
    await expect(slider).to_have_attribute("min", "-60")  # the control's own range
    await expect(slider).to_have_attribute("max", "6")
    await slider.scroll_into_view_if_needed()
    box = await slider.bounding_box()
    assert box is not None
    y = box["y"] + box["height"] / 2
    await page.mouse.move(box["x"] + box["width"] / 2, y)
    await page.mouse.down()
    for step in range(1, 11):  # drag towards the left: quieter
        await page.mouse.move(box["x"] + box["width"] * (0.5 - 0.04 * step), y)
        await page.wait_for_timeout(30)
    final = float(await slider.input_value())
    await page.mouse.up()
    assert -60 < final < -10
    await until(lambda: dsp.level("ProgramLevel", 1) == final, message=f"DSP at {final} dB")
    await expect(slider).to_have_value(str(final).removesuffix(".0"))
    value = page.locator(f'{sel} [data-control="program"] output')
    await expect(value).to_have_text(f"{final:g} dB")


async def test_a_route_button_changes_the_switchers_tie(demo: HubRig, page: Page) -> None:
    matrix = simulator(demo, "lecture-hall/matrix", ExtronSimulator)
    await open_room(page, demo, "lecture-hall")
    sel = card(page, "matrix")
    await expect(page.locator(f"{sel} [data-output='2']")).to_have_count(9)  # 8 inputs, Off
    tie = page.locator(f"{sel} [data-output='2'][data-input='5']")
    await expect(tie).to_have_attribute("aria-pressed", "false")
    await tie.click()
    await until(lambda: matrix.video_ties.get(2) == 5, message="output 2 shows input 5")
    assert matrix.audio_ties.get(2) == 5
    await expect(tie).to_have_attribute("aria-pressed", "true")
    await expect(page.locator(f"{sel} [data-output='2'][data-input='2']")).to_have_attribute(
        "aria-pressed", "false"
    )
    matrix.press_tie(7, 2)  # at the switcher's front panel: the panel follows
    await expect(page.locator(f"{sel} [data-output='2'][data-input='7']")).to_have_attribute(
        "aria-pressed", "true"
    )


async def test_a_refused_command_shows_the_error_from_the_ack(demo: HubRig, page: Page) -> None:
    await open_room(page, demo, "lecture-hall")
    sel = card(page, "projector-right")  # in standby: an input change is refused (ERR3)
    await page.locator(f'{sel} [data-input="HDMI 1"]').click()
    message = page.locator(f"{sel} [data-role=message]")
    await expect(message).to_have_attribute("data-state", "error")
    await expect(message).to_contain_text(
        "not possible now: the projector is in standby, warming up or cooling down (ERR3)"
    )


async def test_an_offline_device_is_greyed_with_its_last_state_and_reason(
    demo: HubRig, page: Page
) -> None:
    sim = simulator(demo, "boardroom/projector", PjlinkSimulator)
    await switched_on(sim)
    sim.set_input("31")
    await open_room(page, demo, "boardroom")
    sel = card(page, "projector")
    table = page.locator(f'{sel} [data-input="Table HDMI"]')
    await expect(table).to_have_attribute("aria-pressed", "true")
    await sim.stop()
    await expect(page.locator(sel)).to_have_class("card offline", timeout=8_000)
    await expect(page.locator(f"{sel} [data-role=status]")).to_have_text(
        "Offline: connection refused"
    )
    await expect(table).to_have_attribute("aria-pressed", "true")  # last known state stays
    await expect(table).to_be_disabled()
    await sim.start("127.0.0.1", sim.port)
    await expect(page.locator(f"{sel} [data-role=status]")).to_have_text("Online", timeout=8_000)
    await expect(table).to_be_enabled()


@pytest.mark.parametrize(("width", "height"), SIZES)
async def test_screenshots_and_touch_targets(
    demo: HubRig, page: Page, width: int, height: int
) -> None:
    """Writes artifacts/screenshots/<room>-<w>x<h>.png (and -full.png, the whole scrolled page)
    for every demo room, and rooms-<w>x<h>.png for the room list."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    await page.set_viewport_size({"width": width, "height": height})
    await page.goto(demo.url("/"))
    await expect(page.locator("a.room")).to_have_count(len(demo.config.rooms))
    assert await touch_problems(page) == []
    await page.screenshot(path=SCREENSHOTS / f"rooms-{width}x{height}.png")
    for room_id, room in demo.config.rooms.items():
        await open_room(page, demo, room_id)
        await expect(page.locator("article.card")).to_have_count(len(room.devices))
        assert await touch_problems(page) == [], room_id
        path = SCREENSHOTS / f"{room_id}-{width}x{height}.png"
        await page.screenshot(path=path)  # what the panel shows
        await page.screenshot(path=path.with_name(f"{path.stem}-full.png"), full_page=True)
        assert path.stat().st_size > 1000
