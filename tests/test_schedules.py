"""Schedules and triggers on an injected clock: no real waiting, daylight-saving changes included.

Europe/Berlin: clocks go from 02:00 to 03:00 on 2025-03-30 and from 03:00 back to
02:00 on 2025-10-26.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from hub.app import Hub
from hub.automation.clock import ManualClock
from hub.automation.models import ScheduleConfig
from hub.automation.schedule import next_run
from hub.store import Change
from simulators.pjlink import PjlinkSimulator
from tests.helpers import hub_config, pjlink_at, until

BERLIN = ZoneInfo("Europe/Berlin")
UTC = ZoneInfo("UTC")
FAST = {"transition_poll": 0.05, "power_settle": 0}  # power changes show at once


def at(text: str, zone: ZoneInfo = BERLIN) -> float:
    """Unix seconds of a wall-clock time like '2025-03-29 12:00' in `zone`."""
    return datetime.fromisoformat(text).replace(tzinfo=zone).timestamp()


def utc(when: float) -> str:
    return datetime.fromtimestamp(when, UTC).strftime("%Y-%m-%d %H:%M")


class Runs:
    """Every macro start the room device commits: (clock time as UTC text, macro, by)."""

    def __init__(self, hub: Hub, clock: ManualClock, room: str) -> None:
        self.seen: list[tuple[str, str, str]] = []
        self.clock = clock
        hub.rooms[room].store.subscribe(self._change)

    def _change(self, change: Change) -> None:
        if change.device == "room" and change.state.get("running"):
            self.seen.append((utc(self.clock.time()), change.state["running"], change.state["by"]))


HubMaker = Callable[[dict[str, Any], float], Awaitable[tuple[Hub, ManualClock]]]


@pytest.fixture
async def make_hub() -> AsyncIterator[HubMaker]:
    hubs: list[Hub] = []

    async def make(config: dict[str, Any], start: float) -> tuple[Hub, ManualClock]:
        clock = ManualClock(start)
        hub = Hub(hub_config(config), clock=clock)
        hubs.append(hub)
        await hub.start("127.0.0.1", 0)
        return hub, clock

    yield make
    for hub in hubs:
        await hub.stop()


def scheduled(*schedules: dict[str, Any], timezone: str = "Europe/Berlin") -> dict[str, Any]:
    macros = {
        "mark": {"steps": [{"wait": 0}]},
        "slow": {"steps": [{"wait": "1h"}]},
        "fails": {"steps": [{"wait_until": "room.running == nothing", "timeout": "1m"}]},
    }
    lab = {"devices": {}, "macros": macros, "schedules": list(schedules)}
    return {"hub": {"timezone": timezone}, "rooms": {"lab": lab}}


async def test_a_daily_schedule_keeps_local_time_across_the_spring_change(
    make_hub: HubMaker,
) -> None:
    hub, clock = await make_hub(scheduled({"at": "22:00", "run": "mark"}), at("2025-03-29 12:00"))
    runs = Runs(hub, clock, "lab")
    room = hub.rooms["lab"].store.devices["room"].state
    assert room["next_schedule"] == {"macro": "mark", "at": "2025-03-29T22:00:00+01:00"}
    await clock.advance_to(at("2025-03-29 21:59:59"))
    assert runs.seen == []
    await clock.advance(1)
    assert runs.seen == [("2025-03-29 21:00", "mark", "schedule")]
    await until(lambda: room["last_schedule"] is not None, message="run recorded")
    assert room["last_schedule"]["ok"] is True
    assert room["last_schedule"]["started"] == "2025-03-29T22:00:00+01:00"
    assert room["next_schedule"]["at"] == "2025-03-30T22:00:00+02:00"
    await clock.advance(23 * 3600 - 1)  # 22:00 CEST is 23 hours after 22:00 CET
    assert len(runs.seen) == 1
    await clock.advance(1)
    assert runs.seen[1] == ("2025-03-30 20:00", "mark", "schedule")
    await clock.advance(24 * 3600)
    assert runs.seen[2] == ("2025-03-31 20:00", "mark", "schedule")
    assert len(runs.seen) == 3


async def test_a_time_the_spring_change_skips_runs_as_much_later(make_hub: HubMaker) -> None:
    hub, clock = await make_hub(scheduled({"at": "02:30", "run": "mark"}), at("2025-03-29 12:00"))
    runs = Runs(hub, clock, "lab")
    await clock.advance_to(at("2025-03-31 12:00"))
    # 02:30 does not exist on the 30th: it runs at 03:30 CEST (01:30 UTC), once a night.
    assert [r[0] for r in runs.seen] == ["2025-03-30 01:30", "2025-03-31 00:30"]


async def test_a_time_the_autumn_change_repeats_runs_once(make_hub: HubMaker) -> None:
    hub, clock = await make_hub(scheduled({"at": "02:30", "run": "mark"}), at("2025-10-25 12:00"))
    runs = Runs(hub, clock, "lab")
    await clock.advance_to(at("2025-10-27 12:00"))
    # 02:30 comes twice on the 26th (CEST, then CET): the first one only.
    assert [r[0] for r in runs.seen] == ["2025-10-26 00:30", "2025-10-27 01:30"]


async def test_a_schedule_runs_on_its_days_only(make_hub: HubMaker) -> None:
    config = scheduled({"at": "07:00", "days": ["mon", "wed"], "run": "mark"}, timezone="UTC")
    hub, clock = await make_hub(config, at("2025-06-01 12:00", UTC))  # a Sunday
    runs = Runs(hub, clock, "lab")
    await clock.advance(7 * 24 * 3600)
    assert [r[0] for r in runs.seen] == ["2025-06-02 07:00", "2025-06-04 07:00"]


async def test_a_failing_schedule_is_logged_and_shown_in_the_room_state(
    make_hub: HubMaker, caplog: pytest.LogCaptureFixture
) -> None:
    config = scheduled(
        {"at": "22:00", "run": "fails"}, {"at": "22:30", "run": "mark"}, timezone="UTC"
    )
    hub, clock = await make_hub(config, at("2025-06-01 12:00", UTC))
    room = hub.rooms["lab"].store.devices["room"].state
    with caplog.at_level(logging.WARNING, logger="avhub.automation"):
        await clock.advance_to(at("2025-06-01 22:05", UTC))
    last = room["last_schedule"]
    assert last["macro"] == "fails" and last["ok"] is False
    assert last["error"]["code"] == "timeout" and last["error"]["step"] == "1"
    assert any("fails stopped at step 1" in r.getMessage() for r in caplog.records)


async def test_a_schedule_that_finds_a_macro_running_is_refused_and_says_so(
    make_hub: HubMaker,
) -> None:
    config = scheduled(
        {"at": "22:00", "run": "slow"}, {"at": "22:30", "run": "mark"}, timezone="UTC"
    )
    hub, clock = await make_hub(config, at("2025-06-01 12:00", UTC))
    room = hub.rooms["lab"].store.devices["room"].state
    await clock.advance_to(at("2025-06-01 22:31", UTC))
    assert room["running"] == "slow"
    last = room["last_schedule"]
    assert last["macro"] == "mark" and last["ok"] is False and last["error"]["code"] == "busy"


def test_next_run_is_computed_in_the_zone() -> None:
    daily = ScheduleConfig.model_validate({"at": "22:00", "run": "x"})
    due = next_run(daily, at("2025-03-30 12:00"), BERLIN)
    assert due.isoformat() == "2025-03-30T22:00:00+02:00"
    weekly = ScheduleConfig.model_validate({"at": "06:00", "days": ["fri"], "run": "x"})
    assert next_run(weekly, at("2025-06-06 06:00"), BERLIN).isoformat().startswith("2025-06-13")


# ---------------------------------------------------------------------------- triggers


def triggered(port: int, trigger: dict[str, Any]) -> dict[str, Any]:
    lab = {
        "devices": {"projector": pjlink_at(port, **FAST)},
        "macros": {"mark": {"steps": [{"wait": 0}]}},
        "triggers": [trigger],
    }
    return {"hub": {"timezone": "Europe/Berlin"}, "rooms": {"lab": lab}}


async def powered(hub: Hub, sim: PjlinkSimulator, on: bool) -> None:
    sim.press_power(on)
    state = hub.rooms["lab"].store.devices["projector"].state
    await until(lambda: state.get("power") == ("on" if on else "off"), message=f"power {on}")


async def test_a_trigger_fires_after_its_condition_held_for_its_time_across_dst(
    make_hub: HubMaker, pjlink_sims: Callable[..., Awaitable[PjlinkSimulator]]
) -> None:
    sim = await pjlink_sims()
    config = triggered(sim.port, {"when": "projector.power == on", "for": "2h", "run": "mark"})
    hub, clock = await make_hub(config, at("2025-03-30 01:30"))
    runs = Runs(hub, clock, "lab")
    await powered(hub, sim, True)
    await clock.advance(2 * 3600 - 1)  # the wall clock reads 04:29:59: three hours "later"
    assert runs.seen == []
    await clock.advance(1)
    assert runs.seen == [("2025-03-30 02:30", "mark", "trigger")]  # 04:30 CEST
    await clock.advance(5 * 3600)
    assert len(runs.seen) == 1  # once per stretch of holding
    room = hub.rooms["lab"].store.devices["room"].state
    await until(lambda: room["last_trigger"] is not None, message="trigger recorded")
    assert room["last_trigger"]["ok"] is True


async def test_a_trigger_whose_condition_breaks_starts_counting_again(
    make_hub: HubMaker, pjlink_sims: Callable[..., Awaitable[PjlinkSimulator]]
) -> None:
    sim = await pjlink_sims()
    config = triggered(sim.port, {"when": "projector.power == on", "for": "10m", "run": "mark"})
    hub, clock = await make_hub(config, at("2025-06-01 12:00"))
    runs = Runs(hub, clock, "lab")
    await powered(hub, sim, True)
    await clock.advance(9 * 60)
    await powered(hub, sim, False)
    await clock.advance(60)
    assert runs.seen == []  # it did not hold for 10 minutes without a break
    await powered(hub, sim, True)
    await clock.advance(10 * 60)
    assert [r[1:] for r in runs.seen] == [("mark", "trigger")]


async def test_a_trigger_without_for_fires_on_the_change(
    make_hub: HubMaker, pjlink_sims: Callable[..., Awaitable[PjlinkSimulator]]
) -> None:
    sim = await pjlink_sims()
    config = triggered(sim.port, {"when": "projector.power in [warming, on]", "run": "mark"})
    hub, clock = await make_hub(config, at("2025-06-01 12:00"))
    runs = Runs(hub, clock, "lab")
    await powered(hub, sim, True)
    await until(lambda: runs.seen, message="trigger ran")
    assert [r[1:] for r in runs.seen] == [("mark", "trigger")]


async def test_a_device_starting_is_not_a_device_gone(
    make_hub: HubMaker, pjlink_sims: Callable[..., Awaitable[PjlinkSimulator]]
) -> None:
    """Before its driver reaches it a device shows `online: false` (`starting`): a trigger
    on it going offline waits for its state, and then for a change."""
    sim = await pjlink_sims()
    trigger = {"when": "not projector.online", "run": "mark"}
    hub, clock = await make_hub(triggered(sim.port, trigger), 0.0)
    runs = Runs(hub, clock, "lab")
    state = hub.rooms["lab"].store.devices["projector"].state
    await until(lambda: state.get("power") == "off", message="read")
    await clock.advance(1)
    room = hub.rooms["lab"].store.devices["room"].state
    assert runs.seen == [] and room["last_trigger"] is None and room["last_run"] is None
    await sim.stop()  # the projector goes away
    await until(lambda: runs.seen, message="the trigger ran")
    assert [r[1:] for r in runs.seen] == [("mark", "trigger")]
