"""The fault knobs every simulator shares, seen from a raw client on the wire.

Each protocol gets a probe: its greeting, one query with its exact answer, the
protocol's device-error answer to it, and a front-panel change that a reboot must
undo. The same tests then run against every simulator over TCP (VISCA as raw VISCA
over TCP, Epson without its ESC/VP.net handshake as behind a serial gateway); VISCA
over UDP and a serial pty have tests of their own.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import termios
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import pytest

from drivers.epson_escvp.codec import Status, connect_reply, connect_request
from drivers.extron_sis.codec import Login
from drivers.pjlink import codec as pjlink
from drivers.pjlink.codec import auth_digest
from drivers.qsys.codec import QrcError, Request, Response, RpcError
from drivers.samsung_mdc.codec import Cmd, Frame, Reply
from drivers.sony_adcp import codec as adcp
from drivers.tesira.codec import BANNER
from drivers.visca.codec import Message, PayloadType, decode_message
from simulators import (
    SIMULATORS,
    EpsonEscvpSimulator,
    ExtronSimulator,
    PjlinkSimulator,
    QsysSimulator,
    SamsungMdcSimulator,
    SonyAdcpSimulator,
    TesiraSimulator,
    ViscaSimulator,
)
from simulators.__main__ import build_parser
from simulators.base import GARBAGE_BYTES, GARBAGE_LEN, AuthKnobs, Simulator
from tests.helpers import SimulatorStarter, until
from tests.test_udp_transport import open_udp


def _qsys_greeting(sim: Any) -> bytes:
    status = sim.status()
    keys = ("State", "DesignName", "DesignCode", "IsRedundant", "IsEmulator")
    return Request("EngineStatus", {k: status[k] for k in keys}).encode()


@dataclass(frozen=True)
class Probe:
    """How to talk to one simulator kind over a raw stream."""

    sim: type[Simulator[Any]]
    greeting: Callable[[Any], bytes]
    command: bytes
    reply: bytes
    error: bytes
    change: Callable[[Any], object]  # a front-panel change
    read: Callable[[Any], object]  # the state it changed
    knobs: dict[str, Any] = field(default_factory=dict)


PROBES = {
    "pjlink": Probe(
        PjlinkSimulator,
        lambda sim: b"PJLINK 0\r",
        b"%1POWR ?\r",
        b"%1POWR=0\r",
        b"%1POWR=ERR4\r",
        lambda sim: sim.press_power(True),
        lambda sim: sim.power,
        {"warmup": 0},
    ),
    "extron_sis": Probe(
        ExtronSimulator,
        lambda sim: b"",
        b"Q",
        b"1.23\r\n",
        b"E22\r\n",
        lambda sim: sim.press_tie(3, 1),
        lambda sim: sim.video_ties[1],
        {"serial": True},  # as behind a serial gateway: no banner, no password
    ),
    "tesira": Probe(
        TesiraSimulator,
        lambda sim: b"\r\n" + BANNER.encode() + b"\r\n",
        b"Level1 get level 1\n",
        b'+OK "value":0.000000\r\n',
        b"-GENERAL_FAILURE\r\n",
        lambda sim: sim.set_level("Level1", 1, -20.0),
        lambda sim: sim.level("Level1", 1),
        {"negotiation": []},
    ),
    "qsys": Probe(
        QsysSimulator,
        _qsys_greeting,
        b'{"jsonrpc":"2.0","method":"NoOp","params":{},"id":1}\0',
        Response(1, True).encode(),
        Response(1, error=RpcError(QrcError.SERVER_ERROR, "NoOp failed")).encode(),
        lambda sim: sim.set_control("MainGain", -30.0),
        lambda sim: sim.value("MainGain"),
    ),
    "samsung_mdc": Probe(
        SamsungMdcSimulator,
        lambda sim: b"",
        Frame(Cmd.VOLUME, 0).encode(),
        Reply(0, True, Cmd.VOLUME, bytes([10])).encode(),
        Reply(0, False, Cmd.VOLUME, b"\x01").encode(),
        lambda sim: sim.set_volume(50),
        lambda sim: sim.volume,
    ),
    "visca": Probe(
        ViscaSimulator,
        lambda sim: b"",
        bytes.fromhex("81 09 04 00 FF"),
        bytes.fromhex("90 50 02 FF"),
        bytes.fromhex("90 60 41 FF"),
        lambda sim: sim.set_power(False),
        lambda sim: sim.power,
        {"listen": "tcp"},
    ),
    "sony_adcp": Probe(
        SonyAdcpSimulator,
        lambda sim: b"NOKEY\r\n",
        b"power_status ?\r\n",
        b'"standby"\r\n',
        b"err_internal1\r\n",
        lambda sim: sim.set_input("hdmi2"),
        lambda sim: sim.input,
    ),
    "epson_escvp": Probe(
        EpsonEscvpSimulator,
        lambda sim: b"",
        b"PWR?\r",
        b"PWR=04\r:",
        b"ERR\r:",
        lambda sim: sim.set_input("A0"),
        lambda sim: sim.input,
        {"handshake": False},  # as behind a serial gateway: the handshake has a test of its own
    ),
}
KINDS = sorted(PROBES)


class Client:
    """A raw stream client of one probe."""

    def __init__(
        self, probe: Probe, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        self.probe = probe
        self.reader = reader
        self.writer = writer

    async def expect(self, data: bytes, timeout: float = 2.0) -> None:
        async with asyncio.timeout(timeout):
            assert await self.reader.readexactly(len(data)) == data

    def send(self) -> None:
        self.writer.write(self.probe.command)

    async def ask(self) -> None:
        """The query gets its normal answer."""
        self.send()
        await self.expect(self.probe.reply)

    async def silent(self, seconds: float = 0.2) -> bool:
        """True when nothing arrives (and the connection stays up) for `seconds`."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await self.reader.read(1)
                return False
        return True

    async def until_dropped(self, timeout: float = 2.0) -> bytes:
        """Everything that arrives until the simulator closes or resets the connection."""
        got = b""
        async with asyncio.timeout(timeout):
            while True:
                try:
                    chunk = await self.reader.read(100)
                except (ConnectionResetError, BrokenPipeError):
                    return got
                if not chunk:
                    return got
                got += chunk

    def close(self) -> None:
        self.writer.close()


Connect = Callable[..., Awaitable[tuple[Any, Client]]]


@pytest.fixture
async def clients() -> AsyncIterator[list[Client]]:
    made: list[Client] = []
    yield made
    for client in made:
        client.close()


async def connect_to(sim: Any, probe: Probe, clients: list[Client], greet: bool = True) -> Client:
    reader, writer = await asyncio.open_connection(*sim.address)
    client = Client(probe, reader, writer)
    clients.append(client)
    if greet:
        await client.expect(probe.greeting(sim))
    return client


@pytest.fixture
def device(simulators: SimulatorStarter, clients: list[Client]) -> Connect:
    """`await device(kind, **knobs)`: a started simulator and a greeted raw client."""

    async def start(kind: str, greet: bool = True, **knobs: Any) -> tuple[Any, Client]:
        probe = PROBES[kind]
        sim = await simulators(probe.sim, **{**probe.knobs, **knobs})
        return sim, await connect_to(sim, probe, clients, greet)

    return start


def is_junk(data: bytes) -> bool:
    return len(data) == GARBAGE_LEN and all(b in GARBAGE_BYTES for b in data)


# ---- every simulator over TCP ---------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
async def test_device_errors_answer_the_next_commands_then_count_down(
    device: Connect, kind: str
) -> None:
    sim, client = await device(kind)
    probe = PROBES[kind]
    sim.knobs.device_errors = 2
    for _ in range(2):
        client.send()
        await client.expect(probe.error)
    assert sim.knobs.device_errors == 0 and sim.device_errors_sent == 2
    await client.ask()
    sim.knobs.device_error_rate = 1.0
    client.send()
    await client.expect(probe.error)
    sim.knobs.device_error_rate = 0.0
    await client.ask()
    assert sim.device_errors_sent == 3


@pytest.mark.parametrize("kind", KINDS)
async def test_trickle_writes_a_few_bytes_at_a_time(device: Connect, kind: str) -> None:
    sim, client = await device(kind, trickle_interval=0.03)
    sim.knobs.trickle_bytes = 2
    probe = PROBES[kind]
    loop = asyncio.get_running_loop()
    client.send()
    started, chunks = loop.time(), []
    while len(b"".join(chunks)) < len(probe.reply):
        async with asyncio.timeout(2):
            chunks.append(await client.reader.read(100))
    assert b"".join(chunks) == probe.reply
    pieces = -(-len(probe.reply) // 2)
    assert loop.time() - started >= (pieces - 1) * 0.03 * 0.9
    assert len(chunks) > 1


@pytest.mark.parametrize("kind", KINDS)
async def test_mid_reply_drop_writes_half_an_answer_then_drops(device: Connect, kind: str) -> None:
    sim, client = await device(kind, drop_after=1, drop_mode="mid_reply")
    probe = PROBES[kind]
    await client.ask()  # the first command is answered whole
    client.send()
    assert await client.until_dropped() == probe.reply[: len(probe.reply) // 2]
    await until(lambda: not sim.sessions)


@pytest.mark.parametrize("kind", KINDS)
async def test_garbage_replace_sends_junk_instead_of_the_answer(device: Connect, kind: str) -> None:
    sim, client = await device(kind)
    sim.knobs.garbage_mode = "replace"
    sim.knobs.garbage_every = 1
    client.send()
    async with asyncio.timeout(2):
        line = await client.reader.readexactly(GARBAGE_LEN + len(sim.line_end))
    assert is_junk(line[:GARBAGE_LEN]) and line[GARBAGE_LEN:] == sim.line_end
    assert await client.silent()  # the answer itself never comes
    sim.knobs.garbage_every = None
    await client.ask()


@pytest.mark.parametrize("kind", KINDS)
async def test_stall_accepts_and_never_answers(
    simulators: SimulatorStarter, clients: list[Client], kind: str
) -> None:
    probe = PROBES[kind]
    sim = await simulators(probe.sim, **probe.knobs, stall=True, idle_timeout=0.05)
    client = await connect_to(sim, probe, clients, greet=False)
    client.send()
    await until(lambda: sim.stalled >= 1, message="the request read and left unanswered")
    assert await client.silent(0.3)  # no greeting, no answer, and not closed by idle_timeout
    assert sim.sessions
    sim.knobs.idle_timeout = None  # else it would close the session once it is answered
    sim.knobs.stall = False
    await client.ask()  # the same connection answers again


@pytest.mark.parametrize("kind", KINDS)
async def test_refuse_refuses_new_connections_and_keeps_live_ones(
    device: Connect, clients: list[Client], kind: str
) -> None:
    sim, client = await device(kind)
    sim.knobs.refuse = True
    with pytest.raises(ConnectionRefusedError):
        await asyncio.open_connection(*sim.address)
    await client.ask()
    sim.knobs.refuse = False
    await until(lambda: sim.listening)
    other = await connect_to(sim, PROBES[kind], clients)
    await other.ask()


@pytest.mark.parametrize("kind", KINDS)
async def test_reboot_drops_refuses_and_comes_back_with_the_start_state(
    device: Connect, clients: list[Client], kind: str
) -> None:
    sim, client = await device(kind)
    probe = PROBES[kind]
    start = probe.read(sim)
    probe.change(sim)
    assert probe.read(sim) != start
    rebooting = asyncio.create_task(sim.reboot(downtime=0.3))
    await until(lambda: sim.refusing)
    await client.until_dropped()
    assert not sim.sessions
    with pytest.raises(ConnectionRefusedError):
        await asyncio.open_connection(*sim.address)
    assert probe.read(sim) == start
    await rebooting
    assert sim.reboots == 1 and not sim.refusing
    await (await connect_to(sim, probe, clients)).ask()


@pytest.mark.parametrize("kind", KINDS)
async def test_drop_sessions_breaks_every_live_connection(
    device: Connect, clients: list[Client], kind: str
) -> None:
    sim, client = await device(kind)
    other = await connect_to(sim, PROBES[kind], clients)
    sim.drop_sessions()
    for dropped in (client, other):
        assert await dropped.until_dropped() == b""
    await (await connect_to(sim, PROBES[kind], clients)).ask()  # still listening


@pytest.mark.parametrize("kind", KINDS)
async def test_reboot_every_power_cycles_periodically(device: Connect, kind: str) -> None:
    sim, client = await device(kind, reboot_every=0.1, reboot_downtime=0.05)
    await until(lambda: sim.reboots >= 2)
    assert await client.until_dropped() == b""
    sim.knobs.reboot_every = None
    reboots = sim.reboots
    await until(lambda: not sim.refusing and sim.listening)
    await asyncio.sleep(0.2)
    assert sim.reboots == reboots


# ---- authentication ---------------------------------------------------------------------


def test_fail_auth_is_a_knob_of_the_protocols_with_authentication() -> None:
    with_auth = {kind for kind, cls in SIMULATORS.items() if issubclass(cls.knobs_model, AuthKnobs)}
    assert with_auth == {"pjlink", "extron_sis", "qsys", "sony_adcp", "epson_escvp", "generic"}
    assert "--fail-auth" in build_parser("pjlink").format_help()
    assert "--fail-auth" not in build_parser("samsung_mdc").format_help()


async def test_pjlink_fail_auth_asks_for_a_digest_and_refuses_any(
    simulators: SimulatorStarter, clients: list[Client]
) -> None:
    sim = await simulators(PjlinkSimulator, password="secret", nonce="0badf00d", fail_auth=True)
    client = await connect_to(sim, PROBES["pjlink"], clients, greet=False)
    await client.expect(b"PJLINK 1 0badf00d\r")
    client.writer.write(auth_digest("0badf00d", "secret").encode() + b"%1POWR ?\r")
    assert await client.until_dropped() == b"PJLINK ERRA\r"
    sim.knobs.password = None  # no password at all: still asked for one
    client = await connect_to(sim, PROBES["pjlink"], clients, greet=False)
    await client.expect(b"PJLINK 1 0badf00d\r")
    sim.knobs.fail_auth = False
    client = await connect_to(sim, PROBES["pjlink"], clients)
    await client.ask()


async def test_extron_fail_auth_prompts_and_reprompts_every_password(
    simulators: SimulatorStarter, clients: list[Client]
) -> None:
    sim = await simulators(ExtronSimulator, password="secret", fail_auth=True)
    reader, writer = await asyncio.open_connection(*sim.address)
    client = Client(PROBES["extron_sis"], reader, writer)
    clients.append(client)
    async with asyncio.timeout(2):
        assert (await reader.readuntil(b"Password:")).endswith(b"\r\nPassword:")
        writer.write(b"secret\r")
        assert await reader.readuntil(b"Password:") == b"\r\nPassword:"
    sim.knobs.fail_auth = False
    writer.write(b"secret\r")  # the same session, now without the fault
    await client.expect(Login("administrator").encode())


async def test_qsys_fail_auth_requires_a_logon_and_refuses_every_one(
    simulators: SimulatorStarter, clients: list[Client]
) -> None:
    sim = await simulators(QsysSimulator, fail_auth=True)  # no user or password configured
    client = await connect_to(sim, PROBES["qsys"], clients)
    client.writer.write(Request("StatusGet", None, 1).encode())
    refused = Response(1, error=RpcError(QrcError.LOGON_REQUIRED, "Logon required")).encode()
    await client.expect(refused)
    client.writer.write(Request("Logon", {"User": "", "Password": ""}, 2).encode())
    await client.expect(
        Response(2, error=RpcError(QrcError.LOGON_REQUIRED, "Logon failed")).encode()
    )
    sim.knobs.fail_auth = False
    await client.ask()


async def test_sony_adcp_fail_auth_challenges_and_refuses_every_digest(
    simulators: SimulatorStarter, clients: list[Client]
) -> None:
    sim = await simulators(SonyAdcpSimulator, password="secret", challenge="c0ffee42")
    sim.knobs.fail_auth = True
    client = await connect_to(sim, PROBES["sony_adcp"], clients, greet=False)
    await client.expect(b"c0ffee42\r\n")
    client.writer.write(adcp.auth_digest("c0ffee42", "secret").encode() + b"\r\n")
    assert await client.until_dropped() == b"err_auth\r\n"
    sim.knobs.password = None  # no password at all: still challenged
    client = await connect_to(sim, PROBES["sony_adcp"], clients, greet=False)
    await client.expect(b"c0ffee42\r\n")
    sim.knobs.fail_auth = False
    client = await connect_to(sim, PROBES["sony_adcp"], clients)
    await client.ask()


async def test_epson_fail_auth_refuses_every_handshake(
    simulators: SimulatorStarter, clients: list[Client]
) -> None:
    sim = await simulators(EpsonEscvpSimulator, fail_auth=True)  # no password configured
    probe = PROBES["epson_escvp"]
    client = await connect_to(sim, probe, clients, greet=False)
    client.writer.write(connect_request().encode())
    assert await client.until_dropped() == connect_reply(Status.UNAUTHORIZED).encode()
    sim.knobs.fail_auth = False
    client = await connect_to(sim, probe, clients, greet=False)
    client.writer.write(connect_request().encode())
    await client.expect(connect_reply(Status.OK).encode() + b":")
    await client.ask()


# ---- VISCA over UDP -----------------------------------------------------------------------


class Datagrams:
    """A raw VISCA-over-IP controller with its own sequence counter."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.seq = 0

    async def open(self) -> Datagrams:
        self.transport, self.inbox = await open_udp(self.port)
        return self

    def refused(self, datagram: bytes | None = None) -> bool:
        """Ask again (an inquiry, or `datagram`) until the port answers ICMP port
        unreachable: the socket closes one loop iteration after the knob is set, and a
        datagram that came first is simply lost."""
        if not self.inbox.lost:
            if datagram is None:
                self.inquire()
            else:
                self.transport.write(datagram)
        return bool(self.inbox.lost)

    def inquire(self) -> int:
        self.seq += 1
        inquiry = Message(PayloadType.INQUIRY, self.seq, bytes.fromhex("81 09 04 00 FF"))
        self.transport.write(inquiry.encode())
        return self.seq

    async def reply(self) -> tuple[int | None, str]:
        message = decode_message(await self.inbox.next(2.0))
        return message.seq, message.payload.hex(" ").upper()

    async def silent(self, seconds: float = 0.2) -> bool:
        with contextlib.suppress(TimeoutError):
            await self.inbox.next(seconds)
            return False
        return True


@pytest.fixture
async def camera(simulators: SimulatorStarter) -> AsyncIterator[Callable[..., Awaitable[Any]]]:
    opened: list[Datagrams] = []

    async def start(**knobs: Any) -> tuple[ViscaSimulator, Datagrams]:
        sim = await simulators(ViscaSimulator, **knobs)
        opened.append(await Datagrams(sim.port).open())
        return sim, opened[-1]

    yield start
    for client in opened:
        client.transport.close()


async def test_udp_refuse_and_reboot_answer_with_icmp(camera: Any) -> None:
    sim, client = await camera(strict_sequence=True)
    seq = client.inquire()
    assert await client.reply() == (seq, "90 50 02 FF")
    sim.knobs.refuse = True
    await until(client.refused, message="ICMP port unreachable")
    assert "refused" in str(client.inbox.lost[0])
    sim.knobs.refuse = False
    await until(lambda: sim.listening)
    sim.set_power(False)
    rebooting = asyncio.create_task(sim.reboot(downtime=0.2))
    await until(lambda: sim.refusing)
    other = await Datagrams(sim.port).open()
    try:
        await until(other.refused, message="ICMP port unreachable while rebooting")
        await rebooting
        other.transport.close()
        other = await Datagrams(sim.port).open()
        other.seq = 1000  # sequence tracking began anew: any first number goes
        seq = other.inquire()
        assert await other.reply() == (seq, "90 50 02 FF")  # on again, as at start
    finally:
        other.transport.close()


async def test_udp_stall_device_errors_and_garbage(camera: Any) -> None:
    sim, client = await camera()
    sim.knobs.stall = True
    client.inquire()
    await until(lambda: sim.stalled == 1, message="the inquiry read and left unanswered")
    assert await client.silent()
    sim.knobs.stall = False
    sim.knobs.device_errors = 1
    seq = client.inquire()
    assert await client.reply() == (seq, "90 60 41 FF")
    sim.knobs.garbage_every = 1  # line mode on UDP: a junk datagram of its own first
    seq = client.inquire()
    assert is_junk((await client.inbox.next(2.0))[:GARBAGE_LEN])
    assert await client.reply() == (seq, "90 50 02 FF")
    sim.knobs.garbage_mode = "replace"
    client.inquire()
    assert is_junk((await client.inbox.next(2.0))[:GARBAGE_LEN])
    assert await client.silent()


async def test_udp_mid_reply_drop_sends_half_a_datagram(camera: Any) -> None:
    sim, client = await camera(drop_after=0, drop_mode="mid_reply")
    seq = client.inquire()
    whole = Message(PayloadType.REPLY, seq, bytes.fromhex("90 50 02 FF")).encode()
    assert await client.inbox.next(2.0) == whole[: len(whole) // 2]
    assert await client.silent()
    await until(lambda: not sim.sessions)


async def test_pjlink_udp_side_stalls_and_refuses_with_the_projector(
    simulators: SimulatorStarter,
) -> None:
    sim = await simulators(PjlinkSimulator, udp=True)
    search = await Datagrams(sim.port).open()
    try:
        search.transport.write(pjlink.SEARCH)
        assert await search.inbox.next(2.0) == b"%2ACKN=00:1a:2b:3c:4d:5e\r"
        sim.knobs.stall = True
        search.transport.write(pjlink.SEARCH)
        await until(lambda: sim.stalled == 1, message="the search read and left unanswered")
        assert await search.silent()
        sim.knobs.stall = False
        sim.knobs.refuse = True
        await until(lambda: search.refused(pjlink.SEARCH), message="ICMP port unreachable")
    finally:
        search.transport.close()


# ---- a serial pty -------------------------------------------------------------------------


class PtyHost:
    """The host end of a simulator's pty, read without blocking."""

    def __init__(self, path: str) -> None:
        self.fd = os.open(path, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
        termios.tcflush(self.fd, termios.TCIFLUSH)  # as a host opening the port does
        self.got = bytearray()
        self.chunks = 0
        self._loop = asyncio.get_running_loop()
        self._loop.add_reader(self.fd, self._read)

    def _read(self) -> None:
        with contextlib.suppress(BlockingIOError):
            self.got += os.read(self.fd, 256)
            self.chunks += 1

    async def ask(self, data: bytes, size: int) -> bytes:
        self.got.clear()
        os.write(self.fd, data)
        await until(lambda: len(self.got) >= size, timeout=2.0)
        return bytes(self.got)

    async def silent(
        self, data: bytes, read: Callable[[], bool] | None = None, seconds: float = 0.2
    ) -> bool:
        """True when nothing comes back for `seconds` after the device took `data` (after
        `read()` is true, when given: else from the write on)."""
        self.got.clear()
        os.write(self.fd, data)
        if read is not None:
            await until(read, timeout=2.0, message="the device read the request")
        await asyncio.sleep(seconds)  # the point is that nothing comes
        return not self.got

    def close(self) -> None:
        self._loop.remove_reader(self.fd)
        os.close(self.fd)


@pytest.fixture
async def display_on_a_pty() -> AsyncIterator[tuple[SamsungMdcSimulator, PtyHost]]:
    sim = SamsungMdcSimulator.from_options({"power": "on"})
    host = PtyHost(await sim.start_pty())
    yield sim, host
    host.close()
    await sim.stop()


async def test_pty_sessions_honour_the_faults(
    display_on_a_pty: tuple[SamsungMdcSimulator, PtyHost],
) -> None:
    sim, host = display_on_a_pty
    probe = PROBES["samsung_mdc"]
    assert await host.ask(probe.command, len(probe.reply)) == probe.reply
    sim.knobs.device_errors = 1
    assert await host.ask(probe.command, len(probe.error)) == probe.error
    sim.knobs.stall = True
    stalled = sim.stalled
    assert await host.silent(probe.command, lambda: sim.stalled > stalled)
    sim.knobs.stall = False
    sim.knobs.refuse = True  # the display is off: the line is dead
    assert await host.silent(probe.command)
    sim.knobs.refuse = False
    sim.knobs.trickle_bytes, sim.knobs.trickle_interval = 2, 0.02
    chunks = host.chunks
    assert await host.ask(probe.command, len(probe.reply)) == probe.reply
    assert host.chunks - chunks > 1
    sim.knobs.trickle_bytes = None
    sim.set_volume(50)
    session = sim.sessions.copy()
    await sim.reboot(downtime=0.1)
    assert session and not session & sim.sessions and sim.volume == 10
    assert await host.ask(probe.command, len(probe.reply)) == probe.reply


async def test_a_device_on_a_pty_alone_reboots_every_while(
    display_on_a_pty: tuple[SamsungMdcSimulator, PtyHost],
) -> None:
    sim, host = display_on_a_pty
    sim.knobs.reboot_downtime = 0.02
    sim.knobs.reboot_every = 0.05
    await until(lambda: sim.reboots >= 2)
    sim.knobs.reboot_every = None
    await until(lambda: not sim.refusing)
    probe = PROBES["samsung_mdc"]
    assert await host.ask(probe.command, len(probe.reply)) == probe.reply


# ---- randomness and the command line ------------------------------------------------------


def test_seed_makes_random_faults_repeat() -> None:
    def run(seed: int) -> tuple[bytes, list[bool]]:
        sim = PjlinkSimulator.from_options({"seed": seed, "device_error_rate": 0.5})
        return sim.make_garbage(), [sim.rng.random() < 0.5 for _ in range(20)]

    assert run(7) == run(7)
    assert run(7) != run(8)


def test_every_shared_knob_is_a_flag_of_every_simulator() -> None:
    shared = {"--" + name.replace("_", "-") for name in AuthKnobs.model_fields} - {"--fail-auth"}
    for kind in SIMULATORS:
        text = build_parser(kind).format_help()
        assert not {flag for flag in shared if flag not in text}, kind
