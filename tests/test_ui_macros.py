"""The room's macros on the touch panel, and named switcher ports, in headless Chromium."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio
from playwright.async_api import Page, expect

from simulators.extron_sis import ExtronSimulator
from simulators.pjlink import PjlinkSimulator
from tests.browser import SCREENSHOTS, touch_problems
from tests.helpers import HubRig, fast_config, hub_config, until

pytest_plugins = ["tests.browser"]
pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="module")]

SIZES = [(800, 480), (1280, 800)]
HALL_INPUTS = ["Lectern PC", "Document camera", "Wireless presenter", "Guest laptop", "Blu-ray"]
HALL_OUTPUTS = ["Left projector", "Right projector", "Confidence monitor", "Streaming encoder"]
RECORD_COMMANDS = """() => {
  const commander = window.avhub.commander;
  const send = commander.send.bind(commander);
  window.sentCommands = [];
  commander.send = (device, action, args) => {
    window.sentCommands.push({ device, action, args });
    return send(device, action, args);
  };
}"""


async def open_room(page: Page, rig: HubRig, room: str) -> None:
    await page.goto(rig.url(f"/rooms/{room}"))
    await expect(page.locator("body")).to_have_attribute("data-sync", "ok")


async def sent(page: Page) -> list[dict[str, Any]]:
    commands: list[dict[str, Any]] = await page.evaluate("window.sentCommands")
    return commands


# ---- named ports ---------------------------------------------------------------------------------


async def test_the_lecture_halls_matrix_shows_named_inputs_and_outputs(
    demo: HubRig, page: Page
) -> None:
    await open_room(page, demo, "lecture-hall")
    grid = page.locator('article.card[data-device="matrix"] .route-grid')
    rows = grid.locator(".route-output")
    await expect(rows).to_have_text([*HALL_OUTPUTS, "All"])
    row = grid.locator("[data-output='1']")
    await expect(row).to_have_text([*HALL_INPUTS, "Hall camera", "7", "8", "Off"])
    levels = page.locator('article.card[data-device="matrix"] .level-name')
    await expect(levels).to_have_text(HALL_OUTPUTS)
    core = page.locator('article.card[data-device="audio-core"] .level-name')
    await expect(core).to_have_text(["Lectern mic", "Program", "Wireless mic"])
    await page.set_viewport_size({"width": 1280, "height": 800})
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=SCREENSHOTS / "lecture-hall-named-1280x800.png", full_page=True)
    assert await touch_problems(page) == []


async def test_a_route_by_name_from_the_panel(demo: HubRig, page: Page) -> None:
    matrix = demo.sims["lecture-hall/matrix"]
    assert isinstance(matrix, ExtronSimulator)
    await open_room(page, demo, "lecture-hall")
    await page.evaluate(RECORD_COMMANDS)
    cell = page.locator(
        'article.card[data-device="matrix"] [data-output="2"][data-input="2"]'
    )  # Right projector, Document camera
    await expect(cell).to_have_text("Document camera")
    await cell.click()
    await until(lambda: matrix.video_ties.get(2) == 2, message="right projector shows input 2")
    await expect(cell).to_have_attribute("aria-pressed", "true")
    assert await sent(page) == [
        {
            "device": "matrix",
            "action": "route",
            "args": {"input": "Document camera", "output": "Right projector"},
        }
    ]


async def test_dsp_presets_and_controls_show_their_names(demo: HubRig, page: Page) -> None:
    await open_room(page, demo, "boardroom")
    dsp = 'article.card[data-device="dsp"]'
    await expect(page.locator(f"{dsp} [data-preset]")).to_have_text(["Presentation", "Meeting"])
    await expect(page.locator(f"{dsp} .level-name")).to_have_text(
        ["Table mic left", "Table mic right", "Program"]
    )
    await page.evaluate(RECORD_COMMANDS)
    await page.locator(f"{dsp} [data-preset='1002']").click()
    await expect(page.locator(f"{dsp} [data-preset='1002']")).to_have_attribute(
        "aria-pressed", "true"
    )
    assert (await sent(page))[0]["args"] == {"preset": 1002}


# ---- macros --------------------------------------------------------------------------------------


async def test_macros_are_large_buttons_above_the_cards(demo: HubRig, page: Page) -> None:
    await open_room(page, demo, "boardroom")
    buttons = page.locator("#macros [data-macro]")
    await expect(buttons).to_have_text(["System on", "Meeting audio", "System off"])
    await expect(page.locator('article.card[data-device="room"]')).to_have_count(0)
    await expect(page.locator("#macros [data-role=macro-running]")).to_be_hidden()
    first_card = await page.locator("article.card").first.bounding_box()
    button = await buttons.first.bounding_box()
    assert first_card is not None and button is not None
    assert button["y"] + button["height"] <= first_card["y"]
    assert button["height"] >= 64  # larger than a device's own buttons


async def test_a_macro_from_the_panel_shows_its_progress_and_the_room_follows(
    demo: HubRig, page: Page
) -> None:
    left = demo.sims["lecture-hall/projector-left"]
    matrix = demo.sims["lecture-hall/matrix"]
    assert isinstance(left, PjlinkSimulator) and isinstance(matrix, ExtronSimulator)
    matrix.press_tie(5, 1)
    left.knobs.warmup = 3.0  # long enough to watch the macro wait for it
    try:
        await page.set_viewport_size({"width": 800, "height": 480})
        await open_room(page, demo, "lecture-hall")
        await page.locator("#macros [data-macro=system_on]").click()
        running = page.locator("#macros [data-role=macro-running]")
        await expect(running).to_be_visible()
        step = page.locator("#macros [data-role=macro-step]")
        await expect(step).to_contain_text("System on · step 2 of 7: wait until")
        await expect(page.locator("#macros [data-macro=system_on]")).to_have_attribute(
            "aria-busy", "true"
        )
        await expect(page.locator("#macros [data-macro=system_off]")).to_be_disabled()
        await expect(page.locator("#macros [data-action=cancel]")).to_be_visible()
        assert await touch_problems(page) == []
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        await page.screenshot(path=SCREENSHOTS / "lecture-hall-macro-running-800x480.png")
        progress = page.locator("#macros [data-role=macro-progress]")
        assert 0 < float(await progress.evaluate("p => p.value")) < 1
        await expect(running).to_be_hidden(timeout=30_000)
        message = page.locator("#macros [data-role=macro-message]")
        await expect(message).to_have_text("System on: done")
        await expect(message).to_have_attribute("data-state", "done")
    finally:
        left.knobs.warmup = 0.8
    tie = page.locator('article.card[data-device="matrix"] [data-output="1"][data-input="1"]')
    await expect(tie).to_have_attribute("aria-pressed", "true")  # routed by name, by the macro
    assert matrix.video_ties[1] == 1
    await page.locator("#macros [data-macro=system_off]").click()
    await expect(message).to_have_text("System off: done", timeout=30_000)


# ---- cancel and failures, on a room of their own -------------------------------------------------

ROOM = {
    "rooms": {
        "lab": {
            "name": "Lab",
            "devices": {"projector": {"driver": "pjlink", "transport": "tcp://127.0.0.1:4352"}},
            "macros": {
                "long": {
                    "label": "Long wait",
                    "steps": [{"device": "projector", "action": "power_on"}, {"wait": "1m"}],
                },
                "fails": {
                    "label": "Never warms",
                    "steps": [{"wait_until": "projector.power == cooling", "timeout": "300ms"}],
                },
            },
        }
    }
}


@pytest_asyncio.fixture(loop_scope="module")
async def lab() -> AsyncIterator[HubRig]:
    rig = await HubRig(fast_config(hub_config(ROOM))).start()
    await rig.all_online()
    yield rig
    await rig.close()


async def test_cancel_on_the_panel_stops_the_running_macro(lab: HubRig, page: Page) -> None:
    await open_room(page, lab, "lab")
    await page.locator("#macros [data-macro=long]").click()
    step = page.locator("#macros [data-role=macro-step]")
    await expect(step).to_have_text("Long wait · step 2 of 2: wait 1m")
    await page.locator("#macros [data-action=cancel]").click()
    await expect(page.locator("#macros [data-role=macro-running]")).to_be_hidden()
    message = page.locator("#macros [data-role=macro-message]")
    await expect(message).to_have_attribute("data-state", "error")
    await expect(message).to_have_text("Long wait: long was cancelled at step 2 (wait 1m)")
    await expect(page.locator("#macros [data-macro=fails]")).to_be_enabled()


async def test_a_failed_macro_says_which_step_failed(lab: HubRig, page: Page) -> None:
    await open_room(page, lab, "lab")
    await page.locator("#macros [data-macro=fails]").click()
    message = page.locator("#macros [data-role=macro-message]")
    await expect(message).to_have_attribute("data-state", "error")
    await expect(message).to_contain_text("Never warms: fails stopped at step 1 (wait until")
    await expect(message).to_contain_text("did not come true within 0.3s")
