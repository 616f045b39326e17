"""The state store: numbering, replay ring bounds, ordered notification."""

from __future__ import annotations

from hub.store import Change, MemoryStore, dumps


def room(size: int = 5, age: float = 600.0, clock: list[float] | None = None) -> MemoryStore:
    now = clock if clock is not None else [1000.0]
    r = MemoryStore("r", "Room", ring_size=size, max_age=age, clock=lambda: now[0])
    r.add_device("d", "Device", "pjlink", {"online": False}, {})
    return r


def test_seq_starts_at_zero_and_grows_by_one() -> None:
    r = room()
    assert r.seq == 0 and r.snapshot()["seq"] == 0
    changes = [r.commit("d", {"x": i}) for i in range(3)]
    assert [c.seq for c in changes] == [1, 2, 3]
    assert r.snapshot()["devices"]["d"]["state"] == {"online": False, "x": 2}


def test_since_within_ring_and_beyond() -> None:
    r = room(size=5)
    for i in range(8):
        r.commit("d", {"x": i})
    assert [c.seq for c in r.since(r.epoch, 5) or []] == [6, 7, 8]
    assert [c.seq for c in r.since(r.epoch, 3) or []] == [4, 5, 6, 7, 8]
    assert r.since(r.epoch, 2) is None  # seq 3 fell out of the ring
    assert r.since(r.epoch, 8) == []
    assert r.since(r.epoch, 9) is None and r.since(r.epoch, -1) is None
    assert r.since("other", 5) is None
    assert r.since(r.epoch, "5") is None and r.since(r.epoch, True) is None


def test_ring_forgets_old_changes_by_age() -> None:
    now = [1000.0]
    r = room(size=100, age=60, clock=now)
    r.commit("d", {"x": 1})
    now[0] += 30
    r.commit("d", {"x": 2})
    assert r.since(r.epoch, 0) is not None
    now[0] += 45  # the first change is now 75 s old
    assert r.since(r.epoch, 0) is None
    assert [c.seq for c in r.since(r.epoch, 1) or []] == [2]


def test_subscribers_see_every_change_in_order() -> None:
    r = room()
    seen: list[int] = []
    other: list[int] = []
    stop = r.subscribe(lambda c: seen.append(c.seq))
    r.subscribe(lambda c: other.append(c.seq))
    for i in range(4):
        r.commit("d", {"x": i})
    stop()
    r.commit("d", {"x": 9})
    assert seen == [1, 2, 3, 4] and other == [1, 2, 3, 4, 5]


def test_change_payload_and_epochs_differ_per_room() -> None:
    r = room()
    c = r.commit("d", {"online": True})
    assert isinstance(c, Change)
    assert c.to_dict() == {
        "epoch": r.epoch,
        "seq": 1,
        "device": "d",
        "state": {"online": True},
        "ts": 1000.0,
    }
    assert room().epoch != r.epoch


async def test_a_device_list_change_keeps_epoch_and_seq_but_ends_replay_before_it() -> None:
    r = room(size=100)
    r.commit("d", {"x": 1})
    r.add_device("e", "Early", "pjlink", {"online": False}, {})  # before open: a fresh room
    assert [c.seq for c in r.since(r.epoch, 0) or []] == [1]
    await r.open()
    epoch = r.epoch
    r.commit("d", {"x": 2})
    r.add_device("late", "Late", "pjlink", {"online": False}, {})
    assert (r.epoch, r.seq) == (epoch, 2) and "late" in r.snapshot()["devices"]
    assert r.since(epoch, 1) is None and r.since(epoch, 2) is None  # a snapshot, not a replay
    r.commit("late", {"online": True})
    assert r.since(epoch, 3) == []
    r.commit("d", {"x": 3})
    assert [c.seq for c in r.since(epoch, 3) or []] == [4]
    r.remove_device("e")
    assert "e" not in r.snapshot()["devices"] and r.since(epoch, 4) is None
    r.rename("Renamed")
    assert r.snapshot()["room"] == {"id": "r", "name": "Renamed"} and r.snapshot_json() == dumps(
        r.snapshot()
    )


POWER = {"type": "object", "properties": {}, "additionalProperties": False}
INPUT = {"type": "object", "properties": {"input": {"type": "integer", "maximum": 999}}}


def test_describe_numbers_a_change_that_carries_the_new_schemas() -> None:
    r = room()
    r.add_device("e", "Other", "pjlink", {}, {"power_on": POWER})
    r.describe("d", {"power_on": POWER, "select": INPUT})
    seen: list[Change] = []
    r.subscribe(seen.append)
    narrower = {**INPUT, "properties": {"input": {"type": "integer", "maximum": 8}}}
    change = r.describe("d", {"power_on": POWER, "select": narrower})
    assert change is not None and change.seq == r.seq == 2 and seen == [change]
    assert change.state == {} and change.actions is not None and change.schemas is not None
    assert {name: change.schemas[ref] for name, ref in change.actions.items()} == {
        "power_on": POWER,
        "select": narrower,
    }
    assert change.to_dict()["actions"] == dict(change.actions)
    assert r.since(r.epoch, 1) == [change]  # replayed like any change
    snapshot = r.snapshot()
    assert snapshot["devices"]["d"]["actions"] == dict(change.actions)
    assert INPUT not in snapshot["schemas"].values()  # no device uses it any more
    assert list(snapshot["schemas"].values()).count(POWER) == 1  # shared by d and e
    assert r.describe("d", {"power_on": dict(POWER), "select": dict(narrower)}) is None
    assert r.seq == 2 and "actions" not in r.commit("d", {"x": 1}).to_dict()


def test_devices_with_the_same_schemas_share_one_table_entry_each() -> None:
    r = room()
    actions = {"power_on": POWER, "select": INPUT}
    for name in ("a", "b"):
        r.add_device(name, name, "pjlink", {}, actions)
    r.add_device("c", "c", "pjlink", {}, {"power_on": dict(POWER), "select": dict(INPUT)})
    entries = r.devices
    assert entries["a"].actions is entries["b"].actions is entries["c"].actions  # one mapping
    assert len(r.schemas) == 2


def test_removing_a_device_drops_the_schemas_only_it_used() -> None:
    r = room()
    r.add_device("a", "a", "pjlink", {}, {"power_on": POWER, "select": INPUT})
    r.add_device("b", "b", "pjlink", {}, {"power_on": dict(POWER)})
    r.remove_device("a")
    assert list(r.snapshot()["schemas"].values()) == [POWER]
    assert r.snapshot_json() == dumps(r.snapshot())
