"""PJLink class 2 over UDP: notifications applied at once, and `avhub discover`."""

from __future__ import annotations

import asyncio
import logging
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from drivers.pjlink.notify import PjlinkNotifications
from drivers.pjlink.udp import discover
from hub.app import Hub
from tests.helpers import free_udp_port, until

AVHUB = str(Path(sys.executable).parent / "avhub")


def notifications(hub: Hub) -> PjlinkNotifications:
    """The hub's PJLink notification listener (the pjlink driver's service)."""
    service = hub.services["pjlink"]
    assert isinstance(service, PjlinkNotifications)
    return service


def config(notify_port: int, *ports: int) -> dict[str, Any]:
    devices = {
        f"proj{i}": {
            "driver": "pjlink",
            "transport": f"tcp://127.0.0.1:{port}",
            "poll_interval": 60,
            "lamp_interval": 60,
        }
        for i, port in enumerate(ports)
    }
    return {
        "hub": {"drivers": {"pjlink": {"notify": f"127.0.0.1:{notify_port}"}}},
        "rooms": {"hall": {"devices": devices}},
    }


async def test_notifications_reach_panels_before_the_next_poll(
    hub_factory: Any, panels: Any, pjlink_sims: Any
) -> None:
    notify = free_udp_port()
    a = await pjlink_sims(notify=f"127.0.0.1:{notify}", mac="00:11:22:33:44:01")
    b = await pjlink_sims(notify=f"127.0.0.1:{notify}", mac="00:11:22:33:44:02")
    settings = config(notify, a.port, b.port)
    for device in settings["rooms"]["hall"]["devices"].values():
        device["transition_poll"] = 60  # warming polls no power: only notifications tell
    hub: Hub = await hub_factory(settings)
    assert notifications(hub).address == ("127.0.0.1", notify)
    drivers = hub.rooms["hall"].drivers
    await until(lambda: all(d.online and "power" in d.state for d in drivers.values()))
    panel = panels(hub, "hall")
    await panel.connect()
    await until(lambda: panel.seq == hub.rooms["hall"].store.seq)
    polls = a.received["POWR"], b.received["INPT"]
    b.set_input("32")  # front panel: only the notification can tell the hub within 60 s
    await until(lambda: panel.state("proj1").get("input") == "HDMI 2")
    a.press_power(True)
    await until(lambda: panel.state("proj0").get("power") == "warming")
    await until(lambda: panel.state("proj0").get("power") == "on")
    a.set_mutes(video=True)
    a.set_errors("200000")
    await until(lambda: panel.state("proj0").get("video_mute") is True)
    await until(lambda: panel.state("proj0").get("errors", {}).get("fan") == "error")
    assert panel.state("proj1").get("power") == "off"  # routed to the right projector
    assert b.received["INPT"] == polls[1]  # no poll ran meanwhile
    # ... but one: turning on re-reads what is not polled while off (input, mutes).
    await until(lambda: a.received["POWR"] > polls[0])
    assert a.received["POWR"] == polls[0] + 1


async def test_link_up_notification_records_the_mac_and_refreshes(
    hub_factory: Any, pjlink_sims: Any
) -> None:
    notify = free_udp_port()
    sim = await pjlink_sims(mac="00:11:22:33:44:99")
    hub: Hub = await hub_factory(config(notify, sim.port))
    driver = hub.rooms["hall"].drivers["proj0"]
    await until(lambda: driver.online and "power" in driver.state)
    await sim.stop()
    sim.knobs.notify = f"127.0.0.1:{notify}"
    infos = sim.received["INF1"]
    await sim.start(port=sim.port)  # %2LKUP on start
    await until(lambda: driver.state.get("mac") == "00:11:22:33:44:99")
    await until(lambda: sim.received["INF1"] > infos)  # full refresh


async def test_bad_datagrams_are_logged_and_change_nothing(
    hub_factory: Any, pjlink_sims: Any, caplog: pytest.LogCaptureFixture
) -> None:
    notify = free_udp_port()
    sim = await pjlink_sims()
    hub: Hub = await hub_factory(config(notify, sim.port))
    driver = hub.rooms["hall"].drivers["proj0"]
    await until(lambda: driver.online and "power" in driver.state)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))  # the only projector's IP: datagrams from it are its own
        for junk in (b"\xff\x00garbage", b"%2POWR=9\r", b"%1POWR=1\r", b"%2INPT=zz\r"):
            s.sendto(junk, ("127.0.0.1", notify))
        s.sendto(b"%2AVMT=31\r", ("127.0.0.1", notify))  # a good one, read after the junk
        await until(lambda: driver.state.get("video_mute") is True, message="AVMT applied")
    assert driver.state["power"] == "off" and driver.online
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len([w for w in warnings if "PJLink UDP from 127.0.0.1:" in w]) == 2, warnings
    assert len([w for w in warnings if "ignored notification" in w]) == 2, warnings


async def test_a_notification_from_an_unknown_sender_is_logged_once_and_changes_nothing(
    hub_factory: Any, panels: Any, pjlink_sims: Any, caplog: pytest.LogCaptureFixture
) -> None:
    notify = free_udp_port()
    a = await pjlink_sims()
    b = await pjlink_sims(notify=f"127.0.0.1:{notify}")
    panel = panels(await hub_factory(config(notify, a.port, b.port)), "hall")
    await panel.connect()
    await until(
        lambda: panel.in_sync and all("power" in d["state"] for d in panel.devices.values())
    )
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))  # two projectors on this IP, neither at this port
        stranger = s.getsockname()[1]
        s.sendto(b"%2POWR=1\r", ("127.0.0.1", notify))
        s.sendto(b"%2POWR=1\r", ("127.0.0.1", notify))
        b.set_input("32")  # b's own notification, read after the stranger's
        await until(lambda: panel.state("proj1").get("input") == "HDMI 2")
    assert [panel.state(p)["power"] for p in ("proj0", "proj1")] == ["off", "off"]
    unknown = [r.getMessage() for r in caplog.records if "matches no configured" in r.getMessage()]
    assert unknown == [
        f"PJLink notification from 127.0.0.1:{stranger} matches no configured projector"
    ]


async def test_hub_without_the_port_still_polls(hub_factory: Any, pjlink_sims: Any) -> None:
    taken = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    taken.bind(("127.0.0.1", 0))
    try:
        sim = await pjlink_sims()
        hub: Hub = await hub_factory(config(taken.getsockname()[1], sim.port))
        assert notifications(hub).address is None
        await until(lambda: hub.rooms["hall"].drivers["proj0"].online)
    finally:
        taken.close()


async def test_discover_finds_two_simulated_projectors(pjlink_sims: Any) -> None:
    a = await pjlink_sims(udp=True, mac="00:aa:bb:cc:dd:01")
    b = await pjlink_sims(udp=True, mac="00:aa:bb:cc:dd:02")
    c = await pjlink_sims(udp=True, pjclass=1)  # class 1 projectors ignore the search
    found = await discover(
        [("127.0.0.1", s.port) for s in (a, b, c)], listen=("127.0.0.1", 0), timeout=0.3
    )
    assert {(f.port, f.detail) for f in found} == {
        (a.port, "00:aa:bb:cc:dd:01"),
        (b.port, "00:aa:bb:cc:dd:02"),
    }


async def test_discover_command_line(pjlink_sims: Any) -> None:
    a = await pjlink_sims(udp=True, mac="00:aa:bb:cc:dd:01")
    b = await pjlink_sims(udp=True, mac="00:aa:bb:cc:dd:02")
    args = ["discover", "--timeout", "300ms", "--listen", "127.0.0.1:0"]
    for sim in (a, b):
        args += ["--target", f"127.0.0.1:{sim.port}"]
    proc = await asyncio.create_subprocess_exec(AVHUB, *args, stdout=subprocess.PIPE)
    out, _ = await proc.communicate()
    text = out.decode()
    assert proc.returncode == 0, text
    assert f"127.0.0.1:{a.port}  00:aa:bb:cc:dd:01" in text
    assert f"127.0.0.1:{b.port}  00:aa:bb:cc:dd:02" in text
    assert "2 projectors answered" in text
    proc = await asyncio.create_subprocess_exec(
        AVHUB,
        "discover",
        "--timeout",
        "100ms",
        "--listen",
        "127.0.0.1:0",
        "--target",
        f"127.0.0.1:{free_udp_port()}",
        stdout=subprocess.PIPE,
    )
    out, _ = await proc.communicate()
    assert proc.returncode == 1 and "0 projectors answered" in out.decode()


async def test_a_projector_on_a_serial_line_is_polled_without_notifications(
    hub_factory: Any, pjlink_sims: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="avhub")
    sim = await pjlink_sims()
    deployment = config(free_udp_port(), sim.port)
    deployment["rooms"]["hall"]["devices"]["wired"] = {
        "driver": "pjlink",
        "transport": "serial:///dev/avhub-no-such-port",
    }
    hub: Hub = await hub_factory(deployment)
    await until(lambda: notifications(hub).address is not None)
    messages = [r.getMessage() for r in caplog.records]
    assert (
        "hall/wired: no class 2 notifications on serial:///dev/avhub-no-such-port "
        "(they come over the network); it is polled" in messages
    ), messages
    assert not [m for m in messages if "cannot resolve" in m], messages
    assert "" not in notifications(hub)._routes
