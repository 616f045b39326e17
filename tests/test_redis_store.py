"""`hub.store: redis://…` inside one process: fencing, catching up, assignment, settings."""

from __future__ import annotations

import asyncio
import json
import signal
from collections import Counter
from collections.abc import Callable
from typing import Any

import aiohttp
import pytest

from drivers.transport import ConnectionState
from hub.app import Hub
from hub.cluster.ownership import assign
from hub.cluster.store import RedisStore
from hub.config import ConfigFileError, load_config_text
from simulators.extron_sis import ExtronSimulator
from tests.cluster import RedisServer, cluster_config, owners, redis_server
from tests.helpers import until
from tests.panel import Panel
from tests.scrape import Scrape
from tests.test_extron_hub import studio_config
from tests.test_lean_snapshots import route_maximum

__all__ = ["redis_server"]  # fixture


async def two_hubs(
    redis_server: RedisServer, hub_factory: Any, pjlink_sims: Any, ttl: float
) -> tuple[Any, list[Hub]]:
    """A projector (its simulator) in room `lab` of two hubs on `redis_server`."""
    sim = await pjlink_sims(power="on")
    config = cluster_config(redis_server.url, [sim.port], ttl=ttl)
    return sim, [await hub_factory(config) for _ in range(2)]


def owns_proj0(hub: Hub) -> bool:
    return hub.cluster is not None and hub.cluster.ownership.owns("lab", "proj0")


async def owner_of_proj0(hubs: list[Hub]) -> int:
    """Which of `hubs` owns `proj0`, once every hub has it online."""
    stores = [h.rooms["lab"].store for h in hubs]
    await until(lambda: all(s.devices["proj0"].state.get("online") for s in stores))
    await until(lambda: any(owns_proj0(h) for h in hubs))
    return next(i for i, h in enumerate(hubs) if owns_proj0(h))


def test_assign_spreads_evenly_and_moves_only_what_it_must() -> None:
    for count in range(25):
        for hubs in range(1, 6):
            nodes = [f"hub{i}" for i in range(hubs)]
            plan = assign([f"d{i}" for i in range(count)], nodes)
            loads = Counter(plan.values())
            assert len(plan) == count
            assert max(loads[n] for n in nodes) - min(loads[n] for n in nodes) <= 1
    keys = [f"avhub:{{lab}}:lease:proj{i}" for i in range(300)]
    before = assign(keys, ["a", "b", "c"])
    after = assign(keys, ["a", "b"])  # c leaves: about its share moves, little else
    assert sum(before[k] != after[k] for k in keys) <= 110
    joined = assign(keys, ["a", "b", "c", "d"])  # d joins: it takes a quarter
    assert sum(before[k] != joined[k] for k in keys) <= 85


async def test_a_change_made_under_a_lease_another_hub_holds_is_refused(
    redis_server: RedisServer, hub_factory: Any, pjlink_sims: Any
) -> None:
    sim = await pjlink_sims(power="on")
    hub: Hub = await hub_factory(cluster_config(redis_server.url, [sim.port], ttl=3))
    store = hub.rooms["lab"].store
    assert isinstance(store, RedisStore)
    await until(lambda: store.devices["proj0"].state.get("online") is True)
    panel = Panel(f"http://127.0.0.1:{hub.address[1]}", "lab")  # type: ignore[index]
    await panel.connect()
    await until(lambda: panel.in_sync)
    redis = redis_server.client()
    # Another hub took the device (as after this hub's lease ran out unnoticed).
    await redis.set("avhub:{lab}:lease:proj0", "elsewhere|999", px=60_000)
    seq = store.seq
    sim.set_input("51")
    await until(lambda: store.refused > 0, message="Redis to refuse the change")
    assert store.seq == seq  # nothing was numbered
    assert await owners(redis, "lab", ["proj0"]) == {"proj0": "elsewhere"}
    await until(lambda: not hub.cluster.ownership.owns("lab", "proj0"))  # type: ignore[union-attr]
    driver = hub.rooms["lab"].drivers["proj0"]
    await until(lambda: driver.conn_state is ConnectionState.CLOSED)  # stopped polling
    assert panel.seq == seq and panel.violations == []
    assert panel.devices["proj0"]["state"].get("input") != "Network 1"
    # Nor does this hub's mirror have it (the driver's own state does): a snapshot neither.
    assert driver.state.get("input") == "Network 1"
    assert store.snapshot()["devices"]["proj0"]["state"].get("input") != "Network 1"
    await redis.aclose()
    await panel.disconnect()


async def test_a_panel_resuming_past_this_hubs_mirror_waits_for_it(
    redis_server: RedisServer, hub_factory: Any, pjlink_sims: Any
) -> None:
    sim = await pjlink_sims(power="on")
    config = cluster_config(redis_server.url, [sim.port], ttl=3)
    first: Hub = await hub_factory(config)
    second: Hub = await hub_factory(config)
    stores = [h.rooms["lab"].store for h in (first, second)]
    await until(lambda: all(s.devices["proj0"].state.get("online") for s in stores))
    behind = stores[1]
    ahead = behind.seq + 1
    waiting = behind.catch_up(behind.epoch, ahead)  # seen elsewhere, not applied here yet
    assert waiting is not None
    task = asyncio.ensure_future(waiting)
    done_at: list[int] = []  # this hub's seq when the wait ended: never short of `ahead`
    task.add_done_callback(lambda _: done_at.append(behind.seq))
    sim.set_input("32")  # a change, committed by whichever hub owns the projector
    await asyncio.wait_for(task, 5)
    assert done_at and done_at[0] >= ahead, (done_at, ahead)
    changes = behind.since(behind.epoch, ahead - 1)
    assert changes is not None and changes[0].seq == ahead
    # Nothing to wait for when already there, for another epoch, or for nonsense.
    assert behind.catch_up(behind.epoch, behind.seq) is None
    assert behind.catch_up("other", behind.seq + 5) is None
    assert behind.catch_up(behind.epoch, "7") is None


async def test_what_was_committed_while_a_hub_was_not_subscribed_comes_from_the_stream(
    redis_server: RedisServer, hub_factory: Any, pjlink_sims: Any
) -> None:
    sim, hubs = await two_hubs(redis_server, hub_factory, pjlink_sims, ttl=3)
    stores = [h.rooms["lab"].store for h in hubs]
    owner = await owner_of_proj0(hubs)
    node = hubs[1 - owner].cluster
    assert node is not None
    readers = list(node._readers)  # the other hub stops listening (as while it resubscribes)
    for task in readers:
        task.cancel()
    await asyncio.gather(*readers, return_exceptions=True)
    mirror, source = stores[1 - owner], stores[owner]
    seq, before = mirror.seq, source.devices["proj0"].state.get("input")
    sim.set_input("32")
    await until(lambda: source.devices["proj0"].state.get("input") != before)
    assert mirror.seq == seq < source.seq  # nothing published reached it
    node._restart_readers()  # subscribed again: the stream has what it missed
    await until(lambda: mirror.seq == source.seq, message="the mirror to catch up")
    assert mirror.snapshot()["devices"] == source.snapshot()["devices"]
    assert mirror.epoch == source.epoch


async def test_changes_read_while_a_hub_reloads_a_room_do_not_look_like_redis_went_back(
    redis_server: RedisServer, hub_factory: Any, pjlink_sims: Any, monkeypatch: Any
) -> None:
    """Recovering, a hub reloads each room (the `open` script): changes other hubs commit
    after Redis answered may reach the mirror before the answer is read. The mirror is
    then ahead of the answer, and that is not Redis having lost changes."""
    sim, hubs = await two_hubs(redis_server, hub_factory, pjlink_sims, ttl=3)
    stores = [h.rooms["lab"].store for h in hubs]
    owner = await owner_of_proj0(hubs)
    node, mirror = hubs[1 - owner].cluster, stores[1 - owner]
    assert node is not None and isinstance(mirror, RedisStore)
    panel = Panel(f"http://127.0.0.1:{hubs[1 - owner].address[1]}", "lab")  # type: ignore[index]
    await panel.connect()
    await until(lambda: panel.in_sync)
    epoch = mirror.epoch
    run = node.scripts.run

    def answered_late(client: Any, name: str, keys: Any, args: Any) -> Any:
        call = run(client, name, keys, args)
        if name != "open":
            return call

        async def late() -> Any:
            reply = await call
            sim.set_input("32")  # the owner commits after Redis answered the reload
            await until(lambda: mirror.seq > int(reply[1]), message="the change published")
            return reply

        return late()

    monkeypatch.setattr(node.scripts, "run", answered_late)
    await node._load(mirror)
    assert mirror.epoch == epoch, "a new epoch: the reload took Redis for behind"
    redis = redis_server.client()
    assert await redis.hget("avhub:{lab}:meta", "epoch") == epoch  # type: ignore[misc]
    await redis.aclose()
    await until(lambda: panel.seq == mirror.seq and panel.in_sync)
    assert panel.snapshots == 1 and panel.violations == []
    await panel.disconnect()


async def test_a_failure_in_the_change_reader_reloads_the_rooms_and_it_reads_on(
    redis_server: RedisServer, hub_factory: Any, pjlink_sims: Any, monkeypatch: Any
) -> None:
    sim, hubs = await two_hubs(redis_server, hub_factory, pjlink_sims, ttl=3)
    stores = [h.rooms["lab"].store for h in hubs]
    owner = await owner_of_proj0(hubs)
    node, mirror, source = hubs[1 - owner].cluster, stores[1 - owner], stores[owner]
    assert node is not None
    failures: list[str] = []

    def broken(store: RedisStore, text: str) -> bool:  # a bug, once
        monkeypatch.undo()
        failures.append(text)
        raise KeyError("boom")

    monkeypatch.setattr(node, "_pushed", broken)
    sim.set_input("32")
    await until(lambda: failures, message="the reader to fail")
    await until(lambda: mirror.seq == source.seq, message="the mirror to catch up")
    sim.set_input("31")  # and it reads on
    await until(lambda: source.devices["proj0"].state.get("input") == "HDMI 1")
    await until(lambda: mirror.seq == source.seq and mirror.epoch == source.epoch)
    assert mirror.snapshot()["devices"] == source.snapshot()["devices"]


async def test_a_change_that_was_not_published_reaches_a_mirror_with_the_next_one(
    redis_server: RedisServer, hub_factory: Any, pjlink_sims: Any
) -> None:
    """A change in the stream that no subscriber was sent (as from a hub of a version
    that did not publish) is read from the stream when the next published one shows the gap."""
    sim = await pjlink_sims(power="on")
    hub: Hub = await hub_factory(cluster_config(redis_server.url, [sim.port], ttl=3))
    store = hub.rooms["lab"].store
    await until(lambda: store.devices["proj0"].state.get("online") is True)
    panel = Panel(f"http://127.0.0.1:{hub.address[1]}", "lab")  # type: ignore[index]
    await panel.connect()
    await until(lambda: panel.in_sync)
    redis = redis_server.client()
    unpublished = await redis.hincrby("avhub:{lab}:meta", "seq", 1)
    state = json.dumps({"lamp_hours": 4321})
    fields = {"e": store.epoch, "d": "proj0", "s": state, "t": "1"}
    await redis.xadd("avhub:{lab}:log", fields, id=f"{unpublished}-0")  # type: ignore[arg-type]
    await asyncio.sleep(0.2)
    assert store.seq < unpublished  # nothing told the hub
    sim.set_input("32")
    await until(lambda: store.seq > unpublished, message="the next change")
    await until(lambda: panel.seq == store.seq and panel.in_sync)
    assert panel.devices["proj0"]["state"]["lamp_hours"] == 4321
    assert panel.devices == store.snapshot()["devices"]
    assert panel.violations == []
    await redis.aclose()
    await panel.disconnect()


@pytest.mark.parametrize(
    ("cluster", "problem"),
    [
        ("{node_id: 'a|b'}", "hub.cluster.node_id: String should match pattern"),
        ("{lease_ttl: 0.1s}", "hub.cluster.lease_ttl: must be at least 0.5, got 0.1"),
        ("{lease: 10s}", "hub.cluster.lease: unknown key"),
    ],
)
def test_cluster_settings_are_checked(cluster: str, problem: str) -> None:
    text = f"hub:\n  store: redis://127.0.0.1:6379/0\n  cluster: {cluster}\nrooms:\n  a:\n    devices: {{}}\n"
    with pytest.raises(ConfigFileError) as caught:
        load_config_text(text, "t.yaml")
    assert problem in str(caught.value)
    assert str(caught.value).startswith("t.yaml:3:")


class RoomRunner:
    """Something that is not a driver but must run on exactly one hub (a room's macros)."""

    def __init__(self) -> None:
        self.running = False
        self.republished = 0

    async def take(self) -> None:
        self.running = True

    async def drop(self) -> None:
        self.running = False

    def republish(self) -> None:
        self.republished += 1

    def busy(self) -> bool:
        return False


async def test_a_non_driver_device_gets_exactly_one_owner_among_hubs(
    redis_server: RedisServer, hub_factory: Any, pjlink_sims: Any
) -> None:
    _, hubs = await two_hubs(redis_server, hub_factory, pjlink_sims, ttl=1)
    runners = [RoomRunner() for _ in hubs]
    for hub, runner in zip(hubs, runners, strict=True):
        assert hub.cluster is not None
        hub.cluster.ownership.add("lab", "room", runner)
    await until(lambda: sum(r.running for r in runners) == 1, timeout=5)
    redis = redis_server.client()
    (holder,) = (await owners(redis, "lab", ["room"])).values()
    owner = next(i for i, r in enumerate(runners) if r.running)
    assert holder == hubs[owner].cluster.node_id  # type: ignore[union-attr]
    await hubs[owner].stop()  # its owner leaves: the other hub takes over
    assert not runners[owner].running
    await until(lambda: runners[1 - owner].running, timeout=5)
    await redis.aclose()


async def test_redis_gone_back_in_time_starts_a_new_epoch_instead_of_reusing_seqs(
    redis_server: RedisServer, hub_factory: Any, pjlink_sims: Any
) -> None:
    sim = await pjlink_sims(power="on")
    hub: Hub = await hub_factory(cluster_config(redis_server.url, [sim.port], ttl=3))
    store = hub.rooms["lab"].store
    await until(lambda: store.devices["proj0"].state.get("online") is True and store.seq > 1)
    panel = Panel(f"http://127.0.0.1:{hub.address[1]}", "lab")  # type: ignore[index]
    await panel.connect()
    await until(lambda: panel.in_sync)
    old = store.epoch
    redis = redis_server.client()
    # As after a failover to a replica that missed the last changes: same epoch, lower seq.
    await redis.hset("avhub:{lab}:meta", "seq", 0)
    for kind in ("normal", "pubsub"):  # a failover drops every connection
        await redis.client_kill_filter(_type=kind, skipme=True)
    await until(lambda: store.epoch != old, message="a new epoch")
    sim.set_input("32")
    await until(lambda: panel.epoch == store.epoch and panel.seq == store.seq and panel.in_sync)
    assert panel.devices == store.snapshot()["devices"]
    assert panel.violations == []
    await redis.aclose()
    await panel.disconnect()


async def test_metrics_show_the_store_the_hubs_and_what_each_hub_owns(
    redis_server: RedisServer, hub_factory: Any, pjlink_sims: Any
) -> None:
    sims = [await pjlink_sims(power="on") for _ in range(2)]
    config = cluster_config(redis_server.url, [s.port for s in sims], ttl=1)
    hubs: list[Hub] = [await hub_factory(config) for _ in range(2)]

    async def scrape(hub: Hub) -> Scrape:
        assert hub.address is not None
        url = f"http://127.0.0.1:{hub.address[1]}/metrics"
        async with aiohttp.ClientSession() as http, http.get(url) as response:
            assert response.status == 200
            return Scrape(await response.text())

    async def every(check: Callable[[Scrape], bool]) -> bool:
        return all([check(await scrape(hub)) for hub in hubs])

    def spread(s: Scrape) -> bool:
        return (
            s.get("avhub_cluster_hubs") == 2
            and s.get("avhub_cluster_owned_devices", room="lab") == 1
            and all(s.get("avhub_device_online", **device(i)) == 1 for i in range(2))
        )

    # Each hub runs one projector; both are online in either hub's view (from the store).
    await until(lambda: every(spread), timeout=10, message="one device each, both online")
    scraped = await scrape(hubs[0])
    assert scraped.value("avhub_store_available") == 1
    assert scraped.value("avhub_store_refused_changes_total", room="lab") == 0
    assert scraped.value("avhub_devices", room="lab", status="online") == 2
    redis_server.send(signal.SIGSTOP)  # Redis stops answering
    try:
        await until(
            lambda: every(lambda s: s.get("avhub_store_available") == 0),
            timeout=10,
            message="store unavailable",
        )
    finally:
        redis_server.send(signal.SIGCONT)
    await until(
        lambda: every(lambda s: s.get("avhub_store_available") == 1),
        timeout=10,
        message="store available again",
    )


def device(i: int) -> dict[str, str]:
    return {"room": "lab", "device": f"proj{i}", "driver": "pjlink"}


async def test_action_schemas_learnt_by_the_owner_reach_every_hub_and_a_hub_started_later(
    redis_server: RedisServer, hub_factory: Any, simulators: Any, panels: Any
) -> None:
    """An Extron switcher's size, read at login by its owner, limits its route schema."""
    sim = await simulators(ExtronSimulator, inputs=12, outputs=4, password="sis")
    config = studio_config(sim.port, "sis")
    config["hub"] = {"store": redis_server.url, "cluster": {"lease_ttl": 1}}
    hubs: list[Hub] = [await hub_factory(config) for _ in range(2)]
    watching = []
    for hub in hubs:
        panel: Panel = panels(hub, "studio")
        await panel.connect()
        watching.append(panel)

    def learnt(panel: Panel) -> bool:
        return panel.in_sync and route_maximum(panel.actions("matrix"), "input") == 12

    await until(lambda: all(learnt(p) for p in watching), timeout=10, message="the size learnt")
    stores = [hub.rooms["studio"].store for hub in hubs]
    for store in stores:  # encoded now, and again after a change (owned here or not)
        assert json.loads(store.snapshot_json()) == store.snapshot()
    assert (await watching[1].command("matrix", "route", input=3, output=2))["ok"]
    routed = lambda s: s.devices["matrix"].state["routes"].get("2") == 3  # noqa: E731
    await until(lambda: all(routed(s) for s in stores), message="the route on both hubs")
    for store in stores:
        assert json.loads(store.snapshot_json()) == store.snapshot()
    actions = stores[0].snapshot()["devices"]["matrix"]["actions"]
    assert stores[1].snapshot()["devices"]["matrix"]["actions"] == actions
    # Panels that joined before it was learnt got one numbered change, the same on each hub.
    described = {(c["seq"], c["device"]) for p in watching for c in p.received if "actions" in c}
    assert len(described) <= 1
    late: Hub = await hub_factory(config)  # loads the description Redis keeps
    assert late.rooms["studio"].store.snapshot()["devices"]["matrix"]["actions"] == actions
    panel = panels(late, "studio")
    await panel.connect()
    await until(lambda: learnt(panel), message="the late hub's panel")
    assert all(p.violations == [] for p in [*watching, panel])
