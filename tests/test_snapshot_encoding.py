"""The pre-encoded snapshot and events: byte for byte what python-socketio would send."""

from __future__ import annotations

import json
from typing import Any

from socketio import packet as sio_packet

from hub.fanout import Event
from hub.store import MemoryStore

ACTIONS = {"power_on": {"type": "object", "properties": {}}, "say": {"title": 'Ünïcode "q"'}}


def socketio_text(namespace: str, event: str, data: Any) -> str:
    """What `python-socketio` puts in an Engine.IO MESSAGE for this event."""
    return sio_packet.Packet(sio_packet.EVENT, data=[event, data], namespace=namespace).encode()


def busy_room() -> MemoryStore:
    room = MemoryStore("r1", 'Boardroom "A" — Ørsted')
    room.add_device("proj", "Projector", "pjlink", {"online": False}, ACTIONS)
    room.add_device("dsp", "DSP ✓", "tesira", {"online": True, "levels": {"1": -10.5}}, {})
    room.add_device("cam", "Camera", "visca", {}, dict(ACTIONS))
    return room


def test_snapshot_json_is_the_snapshot_encoded_compactly() -> None:
    room = busy_room()
    room.commit("proj", {"power": "on", "errors": {"fan": "ok"}, "lamps": [{"hours": 3}]})
    room.commit("dsp", {"mutes": {"1": True}, "note": None, "gain": float("1e-7")})
    text = room.snapshot_json()
    assert text == json.dumps(room.snapshot(), separators=(",", ":"))
    assert json.loads(text) == room.snapshot()


def test_snapshot_after_a_change_holds_that_change() -> None:
    room = busy_room()
    room.snapshot_json()  # whatever is cached from this one must not outlive a change
    room.commit("proj", {"power": "warming"})
    room.commit("cam", {"preset": 3})
    after = json.loads(room.snapshot_json())
    assert after["seq"] == 2
    assert after["devices"]["proj"]["state"] == {"online": False, "power": "warming"}
    assert after["devices"]["cam"]["state"] == {"preset": 3}
    room.commit("proj", {"power": "on"})
    assert json.loads(room.snapshot_json())["devices"]["proj"]["state"]["power"] == "on"


def test_a_snapshot_leaves_out_the_schemas_the_panel_holds() -> None:
    room = busy_room()
    ids = set(room.snapshot()["schemas"])
    assert ids == set(room.snapshot()["devices"]["proj"]["actions"].values())  # proj, cam share
    for held in ([], sorted(ids)[:1], sorted(ids), ["not-an-id"]):
        text = room.snapshot_json(frozenset(held))
        assert text == json.dumps(room.snapshot(frozenset(held)), separators=(",", ":"))
        assert set(json.loads(text)["schemas"]) == ids - set(held)
    room.describe("cam", {"say": {"title": "changed"}})
    text = room.snapshot_json()
    assert text == json.dumps(room.snapshot(), separators=(",", ":"))
    assert len(json.loads(text)["schemas"]) == 3


def test_events_encode_as_python_socketio_encodes_them() -> None:
    room = busy_room()
    change = room.commit("dsp", {"levels": {"1": -3.0}, "label": "Ünïcode"})
    described = room.describe("dsp", {"say": {"title": "Ünïcode ✓"}})
    assert described is not None
    namespace = "/rooms/r1"
    for name, data, data_json in (
        ("snapshot", room.snapshot(), room.snapshot_json()),
        ("change", change.to_dict(), json.dumps(change.to_dict(), separators=(",", ":"))),
        ("change", described.to_dict(), json.dumps(described.to_dict(), separators=(",", ":"))),
    ):
        event = Event(namespace, name, data_json)
        assert event.packet.encode() == "4" + socketio_text(namespace, name, data)
        payload = event.packet.encode().encode()
        assert event.frame.endswith(payload) and event.frame[0] == 0x81
