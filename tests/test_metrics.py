"""`/metrics` (hub/metrics.py): prometheus-client's own parser reads it, the series follow the
devices and rooms they describe, and no secret ever shows in it or in the log."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest

from hub.app import Hub
from simulators.pjlink import PjlinkSimulator
from tests.helpers import pjlink_at, until
from tests.scrape import Scrape

SECRETS = {
    "admin": "admin-s3cret-x1",
    "panel": "panel-s3cret-x2",
    "metrics": "metrics-s3cret-x3",
    "password": "proj-s3cret-x4",
}
PROJ = {"room": "lobby", "device": "proj", "driver": "pjlink"}


def config(port: int, metrics_token: bool = False, room: str = "lobby") -> dict[str, Any]:
    hub = {"admin_token": SECRETS["admin"]}
    if metrics_token:
        hub["metrics_token"] = SECRETS["metrics"]
    proj = pjlink_at(port, password=SECRETS["password"], timeout=0.3, retries=1, offline_after=2)
    lobby = {"name": "Lobby", "panel_tokens": [SECRETS["panel"]], "devices": {"proj": proj}}
    return {"hub": hub, "rooms": {room: lobby}}


@dataclass
class Rig:
    hub: Hub
    sim: PjlinkSimulator
    http: aiohttp.ClientSession

    async def scrape(self, token: str | None = SECRETS["metrics"]) -> Scrape:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        async with self.http.get("/metrics", headers=headers) as response:
            assert response.status == 200, await response.text()
            return Scrape(await response.text())

    async def until_metric(self, name: str, want: Callable[[float], bool], **labels: str) -> Scrape:
        """Scrape until the sample satisfies `want`; the last scrape."""
        found: list[Scrape] = []

        async def check() -> bool:
            scrape = await self.scrape()
            found.append(scrape)
            value = scrape.get(name, **labels)
            return value is not None and want(value)

        await until(check, timeout=10, message=f"{name}{labels}")
        return found[-1]


@pytest.fixture
async def rig(
    hub_factory: Callable[..., Awaitable[Hub]],
    pjlink_sims: Callable[..., Awaitable[PjlinkSimulator]],
) -> AsyncIterator[Rig]:
    sim = await pjlink_sims(password=SECRETS["password"])
    hub = await hub_factory(config(sim.port, metrics_token=True))
    assert hub.address is not None
    async with aiohttp.ClientSession(f"http://{hub.address[0]}:{hub.address[1]}") as http:
        yield Rig(hub, sim, http)


async def test_online_follows_the_simulator_down_and_up(rig: Rig) -> None:
    scrape = await rig.until_metric("avhub_device_online", lambda v: v == 1, **PROJ)
    assert scrape.get("avhub_device_offline_transitions_total", reason="refused", **PROJ) is None
    port = rig.sim.port
    await rig.sim.stop()
    scrape = await rig.until_metric("avhub_device_online", lambda v: v == 0, **PROJ)
    transitions = scrape.families["avhub_device_offline_transitions"].samples
    assert sum(s.value for s in transitions if s.labels["device"] == "proj") == 1
    assert scrape.value("avhub_devices", room="lobby", status="offline") == 1
    await rig.sim.start("127.0.0.1", port)
    scrape = await rig.until_metric("avhub_device_online", lambda v: v == 1, **PROJ)
    assert scrape.value("avhub_device_reconnects_total", **PROJ) >= 1


async def test_the_latency_histogram_counts_the_devices_requests(rig: Rig) -> None:
    await rig.until_metric("avhub_device_online", lambda v: v == 1, **PROJ)
    before = (await rig.scrape()).value("avhub_device_request_seconds_count", **PROJ)
    headers = {"Authorization": f"Bearer {SECRETS['panel']}", "Content-Type": "application/json"}
    for mute in (True, False, True, False, True):
        path = "/api/rooms/lobby/devices/proj/set_audio_mute"
        async with rig.http.post(path, json={"mute": mute}, headers=headers) as response:
            assert response.status in (200, 409), await response.text()  # 409: busy while off
    scrape = await rig.scrape()
    count = scrape.value("avhub_device_request_seconds_count", **PROJ)
    assert count >= before + 5
    assert count <= rig.hub.rooms["lobby"].drivers["proj"].stats.requests  # polls go on
    buckets = [
        s
        for s in scrape.families["avhub_device_request_seconds"].samples
        if s.name.endswith("_bucket") and s.labels["device"] == "proj"
    ]
    values = [s.value for s in buckets]
    assert values == sorted(values) and buckets[-1].labels["le"] == "+Inf"
    assert values[-1] == count
    assert scrape.value("avhub_device_request_seconds_sum", **PROJ) > 0
    done = [scrape.get("avhub_device_commands_total", 0, result=r, **PROJ) for r in ("ok", "busy")]
    assert sum(done) == 5  # type: ignore[arg-type]


async def test_timeouts_and_retries_are_counted(rig: Rig) -> None:
    await rig.until_metric("avhub_device_online", lambda v: v == 1, **PROJ)
    rig.sim.knobs.reply_delay = 0.5  # the device's timeout is 0.3 s
    scrape = await rig.until_metric("avhub_device_timeouts_total", lambda v: v >= 2, **PROJ)
    assert scrape.value("avhub_device_retries_total", **PROJ) >= 1
    await rig.until_metric(
        "avhub_device_offline_transitions_total", lambda v: v >= 1, reason="timeout", **PROJ
    )


async def test_room_series_count_panels_resumes_and_changes(rig: Rig, panels: Any) -> None:
    await rig.until_metric("avhub_device_online", lambda v: v == 1, **PROJ)
    panel = panels(rig.hub, "lobby", token=SECRETS["panel"])
    await panel.connect()
    await until(lambda: panel.in_sync)
    scrape = await rig.scrape()
    assert scrape.value("avhub_panels_connected", room="lobby") == 1
    assert scrape.value("avhub_room_seq", room="lobby") == rig.hub.rooms["lobby"].store.seq
    await panel.disconnect()
    await panel.connect()  # resumes from (epoch, seq): replayed
    await until(lambda: panel.in_sync)
    await panel.call("sync", {"epoch": "not-this-one", "seq": 0})  # a snapshot
    scrape = await rig.scrape()
    assert scrape.value("avhub_resumes_total", room="lobby", served="replay") == 1
    assert scrape.value("avhub_resumes_total", room="lobby", served="snapshot") == 1
    assert scrape.value("avhub_changes_total", room="lobby") >= 1
    await rig.sim.stop()
    scrape = await rig.until_metric("avhub_device_online", lambda v: v == 0, **PROJ)
    assert scrape.value("avhub_changes_total", room="lobby") == scrape.value(
        "avhub_room_seq", room="lobby"
    )


async def test_the_library_process_metrics_are_there(rig: Rig) -> None:
    scrape = await rig.scrape()
    assert scrape.value("process_resident_memory_bytes") > 0
    assert scrape.value("avhub_asyncio_tasks") > 0


async def test_each_hub_has_its_own_registry(
    rig: Rig, hub_factory: Callable[..., Awaitable[Hub]], pjlink_sims: Any
) -> None:
    other_sim = await pjlink_sims()
    other = await hub_factory(config(other_sim.port, room="attic"))
    mine = Scrape(rig.hub.metrics.render().decode())
    theirs = Scrape(other.metrics.render().decode())
    assert mine.get("avhub_panels_connected", room="lobby") is not None
    assert mine.get("avhub_panels_connected", room="attic") is None
    assert theirs.get("avhub_panels_connected", room="attic") is not None
    assert theirs.get("avhub_panels_connected", room="lobby") is None


async def test_the_metrics_token_guards_metrics_and_no_secret_shows(
    rig: Rig, panels: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    for token in (None, "wrong", SECRETS["panel"]):
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        async with rig.http.get("/metrics", headers=headers) as response:
            assert response.status == 401
            assert (await response.json())["error"]["code"] == "unauthorized"
    admin = {"Authorization": f"Bearer {SECRETS['admin']}"}  # the admin token works everywhere
    async with rig.http.get("/metrics", headers=admin) as response:
        assert response.status == 200 and "avhub_device_online" in await response.text()
    await rig.until_metric("avhub_device_online", lambda v: v == 1, **PROJ)
    refused = panels(rig.hub, "lobby", token="not-" + SECRETS["panel"])
    with pytest.raises(Exception):  # noqa: B017 - python-socketio's ConnectionError
        await refused.connect(timeout=2)
    panel = panels(rig.hub, "lobby", token=SECRETS["panel"])
    await panel.connect()
    await panel.command("proj", "power_on")
    rig.sim.knobs.reply_delay = 0.5  # timeouts and retries get logged at debug level
    await rig.until_metric("avhub_device_timeouts_total", lambda v: v >= 1, **PROJ)
    text = (await rig.scrape()).text
    logged = "\n".join(r.getMessage() for r in caplog.records)
    for name, secret in SECRETS.items():
        assert secret not in text, f"the {name} secret is in /metrics"
        assert secret not in logged, f"the {name} secret is in the log"
