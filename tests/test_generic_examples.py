"""The generic examples (config/examples/) end to end: `--simulate` → generic driver → hub → panel.

Each example runs as `avhub run FILE --simulate` would run it: its own generic simulator
(from the device's `simulator:` block) on loopback or a pty, the hub polling it. A panel
sees the polled state, runs an action, sees a change made on the device itself (pushed
by the device where the protocol pushes, else polled), and sees the device go offline
and come back with what changed meanwhile.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from hub.config import load_config
from simulators.generic import GenericSimulator
from tests.helpers import HubRig, fast_config, until
from tests.panel import Panel

EXAMPLES = Path(__file__).resolve().parent.parent / "config" / "examples"
State = dict[str, Any]


@dataclass(frozen=True)
class Example:
    """One example file, its device, and what each step should show."""

    file: str
    room: str
    device: str
    start: Callable[[State], bool]  # the simulator's start state, polled
    command: tuple[str, dict[str, Any]]
    commanded: Callable[[State, GenericSimulator], bool]
    change: Callable[[GenericSimulator], None]  # on the device itself
    changed: Callable[[State], bool]
    pushes: bool  # the change arrives unasked (else by the next poll)


EXAMPLE_LIST = [
    Example(
        "kramer-p3000.yaml",
        "studio",
        "switcher",
        lambda s: s.get("routes") == {"1": 1, "2": 2, "3": 3, "4": 4},
        ("route", {"input": 4, "output": 1}),
        lambda s, sim: s["routes"]["1"] == 4 and sim.state["route.1"] == 4,
        lambda sim: sim.set_state("route.3", 0),
        lambda s: s["routes"]["3"] is None,  # input 0: disconnected
        pushes=True,
    ),
    Example(
        "relay-screen.yaml",
        "auditorium",
        "relays",
        lambda s: s.get("relays") == {"1": False, "2": False} and s.get("screen") == "stopped",
        ("set_relay", {"channel": "2", "active": True}),
        lambda s, sim: s["relays"]["2"] is True and sim.state["relay.02"] == "01",
        lambda sim: sim.set_state("screen", "01"),
        lambda s: s["screen"] == "down",
        pushes=False,
    ),
    Example(
        "lighting-scenes.yaml",
        "ballroom",
        "lights",
        lambda s: s.get("preset") == 1 and s.get("levels") == {"1": 100, "2": 100},
        ("set_level", {"control": "2", "level": 40}),
        lambda s, sim: s["levels"]["2"] == 40 and sim.state["level.2"] == 40,
        lambda sim: sim.set_state("scene", 7),
        lambda s: s["preset"] == 7,
        pushes=True,
    ),
]


@pytest.fixture(params=EXAMPLE_LIST, ids=lambda e: e.file.removesuffix(".yaml"))
async def example(request: pytest.FixtureRequest) -> AsyncIterator[tuple[Example, HubRig]]:
    """The example's hub and simulator; where the device pushes, polls are too slow to help."""
    ex: Example = request.param
    config = load_config(EXAMPLES / ex.file)
    poll = {"poll_interval": 60.0} if ex.pushes else {}
    rig = HubRig(fast_config(config, **poll))
    try:
        await rig.start()
        yield ex, rig
    finally:
        await rig.close()


async def test_example_drives_its_simulator_through_the_hub(
    example: tuple[Example, HubRig], panels: Callable[..., Panel]
) -> None:
    ex, rig = example
    assert rig.hub is not None
    sim = rig.sims[f"{ex.room}/{ex.device}"]
    assert isinstance(sim, GenericSimulator)
    panel = panels(rig.hub, ex.room)
    await panel.connect()

    def state() -> State:
        return panel.state(ex.device)

    await until(lambda: panel.in_sync and ex.start(state()), 10, message="polled start state")
    assert state()["online"] is True
    assert set(panel.snapshot["devices"][ex.device]["actions"]) >= {ex.command[0]}

    action, args = ex.command
    assert await panel.command(ex.device, action, **args) == {"ok": True, "result": None}
    await until(lambda: ex.commanded(state(), sim), message="the action's effect")
    bad = await panel.command(ex.device, action, **{**args, "nonsense": 1})
    assert bad["ok"] is False and bad["error"]["code"] == "invalid_args"

    ex.change(sim)  # on the device, not through the hub
    await until(lambda: ex.changed(state()), message="the device's own change")

    sim.knobs.refuse = True
    sim.drop_sessions()
    await until(lambda: state()["online"] is False, 15, message="offline")
    assert state()["offline_reason"] in ("refused", "closed", "timeout")
    sim.reset_state()  # changed while the hub could not see it
    sim.knobs.refuse = False
    await until(lambda: state()["online"] is True, 15, message="back online")
    await until(lambda: ex.start(state()), 10, message="state read again after recovery")
    assert panel.violations == []


async def test_an_error_reply_without_the_optional_group_reads_cleanly(
    panels: Callable[..., Panel],
) -> None:
    """Kramer's `~01@ERR 005` has no command in it: the message leaves it out, and names the
    device by its room, as every driver's errors do."""
    rig = HubRig(fast_config(load_config(EXAMPLES / "kramer-p3000.yaml"), poll_interval=60.0))
    try:
        await rig.start()
        assert rig.hub is not None
        sim = rig.sims["studio/switcher"]
        assert isinstance(sim, GenericSimulator)
        panel = panels(rig.hub, "studio")
        await panel.connect()
        await until(lambda: panel.in_sync and panel.state("switcher").get("online") is True)
        sim.knobs.device_errors = 1  # the next command gets the error reply
        ack = await panel.command("switcher", "route", input=1, output=2)
        assert ack["error"] == {
            "code": "device_error",
            "message": "studio/switcher: refused (error 005)",
        }, ack
    finally:
        await rig.close()
