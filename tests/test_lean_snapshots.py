"""Lean snapshots (DESIGN.md §3): each action schema once, by id; panels keep them across
reconnects; a schema learnt at run time reaches connected panels as a numbered change."""

from __future__ import annotations

from typing import Any

from hub.app import Hub
from hub.schemas import schema_id
from simulators.extron_sis import ExtronSimulator
from tests.helpers import SimulatorStarter, until
from tests.panel import Panel
from tests.test_extron_hub import studio_config
from tests.test_panel_protocol import online_hub


def route_maximum(actions: dict[str, Any], name: str) -> int:
    """The maximum of the integer branch of the route action's `name` argument."""
    prop = actions["route"]["properties"][name]
    [branch] = [b for b in prop.get("anyOf", [prop]) if b.get("type") == "integer"]
    return int(branch["maximum"])


async def test_identical_devices_share_each_schema_once(
    hub_factory: Any, panels: Any, pjlink_sims: Any
) -> None:
    sims = [await pjlink_sims() for _ in range(3)]
    hub = await online_hub(hub_factory, sims)
    panel: Panel = panels(hub, "lobby")
    await panel.connect()
    await until(lambda: panel.snapshot is not None)
    assert panel.snapshot is not None
    devices, schemas = panel.snapshot["devices"], panel.snapshot["schemas"]
    assert devices["proj0"]["actions"] == devices["proj1"]["actions"] == devices["proj2"]["actions"]
    ids = set(devices["proj0"]["actions"].values())
    assert set(schemas) == ids  # each distinct schema once, for three projectors
    assert all(schema_id(schema) == ref for ref, schema in schemas.items())
    driver = hub.rooms["lobby"].drivers["proj0"]
    assert panel.actions("proj0") == driver.describe_actions()


async def test_a_panel_holding_the_schemas_gets_none_and_still_has_every_action(
    hub_factory: Any, panels: Any, pjlink_sims: Any
) -> None:
    sims = [await pjlink_sims() for _ in range(2)]
    hub = await online_hub(hub_factory, sims)
    panel: Panel = panels(hub, "lobby", resume=False)  # a snapshot on every connect
    await panel.connect()
    await until(lambda: panel.snapshots == 1)
    first = panel.snapshot
    assert first is not None and first["schemas"]
    await panel.disconnect()
    await panel.connect()
    await until(lambda: panel.snapshots == 2)
    again = panel.snapshot
    assert again is not None and again["schemas"] == {}
    assert again["devices"].keys() == first["devices"].keys()
    for device in ("proj0", "proj1"):
        assert panel.actions(device) == hub.rooms["lobby"].drivers[device].describe_actions()
    # The sync answer's snapshot leaves out what the panel names too, and only that.
    held = sorted(first["schemas"])
    answer = await panel.call("sync", {"epoch": None, "seq": 0, "schemas": held[1:]})
    assert list(answer["snapshot"]["schemas"]) == held[:1]
    answer = await panel.call("sync", {"epoch": None, "seq": 0, "schemas": "all"})
    assert sorted(answer["snapshot"]["schemas"]) == held  # junk names nothing


async def test_a_panel_without_schemas_is_sent_all_of_them(
    hub_factory: Any, panels: Any, pjlink_sims: Any
) -> None:
    hub = await online_hub(hub_factory, [await pjlink_sims()])
    panel: Panel = panels(hub, "lobby", resume=False, keep_schemas=False)
    for count in (1, 2):
        await panel.connect()
        await until(lambda: panel.snapshots == count)  # noqa: B023
        assert panel.snapshot is not None
        assert set(panel.snapshot["schemas"]) == set(
            panel.snapshot["devices"]["proj0"]["actions"].values()
        )
        await panel.disconnect()


async def test_a_matrix_size_read_at_login_reaches_a_connected_panel(
    simulators: SimulatorStarter, hub_factory: Any, panels: Any
) -> None:
    """The switcher's size is not configured: its route schema allows SIS's 999 ports until
    the driver reads 12x4 at login, then a numbered change carries the new schemas."""
    sim = await simulators(ExtronSimulator, inputs=12, outputs=4, password="sis")
    port = sim.port
    await sim.stop()  # the hub starts with its switcher unreachable
    config = studio_config(port, "sis")
    config["rooms"]["studio"]["devices"]["matrix"]["input_names"] = {3: "Laptop"}
    hub: Hub = await hub_factory(config)
    panel: Panel = panels(hub, "studio")
    await panel.connect()
    await until(lambda: panel.in_sync)
    assert route_maximum(panel.actions("matrix"), "input") == 999
    await sim.start("127.0.0.1", port)
    online = lambda: panel.state("matrix").get("online") is True  # noqa: E731
    await until(online, timeout=10, message="switcher online (after a backoff of up to 2 s)")
    await until(lambda: route_maximum(panel.actions("matrix"), "input") == 12)
    assert route_maximum(panel.actions("matrix"), "output") == 4
    branches = panel.actions("matrix")["route"]["properties"]["input"]["anyOf"]
    assert {"type": "string", "minLength": 1} in branches  # names are still accepted
    assert (await panel.command("matrix", "route", input="Laptop", output=2))["ok"]
    await until(lambda: panel.state("matrix")["routes"].get("2") == 3)
    described = [c for c in panel.received if "actions" in c]
    assert len(described) == 1 and described[0]["device"] == "matrix"
    assert set(described[0]["schemas"]) == set(described[0]["actions"].values())
    assert panel.violations == []
    # A panel that comes later gets the new schemas in its snapshot; the HTTP snapshot too.
    late: Panel = panels(hub, "studio")
    await late.connect()
    await until(lambda: late.in_sync)
    assert route_maximum(late.actions("matrix"), "input") == 12
    store = hub.rooms["studio"].store
    assert store.snapshot()["devices"]["matrix"]["actions"] == described[0]["actions"]
    assert len(store.schemas) == len(set(described[0]["actions"].values()))  # old ones dropped
    # A panel that missed the change is replayed it.
    await panel.disconnect()
    panel.seq, panel.devices["matrix"]["actions"] = described[0]["seq"] - 1, {}
    panel.applied.discard((described[0]["epoch"], described[0]["seq"]))
    await panel.connect()
    await until(lambda: panel.in_sync and panel.seq == store.seq)
    assert panel.snapshots == 1 and route_maximum(panel.actions("matrix"), "input") == 12
