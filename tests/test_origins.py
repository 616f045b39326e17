"""Nobody drives a room from where they do not belong (hub/guard.py).

A page of another web origin could power a projector on with a `text/plain` POST, which
browsers send without a CORS preflight. Commands now take JSON bodies only, and a request
whose `Origin` is neither the hub's own nor in `hub.allowed_origins` is refused, on the REST
API and in the Socket.IO handshake alike.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest
import socketio

from hub.app import Hub
from hub.config import Config, ConfigFileError
from hub.guard import exposure_warnings, loopback
from simulators.pjlink import PjlinkSimulator
from tests.helpers import hub_config, until

FRIEND = "https://panels.example.com"
FOREIGN = "http://evil.example"


def config(port: int) -> dict[str, Any]:
    proj = {"driver": "pjlink", "transport": f"tcp://127.0.0.1:{port}", "poll_interval": 0.1}
    return {
        "hub": {
            "admin_token": "admin-secret",
            "allowed_origins": ["HTTPS://Panels.Example.com:443/"],
        },
        "rooms": {"lobby": {"name": "Lobby", "devices": {"proj": proj}}},
    }


@dataclass
class Rig:
    hub: Hub
    sim: PjlinkSimulator
    base: str
    http: aiohttp.ClientSession

    def command_paths(self) -> list[str]:
        """Every POST route of the API that runs a device action, filled in for the projector."""
        paths = []
        for route in self.hub.app.router.routes():
            canonical = route.resource.canonical if route.resource is not None else ""
            if route.method == "POST" and "{action}" in canonical:
                paths.append(canonical.format(room_id="lobby", device_id="proj", action="power_on"))
        assert paths
        return paths

    async def post(
        self, path: str, headers: dict[str, str], data: bytes = b"{}"
    ) -> tuple[int, Any]:
        async with self.http.post(self.base + path, headers=headers, data=data) as response:
            return response.status, await response.json()


@pytest.fixture
async def rig(hub_factory: Callable[..., Awaitable[Hub]], pjlink_sims: Any) -> AsyncIterator[Rig]:
    sim = await pjlink_sims()
    hub = await hub_factory(config(sim.port))
    await until(lambda: hub.rooms["lobby"].drivers["proj"].online)
    assert hub.address is not None
    base = f"http://{hub.address[0]}:{hub.address[1]}"
    async with aiohttp.ClientSession() as http:
        yield Rig(hub, sim, base, http)


@pytest.mark.parametrize(
    ("headers", "status", "code"),
    [
        ({"Origin": FOREIGN, "Content-Type": "application/json"}, 403, "forbidden_origin"),
        ({"Origin": FOREIGN, "Content-Type": "text/plain"}, 403, "forbidden_origin"),
        ({"Origin": "null", "Content-Type": "application/json"}, 403, "forbidden_origin"),
        ({"Content-Type": "text/plain"}, 415, "unsupported_media_type"),
        ({"Content-Type": "text/plain;charset=UTF-8"}, 415, "unsupported_media_type"),
        ({"Content-Type": "application/x-www-form-urlencoded"}, 415, "unsupported_media_type"),
        ({"Content-Type": "multipart/form-data; boundary=x"}, 415, "unsupported_media_type"),
        ({}, 415, "unsupported_media_type"),  # no content type at all
    ],
)
async def test_foreign_origins_and_non_json_bodies_are_refused_on_every_command_route(
    rig: Rig, headers: dict[str, str], status: int, code: str
) -> None:
    for path in rig.command_paths():
        got, body = await rig.post(path, headers, data=b"{}" if headers else b"")
        assert (got, body["ok"], body["error"]["code"]) == (status, False, code), path
    assert rig.sim.power == "off"  # nothing reached the projector
    assert rig.hub.rooms["lobby"].counters.commands["ok"] == 0


@pytest.mark.parametrize(
    "origin", [None, "own", FRIEND, "https://panels.example.com:443", "HTTPS://PANELS.EXAMPLE.COM"]
)
async def test_the_hubs_own_origin_and_listed_ones_run_json_commands(
    rig: Rig, origin: str | None
) -> None:
    headers = {"Content-Type": "application/json; charset=utf-8"}
    if origin is not None:
        headers["Origin"] = rig.base if origin == "own" else origin
    for path in rig.command_paths():
        got, body = await rig.post(path, headers)
        assert (got, body) == (200, {"ok": True, "result": None})
    assert rig.sim.power in ("warming", "on")


async def test_a_listed_origins_page_gets_the_cors_answers_its_browser_needs(rig: Rig) -> None:
    """A browser sends a command with a token and a JSON body across origins only after a
    preflight, and lets the page read an answer only with `Access-Control-Allow-Origin`."""
    path = rig.base + "/api/rooms/lobby/devices/proj/power_on"
    preflight = {
        "Origin": FRIEND,
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization,content-type",
    }
    async with rig.http.options(path, headers=preflight) as response:
        assert response.status == 204
        assert response.headers["Access-Control-Allow-Origin"] == FRIEND
        assert "POST" in response.headers["Access-Control-Allow-Methods"]
        allowed = response.headers["Access-Control-Allow-Headers"].lower()
        assert "authorization" in allowed and "content-type" in allowed
    got, body = await rig.post(
        "/api/rooms/lobby/devices/proj/power_on",
        {"Origin": FRIEND, "Content-Type": "application/json"},
    )
    assert (got, body) == (200, {"ok": True, "result": None})
    for url in (rig.base + "/api/rooms", path):
        method = "GET" if url.endswith("/api/rooms") else "POST"
        headers = {"Origin": FRIEND, "Content-Type": "application/json"}
        async with rig.http.request(method, url, headers=headers, data=b"{}") as response:
            assert response.headers["Access-Control-Allow-Origin"] == FRIEND, url
            assert "Origin" in response.headers.getall("Vary", []), url
    own = {"Origin": rig.base}  # the hub's own page: no CORS headers needed or given
    async with rig.http.get(rig.base + "/api/rooms", headers=own) as response:
        assert response.status == 200 and "Access-Control-Allow-Origin" not in response.headers
    async with rig.http.options(path, headers={**preflight, "Origin": FOREIGN}) as response:
        assert response.status == 403 and "Access-Control-Allow-Origin" not in response.headers


async def test_foreign_origins_are_refused_on_reads_and_the_admin_route(rig: Rig) -> None:
    for path in ("/api/rooms", "/api/rooms/lobby", "/healthz"):
        async with rig.http.get(rig.base + path, headers={"Origin": FOREIGN}) as response:
            assert response.status == 403
    headers = {"Origin": FOREIGN, "Authorization": "Bearer admin-secret"}
    got, body = await rig.post("/api/admin/reload", headers)
    assert (got, body["error"]["code"]) == (403, "forbidden_origin")


async def test_the_socketio_handshake_follows_the_same_rule(rig: Rig) -> None:
    async def connect(origin: str | None) -> bool:
        client = socketio.AsyncClient(reconnection=False)
        headers = {"Origin": origin} if origin else {}
        try:
            await client.connect(
                rig.base,
                namespaces=["/rooms/lobby"],
                headers=headers,
                transports=["websocket"],
                wait_timeout=3,
            )
        except socketio.exceptions.ConnectionError:
            return False
        await client.disconnect()
        return True

    assert await connect(None)
    assert await connect(rig.base)
    assert await connect(FRIEND)
    assert not await connect(FOREIGN)
    assert not await connect("http://127.0.0.1:1")  # same host, another port: another origin
    async with rig.http.get(
        rig.base + "/socket.io/?EIO=4&transport=polling", headers={"Origin": FOREIGN}
    ) as response:
        assert response.status == 400  # Engine.IO's refusal


async def test_allowed_origins_are_checked_and_normalised() -> None:
    def origins(*allowed: str) -> Config:
        return hub_config({"hub": {"allowed_origins": allowed}, "rooms": {"a": {"devices": {}}}})

    config = origins("HTTP://Example.com:80", "https://[::1]:8443")
    assert config.hub.allowed_origins == ["http://example.com", "https://[::1]:8443"]
    for bad in ("*", "example.com", "https://example.com/path", "ftp://example.com"):
        with pytest.raises(ConfigFileError, match="allowed_origins"):
            origins(bad)
    with pytest.raises(ConfigFileError) as caught:  # every bad entry, each at its place
        origins("ftp://a.example", "https://good.example", "b.example")
    where = sorted(str(p).split(": ")[1] for p in caught.value.problems)
    assert where == ["hub.allowed_origins[0]", "hub.allowed_origins[2]"], caught.value.problems


def test_rooms_without_tokens_on_the_network_are_warned_about() -> None:
    rooms = {"open": {"devices": {}}, "shut": {"panel_tokens": ["t"], "devices": {}}}
    for host, warned in (
        ("127.0.0.1:8080", False),
        ("[::1]:8080", False),
        ("localhost:8080", False),
        ("0.0.0.0:8080", True),
        ("10.1.2.3:8080", True),
        ("hub.example:8080", True),
    ):
        warnings = list(exposure_warnings(hub_config({"hub": {"listen": host}, "rooms": rooms})))
        assert len(warnings) == (1 if warned else 0), host
        assert all("'open'" in w for w in warnings)
    assert loopback("127.8.9.10") and not loopback("192.168.1.1")
