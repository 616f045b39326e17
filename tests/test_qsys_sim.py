"""Q-SYS simulator over real loopback sockets, driven by a raw JSON-RPC client."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from drivers.qsys.config import QsysConfig
from simulators import SIMULATORS
from simulators.qsys import QsysKnobs, QsysSimulator
from tests.helpers import SimulatorStarter, until

REPO = Path(__file__).resolve().parent.parent


class Client:
    """A raw QRC client: JSON objects out, NUL-terminated JSON objects in."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.notifications: list[dict[str, Any]] = []
        self._id = 0

    async def message(self, timeout: float = 2.0) -> dict[str, Any]:
        async with asyncio.timeout(timeout):
            data = await self.reader.readuntil(b"\0")
        message: dict[str, Any] = json.loads(data[:-1])
        return message

    def send(self, body: dict[str, Any] | bytes) -> None:
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        self.writer.write(data + b"\0")

    async def reply(self, request_id: Any = None) -> dict[str, Any]:
        """The next response (to `request_id` if given); notifications on the way are kept."""
        while True:
            message = await self.message()
            if "method" in message:
                self.notifications.append(message)
            elif request_id is None or message.get("id") == request_id:
                return message

    async def call(self, method: str, params: Any = None) -> dict[str, Any]:
        self._id += 1
        body: dict[str, Any] = {"jsonrpc": "2.0", "method": method, "id": self._id}
        if params is not None:
            body["params"] = params
        self.send(body)
        return await self.reply(self._id)

    async def result(self, method: str, params: Any = None) -> Any:
        answer = await self.call(method, params)
        assert "error" not in answer, answer
        return answer["result"]

    async def error(self, method: str, params: Any = None) -> int:
        answer = await self.call(method, params)
        assert "error" in answer, answer
        code: int = answer["error"]["code"]
        return code

    async def closed_by_peer(self, timeout: float = 2.0) -> bool:
        try:
            async with asyncio.timeout(timeout):
                while await self.reader.read(4096):
                    pass
        except TimeoutError:
            return False
        return True

    def close(self) -> None:
        self.writer.close()


@pytest.fixture
async def connect(simulators: SimulatorStarter) -> AsyncIterator[Callable[..., Any]]:
    clients: list[Client] = []

    async def make(sim: QsysSimulator | None = None, **knobs: Any) -> tuple[QsysSimulator, Client]:
        if sim is None:
            sim = await simulators(QsysSimulator, **knobs)
        reader, writer = await asyncio.open_connection(*sim.address)
        client = Client(reader, writer)
        clients.append(client)
        status = await client.message()
        assert status["method"] == "EngineStatus" and "id" not in status
        return sim, client

    yield make
    for client in clients:
        client.close()


async def test_engine_status_on_connect_and_status_get(simulators: SimulatorStarter) -> None:
    sim = await simulators(QsysSimulator, design_name="Lobby", is_emulator=False)
    reader, writer = await asyncio.open_connection(*sim.address)
    client = Client(reader, writer)
    status = await client.message()
    assert status == {
        "jsonrpc": "2.0",
        "method": "EngineStatus",
        "params": {
            "State": "Active",
            "DesignName": "Lobby",
            "DesignCode": "qALFilm6IcCo",
            "IsRedundant": False,
            "IsEmulator": False,
        },
    }
    result = await client.result("StatusGet", 0)
    assert result["Platform"] == "Core 110f" and result["Status"] == {"Code": 0, "String": "OK"}
    client.close()


async def test_json_rpc_errors(connect: Any) -> None:
    _, client = await connect()
    client.send(b'{"method": "NoOp", "id": 1')  # truncated JSON
    assert (await client.reply())["error"]["code"] == -32700
    client.send(b'{"jsonrpc": "2.0", "id": 2}')
    answer = await client.reply()
    assert answer["error"]["code"] == -32600 and answer["id"] == 2
    assert await client.error("Control.Teleport", {}) == -32601
    assert await client.error("Control.Get", ["NoSuchControl"]) == 8
    assert await client.error("Component.Get", {"Name": "Mic 9", "Controls": []}) == 7
    assert await client.error("Control.Get", {"Name": "MainGain"}) == -32602
    assert await client.error("Control.Set", {"Name": "MainGain", "Value": "loud"}) == -32602
    assert await client.error("ChangeGroup.Poll", {"Id": "never made"}) == 6


async def test_notifications_get_no_reply(connect: Any) -> None:
    sim, client = await connect()
    client.send(
        {"jsonrpc": "2.0", "method": "Control.Set", "params": {"Name": "MainGain", "Value": -3}}
    )
    client.send({"jsonrpc": "2.0", "method": "NoSuchMethod"})
    answer = await client.call("Control.Get", ["MainGain"])
    assert answer["id"] == 1 and answer["result"][0]["Value"] == -3
    assert sim.value("MainGain") == -3


async def test_controls_and_components(connect: Any) -> None:
    sim, client = await connect()
    assert await client.result("Control.Get", ["MainGain", "MainMute"]) == [
        {"Name": "MainGain", "Value": -12.0, "String": "-12.0dB", "Position": 0.7333},
        {"Name": "MainMute", "Value": False, "String": "unmuted", "Position": 0.0},
    ]
    assert await client.result("Control.Set", {"Name": "MainGain", "Value": 99}) is True
    assert sim.value("MainGain") == 20.0  # clamped to ValueMax
    result = await client.result(
        "Component.Set",
        {
            "Name": "Mic 1",
            "Controls": [{"Name": "mute", "Value": 1}, {"Name": "phantom", "Value": 1}],
        },
    )
    assert result == ["phantom"]  # "returns a list of unknown controls"; the rest is applied
    assert sim.value("mute", "Mic 1") is True
    got = await client.result("Component.Get", {"Name": "Mic 1", "Controls": [{"Name": "mute"}]})
    assert got == {
        "Name": "Mic 1",
        "Controls": [{"Name": "mute", "Value": True, "String": "muted", "Position": 1.0}],
    }
    components = await client.result("Component.GetComponents")
    assert [c["Name"] for c in components] == ["Mic 1"]
    controls = (await client.result("Component.GetControls", {"Name": "Mic 1"}))["Controls"]
    gain = next(c for c in controls if c["Name"] == "gain")
    assert (gain["Type"], gain["ValueMin"], gain["ValueMax"], gain["StringMax"]) == (
        "Float",
        -100.0,
        20.0,
        "20.0dB",
    )


async def test_logon(connect: Any) -> None:
    sim, client = await connect(user="admin", password="1234")
    assert await client.error("StatusGet", 0) == 10
    assert await client.result("NoOp", {}) is True
    assert await client.error("Logon", {"User": "admin", "Password": "nope"}) == 10
    client.send(
        {"jsonrpc": "2.0", "method": "Logon", "params": {"User": "admin", "Password": "1234"}}
    )
    assert (await client.result("StatusGet", 0))["State"] == "Active"
    _, other = await connect(sim)  # a logon is per connection
    assert await other.error("Control.Get", ["MainGain"]) == 10


async def test_change_group_pushes_only_changes(connect: Any) -> None:
    sim, client = await connect()
    group = {"Id": "g"}
    await client.result("ChangeGroup.AddControl", {**group, "Controls": ["MainGain", "MainMute"]})
    component = {"Name": "Mic 1", "Controls": [{"Name": "gain"}]}
    await client.result("ChangeGroup.AddComponentControl", {**group, "Component": component})
    first = await client.result("ChangeGroup.Poll", group)
    assert [(c.get("Component"), c["Name"]) for c in first["Changes"]] == [
        (None, "MainGain"),
        (None, "MainMute"),
        ("Mic 1", "gain"),
    ]
    assert (await client.result("ChangeGroup.Poll", group))["Changes"] == []
    assert await client.result("ChangeGroup.AutoPoll", {**group, "Rate": 0.05}) is True
    sim.set_component_control("Mic 1", "gain", -20)
    sim.set_component_control("Mic 1", "mute", True)  # not in the group
    push = await client.message()
    assert push["method"] == "ChangeGroup.Poll" and "id" not in push
    assert push["params"]["Id"] == "g"
    assert [
        (c["Component"], c["Name"], c["Value"], c["String"]) for c in push["params"]["Changes"]
    ] == [("Mic 1", "gain", -20.0, "-20.0dB")]
    sim.set_control("MainGain", -30)
    push = await client.message()  # the next push: nothing came between, nothing was repeated
    assert [(c["Name"], c["Value"]) for c in push["params"]["Changes"]] == [("MainGain", -30.0)]
    await client.result("ChangeGroup.Invalidate", group)
    assert len((await client.message())["params"]["Changes"]) == 3
    await client.result("ChangeGroup.Remove", {**group, "Controls": ["MainMute"]})
    await client.result("ChangeGroup.Invalidate", group)
    assert len((await client.message())["params"]["Changes"]) == 2
    await client.result("ChangeGroup.Destroy", group)
    assert sim.change_groups == 0


async def test_documented_autopoll_shape_and_empty_pushes(connect: Any) -> None:
    _, client = await connect(autopoll_shape="result", push_empty=True)
    await client.result("ChangeGroup.AddControl", {"Id": "g", "Controls": ["MainGain"]})
    answer = await client.call("ChangeGroup.AutoPoll", {"Id": "g", "Rate": 0.05})
    assert answer["result"]["Changes"][0]["Name"] == "MainGain"
    push = await client.message()
    assert push["id"] == answer["id"] and push["result"] == {"Id": "g", "Changes": []}


async def test_change_groups_belong_to_their_connection(connect: Any) -> None:
    sim, client = await connect(max_change_groups=2)
    await client.result("ChangeGroup.AddControl", {"Id": "a", "Controls": ["MainGain"]})
    await client.result("ChangeGroup.AutoPoll", {"Id": "a", "Rate": 0.05})
    _, other = await connect(sim)
    assert await other.error("ChangeGroup.Poll", {"Id": "a"}) == 6
    await other.result("ChangeGroup.AddControl", {"Id": "b", "Controls": ["MainGain"]})
    assert await other.error("ChangeGroup.AddControl", {"Id": "c", "Controls": ["MainGain"]}) == 5
    assert sim.change_groups == 2
    client.close()
    await until(lambda: sim.change_groups == 1)


async def test_idle_clients_are_dropped_even_while_autopoll_pushes(connect: Any) -> None:
    sim, client = await connect(idle_timeout=0.5, push_empty=True)
    await client.result("ChangeGroup.AddControl", {"Id": "g", "Controls": ["MainGain"]})
    await client.result("ChangeGroup.AutoPoll", {"Id": "g", "Rate": 0.05})
    assert await client.closed_by_peer(timeout=5)
    _, busy = await connect(sim)
    for _ in range(8):  # past the idle timeout, answered all along
        await asyncio.sleep(0.1)
        await busy.result("NoOp", {})
    assert not busy.reader.at_eof()


async def test_design_reload_and_standby(connect: Any) -> None:
    sim, client = await connect(reload_time=0.05)
    await client.result("ChangeGroup.AddControl", {"Id": "g", "Controls": ["MainGain"]})
    sim.reload_design(name="New", code="c0de")
    idle, active = await client.message(), await client.message()
    assert (idle["params"]["State"], active["params"]["State"]) == ("Idle", "Active")
    assert active["params"]["DesignCode"] == "c0de"
    assert await client.error("ChangeGroup.Poll", {"Id": "g"}) == 6
    sim.set_engine_state("Standby")
    assert (await client.message())["params"]["State"] == "Standby"
    assert await client.error("Control.Get", ["MainGain"]) == -32604
    assert (await client.result("StatusGet", 0))["State"] == "Standby"


async def test_ramps_move_in_steps(connect: Any) -> None:
    sim, client = await connect(ramp_step=0.02)
    seen: set[Any] = set()
    await client.result("Control.Set", {"Name": "MainGain", "Value": 0, "Ramp": 0.2})
    while sim.value("MainGain") != 0.0:
        seen.add(sim.value("MainGain"))
        await asyncio.sleep(0.01)
    assert len(seen) >= 4


async def test_interleave_puts_a_notification_before_every_response(connect: Any) -> None:
    _, client = await connect(interleave=True)
    client.send({"jsonrpc": "2.0", "method": "NoOp", "params": {}, "id": 5})
    first, second = await client.message(), await client.message()
    assert first["method"] == "EngineStatus" and second["id"] == 5


async def test_snapshots(connect: Any) -> None:
    sim, client = await connect(snapshots={"Presets": 2})
    await client.result("Snapshot.Save", {"Name": "Presets", "Bank": 1})
    sim.set_control("MainGain", -50)
    await client.result("Snapshot.Load", {"Name": "Presets", "Bank": 1})
    assert sim.value("MainGain") == -12.0 and sim.loaded == [("Presets", 1)]
    assert await client.error("Snapshot.Load", {"Name": "Presets", "Bank": 3}) == -32602
    assert await client.error("Snapshot.Load", {"Name": "Other", "Bank": 1}) == 7


def test_options_for_builds_controls_and_logon_from_the_device() -> None:
    device = QsysConfig.model_validate(
        {
            "driver": "qsys",
            "transport": "tcp://10.0.0.9",
            "user": "tech",
            "password": "pw",
            "controls": {
                "program": {"level": "PGM", "mute": "PGM mute"},
                "mic": {"component": "Mic A", "level": "gain"},
            },
            "presets": {"p": {"snapshot": "S", "bank": 3}},
        }
    )
    knobs = QsysKnobs.model_validate(QsysSimulator.options_for(device))
    assert set(knobs.controls) == {"PGM", "PGM mute"} and knobs.controls["PGM mute"].type == "mute"
    assert set(knobs.components["Mic A"]) == {"gain"}
    assert knobs.snapshots == {"S": 3}
    assert (knobs.user, knobs.password) == ("tech", "pw")
    assert SIMULATORS["qsys"] is QsysSimulator


def test_knobs_reject_values_that_do_not_fit_the_type() -> None:
    with pytest.raises(ValidationError):
        QsysKnobs.model_validate({"controls": {"G": {"type": "gain", "value": "loud"}}})


def test_command_line_lists_the_knobs() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "simulators", "qsys", "--help"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    ).stdout
    assert "--autopoll-shape" in out and "--interleave" in out and "--idle-timeout" in out
