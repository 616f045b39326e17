"""Every fault against every driver, over each transport the driver has, through a real hub.

One test per (driver, link): a hub built from a config dict holds one room with a
device per fault, each on its own simulator, and a bystander device; a real panel
(tests/panel.py) watches the room, and every fault runs at once, one per device. For
each, the panel sees the device go offline with the offline_reason that fault means
and stay offline while it lasts (or, for faults a driver must ride through, stay
online and follow the device); the hub keeps serving (`/healthz`, a command to the
bystander); tries to reach the device come no faster than the backoff allows; and
once the fault clears the panel shows the device online with the simulator's state,
changed behind the driver's back meanwhile, and the driver's own, over one open
transport. Afterwards the running hub holds no more tasks or descriptors than before
the faults, and once hub, panel and simulators stop, the test process holds no more
than before the test began.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import weakref
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any, ClassVar

import aiohttp
import pytest

from drivers.base import Driver
from drivers.sony_adcp.codec import POWER_STATES as ADCP_POWER
from drivers.transport import Receiver, Transport, TransportUrl, create_transport
from drivers.transport.backoff import Backoff
from hub.app import Hub
from simulators.base import AuthKnobs, Simulator
from tests.helpers import hub_config, until
from tests.panel import Panel
from tests.rig import Rig
from tests.test_epson_escvp_driver import EpsonRig
from tests.test_extron_driver import ExtronRig
from tests.test_generic_driver import GenericRig
from tests.test_mdc_driver import MdcRig
from tests.test_pjlink_driver import PjlinkRig
from tests.test_qsys_driver import QsysRig
from tests.test_sony_adcp_driver import AdcpRig
from tests.test_tesira_driver import TesiraRig
from tests.test_visca_driver import ViscaRig

pytestmark = pytest.mark.usefixtures("no_loop_errors")

RECONNECT_MIN, RECONNECT_MAX = 0.05, 0.2
JITTER = Backoff(RECONNECT_MIN, RECONNECT_MAX).jitter  # what the link's backoff uses
FAULT_TIME = 0.5  # how long each fault lasts once the device is offline
REBOOT_TIME = 1.5  # a reboot's downtime: long enough for a serial line to time out twice
# Short timings so every fault shows within a second; polls keep every driver asking.
SETTINGS: dict[str, Any] = {
    "poll_interval": 0.1,
    "timeout": 0.3,
    "connect_timeout": 0.3,
    "retries": 0,
    "offline_after": 2,
    "reconnect_min": RECONNECT_MIN,
    "reconnect_max": RECONNECT_MAX,
}
ROOM = "lab"
BYSTANDER = "bystander"

State = dict[str, Any]


class Link(StrEnum):
    """How the hub reaches a device."""

    TCP = "tcp"
    UDP = "udp"
    PTY = "pty"  # RS-232, as a real pseudo-terminal


TCP, UDP, PTY = Link.TCP, Link.UDP, Link.PTY


@dataclass(frozen=True)
class Subject:
    """A driver: its rig (simulator, knobs, settings), the links it has, a front-panel
    change, and when a state (the panel's) shows what the simulator has."""

    rig: type[Rig[Any, Any]]
    links: tuple[Link, ...]
    change: Callable[[Any], object]
    synced: Callable[[State, Any], bool]
    command: tuple[str, dict[str, Any]]  # an action the device answers
    settings: dict[str, Any] = field(default_factory=dict)
    reasons: dict[str, str | None] = field(default_factory=dict)
    """Faults this driver meets otherwise than most: fault → offline_reason (None: rides
    through)."""

    @property
    def auth(self) -> bool:
        return issubclass(self.rig.simulator_class.knobs_model, AuthKnobs)


def _ties(ties: dict[int, int]) -> dict[str, int]:
    return {str(output): tied for output, tied in ties.items()}


# Drivers that cannot tell junk glued to the front of a reply from the reply (a QRC JSON
# object, a TTP line, a VISCA packet) time out on it; the others skip the junk.
GARBLED: dict[str, str | None] = {"garbage_prefix": "timeout"}

SUBJECTS = {
    "pjlink": Subject(
        PjlinkRig,
        (TCP,),
        lambda sim: sim.press_power(True),
        lambda state, sim: sim.power in ("on", "off") and state.get("power") == sim.power,
        ("power_off", {}),
    ),
    "extron_sis": Subject(
        ExtronRig,
        (TCP, PTY),
        lambda sim: sim.press_tie(5, 2),
        lambda state, sim: (
            state.get("video_routes") == _ties(sim.video_ties)
            and state.get("audio_routes") == _ties(sim.audio_ties)
        ),
        ("route", {"input": 3, "output": "1"}),
    ),
    "tesira": Subject(
        TesiraRig,
        (TCP,),
        lambda sim: sim.set_level("Level1", 1, -30.0),
        lambda state, sim: state.get("levels", {}).get("program") == sim.level("Level1", 1),
        ("set_level", {"control": "program", "level": -10}),
        reasons=GARBLED,
    ),
    "qsys": Subject(
        QsysRig,
        (TCP,),
        lambda sim: sim.set_control("MainGain", -30.0),
        lambda state, sim: state.get("levels", {}).get("program") == sim.value("MainGain"),
        ("set_level", {"control": "program", "level": -10}),
        reasons=GARBLED,
    ),
    "samsung_mdc": Subject(
        MdcRig,
        (TCP, PTY),
        lambda sim: sim.set_volume(50),
        lambda state, sim: state.get("levels", {}).get("volume") == sim.volume,
        ("power_on", {}),
    ),
    "visca": Subject(
        ViscaRig,
        (UDP, TCP, PTY),  # TCP: raw VISCA through a serial-to-IP gateway (socket://)
        lambda sim: sim.set_power(False),
        lambda state, sim: state.get("power") == sim.power,
        ("stop", {}),
        {"completion_timeout": 0.3},
        reasons=GARBLED,
    ),
    "sony_adcp": Subject(
        AdcpRig,
        (TCP,),
        lambda sim: sim.press_power(True),
        lambda state, sim: (
            sim.power in ("on", "standby") and state.get("power") == ADCP_POWER[sim.power]
        ),
        ("power_on", {}),
    ),
    "epson_escvp": Subject(
        EpsonRig,
        (TCP, PTY),
        lambda sim: sim.press_power(True),
        lambda state, sim: sim.power in ("on", "off") and state.get("power") == sim.power,
        ("power_on", {}),
    ),
    "generic": Subject(
        GenericRig,
        (TCP, PTY),
        lambda sim: sim.set_state("level", 20),
        lambda state, sim: state.get("levels", {}).get("main") == sim.state["level"],
        ("set_level", {"level": 30}),
        reasons=GARBLED,  # its replies are matched from the start of the line
    ),
}


@dataclass(frozen=True)
class Fault:
    """Knobs that make a fault and, per link, the offline_reason it means (None: the
    driver rides through; a link left out: the fault does not exist there)."""

    knobs: dict[str, Any]
    reasons: dict[Link, str | None]
    auth: bool = False  # only for protocols with authentication
    drop: bool = False  # break live connections too (the knob acts on new ones)
    reboot: bool = False  # power-cycle the device rather than set knobs
    unplug: bool = False  # pull the serial port, and plug it back in to clear
    errors: bool = False  # the device answers commands with its error reply
    settings: dict[str, Any] = field(default_factory=dict)  # for its device's driver


def _everywhere(reason: str | None, **links: str | None) -> dict[Link, str | None]:
    return {TCP: reason, UDP: reason, PTY: reason, **{Link(k): v for k, v in links.items()}}


# On a serial line there is no connection to refuse or close: a device that hears
# nothing, or answers nothing usable, is a timeout.
FAULTS = {
    "refuse": Fault({"refuse": True}, _everywhere("refused", pty="timeout"), drop=True),
    "stall": Fault({"stall": True}, _everywhere("timeout")),
    "drop": Fault({"drop_after": 0}, _everywhere("timeout", tcp="closed")),
    "mid_reply": Fault(
        {"drop_after": 0, "drop_mode": "mid_reply"}, _everywhere("timeout", tcp="closed")
    ),
    "garbage_replace": Fault(
        {"garbage_every": 1, "garbage_mode": "replace"}, _everywhere("timeout")
    ),
    "garbage_line": Fault({"garbage_every": 1, "garbage_mode": "line"}, _everywhere(None)),
    "garbage_prefix": Fault({"garbage_every": 1, "garbage_mode": "prefix"}, _everywhere(None)),
    "trickle": Fault(
        {"trickle_bytes": 1, "trickle_interval": 0.2}, {TCP: "timeout", PTY: "timeout"}
    ),
    # A split reply comes a byte per 2 ms (more on a busy machine); a Q-SYS Status reply
    # has some 370. The timeout leaves it room: this fault is about reassembly.
    "split": Fault({"split_writes": True}, {TCP: None, PTY: None}, settings={"timeout": 2.0}),
    "coalesce": Fault({"coalesce_replies": 3}, _everywhere(None)),
    "fail_auth": Fault({"fail_auth": True}, {TCP: "auth_failed"}, auth=True, drop=True),
    "device_errors": Fault({"device_error_rate": 1.0}, _everywhere(None), errors=True),
    "reboot": Fault({}, _everywhere("refused", pty="timeout"), reboot=True),
    "unplug": Fault({}, {PTY: "port_gone"}, unplug=True),  # the USB adapter is pulled
}


@dataclass(frozen=True)
class Case:
    """One fault on one device (named after the fault) and what it should mean there."""

    device: str
    fault: Fault
    reason: str | None  # the offline_reason; None: online throughout


def cases(subject: Subject, link: Link) -> list[Case]:
    return [
        Case(name, fault, subject.reasons.get(name, fault.reasons[link]))
        for name, fault in FAULTS.items()
        if link in fault.reasons and (subject.auth or not fault.auth)
    ]


def max_attempts(seconds: float, auth: bool) -> int:
    """The most tries capped exponential backoff allows in `seconds`."""
    delay, spent, attempts = (RECONNECT_MAX if auth else RECONNECT_MIN), 0.0, 1
    while spent + delay * (1 - JITTER) <= seconds:
        spent += delay * (1 - JITTER)
        attempts += 1
        delay = min(delay * 2, RECONNECT_MAX)
    return attempts + 1  # one already under way when the fault began


# ---- what each device's link asks of its transport -------------------------------------


class Counted(Transport):
    """A real transport that records when it was opened and written to."""

    def __init__(self, inner: Transport) -> None:
        super().__init__(inner.url, inner.connect_timeout)
        self.inner = inner
        self.opened: float | None = None
        self.writes: list[float] = []

    async def open(self, receiver: Receiver) -> None:
        self.opened = asyncio.get_running_loop().time()
        await self.inner.open(receiver)

    def write(self, data: bytes) -> None:
        self.writes.append(asyncio.get_running_loop().time())
        self.inner.write(data)

    def close(self) -> None:
        self.inner.close()

    @property
    def is_open(self) -> bool:
        return self.inner.is_open


class CountedDatagram(Counted):
    datagram: ClassVar[bool] = True


class Transports:
    """The hub's transport factory: real transports, kept by URL to be counted."""

    def __init__(self) -> None:
        self.made: dict[str, list[Counted]] = {}

    def __call__(self, url: TransportUrl, connect_timeout: float) -> Transport:
        inner = create_transport(url, connect_timeout)
        made = (CountedDatagram if inner.datagram else Counted)(inner)
        self.made.setdefault(str(url), []).append(made)
        return made

    def opens(self, url: str, since: float) -> int:
        """Connection attempts (opens begun) at `url` since loop time `since`."""
        return sum(1 for t in self.made.get(url, ()) if t.opened is not None and t.opened >= since)

    def writes(self, url: str, since: float) -> int:
        """Writes to `url` since loop time `since`."""
        return sum(1 for t in self.made.get(url, ()) for w in t.writes if w >= since)

    def open_now(self, url: str) -> int:
        return sum(1 for t in self.made.get(url, ()) if t.is_open)


# ---- tasks and descriptors ----------------------------------------------------------------

Census = tuple[int, int]
OWN_CODE = tuple(
    str(Path(__file__).resolve().parents[1] / package)
    for package in ("hub", "drivers", "simulators", "tests")
)
ASYNCIO = os.path.dirname(asyncio.__file__)


def census() -> Census:
    """Live asyncio tasks and open file descriptors of this process.

    Not counted: Engine.IO's ping task of a panel connection that has closed. Engine.IO
    starts it as a bare task that sleeps out the ping interval (25 s), then ends on
    finding its socket closed; nothing can cancel it, and it holds no descriptor.
    """
    tasks = [t for t in asyncio.all_tasks() if not _closed_socket_ping(t)]
    return len(tasks), len(os.listdir("/proc/self/fd"))


def _closed_socket_ping(task: asyncio.Task[Any]) -> bool:
    coro = task.get_coro()
    if getattr(coro, "__qualname__", "") != "AsyncSocket._send_ping":
        return False
    frame = getattr(coro, "cr_frame", None)
    return frame is not None and bool(frame.f_locals["self"].closed)


class OwnTasks:
    """Counts live tasks that avhub's own code (hub, drivers, simulators, tests) started.

    While a hub runs with a panel on, Engine.IO and aiohttp start short-lived helper
    tasks (asyncio.wait_for around each websocket read and write), so a plain count
    depends on the instant it is taken. Tasks are told apart by who created them: a
    task factory looks past asyncio's own frames to the code that asked for the task.
    """

    def __init__(self) -> None:
        self.tasks: weakref.WeakSet[asyncio.Task[Any]] = weakref.WeakSet()

    def factory(
        self, loop: asyncio.AbstractEventLoop, coro: Any, **kwargs: Any
    ) -> asyncio.Task[Any]:
        task: asyncio.Task[Any] = asyncio.Task(coro, loop=loop, **kwargs)
        frame = sys._getframe(1)
        while frame.f_back is not None and frame.f_code.co_filename.startswith(ASYNCIO):
            frame = frame.f_back
        if frame.f_code.co_filename.startswith(OWN_CODE):
            self.tasks.add(task)
        return task

    def census(self) -> Census:
        """Live tasks avhub's code started, and open file descriptors."""
        live = sum(1 for t in self.tasks if not t.done())
        return live, len(os.listdir("/proc/self/fd"))


async def no_growth(before: Census, count: Callable[[], Census], what: str) -> None:
    """Wait until `count()` is no more than `before`, tasks and descriptors alike."""
    try:
        await until(lambda: all(n <= b for n, b in zip(count(), before, strict=True)))
    except AssertionError:
        raise AssertionError(f"{what}: (tasks, fds) {count()}, were {before}") from None


# ---- the bench: a hub, its panel, a simulator per device -----------------------------------


class Bench:
    """A hub whose room has a device per fault and a bystander, each on its own simulator."""

    def __init__(self, name: str, link: Link, matrix: list[Case], ports: Path) -> None:
        self.name = name
        self.ports = ports  # where serial ports are linked: a port keeps its path when replugged
        self.subject = SUBJECTS[name]
        self.link = link
        self.devices = [BYSTANDER, *(case.device for case in matrix)]
        self.settings = {case.device: case.fault.settings for case in matrix}
        self.sims: dict[str, Simulator[Any]] = {}
        self.urls: dict[str, str] = {}
        self.transports = Transports()
        self.hub: Hub | None = None
        self.panel: Panel | None = None
        self.http: aiohttp.ClientSession | None = None

    async def start(self) -> None:
        """Start the simulators, then the hub, then connect the panel."""
        rig = self.subject.rig
        gateway = self.name == "visca" and self.link is TCP  # raw VISCA on TCP
        knobs = {**rig.knobs, **({"listen": "tcp"} if gateway else {})}
        for seed, device in enumerate(self.devices):
            sim = rig.simulator_class.from_options({**knobs, "seed": seed})
            self.sims[device] = sim
            self.urls[device] = await self._serve(device, sim, gateway)
        settings = {**rig.settings, **SETTINGS, **self.subject.settings, "driver": self.name}
        config = {
            "hub": {"listen": "127.0.0.1:0", "drivers": {"pjlink": {"notify": "127.0.0.1:0"}}},
            "rooms": {
                ROOM: {
                    "name": "Fault lab",
                    "devices": {
                        d: {**settings, **self.settings.get(d, {}), "transport": self.urls[d]}
                        for d in self.devices
                    },
                }
            },
        }
        hub = Hub(hub_config(config), transport_factory=self.transports)
        self.hub = hub
        host, port = await hub.start("127.0.0.1", 0)
        connector = aiohttp.TCPConnector(force_close=True)  # no idle socket between checks
        self.http = aiohttp.ClientSession(f"http://{host}:{port}", connector=connector)
        panel = self.panel = Panel(f"http://{host}:{port}", ROOM)
        await panel.connect()
        await until(lambda: panel.in_sync, message="the panel's snapshot")

    async def _serve(self, device: str, sim: Simulator[Any], gateway: bool) -> str:
        if self.link is PTY:
            return f"serial://{await self.plug(device)}"
        await sim.start()
        return f"socket://127.0.0.1:{sim.port}" if gateway else sim.url

    async def stop(self) -> None:
        if self.panel is not None:
            await self.panel.disconnect()
        if self.http is not None:
            await self.http.close()
        if self.hub is not None:
            await self.hub.stop()
        for sim in self.sims.values():
            await sim.stop()

    async def plug(self, device: str) -> str:
        """Serve `device`'s simulator on a pseudo-terminal at its port's path."""
        return await self.sims[device].start_pty(link=self.ports / f"tty-{device}", baudrate=9600)

    def state(self, device: str) -> State:
        """The panel's view of `device`."""
        assert self.panel is not None
        return self.panel.state(device)

    def driver(self, device: str) -> Driver[Any]:
        assert self.hub is not None
        return self.hub.rooms[ROOM].drivers[device]

    def driver_state(self, device: str) -> State:
        """The driver's state of `device`, as JSON carries it."""
        state: State = json.loads(json.dumps(self.driver(device).state))
        return state

    def synced(self, device: str) -> bool:
        """The panel shows `device` online, with what its simulator has."""
        state = self.state(device)
        return state["online"] is True and self.subject.synced(state, self.sims[device])

    def changes(self, device: str, since: int) -> list[State]:
        """The state of each change of `device` the panel received, from index `since` on."""
        assert self.panel is not None
        return [c["state"] for c in self.panel.received[since:] if c["device"] == device]

    def seen(self) -> int:
        assert self.panel is not None
        return len(self.panel.received)

    async def wait(self, predicate: Callable[[], bool], what: str, *devices: str) -> None:
        """`until(predicate)`; a timeout shows what panel and driver hold for `devices`."""
        try:
            await until(predicate, message=what)
        except AssertionError as err:
            views = {d: {"panel": self.state(d), "driver": self.driver_state(d)} for d in devices}
            raise AssertionError(f"{err}; {views}") from None

    async def command(self, device: str) -> Any:
        """The ack of the subject's command on `device`, sent by the panel."""
        assert self.panel is not None
        action, args = self.subject.command
        return await self.panel.command(device, action, **args)

    async def serving(self) -> None:
        """The hub answers `/healthz` and runs a command on the bystander."""
        assert self.http is not None
        async with self.http.get("/healthz") as response:
            assert response.status == 200 and (await response.json())["ok"] is True
        ack = await self.command(BYSTANDER)
        assert ack["ok"] is True, ack

    def tries(self, device: str, since: float) -> int:
        """Tries to reach `device` since `since`: requests on a datagram link (its endpoint
        stays open), connection attempts (TCP connects, port opens) on the others."""
        url = self.urls[device]
        if self.link is UDP:
            return self.transports.writes(url, since)
        return self.transports.opens(url, since)


# ---- one fault on one device ----------------------------------------------------------------


def _set(sim: Simulator[Any], knobs: dict[str, Any]) -> None:
    for knob, value in knobs.items():
        setattr(sim.knobs, knob, value)


def _reset(sim: Simulator[Any], knobs: dict[str, Any]) -> None:
    defaults = type(sim.knobs).model_fields
    _set(sim, {knob: defaults[knob].get_default() for knob in knobs})


async def goes_offline(bench: Bench, case: Case) -> None:
    """Offline with the case's reason, retrying within the backoff, offline until the
    fault clears, then back in step with the device."""
    device, fault, reason = case.device, case.fault, case.reason
    sim, loop = bench.sims[device], asyncio.get_running_loop()
    if fault.reboot:  # the reboot is the change: it comes back with its start state
        bench.subject.change(sim)
        await bench.wait(lambda: bench.synced(device), f"{device}: change seen", device)
    seen, begun, accepted = bench.seen(), loop.time(), sim.connections + sim.refused
    rebooting = asyncio.create_task(sim.reboot(downtime=REBOOT_TIME)) if fault.reboot else None
    _set(sim, fault.knobs)
    if fault.drop:
        sim.drop_sessions()
    if fault.unplug:
        sim.close_pty()
    await bench.wait(lambda: bench.state(device)["online"] is False, f"{device}: offline", device)
    offline = loop.time()
    assert bench.state(device)["offline_reason"] == reason, (device, bench.state(device))
    await bench.serving()
    if rebooting is not None:
        await rebooting
    else:
        bench.subject.change(sim)  # behind the driver's back
        # Let it retry for a while (the backoff is measured), and at least once.
        await bench.wait(
            lambda: loop.time() - offline >= FAULT_TIME and bench.tries(device, begun) >= 1,
            f"{device}: retried",
            device,
        )
    window, tries = loop.time() - begun, bench.tries(device, begun)
    bound = max_attempts(window, fault.auth)
    assert 1 <= tries <= bound, f"{device}: {tries} tries in {window:.2f}s, backoff allows {bound}"
    if bench.link is TCP and sim.listening:  # counted at the device too
        accepted = sim.connections + sim.refused - accepted
        assert accepted <= bound, f"{device}: {accepted} connections in {window:.2f}s"
    during = bench.changes(device, seen)
    assert [c["online"] for c in during if "online" in c] == [False], (device, during)
    assert {c["offline_reason"] for c in during if "offline_reason" in c} == {reason}, during
    _reset(sim, fault.knobs)
    if fault.unplug:
        await bench.plug(device)
    await recovered(bench, device)


async def rides_through(bench: Bench, case: Case) -> None:
    """Online throughout the fault, following a change made under it."""
    device, sim = case.device, bench.sims[case.device]
    loop = asyncio.get_running_loop()
    seen, begun = bench.seen(), loop.time()
    _set(sim, case.fault.knobs)
    bench.subject.change(sim)
    await bench.wait(lambda: bench.synced(device), f"{device}: change followed", device)
    await bench.serving()
    # And still online after a while: more polls than `offline_after` under the fault.
    stats = bench.driver(device).stats
    tried = stats.requests + stats.timeouts
    await bench.wait(
        lambda: stats.requests + stats.timeouts >= tried + 3 and loop.time() - begun >= FAULT_TIME,
        f"{device}: 3 polls under the fault",
        device,
    )
    assert all("online" not in c for c in bench.changes(device, seen)), device
    _reset(sim, case.fault.knobs)
    await recovered(bench, device)


async def answers_errors(bench: Bench, case: Case) -> None:
    """A command fails with the device's error; the device stays online throughout."""
    device, sim = case.device, bench.sims[case.device]
    seen = bench.seen()
    _set(sim, case.fault.knobs)
    ack = await bench.command(device)
    assert ack["ok"] is False and ack["error"]["code"] in ("device_error", "busy"), ack
    assert sim.device_errors_sent >= 1
    await bench.serving()
    assert all("online" not in c for c in bench.changes(device, seen)), device
    _reset(sim, case.fault.knobs)
    ack = await bench.command(device)
    assert ack["ok"] is True, ack
    bench.subject.change(sim)
    await recovered(bench, device)


async def recovered(bench: Bench, device: str) -> None:
    """The panel shows the device online with the simulator's state and the driver's; the
    driver holds one open transport, the device one session."""
    await bench.wait(lambda: bench.synced(device), f"{device}: back, in step", device)
    await bench.wait(
        lambda: bench.state(device) == bench.driver_state(device),
        f"{device}: the panel shows the driver's state",
        device,
    )
    url, sim = bench.urls[device], bench.sims[device]
    await until(lambda: bench.transports.open_now(url) == 1, message=f"{device}: one transport")
    if bench.link is not UDP:  # a UDP simulator keeps a session per peer address it heard
        await until(lambda: len(sim.sessions) == 1, message=f"{device}: one session")


def run(bench: Bench, case: Case) -> Awaitable[None]:
    if case.fault.errors:
        return answers_errors(bench, case)
    if case.reason is None:
        return rides_through(bench, case)
    return goes_offline(bench, case)


def groups() -> list[Any]:
    return [
        pytest.param(name, link, id=f"{name}-{link}")
        for name, subject in SUBJECTS.items()
        for link in subject.links
    ]


@pytest.mark.parametrize(("name", "link"), groups())
async def test_every_fault_through_the_hub(name: str, link: Link, tmp_path: Path) -> None:
    before = census()
    loop, own = asyncio.get_running_loop(), OwnTasks()
    loop.set_task_factory(own.factory)
    matrix = cases(SUBJECTS[name], link)
    bench = Bench(name, link, matrix, tmp_path)
    try:
        await bench.start()
        await bench.wait(
            lambda: all(bench.synced(d) for d in bench.devices), "all in step", *bench.devices
        )
        steady = own.census()
        outcomes = await asyncio.gather(*(run(bench, c) for c in matrix), return_exceptions=True)
        failed = {c.device: o for c, o in zip(matrix, outcomes, strict=True) if o is not None}
        if failed:
            raise BaseExceptionGroup(f"failed: {', '.join(failed)}", list(failed.values()))
        await bench.wait(lambda: bench.synced(BYSTANDER), "bystander in step", BYSTANDER)
        assert bench.panel is not None and bench.panel.violations == []
        await no_growth(steady, own.census, "the hub after the faults")
    finally:
        await bench.stop()
        loop.set_task_factory(None)
    await no_growth(before, census, "the test process after the hub stopped")
