"""Serial transports over real pseudo-terminals and loopback sockets: serial://, socket://, rfc2217://."""

from __future__ import annotations

import asyncio
import logging
import os
import re
import signal
import sys
import termios
import time
from collections.abc import Awaitable, Callable
from functools import partial
from pathlib import Path
from typing import Any

import pytest
import serial
from serial import rfc2217

from drivers.errors import ConnectError, ConnectionClosed, ErrorCode, OfflineReason
from drivers.pjlink.driver import PjlinkDriver
from drivers.transport import create_transport, parse_transport_url
from drivers.transport.serial import Rfc2217Transport, SerialTransport, serial_settings
from hub.app import Hub
from hub.simulate import Simulators
from simulators.base import Knobs, Session, Simulator
from tests.helpers import hub_config, until
from tests.rig import RigStarter, error_of
from tests.test_pjlink_driver import PjlinkRig


class PortRig(PjlinkRig):
    """A projector simulator whose port each test opens its own way, and drivers at any URL."""

    settings = {**PjlinkRig.settings, "connect_timeout": 0.5}

    async def start(self) -> None:
        pass  # a pty, TCP or a gateway: the test decides

    async def wait_ready(self, driver: PjlinkDriver) -> None:
        await until(lambda: driver.online and "power" in driver.state, message="driver online")


@pytest.fixture
def rig_factory(rigs: RigStarter) -> Callable[..., Awaitable[PortRig]]:
    return partial(rigs, PortRig)


class Bytes:
    """A transport receiver that keeps what arrives."""

    def __init__(self) -> None:
        self.data = b""
        self.lost: list[Exception | None] = []

    def data_received(self, data: bytes) -> None:
        self.data += data

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost.append(exc)


class EchoSimulator(Simulator[Knobs]):
    """Answers every line with itself."""

    kind = "echo"

    async def handle_frame(self, session: Session, frame: bytes) -> None:
        await session.send(frame + b"\r")

    async def device_error(self, session: Session, frame: bytes) -> bool:
        await session.send(b"ERROR\r")
        return True

    def reset_state(self) -> None:
        """An echo has no state."""


# ---- serial:// --------------------------------------------------------------------------


async def test_pjlink_driver_over_a_pty(rig_factory: Any, no_loop_errors: None) -> None:
    rig = await rig_factory(manufacturer="EPSON")
    sim = rig.sim
    path = await sim.start_pty()
    assert re.fullmatch(r"/dev/pts/\d+", path)
    driver = await rig.online(transport=f"serial://{path}?baudrate=9600")
    assert driver.state["manufacturer"] == "EPSON" and driver.state["power"] == "off"
    await driver.execute("power_on")
    await until(lambda: driver.state["power"] == "on")
    await driver.execute("select_input", {"input": "HDMI 2"})
    assert sim.power == "on" and sim.input == "32"
    assert sim.connections == 1  # one open of the port, one session
    assert [session.on_serial for session in sim.sessions] == [True]


async def test_missing_port_is_offline_as_port_gone(
    rig_factory: Any, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "ttyUSB9"
    rig = await rig_factory()
    driver = await rig.driver(transport=f"serial://{path}")
    await until(lambda: "offline" in caplog.text, message="offline log")
    assert not driver.online and driver.state["offline_reason"] == "port_gone"
    offline = [r.getMessage() for r in caplog.records if "offline" in r.getMessage()]
    assert offline == [
        f"proj offline: cannot open serial port {path}: no such port "
        "(adapter unplugged, or wrong path?) (retrying with backoff)"
    ]
    err = await error_of(driver.execute("power_on"))
    assert err.code is ErrorCode.DEVICE_OFFLINE and "port_gone" in str(err)


async def test_pulled_port_goes_offline_and_comes_back_with_fresh_state(
    rig_factory: Any, tmp_path: Path, no_loop_errors: None
) -> None:
    link = tmp_path / "ttyUSB0"
    rig = await rig_factory()
    sim = rig.sim
    assert await sim.start_pty(link=link) == str(link)
    driver = await rig.online(transport=f"serial://{link}")
    sim.close_pty()  # the USB adapter is pulled
    assert not link.exists()
    pulled = time.monotonic()
    await until(lambda: not driver.online, timeout=3, message="offline")
    config = driver.config
    assert time.monotonic() - pulled < config.poll_interval + config.timeout * 2
    assert driver.state["offline_reason"] == "port_gone"

    sim.press_power(True)  # someone used the projector's remote meanwhile
    await sim.start_pty(link=link)  # plugged back in
    await until(lambda: driver.online, timeout=3, message="back online")
    await until(lambda: driver.state["power"] in ("warming", "on"), message="fresh state")
    await driver.execute("power_off")
    assert sim.power == "cooling"


async def test_wrong_baud_rate_means_no_answer(
    rig_factory: Any, caplog: pytest.LogCaptureFixture
) -> None:
    rig = await rig_factory()
    sim = rig.sim
    path = await sim.start_pty(baudrate=9600)
    driver = await rig.driver(transport=f"serial://{path}?baudrate=19200")
    await until(lambda: driver.state["offline_reason"] == "timeout", timeout=4)
    assert not driver.online
    assert f"host set {path} to 19200 baud, the device runs at 9600: bytes lost" in caplog.text


@pytest.mark.parametrize("writing", [False, True])
async def test_a_vanishing_port_reports_connection_lost_at_once(
    rig_factory: Any, no_loop_errors: None, writing: bool
) -> None:
    sim = (await rig_factory()).sim
    path = await sim.start_pty()
    transport = SerialTransport(parse_transport_url(f"serial://{path}"), 1.0)
    received = Bytes()
    await transport.open(received)
    await until(lambda: sim.sessions, message="port opened")
    sim.close_pty()
    if writing:  # before the loop sees the hang-up: the write itself fails
        transport.write(b"%1POWR ?\r")
        assert not transport.is_open
    await until(lambda: received.lost, timeout=0.5, message="connection_lost")
    assert not transport.is_open
    with pytest.raises(ConnectionClosed):
        transport.write(b"%1POWR ?\r")
    transport.close()  # idempotent: connection_lost is not reported twice
    await asyncio.sleep(0.05)
    assert len(received.lost) == 1 and received.lost[0] is not None


@pytest.mark.parametrize(
    ("query", "speed", "cflags", "iflags"),
    [
        ("", termios.B9600, 0, 0),
        (
            "?baudrate=19200&stopbits=2&rtscts=1",
            termios.B19200,
            termios.CSTOPB | termios.CRTSCTS,
            0,
        ),
        ("?baudrate=38400&xonxoff=1", termios.B38400, 0, termios.IXON | termios.IXOFF),
    ],
)
async def test_url_parameters_reach_the_port(
    query: str, speed: int, cflags: int, iflags: int
) -> None:
    master, slave = os.openpty()
    transport = create_transport(parse_transport_url(f"serial://{os.ttyname(slave)}{query}"), 1)
    try:
        await transport.open(Bytes())
        iflag, _, cflag, _, ispeed, ospeed, _ = termios.tcgetattr(slave)
        assert ispeed == ospeed == speed
        assert cflag & termios.CSIZE == termios.CS8 and not cflag & termios.PARENB
        assert cflag & (termios.CSTOPB | termios.CRTSCTS) == cflags
        assert iflag & (termios.IXON | termios.IXOFF) == iflags
    finally:
        transport.close()
        os.close(master)
        os.close(slave)


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("", (9600, 8, "N", 1, False, False)),
        ("?baudrate=1200&bytesize=7&parity=e&stopbits=1.5", (1200, 7, "E", 1.5, False, False)),
        ("?bytesize=5&parity=M&stopbits=2&rtscts=1&xonxoff=1", (9600, 5, "M", 2, True, True)),
    ],
)
def test_url_parameters_map_to_pyserial_settings(query: str, expected: tuple[Any, ...]) -> None:
    # A pty cannot carry parity or 7 data bits, so these reach a pyserial loopback port.
    settings = serial_settings(parse_transport_url(f"serial:///dev/ttyS0{query}"))
    with serial.serial_for_url("loop://", **settings) as port:
        got = (port.baudrate, port.bytesize, port.parity, port.stopbits, port.rtscts, port.xonxoff)
    assert got == expected


async def test_settings_the_port_refuses_are_a_connect_error() -> None:
    # A pty carries no parity: pyserial sets it, the pty drops it, and setting the port up
    # again for asyncio fails with EINVAL (which is why --simulate serves parity devices 8N1).
    master, slave = os.openpty()
    transport = SerialTransport(parse_transport_url(f"serial://{os.ttyname(slave)}?parity=E"), 1)
    try:
        with pytest.raises(ConnectError) as refused:
            await transport.open(Bytes())
        assert refused.value.reason is OfflineReason.PORT_GONE
        assert str(refused.value) == (
            f"cannot open serial port {os.ttyname(slave)}: the port refuses 9600 8E1 "
            "(Invalid argument)"
        )
        assert not transport.is_open
    finally:
        transport.close()
        os.close(master)
        os.close(slave)


async def test_simulator_pty_is_a_raw_line() -> None:
    sim = EchoSimulator()
    try:
        fd = os.open(await sim.start_pty(baudrate=19200), os.O_RDWR | os.O_NOCTTY)
        try:
            _, oflag, _, lflag, ispeed, _, _ = termios.tcgetattr(fd)
            assert ispeed == termios.B19200
            assert not lflag & (termios.ECHO | termios.ICANON) and not oflag & termios.OPOST
            termios.tcflush(fd, termios.TCIFLUSH)  # as a host opening the port does
            os.write(fd, b"a\nb\r")
            got = b""
            while got.count(b"\r") < 2:
                got += await asyncio.to_thread(os.read, fd, 100)
            assert got == b"a\rb\r"  # LF reached the device as LF, and CR came back as CR
        finally:
            os.close(fd)
    finally:
        await sim.stop()


# ---- socket:// and rfc2217:// -----------------------------------------------------------


async def test_socket_url_is_raw_tcp(rig_factory: Any, no_loop_errors: None) -> None:
    rig = await rig_factory()
    sim = rig.sim
    await sim.start()
    driver = await rig.online(transport=f"socket://127.0.0.1:{sim.port}")
    await driver.execute("power_on")
    assert sim.power == "warming"
    assert [session.on_serial for session in sim.sessions] == [False]


class _PtyPort(serial.Serial):  # type: ignore[misc]
    """A pty has no modem lines; the RFC 2217 server asks for them."""

    cts = dsr = ri = cd = False


class Rfc2217Gateway:
    """A serial-to-IP gateway: pyserial's RFC 2217 PortManager in front of a pyserial port.

    On a pty it bridges to a simulator; on `loop://` it echoes, and takes any settings.
    """

    def __init__(self, device: str, baudrate: int = 9600) -> None:
        self.device = device
        self.baudrate = baudrate
        self.ports: list[Any] = []
        self.managers: list[rfc2217.PortManager] = []
        self._server: asyncio.Server | None = None
        self._clients: set[asyncio.StreamWriter] = set()
        self._tasks: set[asyncio.Task[Any]] = set()

    async def start(self) -> int:
        self._server = await asyncio.start_server(self._client, "127.0.0.1", 0)
        port: int = self._server.sockets[0].getsockname()[1]
        return port

    def _open(self) -> Any:
        if self.device.startswith("loop://"):
            return serial.serial_for_url(self.device, timeout=0)
        return _PtyPort(self.device, self.baudrate, timeout=0)

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        loop = asyncio.get_running_loop()
        self._clients.add(writer)
        self._tasks.add(asyncio.current_task())  # type: ignore[arg-type]
        port = self._open()
        manager = rfc2217.PortManager(port, writer)
        self.ports.append(port)
        self.managers.append(manager)

        fd: int | None = getattr(port, "fd", None)  # loop:// has none: it echoes at once

        def forward() -> None:
            try:
                data = port.read(4096)
            except serial.SerialException:  # the port died: drop the client, as a gateway does
                if fd is not None:
                    loop.remove_reader(fd)
                writer.close()
                return
            if data:
                writer.write(b"".join(manager.escape(data)))

        if fd is not None:
            loop.add_reader(fd, forward)
        try:
            while data := await reader.read(4096):
                port.write(b"".join(manager.filter(data)))
                if fd is None:
                    forward()
        finally:
            if fd is not None:
                loop.remove_reader(fd)
            port.close()
            writer.close()

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
        for writer in self._clients:
            writer.close()
        await asyncio.gather(*self._tasks)


async def test_rfc2217_driver_through_a_gateway_to_a_pty(
    rig_factory: Any, no_loop_errors: None
) -> None:
    rig = await rig_factory()
    sim = rig.sim
    gateway = Rfc2217Gateway(await sim.start_pty(baudrate=19200), baudrate=19200)
    port = await gateway.start()
    try:
        driver = await rig.online(transport=f"rfc2217://127.0.0.1:{port}?baudrate=19200&stopbits=2")
        await driver.execute("power_on")
        assert sim.power == "warming"
        assert gateway.managers[0]._client_is_rfc2217
    finally:
        await rig.stop()
        await gateway.stop()


async def test_rfc2217_sends_settings_and_escapes_0xff(no_loop_errors: None) -> None:
    gateway = Rfc2217Gateway("loop://")
    port = await gateway.start()
    query = "baudrate=2400&bytesize=7&parity=O&stopbits=1.5&xonxoff=1"
    transport = Rfc2217Transport(parse_transport_url(f"rfc2217://127.0.0.1:{port}?{query}"), 1)
    received = Bytes()
    try:
        await transport.open(received)
        payload = b"a\xff\xfa\xff\xf0\xff\xffz\xf0\xff"  # data that looks like IAC SB / IAC SE
        for i in range(len(payload)):  # byte by byte: an escaped 0xFF split across reads
            transport.write(payload[i : i + 1])
            await asyncio.sleep(0.002)
        await until(lambda: len(received.data) >= len(payload), message="echo")
        assert received.data == payload
        [line] = gateway.ports
        assert (line.baudrate, line.bytesize, line.parity, line.stopbits) == (2400, 7, "O", 1.5)
        assert line.xonxoff and not line.rtscts
    finally:
        transport.close()
        await gateway.stop()


async def test_rfc2217_answers_only_options_it_did_not_offer(no_loop_errors: None) -> None:
    """The gateway's DO/WILL for an offered option acknowledges our offer; others are refused."""
    heard = bytearray()
    gateways: list[asyncio.StreamWriter] = []
    finished = asyncio.Event()

    async def gateway(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        gateways.append(writer)
        try:
            while data := await reader.read(4096):
                heard.extend(data)
        finally:
            writer.close()
            finished.set()

    server = await asyncio.start_server(gateway, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    transport = Rfc2217Transport(parse_transport_url(f"rfc2217://127.0.0.1:{port}"), 1)
    received = Bytes()
    iac, do, will, dont = rfc2217.IAC, rfc2217.DO, rfc2217.WILL, rfc2217.DONT
    try:
        await transport.open(received)
        await until(lambda: len(heard) >= 18, message="our six offers")
        assert bytes(heard) == b"".join(
            iac + verb + option
            for option in (rfc2217.BINARY, rfc2217.SGA, rfc2217.COM_PORT_OPTION)
            for verb in (will, do)
        )
        del heard[:]
        stream = (
            b"o" + iac + do + rfc2217.BINARY + iac + will + rfc2217.COM_PORT_OPTION
            + iac + dont + b"\x05"  # needs no answer
            + iac + do + b"\x18" + iac + will + b"\x01" + b"k\xff\xff"
        )  # fmt: skip
        cut = 12  # inside IAC DO TERMINAL-TYPE
        gateways[0].write(stream[:cut])
        await until(lambda: received.data == b"o", message="the first part")
        gateways[0].write(stream[cut:])
        await until(lambda: received.data == b"ok\xff", message="data without Telnet")
        await until(lambda: len(heard) >= 6, message="refusals")
        assert bytes(heard) == iac + rfc2217.WONT + b"\x18" + iac + dont + b"\x01"
    finally:
        transport.close()
        server.close()
        if gateways:
            await asyncio.wait_for(finished.wait(), 2)


# ---- --simulate and the simulator CLI ---------------------------------------------------


async def test_simulate_serves_serial_devices_on_ptys(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    urls = {
        "rs232": "serial:///dev/ttyUSB0?baudrate=19200&parity=E&stopbits=2",
        "odd_baud": "serial:///dev/ttyUSB1?baudrate=14400",
        "gateway": "socket://10.0.0.5:4001",
        "telnet_gateway": "rfc2217://10.0.0.6:4002?baudrate=9600",
    }
    devices = {
        name: {"driver": "pjlink", "transport": url, "poll_interval": 0.2}
        for name, url in urls.items()
    }
    config = hub_config({"rooms": {"lab": {"name": "Lab", "devices": devices}}})
    sims = Simulators()
    hub: Hub | None = None
    try:
        simulated = await sims.start_for(config)
        devices = simulated.rooms["lab"].devices
        serial_url = devices["rs232"].transport
        assert serial_url.scheme == "serial" and serial_url.path.startswith("/dev/pts/")
        assert serial_url.params == {"baudrate": 19200, "stopbits": 2.0}
        assert (
            "a pty carries only 8 data bits, no parity; simulating without parity=E" in caplog.text
        )
        assert devices["odd_baud"].transport.params == {"baudrate": 9600}
        assert "lab/odd_baud: a pty cannot run at 14400 baud" in caplog.text
        for name in ("gateway", "telnet_gateway"):
            url = devices[name].transport
            assert (url.scheme, url.host, url.params) == ("socket", "127.0.0.1", {})
        assert "simulating rfc2217://10.0.0.6:4002?baudrate=9600 as socket://" in caplog.text
        hub = Hub(simulated)
        await hub.start("127.0.0.1", 0)
        drivers = hub.rooms["lab"].drivers.values()
        await until(lambda: all(d.online for d in drivers), message="all online")
    finally:
        if hub is not None:
            await hub.stop()
        await sims.stop()


async def simulators_cli(*args: str) -> asyncio.subprocess.Process:
    """`python -m simulators pjlink ARGS` with its output piped."""
    return await asyncio.create_subprocess_exec(
        *(sys.executable, "-m", "simulators", "pjlink", *args),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )


async def test_cli_serves_a_serial_pty(tmp_path: Path) -> None:
    link = tmp_path / "ttyS0"
    proc = await simulators_cli("--serial-pty", "--link", str(link))
    try:
        assert proc.stdout is not None
        async with asyncio.timeout(10):
            line = (await proc.stdout.readline()).decode()
        assert line == f"pjlink simulator on serial pty {link}\n"

        def talk() -> tuple[bytes, bytes]:
            with serial.Serial(str(link), 9600, timeout=2) as port:
                greeting = port.read_until(b"\r")
                port.write(b"%1POWR ?\r")
                return greeting, port.read_until(b"\r")

        assert await asyncio.to_thread(talk) == (b"PJLINK 0\r", b"%1POWR=0\r")
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
        async with asyncio.timeout(5):
            _, stderr = await proc.communicate()
    assert proc.returncode == 0, stderr
    assert b"Traceback" not in stderr
    assert not link.exists()


async def test_cli_link_needs_serial_pty() -> None:
    proc = await simulators_cli("--link", "/tmp/ttyS0")
    async with asyncio.timeout(10):
        _, stderr = await proc.communicate()
    assert proc.returncode == 2
    assert b"--link needs --serial-pty" in stderr


# ---- driver base ------------------------------------------------------------------------


async def test_stop_right_after_a_state_change_does_not_hang(rig_factory: Any) -> None:
    # Found through the RFC 2217 test: on Python 3.11, asyncio.wait_for swallowed the
    # cancel that stop() sent while the poll scheduler's wake-up event was being set.
    rig = await rig_factory()
    driver = await rig.driver(transport="tcp://127.0.0.1:1")
    await asyncio.sleep(0.05)
    driver.update(anything=1)  # sets the scheduler's wake-up event
    async with asyncio.timeout(2):
        await driver.stop()
