"""The panel protocol of DESIGN.md §3, through real Socket.IO clients against a running hub."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
import socketio

from hub.app import Hub
from hub.store import Change
from tests.helpers import assert_same_snapshot, until
from tests.panel import Panel

FAST = {
    "poll_interval": 0.1,
    "timeout": 0.3,
    "connect_timeout": 0.5,
    "reconnect_min": 0.05,
    "reconnect_max": 0.2,
    "transition_poll": 0.05,
    "power_settle": 0,
}


def config(
    *ports: int, ring: int = 1000, token: bool = False, lockout: str = "hold"
) -> dict[str, Any]:
    """Two rooms: `lobby` (one projector per port) and `board` (token-protected when asked)."""
    devices = {
        f"proj{i}": {
            "driver": "pjlink",
            "name": f"Projector {i}",
            "transport": f"tcp://127.0.0.1:{port}",
            "lockout": lockout,
            **FAST,
        }
        for i, port in enumerate(ports)
    }
    board: dict[str, Any] = {"name": "Board Room", "devices": {}}
    if token:
        board["panel_tokens"] = ["board-secret"]
    return {
        "hub": {"admin_token": "admin-secret", "replay_size": ring},
        "rooms": {"lobby": {"name": "Lobby", "devices": devices}, "board": board},
    }


async def online_hub(hub_factory: Any, sims: list[Any], **kw: Any) -> Hub:
    hub: Hub = await hub_factory(config(*(s.port for s in sims), **kw))
    drivers = hub.rooms["lobby"].drivers
    await until(lambda: all(d.online and "power" in d.state for d in drivers.values()))
    return hub


async def joined(panels: Any, hub: Hub, room: str = "lobby") -> Panel:
    """A panel connected to `room` and caught up with it."""
    panel: Panel = panels(hub, room)
    await panel.connect()
    await until(lambda: panel.seq == hub.rooms[room].store.seq)
    return panel


def commit(hub: Hub, n: int, device: str = "proj0") -> None:
    """Commit `n` changes straight into the lobby's store (deterministic churn)."""
    room = hub.rooms["lobby"].store
    for _ in range(n):
        room.commit(device, {"probe": room.seq + 1})


async def test_snapshot_on_connect(hub_factory: Any, panels: Any, pjlink_sims: Any) -> None:
    sim = await pjlink_sims(manufacturer="EPSON")
    hub = await online_hub(hub_factory, [sim])
    panel = panels(hub, "lobby")
    await panel.connect()
    await until(lambda: panel.snapshot is not None)
    snap = panel.snapshot
    room = hub.rooms["lobby"].store
    assert snap["epoch"] == room.epoch and snap["seq"] <= room.seq
    assert snap["room"] == {"id": "lobby", "name": "Lobby"}
    device = snap["devices"]["proj0"]
    assert device["name"] == "Projector 0" and device["driver"] == "pjlink"
    assert device["state"]["online"] is True and device["state"]["manufacturer"] == "EPSON"
    assert panel.actions("proj0")["select_input"]["required"] == ["input"]
    await until(lambda: panel.seq == room.seq)
    assert panel.snapshots == 1 and panel.devices == room.snapshot()["devices"]


async def test_changes_are_contiguous_and_match_the_store(
    hub_factory: Any, panels: Any, pjlink_sims: Any
) -> None:
    sim = await pjlink_sims()
    hub = await online_hub(hub_factory, [sim])
    panel = panels(hub, "lobby")
    await panel.connect()
    await until(lambda: panel.snapshot is not None)
    start = panel.snapshot["seq"]
    ack = await panel.command("proj0", "power_on")
    assert ack == {"ok": True, "result": None}
    await until(lambda: panel.state("proj0").get("power") == "on")
    commit(hub, 20)
    room = hub.rooms["lobby"].store
    await until(lambda: panel.seq == room.seq)
    seqs = [c["seq"] for c in panel.received]
    assert seqs == list(range(start + 1, room.seq + 1))  # every change, once, in order
    powers = [c["state"]["power"] for c in panel.received if "power" in c["state"]]
    assert powers == ["warming", "on"]
    assert panel.devices == room.snapshot()["devices"]


async def test_resume_within_the_ring_replays_exactly_the_missed_changes(
    hub_factory: Any, panels: Any, pjlink_sims: Any
) -> None:
    sim = await pjlink_sims()
    hub = await online_hub(hub_factory, [sim], ring=50)
    room = hub.rooms["lobby"].store
    panel = await joined(panels, hub)
    await panel.disconnect()
    left_at = panel.seq
    commit(hub, 30)
    panel.received.clear()
    await panel.connect()
    await until(lambda: panel.seq == room.seq)
    assert panel.snapshots == 1  # no second snapshot: a replay
    assert [c["seq"] for c in panel.received] == list(range(left_at + 1, room.seq + 1))
    assert panel.devices == room.snapshot()["devices"]


async def test_resume_at_the_current_seq_replays_nothing(
    hub_factory: Any, panels: Any, pjlink_sims: Any
) -> None:
    sim = await pjlink_sims()
    hub = await online_hub(hub_factory, [sim], ring=50)
    room = hub.rooms["lobby"].store
    panel = await joined(panels, hub)
    await panel.disconnect()
    panel.received.clear()
    await panel.connect()
    commit(hub, 1)
    await until(lambda: panel.seq == room.seq)
    assert panel.snapshots == 1 and [c["seq"] for c in panel.received] == [room.seq]


@pytest.mark.parametrize("case", ["beyond-ring", "old-epoch", "future-seq", "malformed"])
async def test_resume_that_cannot_be_replayed_gets_a_snapshot(
    hub_factory: Any, panels: Any, pjlink_sims: Any, case: str
) -> None:
    sim = await pjlink_sims()
    hub = await online_hub(hub_factory, [sim], ring=10)
    room = hub.rooms["lobby"].store
    panel = await joined(panels, hub)
    await panel.disconnect()
    if case == "beyond-ring":
        commit(hub, 25)  # the ring keeps 10
    elif case == "old-epoch":
        panel.epoch = "0123456789abcdef"
    elif case == "future-seq":
        panel.seq = room.seq + 5
    else:
        panel.epoch = {"not": "a string"}  # type: ignore[assignment]
    panel.received.clear()
    await panel.connect()
    await until(lambda: panel.snapshots == 2)
    assert panel.received == [] and panel.seq == room.seq
    assert panel.devices == room.snapshot()["devices"]


async def test_sync_answers_with_changes_or_a_snapshot(
    hub_factory: Any, panels: Any, pjlink_sims: Any
) -> None:
    sim = await pjlink_sims()
    hub = await online_hub(hub_factory, [sim], ring=10)
    room = hub.rooms["lobby"].store
    panel = await joined(panels, hub)
    base = room.seq
    commit(hub, 5)
    answer = await panel.call("sync", {"epoch": room.epoch, "seq": base})
    assert [c["seq"] for c in answer["changes"]] == [
        base + 1,
        base + 2,
        base + 3,
        base + 4,
        base + 5,
    ]
    assert answer["changes"][0]["device"] == "proj0" and answer["changes"][0]["epoch"] == room.epoch
    assert (await panel.call("sync", {"epoch": room.epoch, "seq": room.seq})) == {"changes": []}
    commit(hub, 20)
    for stale in ({"epoch": room.epoch, "seq": base}, {"epoch": "old", "seq": room.seq}):
        answer = await panel.call("sync", stale)
        assert answer["snapshot"]["seq"] == room.seq and "proj0" in answer["snapshot"]["devices"]
    bad = await panel.call("sync", "gimme")
    assert bad["ok"] is False and bad["error"]["code"] == "invalid_args"


async def test_sync_answers_are_sent_as_encoded_once(
    hub_factory: Any, panels: Any, pjlink_sims: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`sync` answers with text encoded already, not with objects built and encoded again:
    the snapshot as `snapshot_json` has it (as the `snapshot` event's), the changes as their
    `change` events were sent."""
    hub = await online_hub(hub_factory, [await pjlink_sims()])
    room = hub.rooms["lobby"].store
    panel = await joined(panels, hub)
    base = room.seq
    commit(hub, 3)
    await until(lambda: panel.seq == room.seq)
    expected = json.loads(room.snapshot_json())
    built: list[object] = []
    monkeypatch.setattr(room, "snapshot", lambda *held: built.append(held))
    monkeypatch.setattr(Change, "to_dict", lambda change: built.append(change))
    answer = await panel.call("sync", {"epoch": room.epoch, "seq": base})
    assert [(c["seq"], c["state"]) for c in answer["changes"]] == [
        (base + n, {"probe": base + n}) for n in (1, 2, 3)
    ]
    answer = await panel.call("sync", {"epoch": "old", "seq": 0})
    assert built == [] and answer.keys() == {"snapshot"}
    assert_same_snapshot(answer["snapshot"], expected)


async def test_a_gap_is_healed_by_sync(hub_factory: Any, panels: Any, pjlink_sims: Any) -> None:
    """A panel that misses an event (here: dropped on purpose) recovers through `sync`."""
    sim = await pjlink_sims()
    hub = await online_hub(hub_factory, [sim])
    room = hub.rooms["lobby"].store
    panel = await joined(panels, hub)
    original = panel._on_change
    dropped: list[int] = []

    def lossy(change: dict[str, Any]) -> None:
        if not dropped:
            dropped.append(change["seq"])
            return
        original(change)

    panel.sio.handlers[panel.namespace]["change"] = lossy
    commit(hub, 5)
    await until(lambda: panel.seq == room.seq and panel.in_sync)
    assert dropped and panel.devices == room.snapshot()["devices"]


async def test_command_error_codes(
    hub_factory: Any, panels: Any, pjlink_sims: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    fine = await pjlink_sims(err4=["AVMT"], warmup=0.6)
    slow = await pjlink_sims(power="on")
    gone = await pjlink_sims()
    hub = await online_hub(hub_factory, [fine, slow, gone], lockout="reject")
    panel = panels(hub, "lobby")
    await panel.connect()

    async def code(device: Any, action: Any, args: Any = None) -> str:
        ack = await panel.call("command", {"device": device, "action": action, "args": args or {}})
        assert ack["ok"] is False and ack["error"]["message"], ack
        return str(ack["error"]["code"])

    assert await code("nope", "power_on") == "unknown_device"
    assert await code("proj0", "launch") == "unknown_action"
    assert await code("proj0", "select_input", {"input": 31}) == "invalid_args"
    for mute in ("yes", "no", 1, "true"):  # the schema says boolean: JSON true or false
        assert await code("proj0", "set_video_mute", {"mute": mute}) == "invalid_args", mute
    assert await code(7, "power_on") == "invalid_args"
    bad = await panel.call("command", ["proj0", "power_on"])
    assert bad["error"]["code"] == "invalid_args"
    # busy: a lockout that refuses while the projector warms up
    assert (await panel.command("proj0", "power_on"))["ok"] is True
    assert await code("proj0", "select_input", {"input": "HDMI 1"}) == "busy"
    await until(lambda: hub.rooms["lobby"].drivers["proj0"].state["power"] == "on")
    # device_error: the projector answers ERR4
    assert await code("proj0", "set_video_mute", {"mute": True}) == "device_error"
    # timeout: the projector stops answering in time
    slow.knobs.reply_delay = 1.0
    assert await code("proj1", "set_audio_mute", {"mute": True}) == "timeout"
    # device_offline: the projector is gone
    await gone.stop()
    await until(lambda: not hub.rooms["lobby"].drivers["proj2"].online)
    assert await code("proj2", "power_on") == "device_offline"

    # internal: a driver bug never takes the hub down
    async def broken(self: Any) -> None:
        raise RuntimeError("driver bug")

    monkeypatch.setattr(type(hub.rooms["lobby"].drivers["proj0"]), "power_off", broken)
    assert await code("proj0", "power_off") == "internal"
    assert (await panel.command("proj0", "select_input", input="HDMI 2"))["ok"] is True


async def test_tokens_and_unknown_rooms(hub_factory: Any, panels: Any) -> None:
    hub: Hub = await hub_factory(config(token=True))
    anonymous = panels(hub, "board")
    with pytest.raises(socketio.exceptions.ConnectionError):
        await anonymous.connect()
    assert anonymous.connect_error["data"]["code"] == "unauthorized"
    for token in ("guess", "\udc80"):  # the second is not text: a lone surrogate
        wrong = panels(hub, "board", token=token)
        with pytest.raises(socketio.exceptions.ConnectionError):
            await wrong.connect()
        assert wrong.connect_error["data"]["code"] == "unauthorized"
    for token in ("board-secret", "admin-secret"):
        good = panels(hub, "board", token=token)
        await good.connect()
        await until(lambda p=good: p.snapshot is not None)
        assert good.snapshot["room"]["name"] == "Board Room"
    open_room = panels(hub, "lobby")
    await open_room.connect()
    for namespace in ("nowhere", "lobby/extra"):
        stray = panels(hub, namespace)
        with pytest.raises(socketio.exceptions.ConnectionError):
            await stray.connect(timeout=2)
    default_ns = socketio.AsyncClient(reconnection=False)
    assert hub.address is not None
    with pytest.raises(socketio.exceptions.ConnectionError):
        await default_ns.connect(
            f"http://127.0.0.1:{hub.address[1]}",
            namespaces=["/"],
            transports=["websocket"],
            wait_timeout=2,
        )
    await default_ns.disconnect()


async def test_a_misbehaving_panel_does_not_disturb_others(
    hub_factory: Any, panels: Any, pjlink_sims: Any
) -> None:
    sim = await pjlink_sims()
    hub = await online_hub(hub_factory, [sim])
    good, rude = panels(hub, "lobby"), panels(hub, "lobby")
    await good.connect()
    await rude.connect()
    for payload in (None, 42, "x" * 10_000, {"device": None}, {"device": "proj0", "action": ["x"]}):
        ack = await rude.call("command", payload)
        assert ack["ok"] is False and ack["error"]["code"] == "invalid_args"
    await rude.sio.emit("no_such_event", {"a": 1}, namespace=rude.namespace)
    commit(hub, 3)
    room = hub.rooms["lobby"].store
    await until(lambda: good.seq == room.seq and rude.seq == room.seq)
    assert (await good.command("proj0", "power_on"))["ok"] is True


async def test_commands_from_two_panels_are_seen_by_both(
    hub_factory: Any, panels: Any, pjlink_sims: Any
) -> None:
    sim = await pjlink_sims(power="on")
    hub = await online_hub(hub_factory, [sim])
    a, b = panels(hub, "lobby"), panels(hub, "lobby")
    await asyncio.gather(a.connect(), b.connect())
    await asyncio.gather(
        a.command("proj0", "select_input", input="HDMI 2"),
        b.command("proj0", "set_video_mute", mute=True),
    )
    room = hub.rooms["lobby"].store
    await until(lambda: a.seq == room.seq == b.seq)
    assert a.state("proj0")["input"] == b.state("proj0")["input"] == "HDMI 2"
    assert a.devices == b.devices == room.snapshot()["devices"]
