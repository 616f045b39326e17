"""PJLink simulator and simulator framework, over real loopback sockets with raw streams."""

from __future__ import annotations

import asyncio
import contextlib
import random
import re
import signal
import socket
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from functools import partial
from pathlib import Path

import pytest
from pydantic import ValidationError

from drivers.pjlink.codec import auth_digest
from simulators import SIMULATORS, PjlinkKnobs, PjlinkSimulator, start_many
from tests import helpers
from tests.helpers import SimulatorStarter

REPO = Path(__file__).resolve().parent.parent
until = partial(helpers.until, timeout=2.0, interval=0.005)  # a local simulator answers fast


class Client:
    """A raw PJLink client: bytes in, lines out."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    @classmethod
    async def connect(cls, sim: PjlinkSimulator) -> Client:
        reader, writer = await asyncio.open_connection(*sim.address)
        return cls(reader, writer)

    async def line(self, timeout: float = 2.0) -> bytes:
        async with asyncio.timeout(timeout):
            return await self.reader.readuntil(b"\r")

    async def ask(self, line: str | bytes) -> bytes:
        """Send one command line (CR added) and return the reply line."""
        self.send(line)
        return await self.line()

    def send(self, line: str | bytes) -> None:
        data = line.encode() if isinstance(line, str) else line
        self.writer.write(data + b"\r")

    async def closed_by_peer(self, timeout: float = 2.0) -> bool:
        """True when the simulator closes the connection (EOF or reset) without more data."""
        try:
            async with asyncio.timeout(timeout):
                return await self.reader.read(1) == b""
        except (ConnectionResetError, BrokenPipeError):
            return True

    async def close(self) -> None:
        self.writer.close()
        with contextlib.suppress(OSError):
            await self.writer.wait_closed()


SimFactory = Callable[..., Awaitable[PjlinkSimulator]]


@pytest.fixture
def make_sim(simulators: SimulatorStarter) -> SimFactory:
    """Start simulators on ephemeral loopback ports; all are stopped after the test."""
    return partial(simulators, PjlinkSimulator)


@pytest.fixture
async def connect() -> AsyncIterator[Callable[[PjlinkSimulator], Awaitable[Client]]]:
    """Open raw clients that are closed after the test."""
    clients: list[Client] = []

    async def open_client(sim: PjlinkSimulator) -> Client:
        client = await Client.connect(sim)
        clients.append(client)
        return client

    yield open_client
    for client in clients:
        await client.close()


Connect = Callable[[PjlinkSimulator], Awaitable[Client]]


async def greeted(connect: Connect, sim: PjlinkSimulator) -> Client:
    client = await connect(sim)
    assert await client.line() == b"PJLINK 0\r"
    return client


# -- greeting and authentication ------------------------------------------------


async def test_greeting_without_password(make_sim: SimFactory, connect: Connect) -> None:
    sim = await make_sim()
    client = await greeted(connect, sim)
    assert await client.ask("%1POWR ?") == b"%1POWR=0\r"
    assert sim.connections == 1


async def test_greeting_with_password_has_fresh_nonce(
    make_sim: SimFactory, connect: Connect
) -> None:
    sim = await make_sim(password="secret")
    greetings = [await (await connect(sim)).line() for _ in range(3)]
    for greeting in greetings:
        assert re.fullmatch(rb"PJLINK 1 [0-9a-f]{8}\r", greeting)
    assert len(set(greetings)) == 3


async def test_good_digest_then_plain_commands(make_sim: SimFactory, connect: Connect) -> None:
    sim = await make_sim(password="secret")
    client = await connect(sim)
    nonce = (await client.line()).split()[2].decode()
    assert await client.ask(auth_digest(nonce, "secret") + "%1POWR ?") == b"%1POWR=0\r"
    assert await client.ask("%1INPT ?") == b"%1INPT=ERR3\r"  # no digest needed any more
    assert await client.ask("%1CLSS ?") == b"%1CLSS=2\r"


async def test_spec_digest_vector(make_sim: SimFactory, connect: Connect) -> None:
    sim = await make_sim(password="JBMIAProjectorLink", nonce="498e4a67")
    client = await connect(sim)
    assert await client.line() == b"PJLINK 1 498e4a67\r"
    reply = await client.ask("5d8409bc1c3fa39749434aa3a5c38682%1POWR ?")
    assert reply == b"%1POWR=0\r"


@pytest.mark.parametrize("prefix", ["0" * 32, "5d8409bc1c3fa39749434aa3a5c3868", ""])
async def test_bad_or_missing_digest_is_refused(
    make_sim: SimFactory, connect: Connect, prefix: str
) -> None:
    sim = await make_sim(password="JBMIAProjectorLink", nonce="498e4a67")
    client = await connect(sim)
    await client.line()
    assert await client.ask(prefix + "%1POWR ?") == b"PJLINK ERRA\r"
    assert await client.closed_by_peer()
    assert sim.received["POWR"] == 0


# -- line handling -------------------------------------------------------------


async def test_crlf_overlong_and_junk_lines(make_sim: SimFactory, connect: Connect) -> None:
    sim = await make_sim()
    client = await greeted(connect, sim)
    client.writer.write(b"%1POWR ?\r\n")
    assert await client.line() == b"%1POWR=0\r"
    client.send(b"%1NAME " + b"x" * 200)  # over 136 bytes: ignored, connection kept
    client.send(b"\xff\xfe\x00 not pjlink at all")
    client.send(b"%1POWR?")  # header fine, no separator
    assert await client.line() == b"%1POWR=ERR1\r"
    assert await client.ask("%1NAME ?") == b"%1NAME=Simulated projector\r"


async def test_the_tail_of_an_over_long_line_is_never_a_command(
    make_sim: SimFactory, connect: Connect, caplog: pytest.LogCaptureFixture
) -> None:
    sim = await make_sim()
    client = await greeted(connect, sim)
    client.writer.write(b"%1NAME " + b"x" * 200)  # no CR yet: dropped as soon as too long
    await until(lambda: "frame over" in caplog.text)
    client.send(b"%1POWR 1")  # the same line's tail, not a command
    assert await client.ask("%1POWR ?") == b"%1POWR=0\r"
    assert sim.power == "off" and sim.received["POWR"] == 1


async def test_random_bytes_never_break_the_session(make_sim: SimFactory, connect: Connect) -> None:
    sim = await make_sim()
    client = await greeted(connect, sim)
    noise = random.Random(4352)
    for _ in range(20):
        client.writer.write(bytes(noise.choices(b"%12PWRINT ?=\r\n\x00\xff", k=300)))
    client.send(b"\r%1CLSS ?")
    while (line := await client.line()) != b"%1CLSS=2\r":
        assert line.startswith(b"%")
    assert sim.sessions


async def test_class_digit_echoed_and_errors(make_sim: SimFactory, connect: Connect) -> None:
    sim = await make_sim(err4=["erst"])
    client = await greeted(connect, sim)
    assert await client.ask("%1XXXX ?") == b"%1XXXX=ERR1\r"
    assert await client.ask("%2POWR ?") == b"%2POWR=ERR1\r"  # not a class 2 body
    assert await client.ask("%1POWR 5") == b"%1POWR=ERR2\r"
    assert await client.ask("%1NAME x") == b"%1NAME=ERR2\r"
    assert await client.ask("%1INPT 99") == b"%1INPT=ERR2\r"
    assert await client.ask("%1INPT 31") == b"%1INPT=ERR3\r"  # standby
    assert await client.ask("%1AVMT 31") == b"%1AVMT=ERR3\r"
    assert await client.ask("%2FREZ 1") == b"%2FREZ=ERR3\r"
    assert await client.ask("%1ERST ?") == b"%1ERST=ERR4\r"
    assert await client.ask("%2INST ?") == b"%2INST=11 31 32 51\r"
    assert sim.received["INPT"] == 2
    assert sim.received["XXXX"] == 1


async def test_class1_simulator_refuses_class2(make_sim: SimFactory, connect: Connect) -> None:
    sim = await make_sim(pjclass=1)
    client = await greeted(connect, sim)
    assert await client.ask("%1CLSS ?") == b"%1CLSS=1\r"
    assert await client.ask("%2SNUM ?") == b"%2SNUM=ERR1\r"
    assert await client.ask("%2INPT ?") == b"%2INPT=ERR1\r"


async def test_class2_bodies(make_sim: SimFactory, connect: Connect) -> None:
    sim = await make_sim(
        power="on",
        inputs=["11", "31", "3A", "61"],
        input_names={"31": "Laptop"},
        filter_hours=None,
        lamp=False,
    )
    client = await greeted(connect, sim)
    assert await client.ask("%2SNUM ?") == b"%2SNUM=SIM00001\r"
    assert await client.ask("%2SVER ?") == b"%2SVER=1.0.0\r"
    assert await client.ask("%2INNM ?31") == b"%2INNM=Laptop\r"
    assert await client.ask("%2INNM ?11") == b"%2INNM=RGB 1\r"
    assert await client.ask("%2INNM ?99") == b"%2INNM=ERR2\r"
    assert await client.ask("%1INST ?") == b"%1INST=11 31\r"  # class 1 codes only
    assert await client.ask("%2INST ?") == b"%2INST=11 31 3A 61\r"
    assert await client.ask("%1INPT 3A") == b"%1INPT=ERR2\r"
    assert await client.ask("%2INPT 3A") == b"%2INPT=OK\r"
    assert await client.ask("%2IRES ?") == b"%2IRES=1920x1080\r"
    assert await client.ask("%2RRES ?") == b"%2RRES=1920x1200\r"
    assert await client.ask("%2FILT ?") == b"%2FILT=ERR1\r"
    assert await client.ask("%1LAMP ?") == b"%1LAMP=ERR1\r"
    assert await client.ask("%2RLMP ?") == b"%2RLMP=LMP-SIM1\r"
    assert await client.ask("%2RFIL ?") == b"%2RFIL=FLT-SIM1\r"
    assert await client.ask("%2SVOL 1") == b"%2SVOL=OK\r"
    assert await client.ask("%2MVOL 0") == b"%2MVOL=OK\r"
    assert await client.ask("%2SVOL 2") == b"%2SVOL=ERR2\r"
    assert await client.ask("%2FREZ 1") == b"%2FREZ=OK\r"
    assert await client.ask("%2FREZ ?") == b"%2FREZ=1\r"
    assert (sim.volume, sim.freeze, sim.input) == (51, True, "3A")


async def test_lowercase_replies(make_sim: SimFactory, connect: Connect) -> None:
    sim = await make_sim(lowercase=True, warmup=0)
    client = await connect(sim)
    assert await client.line() == b"pjlink 0\r"
    assert await client.ask("%1POWR 1") == b"%1powr=ok\r"
    assert await client.ask("%1INPT ?") == b"%1inpt=11\r"


# -- power state machine -------------------------------------------------------


async def test_command_before_hangup_is_still_applied(
    make_sim: SimFactory, connect: Connect
) -> None:
    sim = await make_sim(warmup=0)
    client = await greeted(connect, sim)
    client.send("%1POWR 1")
    await client.close()
    await until(lambda: sim.power == "on")
    await until(lambda: not sim.sessions)


async def test_power_on_warming_on_and_off(make_sim: SimFactory, connect: Connect) -> None:
    sim = await make_sim(warmup=0.15, cooldown=0.15)
    client = await greeted(connect, sim)
    assert await client.ask("%1POWR 1") == b"%1POWR=OK\r"
    assert await client.ask("%1POWR ?") == b"%1POWR=3\r"
    assert await client.ask("%1AVMT 11") == b"%1AVMT=ERR3\r"
    assert await client.ask("%1POWR 0") == b"%1POWR=ERR3\r"
    await until(lambda: sim.power == "on")
    assert await client.ask("%1POWR ?") == b"%1POWR=1\r"
    assert await client.ask("%1POWR 1") == b"%1POWR=OK\r"
    assert await client.ask("%1INPT 31") == b"%1INPT=OK\r"
    assert await client.ask("%1AVMT 21") == b"%1AVMT=OK\r"
    assert await client.ask("%1AVMT ?") == b"%1AVMT=21\r"
    assert await client.ask("%1POWR 0") == b"%1POWR=OK\r"
    assert await client.ask("%1POWR ?") == b"%1POWR=2\r"
    await until(lambda: sim.power == "off")
    assert await client.ask("%1POWR ?") == b"%1POWR=0\r"


@pytest.mark.parametrize(
    ("mode", "reply", "after"), [("ignore", b"%1POWR=OK\r", "on"), ("apply", b"%1POWR=OK\r", "off")]
)
async def test_power_in_transition_knob(
    make_sim: SimFactory, connect: Connect, mode: str, reply: bytes, after: str
) -> None:
    sim = await make_sim(warmup=0.1, cooldown=0.05, power_in_transition=mode)
    client = await greeted(connect, sim)
    await client.ask("%1POWR 1")
    assert await client.ask("%1POWR 0") == reply
    await until(lambda: sim.power == after)


async def test_lamp_hours_advance_while_on(make_sim: SimFactory, connect: Connect) -> None:
    sim = await make_sim(power="on", lamp_hours=100, lamp_hours_per_second=200, filter_hours=5)
    await until(lambda: sim.lamp_hours >= 110)
    client = await greeted(connect, sim)
    hours, lit = (await client.ask("%1LAMP ?"))[7:-1].split()
    assert int(hours) >= 110 and lit == b"1"
    assert int((await client.ask("%2FILT ?"))[7:-1]) >= 15
    sim.press_power(False)
    assert sim.power == "cooling"
    frozen = sim.lamp_hours
    await asyncio.sleep(0.05)
    assert sim.lamp_hours == frozen


# -- front panel ---------------------------------------------------------------


async def test_front_panel_and_listener(make_sim: SimFactory, connect: Connect) -> None:
    sim = await make_sim(warmup=0.05)
    changes: list[tuple[str, object]] = []
    sim.add_listener(lambda key, value: changes.append((key, value)))
    assert sim.press_power(True)
    assert sim.power == "warming"
    await until(lambda: sim.power == "on")
    sim.set_input("32")
    sim.set_mutes(video=True)
    sim.set_errors("000010")
    with pytest.raises(ValueError):
        sim.set_input("99")
    with pytest.raises(ValueError):
        sim.set_errors("12")
    client = await greeted(connect, sim)
    assert await client.ask("%1INPT ?") == b"%1INPT=32\r"
    assert await client.ask("%1AVMT ?") == b"%1AVMT=11\r"
    assert await client.ask("%1ERST ?") == b"%1ERST=000010\r"
    assert changes == [
        ("power", "warming"),
        ("power", "on"),
        ("input", "32"),
        ("video_mute", True),
        ("errors", "000010"),
    ]
    assert sim.received["INPT"] == 1


# -- fault knobs ---------------------------------------------------------------


async def test_split_writes_arrive_in_pieces(make_sim: SimFactory, connect: Connect) -> None:
    sim = await make_sim(split_writes=True)
    client = await connect(sim)
    chunks: list[bytes] = []
    while not b"".join(chunks).endswith(b"\r"):
        chunks.append(await client.reader.read(100))
    assert b"".join(chunks) == b"PJLINK 0\r"
    assert len(chunks) >= 2


async def test_coalesced_replies_arrive_together(make_sim: SimFactory, connect: Connect) -> None:
    sim = await make_sim(coalesce_replies=3, coalesce_window=0.02)
    client = await connect(sim)
    assert await client.line() == b"PJLINK 0\r"  # held alone, flushed after the window
    client.writer.write(b"%1POWR ?\r%1INPT ?\r%1CLSS ?\r")
    first = await client.reader.read(200)
    assert first == b"%1POWR=0\r%1INPT=ERR3\r%1CLSS=2\r"
    assert await client.ask("%1NAME ?") == b"%1NAME=Simulated projector\r"


async def test_reply_delay(make_sim: SimFactory, connect: Connect) -> None:
    sim = await make_sim(reply_delay=0.1)
    client = await greeted(connect, sim)
    loop = asyncio.get_running_loop()
    started = loop.time()
    assert await client.ask("%1POWR ?") == b"%1POWR=0\r"
    assert loop.time() - started >= 0.09


async def test_drop_after(make_sim: SimFactory, connect: Connect) -> None:
    sim = await make_sim(drop_after=2)
    client = await greeted(connect, sim)
    assert await client.ask("%1POWR ?") == b"%1POWR=0\r"
    assert await client.ask("%1CLSS ?") == b"%1CLSS=2\r"
    client.send("%1NAME ?")
    assert await client.closed_by_peer()
    await until(lambda: not sim.sessions)


async def test_garbage_line_mode(make_sim: SimFactory, connect: Connect) -> None:
    sim = await make_sim(garbage_every=2)
    client = await greeted(connect, sim)  # message 1: clean
    client.send("%1POWR ?")
    junk = await client.line()  # message 2: a junk line first
    assert not junk.startswith((b"%", b"PJLINK")) and len(junk) > 1
    assert await client.line() == b"%1POWR=0\r"
    assert await client.ask("%1CLSS ?") == b"%1CLSS=2\r"  # message 3: clean


async def test_garbage_prefix_mode(make_sim: SimFactory, connect: Connect) -> None:
    sim = await make_sim(garbage_every=1, garbage_mode="prefix")
    client = await connect(sim)
    greeting = await client.line()
    assert greeting.endswith(b"PJLINK 0\r") and not greeting.startswith(b"PJLINK")
    reply = await client.ask("%1POWR ?")
    assert reply.endswith(b"%1POWR=0\r") and reply != b"%1POWR=0\r"


async def test_idle_timeout_closes(make_sim: SimFactory, connect: Connect) -> None:
    sim = await make_sim(idle_timeout=0.5)
    client = await greeted(connect, sim)
    loop = asyncio.get_running_loop()
    greeted_at = loop.time()
    await asyncio.sleep(0.2)
    assert await client.ask("%1POWR ?") == b"%1POWR=0\r"  # activity restarts the timer
    assert await client.closed_by_peer(timeout=5)
    assert loop.time() - greeted_at >= 0.2 + 0.5  # idle counted from the question


async def test_max_clients(make_sim: SimFactory, connect: Connect) -> None:
    sim = await make_sim(max_clients=1)
    first = await greeted(connect, sim)
    second = await connect(sim)
    assert await second.closed_by_peer()
    assert sim.refused == 1
    await first.close()
    await until(lambda: not sim.sessions)
    await greeted(connect, sim)


# -- lifecycle -----------------------------------------------------------------


async def test_stop_closes_sessions_and_restart_on_same_port(
    make_sim: SimFactory, connect: Connect
) -> None:
    sim = await make_sim(warmup=0)
    client = await greeted(connect, sim)
    assert await client.ask("%1POWR 1") == b"%1POWR=OK\r"
    port = sim.port
    await sim.stop()
    assert await client.closed_by_peer()
    with pytest.raises(OSError):
        await asyncio.open_connection("127.0.0.1", port)
    await sim.start(port=port)
    assert sim.port == port
    client = await greeted(connect, sim)
    assert await client.ask("%1POWR ?") == b"%1POWR=1\r"  # state survived the restart


async def test_broadcast_reaches_every_session(connect: Connect) -> None:
    async with PjlinkSimulator(PjlinkKnobs(split_writes=True)) as sim:
        clients = [await greeted(connect, sim) for _ in range(2)]
        sim.broadcast(b"%2POWR=1\r")
        for client in clients:
            assert await client.line() == b"%2POWR=1\r"
    assert not sim.running
    assert await clients[0].closed_by_peer()


def _free_port_block(count: int) -> int:
    """A port where `count` consecutive loopback ports were free a moment ago."""
    for _ in range(50):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            base: int = probe.getsockname()[1]
        if base + count > 65535:
            continue
        try:
            with contextlib.ExitStack() as stack:
                for port in range(base, base + count):
                    sock = stack.enter_context(socket.socket())
                    sock.bind(("127.0.0.1", port))
            return base
        except OSError:
            continue
    raise RuntimeError("no free port block")


async def test_start_many_on_consecutive_ports(connect: Connect) -> None:
    base = _free_port_block(3)
    sims = await start_many(PjlinkSimulator, 3, port_base=base)
    try:
        assert [sim.port for sim in sims] == [base, base + 1, base + 2]
        assert len({id(sim.knobs) for sim in sims}) == 3
        for sim in sims:
            await greeted(connect, sim)
        sims[0].press_power(True)
        assert [sim.power for sim in sims] == ["warming", "off", "off"]
    finally:
        for sim in sims:
            await sim.stop()


def test_knob_validation() -> None:
    assert SIMULATORS["pjlink"] is PjlinkSimulator
    assert PjlinkKnobs(warmup="250ms").warmup == 0.25
    for bad in (
        {"inputs": ["99"]},
        {"input": "32", "inputs": ["31"]},
        {"errors": "0000"},
        {"pjclass": 3},
        {"coalesce_replies": 0},
        {"no_such_knob": 1},
    ):
        with pytest.raises(ValidationError):
            PjlinkKnobs(**bad)
    assert PjlinkSimulator.from_options({"nonce": "498e4a67"}).knobs.nonce == "498e4a67"


# -- command line --------------------------------------------------------------


async def test_cli_smoke() -> None:
    """The real command line (a duration in plain seconds as in YAML), stopped by its PID."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "simulators",
        "pjlink",
        "--warmup",
        "0.3",
        "--port",
        "0",
        "--password",
        "secret",
        "--split-writes",
        cwd=REPO,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        assert proc.stdout is not None and proc.stderr is not None
        async with asyncio.timeout(15):
            line = (await proc.stdout.readline()).decode()
        m = re.fullmatch(r"pjlink simulator listening on 127\.0\.0\.1:(\d+)\n", line)
        assert m, line + (await proc.stderr.read()).decode()
        client = Client(*await asyncio.open_connection("127.0.0.1", int(m.group(1))))
        greeting = await client.line()
        assert re.fullmatch(rb"PJLINK 1 [0-9a-f]{8}\r", greeting)
        nonce = greeting.split()[2].decode()
        assert await client.ask(auth_digest(nonce, "secret") + "%1POWR 1") == b"%1POWR=OK\r"

        async def on() -> bool:
            return await client.ask("%1POWR ?") == b"%1POWR=1\r"

        # on after --warmup 0.3, long before the default 5 s
        await helpers.until(on, timeout=4.0, interval=0.05, message="on after the warm-up")
        await client.close()
        proc.send_signal(signal.SIGTERM)
        async with asyncio.timeout(5):
            _, stderr = await proc.communicate()
        assert proc.returncode == 0, stderr
        assert b"Traceback" not in stderr and b"Task was destroyed" not in stderr
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


async def test_cli_bad_knob_exits_2() -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "simulators",
        "pjlink",
        "--port",
        "0",
        "--warmup",
        "soon",
        cwd=REPO,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    async with asyncio.timeout(10):
        _, stderr = await proc.communicate()
    assert proc.returncode == 2
    assert b"--warmup" in stderr and b"duration" in stderr


async def test_an_ephemeral_port_taken_on_udp_is_passed_over(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """With class 2 on UDP the simulator needs one port number free on TCP and UDP alike;
    another process may hold the UDP twin of the TCP port the system gives it."""
    from simulators.base import Simulator

    taken = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    taken.bind(("127.0.0.1", 0))
    clash = taken.getsockname()[1]
    listen = Simulator._listen
    ports: list[int] = []

    async def first_the_clash(self: Simulator, port: int) -> None:
        ports.append(port)
        await listen(self, clash if len(ports) == 1 else port)

    monkeypatch.setattr(Simulator, "_listen", first_the_clash)
    sim = PjlinkSimulator(PjlinkKnobs(udp=True))
    try:
        await sim.start()
        assert ports == [0, 0] and sim.port != clash
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as client:
            client.setblocking(False)
            client.sendto(b"%2SRCH\r", ("127.0.0.1", sim.port))
            loop = asyncio.get_running_loop()
            answer, _ = await asyncio.wait_for(loop.sock_recvfrom(client, 100), 5)
            assert answer.startswith(b"%2ACKN=")
    finally:
        taken.close()
        await sim.stop()
