"""Macros on a hub with PJLink simulators: acks, failures, cancel, busy, progress for panels.

The hub's clock is a ManualClock, so waits and wait_until timeouts end when the test
says; device commands still go over real loopback sockets to the simulators.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest

from hub.app import Hub
from hub.automation.clock import ManualClock
from simulators.pjlink import PjlinkSimulator
from tests.helpers import closed_tcp_port, hub_config, pjlink_at, until
from tests.panel import Panel

# Power changes show at once, without the settling pause of a real projector.
FAST = {"transition_poll": 0.05, "power_settle": 0}
START = 1_750_000_000.0


def config(port: int) -> dict[str, Any]:
    projector_on = {"device": "projector", "action": "power_on"}
    dead_on = {"device": "dead", "action": "power_on"}
    macros: dict[str, Any] = {
        "on": {
            "label": "Projector on",
            "steps": [projector_on, {"wait_until": "projector.power == on", "timeout": 30}],
        },
        "ready": {"steps": [{"wait_until": "projector.online", "timeout": 1}]},
        "eager": {
            "steps": [
                projector_on,
                {"device": "projector", "action": "select_input", "args": {"input": "31"}},
            ]
        },
        "never": {
            "label": "Wait for cooling",
            "steps": [{"wait_until": "projector.power == cooling", "timeout": 30}],
        },
        "stops": {"steps": [dead_on, projector_on]},
        "goes_on": {"on_error": "continue", "steps": [dead_on, projector_on]},
        "step_goes_on": {"steps": [{**dead_on, "on_error": "continue"}, projector_on]},
        "paced": {
            "label": "Three waits",
            "steps": [{"wait": 10}, {"wait": 10}, {"macro": "inner"}],
        },
        "inner": {
            "steps": [
                {"wait": 10},
                {
                    "parallel": [
                        {"wait": 5},
                        {"wait_until": "projector.online == true", "timeout": 30},
                    ]
                },
            ]
        },
    }
    devices = {"projector": pjlink_at(port, **FAST), "dead": pjlink_at(closed_tcp_port(), **FAST)}
    return {"rooms": {"lab": {"name": "Lab", "devices": devices, "macros": macros}}}


@dataclass
class Lab:
    hub: Hub
    clock: ManualClock
    sim: PjlinkSimulator
    make_panel: Callable[[], Panel]

    def state(self) -> dict[str, Any]:
        return self.hub.rooms["lab"].store.devices["room"].state

    async def start(self, panel: Panel, macro: str) -> asyncio.Task[Any]:
        """Start `macro` from `panel`; the task's result is the ack, once the macro ends."""
        task = asyncio.create_task(panel.command("room", macro, timeout=30))
        await until(lambda: self.state()["running"] == macro, message=f"{macro} running")
        return task

    async def advance(self, seconds: float) -> None:
        await self.clock.advance(seconds)


@pytest.fixture
async def lab(
    pjlink_sims: Callable[..., Awaitable[PjlinkSimulator]],
    panels: Callable[..., Panel],
) -> AsyncIterator[Lab]:
    sim = await pjlink_sims()
    clock = ManualClock(START)
    hub = Hub(hub_config(config(sim.port)), clock=clock)
    await hub.start("127.0.0.1", 0)
    try:
        await until(lambda: hub.rooms["lab"].drivers["projector"].online, message="online")
        yield Lab(hub, clock, sim, lambda: panels(hub, "lab"))
    finally:
        await hub.stop()


async def connected(lab: Lab) -> Panel:
    panel = lab.make_panel()
    await panel.connect()
    await until(lambda: panel.in_sync, message="panel in sync")
    return panel


async def test_the_room_device_offers_the_macros_with_their_labels(lab: Lab) -> None:
    panel = await connected(lab)
    room = panel.devices["room"]
    actions = panel.actions("room")
    assert room["driver"] == "room"
    assert actions["on"]["title"] == "Projector on"
    assert actions["stops"]["title"] == "stops"  # no label: the name
    assert actions["cancel"]["title"] == "Cancel"
    assert room["state"]["online"] is True
    assert room["state"]["running"] is None


async def test_a_macro_acks_when_it_ends_with_every_steps_outcome(lab: Lab) -> None:
    panel = await connected(lab)
    ack = await panel.command("room", "on", timeout=20)
    assert ack["ok"] is True, ack
    steps = ack["result"]["steps"]
    assert [s["step"] for s in steps] == ["1", "2"]
    assert all(s["ok"] for s in steps)
    assert steps[1]["text"] == "wait until projector.power == on (at most 30s)"
    assert lab.sim.power == "on"
    last = lab.state()["last_run"]
    assert last["macro"] == "on" and last["ok"] is True and last["by"] == "command"


async def test_a_wait_until_that_runs_out_fails_with_timeout_naming_the_step(lab: Lab) -> None:
    panel = await connected(lab)
    task = await lab.start(panel, "never")
    await lab.advance(29.9)
    assert not task.done()
    await lab.advance(0.2)
    ack = await task
    assert ack["ok"] is False
    error = ack["error"]
    assert error["code"] == "timeout"
    assert error["step"] == "1"
    assert error["macro"] == "never"
    assert "step 1 (wait until projector.power == cooling (at most 30s))" in error["message"]
    assert error["steps"][0]["error"]["code"] == "timeout"
    assert lab.state()["last_run"]["error"]["code"] == "timeout"


async def test_a_wait_until_is_woken_by_a_change_not_by_the_clock(lab: Lab) -> None:
    """The clock stands still: only the projector's change can end the wait."""
    panel = await connected(lab)
    task = await lab.start(panel, "never")
    lab.sim.press_power(True)
    await until(lambda: lab.sim.power == "on", message="projector on")
    lab.sim.press_power(False)  # cooling: the hub sees it at its next poll
    ack = await asyncio.wait_for(task, 10)
    assert ack["ok"] is True, ack


async def test_a_wait_until_that_already_holds_ends_at_once(lab: Lab) -> None:
    """Checked when the step starts: the clock never moves, nothing changes, it ends."""
    panel = await connected(lab)
    ack = await asyncio.wait_for(panel.command("room", "ready"), 5)
    assert ack["ok"] is True, ack


async def test_macro_commands_go_through_the_devices_lockouts(lab: Lab) -> None:
    """No wait_until: the projector's own lockout holds the input until it has warmed up."""
    seen: list[tuple[str, object, str]] = []
    lab.sim.add_listener(lambda key, value: seen.append((key, value, lab.sim.power)))
    panel = await connected(lab)
    ack = await panel.command("room", "eager", timeout=20)
    assert ack["ok"] is True, ack
    assert ("power", "warming", "warming") in seen
    assert [(v, power) for k, v, power in seen if k == "input"] == [("31", "on")]


async def test_a_failing_step_stops_the_macro_by_default(lab: Lab) -> None:
    panel = await connected(lab)
    ack = await panel.command("room", "stops")
    assert ack["ok"] is False
    assert ack["error"]["code"] == "device_offline"
    assert ack["error"]["step"] == "1"
    assert [s["step"] for s in ack["error"]["steps"]] == ["1"]  # step 2 never ran
    assert lab.sim.power == "off"


@pytest.mark.parametrize("macro", ["goes_on", "step_goes_on"])
async def test_a_failing_step_with_continue_lets_the_macro_go_on(lab: Lab, macro: str) -> None:
    panel = await connected(lab)
    ack = await panel.command("room", macro, timeout=20)
    assert ack["ok"] is True, ack
    first, second = ack["result"]["steps"]
    assert first["ok"] is False and first["error"]["code"] == "device_offline"
    assert second["ok"] is True
    await until(lambda: lab.sim.power in ("warming", "on"), message="projector powering on")


async def test_a_second_start_is_busy_and_cancel_stops_the_run_at_once(lab: Lab) -> None:
    panel, other = await connected(lab), await connected(lab)
    task = await lab.start(panel, "never")
    busy = await other.command("room", "on")
    assert busy["ok"] is False and busy["error"]["code"] == "busy"
    assert busy["error"]["message"].startswith("Wait for cooling is running")  # its label
    again = await other.command("room", "never")
    assert again["error"]["code"] == "busy"
    cancelled = await other.command("room", "cancel")
    assert cancelled == {"ok": True, "result": {"cancelled": "never", "step": 1}}
    ack = await asyncio.wait_for(task, 5)
    assert ack["ok"] is False
    assert ack["error"]["code"] == "cancelled"
    assert ack["error"]["step"] == "1"
    assert "never was cancelled at step 1" in ack["error"]["message"]
    assert lab.state()["running"] is None
    assert lab.state()["last_run"]["error"]["code"] == "cancelled"
    nothing = await other.command("room", "cancel")
    assert nothing == {"ok": True, "result": {"cancelled": None}}
    assert lab.clock.pending() == []  # the cancelled wait left no timer behind


async def test_unknown_macros_and_args_are_refused(lab: Lab) -> None:
    panel = await connected(lab)
    unknown = await panel.command("room", "nope")
    assert unknown["error"]["code"] == "unknown_action"
    args = await panel.command("room", "on", now=True)
    assert args["error"]["code"] == "invalid_args"
    assert lab.state()["running"] is None


async def test_progress_is_ordinary_contiguous_changes_and_a_resumed_panel_sees_the_end(
    lab: Lab,
) -> None:
    watcher, starter = await connected(lab), await connected(lab)
    first = watcher.seq
    task = await lab.start(starter, "paced")
    await lab.advance(10)
    await until(lambda: watcher.state("room")["step"] == 2, message="step 2 seen")
    assert watcher.state("room")["progress"] == pytest.approx(1 / 5, abs=0.001)
    await watcher.disconnect()
    await lab.advance(10)
    await until(lambda: lab.state()["step"] == 3, message="step 3")
    await lab.advance(10)
    await lab.advance(5)
    ack = await asyncio.wait_for(task, 10)
    assert ack["ok"] is True, ack
    inner = ack["result"]["steps"][2]["steps"]
    assert [s["step"] for s in inner] == ["3.1", "3.2"]
    assert [s["step"] for s in inner[1]["steps"]] == ["3.2.1", "3.2.2"]
    await watcher.connect()  # resumes from its last (epoch, seq)
    await until(lambda: watcher.in_sync and watcher.seq == lab.hub.rooms["lab"].store.seq)
    assert watcher.snapshots == 1  # replayed what it missed, no new snapshot
    assert watcher.violations == []
    room = watcher.state("room")
    assert room["running"] is None and room["progress"] is None
    assert room["last_run"]["macro"] == "paced" and room["last_run"]["ok"] is True
    seen = [c for c in watcher.received if c["seq"] > first]
    assert [c["seq"] for c in seen] == list(range(first + 1, first + 1 + len(seen)))
    progress = [
        c["state"]["progress"]
        for c in seen
        if c["device"] == "room" and c["state"].get("progress") is not None
    ]
    assert progress == sorted(progress) and progress[0] == 0.0 and progress[-1] == 1.0
    steps = [c["state"]["step"] for c in seen if c["device"] == "room" and "step" in c["state"]]
    assert steps == [1, 2, 3, None]


async def test_the_run_goes_on_when_the_panel_that_started_it_leaves(lab: Lab) -> None:
    starter = await connected(lab)
    task = await lab.start(starter, "paced")
    await starter.disconnect()
    task.cancel()  # the ack has nowhere to go
    with contextlib.suppress(asyncio.CancelledError):
        await task
    await lab.advance(10)
    await lab.advance(10)
    await lab.advance(10)
    await lab.advance(5)
    await until(lambda: lab.state()["running"] is None, message="macro ended")
    assert lab.state()["last_run"]["ok"] is True


async def test_http_runs_a_macro_like_any_device_action(lab: Lab) -> None:
    assert lab.hub.address is not None
    base = f"http://127.0.0.1:{lab.hub.address[1]}/api/rooms/lab"
    async with aiohttp.ClientSession() as http:
        async with http.get(base) as response:
            snapshot = await response.json()
        paced = snapshot["devices"]["room"]["actions"]["paced"]
        assert snapshot["schemas"][paced]["title"] == "Three waits"
        async with http.post(f"{base}/devices/room/on", json={}) as response:
            assert response.status == 200
            body = await response.json()
        assert body["ok"] is True and len(body["result"]["steps"]) == 2
        async with http.post(f"{base}/devices/room/stops", json={}) as response:
            assert response.status == 503
            body = await response.json()
        assert body["error"]["code"] == "device_offline" and body["error"]["step"] == "1"


async def test_a_room_without_macros_has_no_room_device(hub_factory: Any) -> None:
    hub = await hub_factory({"rooms": {"bare": {"devices": {}}}})
    assert "room" not in hub.rooms["bare"].store.snapshot()["devices"]
