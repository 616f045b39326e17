"""Commands forwarded between hubs on one Redis, two hubs in this process: a lost answer,
and an owner that answers "moved" (hub/cluster/commands.py)."""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from hub.app import Hub
from simulators.pjlink import PjlinkSimulator
from tests.cluster import RedisServer, cluster_config, redis_server  # noqa: F401 - fixture
from tests.helpers import until

Pair = tuple[Hub, Hub, str]


def owned(hub: Hub) -> list[str]:
    assert hub.cluster is not None
    return [d for d in ("proj0", "proj1") if hub.cluster.ownership.owns("lab", d)]


@pytest.fixture
async def pair(
    hub_factory: Callable[..., Awaitable[Hub]],
    pjlink_sims: Callable[..., Awaitable[PjlinkSimulator]],
    redis_server: RedisServer,  # noqa: F811 - the fixture
    caplog: pytest.LogCaptureFixture,
) -> Pair:
    """Two hubs, a projector owned by each: the first hub, the second, the first's device."""
    caplog.set_level(logging.INFO, "avhub.cluster")
    sims = [await pjlink_sims() for _ in range(2)]
    hubs = []
    for node in ("hub-a", "hub-b"):
        config = cluster_config(redis_server.url, [sim.port for sim in sims], node_id=node)
        config["hub"]["cluster"]["command_timeout"] = 1
        hubs.append(await hub_factory(config))

    def settled() -> bool:  # one device each, read by its owner
        return all(len(owned(h)) == 1 and h.rooms["lab"].drivers[owned(h)[0]].online for h in hubs)

    await until(settled, timeout=15, message="one device on each hub")
    return hubs[0], hubs[1], owned(hubs[0])[0]


async def test_a_forwarded_command_whose_answer_is_lost_is_answered_and_runs_once(
    pair: Pair,
) -> None:
    """The owner's answer is lost (its publish failed while Redis paused): the requester
    asks again after `command_timeout`, and the owner answers from memory, not by running
    the command a second time."""
    running, asking, device = pair
    assert running.cluster is not None
    runs: list[Any] = []
    run_here = running.cluster.commands.run_here
    assert run_here is not None

    async def counted(room: str, data: Any, where: str) -> Any:
        runs.append(data)
        return await run_here(room, data, where)

    running.cluster.commands.run_here = counted
    redis = running.cluster.redis
    publish = redis.publish
    dropped: list[str] = []

    async def lose_the_first_answer(chan: str, message: str) -> int:
        if '"reply"' in message and not dropped:
            dropped.append(message)
            return 0
        return int(await publish(chan, message))

    redis.publish = lose_the_first_answer  # type: ignore[method-assign]
    command: dict[str, Any] = {"device": device, "action": "power_on", "args": {}}
    async with asyncio.timeout(10):  # not the 600 s a command running elsewhere may take
        reply = await asyncio.ensure_future(asking.rooms["lab"].command(command, "test"))
    assert reply == {"ok": True, "result": None}, reply
    assert len(dropped) == 1 and runs == [command]  # run once, answered twice


async def test_an_owner_answering_moved_is_asked_again_after_a_tick_not_at_once(
    pair: Pair,
) -> None:
    """A hub restarted under the same node_id answers "moved" until the old lease runs out:
    the requester looks again each tick (lease_ttl / 5), not in a loop as fast as Redis."""
    running, asking, device = pair
    assert running.cluster is not None and asking.cluster is not None
    requests: list[str] = []
    received = running.cluster.commands._received

    def counting(raw: str) -> None:
        requests.append(raw)
        received(raw)

    running.cluster.commands._received = counting  # type: ignore[method-assign]
    monkey = pytest.MonkeyPatch()
    monkey.setattr(running.cluster.ownership, "owns", lambda room, dev: False)
    command: dict[str, Any] = {"device": device, "action": "power_on", "args": {}}
    try:
        reply = await asking.rooms["lab"].command(command, "test")
    finally:
        monkey.undo()
    assert reply["ok"] is False and reply["error"]["code"] == "timeout", reply
    ticks = 1 / (1.5 / 5)  # command_timeout over the tick
    assert 1 <= len(requests) <= ticks + 2, len(requests)


async def test_two_hubs_under_one_node_id_are_told_apart_and_warned_about(
    hub_factory: Callable[..., Awaitable[Hub]],
    pjlink_sims: Callable[..., Awaitable[PjlinkSimulator]],
    redis_server: RedisServer,  # noqa: F811 - the fixture
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The README's three-hub file shows `node_id`: copied to every hub unchanged, the hubs
    would split nothing between them. The second to register is warned."""
    sim = await pjlink_sims()
    config = cluster_config(redis_server.url, [sim.port], node_id="hub-a")
    first = await hub_factory(config)
    assert first.cluster is not None
    await until(lambda: first.cluster is not None and bool(first.cluster.ownership.owned()))
    assert "another hub process registered" not in caplog.text
    await hub_factory(config)
    await until(
        lambda: "node hub-a: another hub process registered this node_id" in caplog.text,
        message="the warning",
    )


async def test_ownership_log_lines_name_the_devices_and_the_hubs(
    pair: Pair, caplog: pytest.LogCaptureFixture
) -> None:
    """At 2 a.m. "took 1" says too little: which device, and which hubs are live."""
    records = caplog.get_records("setup")  # the pair settled while the fixture ran
    lines = [r.getMessage() for r in records if " owns " in r.getMessage()]
    assert any(
        re.search(r"^node hub-[ab] owns \d devices \(took 1: lab/proj[01];", line)
        and "hubs live: hub-a, hub-b" in line
        for line in lines
    ), lines
