"""The demo building's macros against its simulators (short warm-ups), end to end."""

from __future__ import annotations

import itertools
import time
from typing import Any

import pytest

from simulators.extron_sis import ExtronSimulator
from simulators.pjlink import PjlinkSimulator
from simulators.qsys import QsysSimulator
from tests.helpers import HubRig, until
from tests.panel import Panel

pytestmark = pytest.mark.asyncio(loop_scope="module")

REPLY_DELAY = 0.3  # matrix and audio core: long enough that a sequential group could not overlap


async def joined(rig: HubRig, room: str) -> Panel:
    panel = Panel(rig.url(), room)
    await panel.connect()
    await until(lambda: panel.in_sync, message="panel in sync")
    return panel


def spans_overlap(outcomes: list[dict[str, Any]]) -> bool:
    """True when every outcome was under way at one common moment."""
    return max(o["started"] for o in outcomes) < min(o["ended"] for o in outcomes)


def kinds(outcomes: list[dict[str, Any]]) -> set[str]:
    """The kinds of step that ran, nested ones included, by what each outcome says it did."""
    found = set()
    for outcome in outcomes:
        text = outcome["text"]
        if text.startswith("wait until"):
            found.add("wait_until")
        elif text.startswith(("wait", "macro")):
            found.add(text.split()[0])
        elif text.endswith("steps together"):
            found.add("parallel")
        else:
            found.add("command")
        found |= kinds(outcome.get("steps", []))
    return found


async def test_the_lecture_halls_system_on_runs_in_order_and_in_parallel(demo: HubRig) -> None:
    left = demo.sims["lecture-hall/projector-left"]
    right = demo.sims["lecture-hall/projector-right"]
    matrix = demo.sims["lecture-hall/matrix"]
    core = demo.sims["lecture-hall/audio-core"]
    assert isinstance(left, PjlinkSimulator) and isinstance(right, PjlinkSimulator)
    assert isinstance(matrix, ExtronSimulator) and isinstance(core, QsysSimulator)
    events: list[tuple[float, str, str, object, str]] = []  # (time, projector, key, value, power)
    for name, sim in (("left", left), ("right", right)):
        sim.add_listener(
            lambda key, value, name=name, sim=sim: events.append(
                (time.time(), name, key, value, sim.power)
            )
        )
    matrix.knobs.reply_delay = core.knobs.reply_delay = REPLY_DELAY
    # A pipelined poll written before the matrix slowed down is answered whole (seven
    # replies, 2.1 s); from the one after it on, its polls go in parts a command can
    # come between (drivers/link.py PIPELINE_WAIT).
    stats = demo.hub.rooms["lecture-hall"].drivers["matrix"].stats  # type: ignore[union-attr]
    answered = stats.requests
    await until(lambda: stats.requests >= answered + 9, timeout=10, message="slow matrix polls")
    panel = await joined(demo, "lecture-hall")
    try:
        ack = await panel.command("room", "system_on", timeout=60)
    finally:
        matrix.knobs.reply_delay = core.knobs.reply_delay = 0
        await panel.disconnect()
    assert ack["ok"] is True, ack
    steps = ack["result"]["steps"]
    assert kinds(steps) == {"command", "wait", "wait_until", "parallel", "macro"}
    for earlier, later in itertools.pairwise(steps):  # one after the other
        assert earlier["ended"] <= later["started"], (earlier, later)
    on_at = {
        name: next(
            t for t, n, key, value, _ in events if n == name and (key, value) == ("power", "on")
        )
        for name in ("left", "right")
    }
    assert steps[1]["ended"] >= max(on_at.values()) - 0.001  # the wait_until waited for both (ms)
    inputs = [(name, power) for _, name, key, _, power in events if key == "input"]
    assert sorted(inputs) == [("left", "on"), ("right", "on")]  # never sent while warming
    assert left.input == right.input == "31"
    group = steps[3]["steps"]
    assert [s["text"].split(".")[0] for s in group] == ["matrix", "audio-core", "lectern-monitor"]
    assert spans_overlap(group[:2]), group  # the matrix and the core were asked at once
    # Together, not one after the other: the group took less than its steps' times added up.
    assert steps[3]["ended"] - steps[3]["started"] < sum(s["ended"] - s["started"] for s in group)
    assert matrix.video_ties[1] == 1 and matrix.video_ties[2] == 1  # Lectern PC everywhere
    assert core.loaded[-1] == ("Hall Presets", 1)
    room = demo.hub.rooms["lecture-hall"].store.devices["room"].state  # type: ignore[union-attr]
    assert room["last_run"]["macro"] == "system_on" and room["last_run"]["ok"] is True


@pytest.mark.parametrize("room", ["boardroom", "lecture-hall"])
async def test_system_on_then_off_in_every_demo_room(demo: HubRig, room: str) -> None:
    panel = await joined(demo, room)
    try:
        on = await panel.command("room", "system_on", timeout=60)
        assert on["ok"] is True, on
        off = await panel.command("room", "system_off", timeout=60)
        assert off["ok"] is True, off
    finally:
        await panel.disconnect()
    assert kinds(on["result"]["steps"]) == {"command", "wait", "wait_until", "parallel", "macro"}
    for device, sim in demo.sims.items():
        if device.startswith(f"{room}/") and isinstance(sim, PjlinkSimulator):
            assert sim.power == "off", device
