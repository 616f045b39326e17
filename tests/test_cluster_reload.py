"""Live reload with `store: redis://`: each hub reloads its own file; owners follow the devices.

Two in-process hubs share a real redis-server; each runs from its own copy of the
deployment file, which the test rewrites and reloads hub by hub.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import yaml

from drivers.transport import ConnectionState
from hub.app import Hub
from hub.cluster.scripts import RoomKeys
from hub.reload import Reloader
from simulators.pjlink import PjlinkSimulator
from tests.cluster import RedisServer, node_pair, owners, redis_server
from tests.helpers import pjlink_at, until
from tests.panel import Panel

__all__ = ["redis_server"]  # fixture

Rooms = dict[str, dict[str, int]]  # room id -> device id -> simulator port


def deployment(url: str, node_id: str, rooms: Rooms) -> dict[str, Any]:
    hub = {
        "store": url,
        "cluster": {"lease_ttl": 1, "node_id": node_id},
        "drivers": {"pjlink": {"notify": "off"}},
    }
    return {
        "hub": hub,
        "rooms": {
            room_id: {"devices": {d: pjlink_at(port) for d, port in devices.items()}}
            for room_id, devices in rooms.items()
        },
    }


def write(path: Path, config: dict[str, Any]) -> None:
    path.write_text(yaml.safe_dump(config, sort_keys=False))


class Member:
    """One hub of the cluster, running from its own file."""

    def __init__(self, hub: Hub, path: Path, url: str, node_id: str) -> None:
        self.hub = hub
        self.path = path
        self.url = url
        self.node_id = node_id
        self.reloader = Reloader(hub, path)

    async def reload(self, rooms: Rooms) -> dict[str, Any]:
        write(self.path, deployment(self.url, self.node_id, rooms))
        outcome = await self.reloader.reload()
        assert outcome.ok, outcome.answer()
        answer: dict[str, Any] = outcome.answer()
        return answer

    def owns(self, room: str, device: str) -> bool:
        assert self.hub.cluster is not None
        return self.hub.cluster.ownership.owns(room, device)

    def state(self, room: str, device: str) -> dict[str, Any]:
        return self.hub.rooms[room].store.devices[device].state


def settled(members: list[Member], rooms: Rooms) -> bool:
    """Every device of `rooms` has one owner, and every hub's mirror has it online."""
    for room, devices in rooms.items():
        for device in devices:
            if sum(m.owns(room, device) for m in members) != 1:
                return False
            if not all(m.state(room, device).get("pjlink_class") for m in members):
                return False
    return True


async def test_devices_added_and_removed_on_two_hubs_reload_by_reload(
    redis_server: RedisServer,
    hub_factory: Callable[..., Awaitable[Hub]],
    pjlink_sims: Callable[..., Awaitable[PjlinkSimulator]],
    panels: Callable[..., Panel],
    tmp_path: Path,
) -> None:
    sims = [await pjlink_sims() for _ in range(3)]
    before: Rooms = {"lobby": {"proj": sims[0].port}, "hall": {"left": sims[1].port}}
    added: Rooms = {"lobby": {**before["lobby"], "extra": sims[2].port}, "hall": before["hall"]}
    removed: Rooms = {"lobby": {"extra": sims[2].port}, "hall": before["hall"]}
    lobby, hall = RoomKeys.of("lobby"), RoomKeys.of("hall")
    keys = [lobby.lease("proj"), lobby.lease("extra"), hall.lease("left")]
    # The first hub to reload will own `extra`: the second then shows what it committed.
    node_ids = node_pair(keys, lobby.lease("extra"), 0)
    members = []
    for node_id in node_ids:
        path = tmp_path / f"{node_id}.yaml"
        write(path, deployment(redis_server.url, node_id, before))
        hub = await hub_factory(deployment(redis_server.url, node_id, before))
        members.append(Member(hub, path, redis_server.url, node_id))
    first, second = members
    await until(lambda: settled(members, before), timeout=10, message="every device owned")
    lobby_panels = []
    for member in members:
        panel = panels(member.hub, "lobby")
        await panel.connect()
        lobby_panels.append(panel)
    hall_panel = panels(second.hub, "hall")
    await hall_panel.connect()
    await until(lambda: all(p.in_sync for p in [*lobby_panels, hall_panel]), message="in sync")
    hall_store = second.hub.rooms["hall"].store
    hall_at = (hall_store.epoch, hall_store.seq)
    lobby_store = first.hub.rooms["lobby"].store
    lobby_at = (lobby_store.epoch, lobby_store.seq)

    # `extra` is added: the first hub reloads and takes it, then the second reloads.
    answer = await first.reload(added)
    assert answer["result"]["devices"]["added"] == ["lobby/extra"]
    await until(lambda: "extra" in lobby_panels[0].devices, message="first hub's panel redrawn")
    await until(lambda: first.owns("lobby", "extra"), timeout=5, message="extra owned")
    await until(lambda: first.state("lobby", "extra").get("pjlink_class"), message="polled")
    assert "extra" not in lobby_panels[1].devices  # its hub still runs the old file
    await second.reload(added)
    first_lobby, second_lobby = (m.hub.rooms["lobby"].store for m in members)
    await until(lambda: second_lobby.seq == first_lobby.seq, message="mirrors at one seq")
    assert second.state("lobby", "extra") == first.state("lobby", "extra")  # as committed
    await until(lambda: "extra" in lobby_panels[1].devices, message="second hub's panel redrawn")
    assert lobby_panels[1].devices["extra"]["state"]["online"] is True
    await until(lambda: settled(members, added), timeout=10, message="owners after adding")
    for member in members:  # the device list changed: no replay from before it
        assert member.hub.rooms["lobby"].store.since(*lobby_at) is None

    # `proj` is removed on both: its owner stops it, its lease and its state leave Redis.
    (proj_owner,) = [m for m in members if m.owns("lobby", "proj")]
    proj_driver = proj_owner.hub.rooms["lobby"].drivers["proj"]
    for member in members:
        answer = await member.reload(removed)
        assert answer["result"]["devices"]["removed"] == ["lobby/proj"]
    assert proj_driver.conn_state is ConnectionState.CLOSED
    assert not any(m.owns("lobby", "proj") for m in members)
    redis = redis_server.client()
    try:
        assert await owners(redis, "lobby", ["proj"]) == {"proj": None}

        async def forgotten() -> bool:
            fields = await redis.hkeys(lobby.state)
            return not any(f.startswith("proj/") for f in fields) and "extra/online" in fields

        await until(forgotten, message="proj's state deleted in Redis")
    finally:
        await redis.aclose()
    await until(lambda: settled(members, removed), timeout=10, message="owners after removing")
    for panel in lobby_panels:
        await until(lambda p=panel: "proj" not in p.devices, message="panels redrawn")
        assert panel.violations == []

    # The room no reload touched kept its epoch, seq and panel.
    assert (hall_store.epoch, hall_store.seq) == hall_at
    assert (hall_panel.snapshots, hall_panel.connects, hall_panel.received) == (1, 1, [])
    assert first.hub.rooms["hall"].store.epoch == hall_at[0]
