"""The panel's JavaScript in Chromium: the sync algorithm, the slider throttle, and device cards
built from the state vocabulary (DESIGN.md §5) for switchers, DSPs and cameras.

Cards here are fed hand-made snapshots and a recording `send`, so every control of the
vocabulary is exercised before any driver of that kind exists; the end-to-end tests with
simulators are in test_ui_panel.py.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio
from playwright.async_api import Page, expect

from tests.browser import SCREENSHOTS, touch_problems
from tests.helpers import HubRig, hub_config

pytest_plugins = ["tests.browser"]
pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="module")]

DB = {"type": "number", "minimum": -100, "maximum": 12}
DSP = {
    "name": "Ceiling DSP",
    "driver": "tesira",
    "state": {
        "online": True,
        "levels": {"program": -20.0, "mic_1": -10.5},
        "mutes": {"program": False, "mic_1": True},
    },
    "actions": {
        "set_level": {
            "type": "object",
            "properties": {"control": {"type": "string"}, "level": DB},
            "required": ["control", "level"],
        },
        "set_mute": {
            "type": "object",
            "properties": {"control": {"type": "string"}, "mute": {"type": "boolean"}},
            "required": ["control", "mute"],
        },
    },
}
SWITCHER = {
    "name": "Matrix",
    "driver": "extron_sis",
    "state": {"online": True, "routes": {"1": 2, "2": None}},
    "actions": {
        "route": {
            "type": "object",
            "properties": {
                "input": {"type": "integer", "minimum": 0, "maximum": 4},
                "output": {"anyOf": [{"type": "integer", "minimum": 1}, {"type": "null"}]},
            },
            "required": ["input"],
        },
    },
}
CAMERA = {
    "name": "Camera",
    "driver": "visca",
    "state": {"online": True, "power": "on", "preset": 2},
    "actions": {
        "power_on": {"type": "object", "properties": {}},
        "power_off": {"type": "object", "properties": {}},
        "pan_tilt": {
            "type": "object",
            "properties": {
                "pan": {"type": "integer", "minimum": -24, "maximum": 24},
                "tilt": {"type": "integer", "minimum": -20, "maximum": 20},
            },
            "required": ["pan", "tilt"],
        },
        "zoom": {
            "type": "object",
            "properties": {"speed": {"type": "integer", "minimum": -7, "maximum": 7}},
            "required": ["speed"],
        },
        "stop": {"type": "object", "properties": {}},
        "recall_preset": {
            "type": "object",
            "properties": {"preset": {"type": "integer", "minimum": 0, "maximum": 5}},
            "required": ["preset"],
        },
    },
}

MOUNT = """async ([id, device]) => {
  const { DeviceCard } = await import("/static/cards.js");
  window.sent = window.sent || [];
  window.reply = window.reply || { ok: true, result: null };
  const send = async (dev, action, args) => {
    window.sent.push({ t: performance.now(), device: dev, action, args });
    if (window.hold) await window.hold;
    return window.reply;
  };
  const card = new DeviceCard(id, send);
  document.querySelector("main").replaceChildren(card.el);
  window.card = card;
  card.show(device);
}"""


@pytest_asyncio.fixture(loop_scope="module")
async def blank(browser: Any) -> AsyncIterator[Page]:
    """A page of a hub with no devices, to import the panel's modules into."""
    config = hub_config({"rooms": {"empty": {"name": "Empty", "devices": {}}}})
    rig = await HubRig(config).start()
    context = await browser.new_context(viewport={"width": 1280, "height": 800})
    context.set_default_timeout(5_000)
    page = await context.new_page()
    errors: list[Any] = []
    page.on("pageerror", lambda error: errors.append(error))
    await page.goto(rig.url("/"))
    yield page
    await context.close()
    await rig.close()
    assert not errors, errors


async def mount(page: Page, device: dict[str, Any], device_id: str = "dev") -> None:
    await page.evaluate(MOUNT, [device_id, json.loads(json.dumps(device))])


async def sent(page: Page) -> list[dict[str, Any]]:
    result: list[dict[str, Any]] = await page.evaluate("window.sent.splice(0)")
    return result


async def update(page: Page, state: dict[str, Any]) -> None:
    await page.evaluate("(s) => { Object.assign(card.device.state, s); card.refresh(); }", state)


# ---- the sync algorithm --------------------------------------------------------------------

SYNC_SCENARIO = """async () => {
  const { RoomSync } = await import("/static/sync.js");
  const calls = [];
  let answer = null;
  const sync = new RoomSync({
    call: async (event, data) => { calls.push([event, data]); return answer; },
    connected: () => true,
  });
  const device = (state) => ({ name: "d", driver: "x", state, actions: {} });
  const change = (seq, state, epoch = "e1") => ({ epoch, seq, device: "d", state, ts: 0 });
  const out = {};
  sync.loadSnapshot({ epoch: "e1", seq: 5, room: { id: "r", name: "R" },
                      devices: { d: device({ online: true, a: 0 }) } });
  sync.receiveChange(change(6, { a: 6 }));
  out.applied6 = sync.devices.d.state.a === 6 && sync.seq === 6 && sync.inSync;
  sync.receiveChange(change(6, { a: 99 }));
  out.duplicateIgnored = sync.devices.d.state.a === 6 && sync.stats.duplicates === 1;
  answer = { changes: [change(7, { a: 7 })] };
  sync.receiveChange(change(8, { a: 8 }));
  out.heldEarly = sync.devices.d.state.a === 6 && sync.early.has(8);
  out.syncAsked = JSON.stringify(calls[0]) === JSON.stringify(["sync", { epoch: "e1", seq: 6 }]);
  await new Promise((r) => setTimeout(r, 0));
  out.gapFilled = sync.seq === 8 && sync.devices.d.state.a === 8 && sync.inSync;
  answer = { snapshot: { epoch: "e2", seq: 1, room: { id: "r", name: "R" },
                         devices: { d: device({ online: true, a: 42 }) } } };
  sync.receiveChange(change(1, { a: -1 }, "e2"));
  await new Promise((r) => setTimeout(r, 0));
  out.newEpochSnapshot = sync.epoch === "e2" && sync.seq === 1 && sync.devices.d.state.a === 42;
  out.calls = calls.length;
  out.resume = sync.resumeAuth();
  return out;
}"""


async def test_sync_applies_in_order_holds_early_changes_and_syncs_on_gaps(blank: Page) -> None:
    out = await blank.evaluate(SYNC_SCENARIO)
    assert out == {
        "applied6": True,
        "duplicateIgnored": True,
        "heldEarly": True,
        "syncAsked": True,
        "gapFilled": True,
        "newEpochSnapshot": True,
        "calls": 2,
        "resume": {"epoch": "e2", "seq": 1},
    }


# ---- levels: sliders and mutes ----------------------------------------------------------------


async def test_level_sliders_follow_the_schema_and_state(blank: Page) -> None:
    await mount(blank, DSP)
    program = blank.locator("[data-level=program]")
    await expect(program).to_have_attribute("min", "-100")
    await expect(program).to_have_attribute("max", "12")
    await expect(program).to_have_value("-20")
    await expect(blank.locator('[data-control="program"] output')).to_have_text("-20 dB")
    await expect(blank.locator("[data-mute=mic_1]")).to_have_attribute("aria-pressed", "true")
    await update(blank, {"levels": {"program": -6.5, "mic_1": -10.5}})
    await expect(program).to_have_value("-6.5")
    await blank.locator("[data-mute=program]").click()
    assert [(c["action"], c["args"]) for c in await sent(blank)] == [
        ("set_mute", {"control": "program", "mute": True})
    ]


async def test_a_dragged_slider_sends_at_most_ten_a_second_and_always_the_final_value(
    blank: Page,
) -> None:
    await mount(blank, DSP)
    slider = blank.locator("[data-level=program]")
    box = await slider.bounding_box()
    assert box is not None
    y = box["y"] + box["height"] / 2
    await blank.mouse.move(box["x"] + 20, y)
    await blank.mouse.down()
    steps = 60
    for i in range(steps):  # about 1.2 s of dragging, one move every 20 ms
        await blank.mouse.move(box["x"] + 20 + (box["width"] - 60) * i / steps, y)
        await blank.wait_for_timeout(20)
    final = float(await slider.input_value())
    await blank.mouse.up()
    await expect(slider).to_have_value("-20")  # this fake device never moves: the panel says so
    commands = await sent(blank)
    assert commands and all(c["action"] == "set_level" for c in commands)
    times = [c["t"] for c in commands]
    for i, start in enumerate(times):  # never more than 10 (+ the final one) in any second
        assert len([t for t in times[i:] if t - start < 1000]) <= 11, times
    assert len(commands) >= 8, "the drag should send updates while it lasts"
    assert commands[-1]["args"] == {"control": "program", "level": final}
    assert final > -20


async def test_a_slider_is_not_yanked_back_while_dragged(blank: Page) -> None:
    await mount(blank, DSP)
    slider = blank.locator("[data-level=program]")
    box = await slider.bounding_box()
    assert box is not None
    y = box["y"] + box["height"] / 2
    await blank.mouse.move(box["x"] + box["width"] * 0.5, y)
    await blank.mouse.down()
    await blank.mouse.move(box["x"] + box["width"] * 0.8, y)
    held = await slider.input_value()
    await update(blank, {"levels": {"program": -90.0, "mic_1": -10.5}})  # an old echo
    assert await slider.input_value() == held
    await blank.mouse.up()
    await update(blank, {"levels": {"program": -30.0, "mic_1": -10.5}})
    await expect(slider).to_have_value("-30")


# ---- routing ---------------------------------------------------------------------------------------


async def test_routing_grid_shows_ties_and_routes_with_typed_args(blank: Page) -> None:
    await mount(blank, SWITCHER)
    cell = blank.locator
    await expect(cell("[data-output='1'][data-input='2']")).to_have_attribute(
        "aria-pressed", "true"
    )
    await expect(cell("[data-output='1'][data-input='3']")).to_have_attribute(
        "aria-pressed", "false"
    )
    await expect(cell("[data-output='2'][data-input='0']")).to_have_attribute(
        "aria-pressed", "true"
    )  # untied output: "Off"
    await expect(cell("[data-output='2'][data-input='0']")).to_have_text("Off")
    await expect(cell("[data-output='1'] >> nth=0")).to_have_text("1")
    await cell("[data-output='1'][data-input='3']").click()
    await cell("[data-output='*'][data-input='4']").click()  # "All" row: output omitted
    assert [(c["action"], c["args"]) for c in await sent(blank)] == [
        ("route", {"input": 3, "output": 1}),
        ("route", {"input": 4}),
    ]
    await update(blank, {"routes": {"1": 3, "2": 3}})
    await expect(cell("[data-output='2'][data-input='3']")).to_have_attribute(
        "aria-pressed", "true"
    )


# ---- cameras ------------------------------------------------------------------------------------


async def test_camera_moves_while_held_and_stops_on_release(blank: Page) -> None:
    await mount(blank, CAMERA)
    up = blank.locator("[data-move='0,1']")
    await up.hover()
    await blank.mouse.down()
    await blank.wait_for_timeout(100)
    assert [(c["action"], c["args"]) for c in await sent(blank)] == [
        ("pan_tilt", {"pan": 0, "tilt": 10})
    ]
    await blank.mouse.up()
    await blank.locator("[data-move='-1,-1']").hover()
    await blank.mouse.down()
    await blank.mouse.up()
    await blank.locator("[data-zoom=in]").hover()
    await blank.mouse.down()
    await blank.mouse.up()
    assert [(c["action"], c["args"]) for c in await sent(blank)] == [
        ("stop", {}),
        ("pan_tilt", {"pan": -12, "tilt": -10}),
        ("stop", {}),
        ("zoom", {"speed": 4}),
        ("stop", {}),
    ]


async def test_presets_from_the_schema_with_the_current_one_marked(blank: Page) -> None:
    await mount(blank, CAMERA)
    presets = blank.locator("[data-preset]")
    await expect(presets).to_have_count(6)
    await expect(blank.locator("[data-preset='2']")).to_have_attribute("aria-pressed", "true")
    await blank.locator("[data-preset='4']").click()
    assert [(c["action"], c["args"]) for c in await sent(blank)] == [
        ("recall_preset", {"preset": 4})
    ]


# ---- status and feedback ------------------------------------------------------------------------


async def test_commands_show_pending_then_done_or_the_error(blank: Page) -> None:
    await mount(blank, CAMERA)
    message = blank.locator("[data-role=message]")
    off = blank.locator("[data-action=power_off]")
    await blank.evaluate("() => { window.hold = new Promise((r) => { window.release = r; }); }")
    await off.click()
    await expect(message).to_have_attribute("data-state", "pending")
    await expect(off).to_have_attribute("aria-busy", "true")
    await blank.evaluate("window.release(); window.hold = null")
    await expect(message).to_have_attribute("data-state", "done")
    await expect(off).not_to_have_attribute("aria-busy", "true")
    await blank.evaluate(
        "window.reply = {ok: false, error: {code: 'busy', message: 'camera is warming'}}"
    )
    await off.click()
    await expect(message).to_have_attribute("data-state", "error")
    await expect(message).to_have_text("camera is warming")
    await blank.evaluate("window.reply = {ok: true, result: null}")


async def test_power_transitions_lock_the_power_buttons(blank: Page) -> None:
    await mount(blank, CAMERA)
    on = blank.locator("[data-action=power_on]")
    await update(blank, {"power": "cooling"})
    await expect(blank.locator("[data-role=power-state]")).to_have_text("Cooling down…")
    await expect(on).to_be_disabled()
    await update(blank, {"power": "off"})
    await expect(on).to_be_enabled()


async def test_an_offline_device_keeps_its_last_state_greyed(blank: Page) -> None:
    await mount(blank, SWITCHER)
    await update(blank, {"online": False, "offline_reason": "auth_failed"})
    card = blank.locator("article.card")
    await expect(card).to_have_class("card offline")
    await expect(card.locator("[data-role=status]")).to_have_text(
        "Offline: login refused (check the password)"
    )
    tied = blank.locator("[data-output='1'][data-input='2']")
    await expect(tied).to_have_attribute("aria-pressed", "true")
    await expect(tied).to_be_disabled()


async def test_controls_appear_when_the_first_poll_brings_the_keys(blank: Page) -> None:
    starting = {**DSP, "state": {"online": False, "offline_reason": "starting"}}
    await mount(blank, starting)
    await expect(blank.locator("[data-role=status]")).to_have_text("Connecting…")
    await expect(blank.locator("[data-level]")).to_have_count(0)
    await update(blank, {"online": True, **DSP["state"]})
    await expect(blank.locator("[data-level]")).to_have_count(2)
    await expect(blank.locator("[data-role=status]")).to_have_text("Online")


GALLERY = """async (devices) => {
  const { DeviceCard } = await import("/static/cards.js");
  const grid = document.createElement("main");
  grid.className = "devices";
  document.querySelector("main").replaceWith(grid);
  for (const [id, device] of Object.entries(devices)) {
    const card = new DeviceCard(id, async () => ({ ok: true, result: null }));
    grid.append(card.el);
    card.show(device);
  }
}"""


@pytest.mark.parametrize(("width", "height"), [(800, 480), (1280, 800)])
async def test_vocabulary_gallery_screenshots_and_touch_targets(
    blank: Page, width: int, height: int
) -> None:
    """Writes artifacts/screenshots/vocabulary-<w>x<h>.png: a switcher, a DSP and a camera."""
    await blank.set_viewport_size({"width": width, "height": height})
    await blank.reload()
    await blank.evaluate(GALLERY, {"matrix": SWITCHER, "dsp": DSP, "camera": CAMERA})
    await expect(blank.locator("article.card")).to_have_count(3)
    assert await touch_problems(blank) == []
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    await blank.screenshot(path=SCREENSHOTS / f"vocabulary-{width}x{height}.png", full_page=True)
