"""VISCA simulator on the wire: raw datagrams in, exact replies out (protocols/visca-ip.md §7)."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator
from typing import Any

import pytest

from drivers.transport.udp import UdpTransport
from drivers.visca.codec import Message, PayloadType, decode_message
from simulators import SIMULATORS
from simulators.visca import ViscaSimulator
from tests.helpers import SimulatorStarter, until
from tests.test_udp_transport import Inbox, open_udp

POWER_ON = "81 01 04 00 02 FF"
ZOOM_STOP = "81 01 04 07 00 FF"
PAN_TILT_STOP = "81 01 06 01 01 01 03 03 FF"


def h(text: str) -> bytes:
    return bytes.fromhex(text)


class Client:
    """A raw VISCA-over-IP controller: sends messages, reads replies."""

    def __init__(self, transport: UdpTransport, inbox: Inbox) -> None:
        self.transport = transport
        self.inbox = inbox

    def send(self, kind: PayloadType, seq: int, payload: str) -> None:
        self.transport.write(Message(kind, seq, h(payload)).encode())

    def command(self, seq: int, payload: str) -> None:
        self.send(PayloadType.COMMAND, seq, payload)

    async def reply(self, timeout: float = 1.0) -> tuple[int, int | None, str]:
        """The next reply as (payload type, seq, payload hex)."""
        message = decode_message(await self.inbox.next(timeout))
        return message.type, message.seq, message.payload.hex(" ").upper()

    async def silence(self, seconds: float = 0.1) -> None:
        with pytest.raises(TimeoutError):
            await self.inbox.next(seconds)


REPLY, CONTROL_REPLY = PayloadType.REPLY, PayloadType.CONTROL_REPLY


@pytest.fixture
async def camera(simulators: SimulatorStarter) -> AsyncIterator[tuple[ViscaSimulator, Any]]:
    clients: list[Client] = []

    async def connect(**knobs: Any) -> tuple[ViscaSimulator, Client]:
        sim = await simulators(ViscaSimulator, **{"completion_delay": 0.01, **knobs})
        client = Client(*await open_udp(sim.port))
        clients.append(client)
        return sim, client

    yield connect  # type: ignore[misc]
    for client in clients:
        client.transport.close()


async def test_registered_and_listens_on_udp(camera: Any) -> None:
    assert SIMULATORS["visca"] is ViscaSimulator and ViscaSimulator.default_port == 52381
    sim, _ = await camera()
    assert sim.url == f"udp://127.0.0.1:{sim.port}"


async def test_documented_exchanges(camera: Any) -> None:
    sim, client = await camera(power="off", power_delay=0.05)
    client.send(PayloadType.CONTROL, 0, "01")  # RESET
    assert await client.reply() == (CONTROL_REPLY, 0, "01")
    client.command(1, "81 01 04 00 02 FF")  # power on
    assert await client.reply() == (REPLY, 1, "90 41 FF")
    assert sim.power == "warming"
    assert await client.reply() == (REPLY, 1, "90 51 FF")
    assert sim.power == "on"
    client.send(PayloadType.INQUIRY, 2, "81 09 04 00 FF")  # power inquiry: no ACK
    assert await client.reply() == (REPLY, 2, "90 50 02 FF")
    client.command(3, "81 01 04 38 FF")  # malformed
    assert await client.reply() == (REPLY, 3, "90 60 02 FF")
    assert sim.resets == 1


async def test_strict_sequence_numbers_are_checked_per_controller(camera: Any) -> None:
    sim, client = await camera(strict_sequence=True)
    client.send(PayloadType.INQUIRY, 7, "81 09 04 00 FF")  # first: any number
    assert await client.reply() == (REPLY, 7, "90 50 02 FF")
    client.send(PayloadType.INQUIRY, 7, "81 09 04 00 FF")  # repeated after its reply
    assert await client.reply() == (CONTROL_REPLY, 7, "0F 01")
    client.send(PayloadType.INQUIRY, 9, "81 09 04 00 FF")  # skipped one
    assert await client.reply() == (CONTROL_REPLY, 9, "0F 01")
    client.send(PayloadType.INQUIRY, 8, "81 09 04 00 FF")  # the next one is fine
    assert await client.reply() == (REPLY, 8, "90 50 02 FF")
    # Another controller has its own sequence.
    other = Client(*await open_udp(sim.port))
    other.send(PayloadType.INQUIRY, 100, "81 09 04 00 FF")
    assert await other.reply() == (REPLY, 100, "90 50 02 FF")
    other.transport.close()
    client.send(PayloadType.CONTROL, 55, "01")
    assert await client.reply() == (CONTROL_REPLY, 55, "01")
    client.send(PayloadType.INQUIRY, 3, "81 09 04 00 FF")  # after RESET: any number again
    assert await client.reply() == (REPLY, 3, "90 50 02 FF")
    assert sim.sequence_errors == 2


async def test_any_new_sequence_number_is_accepted_as_cameras_do(camera: Any) -> None:
    sim, client = await camera()
    for seq in (7, 9, 3, 3_000_000):  # skipped, lower, far ahead: all new numbers
        client.send(PayloadType.INQUIRY, seq, "81 09 04 00 FF")
        assert await client.reply() == (REPLY, seq, "90 50 02 FF")
    client.send(PayloadType.INQUIRY, 3_000_000, "81 09 04 00 FF")  # the last one again: done
    assert await client.reply() == (CONTROL_REPLY, 3_000_000, "0F 01")
    assert sim.sequence_errors == 1


async def test_a_controller_with_one_counter_and_next_command_on_ack_succeeds(
    camera: Any,
) -> None:
    """As a widely used controller drives cameras: its command socket and its inquiry
    socket share one sequence counter (so each socket sees its numbers skip), and it
    sends the next command as soon as the previous one's ACK arrives."""
    sim, commands = await camera(completion_delay=0.5)  # real work would overlap
    inquiries = Client(*await open_udp(sim.port))
    counter = itertools.count(1)
    sent: list[int] = []
    replies: list[tuple[int, int | None, str]] = []
    try:
        for payload in [POWER_ON] * 3 + [ZOOM_STOP, PAN_TILT_STOP, POWER_ON]:
            seq = next(counter)
            sent.append(seq)
            commands.command(seq, payload)
            while (REPLY, seq, "90 41 FF") not in replies:  # next command on this ACK
                replies.append(await commands.reply())
                assert replies[-1][2] in ("90 41 FF", "90 42 FF", "90 51 FF", "90 52 FF")
            asked = next(counter)
            inquiries.send(PayloadType.INQUIRY, asked, "81 09 04 00 FF")
            assert await inquiries.reply() == (REPLY, asked, "90 50 02 FF")
        while len(replies) < 2 * len(sent):
            replies.append(await commands.reply())
    finally:
        inquiries.transport.close()
    assert sorted(replies) == sorted(
        [(REPLY, seq, "90 41 FF") for seq in sent] + [(REPLY, seq, "90 51 FF") for seq in sent]
    )
    assert sim.sequence_errors == 0 and sim.received["power_on"] == 4


async def test_retransmission_of_a_running_command_is_ignored(camera: Any) -> None:
    sim, client = await camera(power="off", power_delay=0.1)
    client.command(1, "81 01 04 00 02 FF")
    assert await client.reply() == (REPLY, 1, "90 41 FF")
    client.command(1, "81 01 04 00 02 FF")  # ACK "lost": same number again
    assert await client.reply() == (REPLY, 1, "90 51 FF")  # only the completion follows
    assert sim.repeats == 1 and sim.received["power_on"] == 1
    client.command(1, "81 01 04 00 02 FF")  # completion "lost": already done
    assert await client.reply() == (CONTROL_REPLY, 1, "0F 01")


async def test_two_sockets_buffer_full_and_cancel(camera: Any) -> None:
    sim, client = await camera(power="off", power_delay=5.0, preset_delay=5.0)
    client.command(1, "81 01 04 00 02 FF")  # power on: socket 1, long
    assert await client.reply() == (REPLY, 1, "90 41 FF")
    sim.set_power(True)  # front panel: commands are executable now
    client.command(2, "81 01 04 3F 02 01 FF")  # preset recall: socket 2, long
    assert await client.reply() == (REPLY, 2, "90 42 FF")
    client.command(3, "81 01 04 07 00 FF")  # a third while both run
    assert await client.reply() == (REPLY, 3, "90 60 03 FF")
    client.command(4, "81 22 FF")  # cancel socket 2
    assert await client.reply() == (REPLY, 2, "90 62 04 FF")
    client.command(5, "81 22 FF")  # nothing left to cancel there
    assert await client.reply() == (REPLY, 5, "90 62 05 FF")


async def test_standby_refuses_motion_and_position_inquiries(camera: Any) -> None:
    _, client = await camera(power="off")
    client.command(1, "81 01 06 01 05 05 01 03 FF")
    assert await client.reply() == (REPLY, 1, "90 61 41 FF")
    client.send(PayloadType.INQUIRY, 2, "81 09 06 12 FF")
    assert await client.reply() == (REPLY, 2, "90 60 41 FF")


async def test_axes_move_with_speed_and_time_and_stop_at_limits(camera: Any) -> None:
    sim, client = await camera(pan_rate=1000.0, pan_max=300)
    client.command(1, "81 01 06 01 05 01 02 03 FF")  # right at speed 5: 5000 units/s
    assert await client.reply() == (REPLY, 1, "90 41 FF")
    assert await client.reply() == (REPLY, 1, "90 51 FF")
    await until(lambda: sim.pan == 300)  # held at the limit
    client.command(2, "81 01 06 01 01 01 03 03 FF")  # stop
    await client.reply()
    await client.reply()
    assert not sim.moving
    client.send(PayloadType.INQUIRY, 3, "81 09 06 12 FF")
    assert await client.reply() == (REPLY, 3, "90 50 00 01 02 0C 00 00 00 00 FF")
    client.command(4, "81 01 06 01 19 01 02 03 FF")  # pan speed 19h: beyond the model
    assert await client.reply() == (REPLY, 4, "90 60 02 FF")


async def test_presets_store_and_recall(camera: Any) -> None:
    sim, client = await camera(preset_delay=0.02, presets=4)
    client.command(1, "81 01 04 47 01 02 03 04 FF")  # zoom direct 0x1234
    await client.reply()
    await client.reply()
    client.command(2, "81 01 04 3F 01 02 FF")  # store preset 2
    await client.reply()
    await client.reply()
    assert sim.preset(2) == (0, 0, 0x1234)
    client.command(3, "81 01 04 47 00 00 00 00 FF")
    await client.reply()
    await client.reply()
    client.command(4, "81 01 04 3F 02 02 FF")  # recall preset 2
    assert await client.reply() == (REPLY, 4, "90 41 FF")
    assert sim.zoom == 0  # still moving there
    assert await client.reply() == (REPLY, 4, "90 51 FF")
    assert sim.zoom == 0x1234
    client.command(5, "81 01 04 3F 02 04 FF")  # only presets 0-3
    assert await client.reply() == (REPLY, 5, "90 60 02 FF")


async def test_bad_messages_get_control_errors(camera: Any) -> None:
    _, client = await camera()
    client.transport.write(h("01 00 00 09 00 00 00 04 81 01 04 00 02 FF"))  # wrong length
    assert await client.reply() == (CONTROL_REPLY, 4, "0F 02")
    client.transport.write(h("01 20 00 01 00 00 00 05 01"))  # device setting: not supported
    assert await client.reply() == (CONTROL_REPLY, 5, "0F 02")
    client.transport.write(b"\x01\x00")  # too short to have a header: ignored
    await client.silence()


async def test_loss_knob_drops_datagrams_deterministically(camera: Any) -> None:
    sim, client = await camera(drop_in=1.0)
    client.send(PayloadType.INQUIRY, 1, "81 09 04 00 FF")
    await client.silence()
    assert sim.dropped_in == 1
    sim.knobs.drop_in = 0.0
    sim.knobs.drop_out = 1.0
    client.send(PayloadType.INQUIRY, 2, "81 09 04 00 FF")
    await client.silence()
    assert sim.dropped_out == 1
    sim.knobs.drop_out = 0.0
    sim.knobs.duplicate = 1.0
    client.send(PayloadType.INQUIRY, 3, "81 09 04 00 FF")
    # Received twice (the copy is a repeated number: ERROR), each answer sent twice.
    replies = [await client.reply() for _ in range(4)]
    assert sorted(replies) == sorted(
        [(REPLY, 3, "90 50 02 FF")] * 2 + [(CONTROL_REPLY, 3, "0F 01")] * 2
    )


async def test_reordered_replies_arrive_late(camera: Any) -> None:
    _, client = await camera(reorder=1.0, reorder_delay=0.1)
    client.send(PayloadType.INQUIRY, 1, "81 09 04 00 FF")
    await client.silence(0.05)
    assert await client.reply() == (REPLY, 1, "90 50 02 FF")


async def test_restart_keeps_state_and_port(camera: Any) -> None:
    sim, client = await camera(pan_rate=10.0)
    client.command(1, "81 01 04 47 00 00 01 00 FF")
    await client.reply()
    await client.reply()
    port = sim.port
    await sim.stop()
    await asyncio.sleep(0)
    await sim.start("127.0.0.1", port)
    client.send(PayloadType.INQUIRY, 2, "81 09 04 47 FF")
    assert await client.reply() == (REPLY, 2, "90 50 00 00 01 00 FF")
