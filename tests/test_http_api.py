"""The HTTP API of DESIGN.md §8 against a running hub with PJLink simulators: every route,
every error status, token scoping, metrics and the OpenAPI document."""

from __future__ import annotations

import asyncio
import json
import re
import signal
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest

from drivers.errors import ErrorCode
from drivers.pjlink.driver import PjlinkDriver
from hub.app import Hub
from hub.guard import FORBIDDEN_ORIGIN, UNSUPPORTED_MEDIA_TYPE
from hub.http import (
    METHOD_NOT_ALLOWED,
    NOT_FOUND,
    NOT_RELOADABLE,
    OPENAPI_DOCUMENT,
    UNKNOWN_ROOM,
    WEB_DIR,
    status_for,
)
from simulators.pjlink import PjlinkSimulator
from tests.cluster import RedisServer, cluster_config, redis_server
from tests.helpers import assert_same_snapshot, closed_tcp_port, pjlink_at, until
from tests.scrape import Scrape

__all__ = ["redis_server"]  # a fixture


def config(proj: int, class1: int, slow: int) -> dict[str, Any]:
    lobby = {
        "proj": pjlink_at(proj, name="Projector"),
        "class1": pjlink_at(class1),
        "dead": pjlink_at(closed_tcp_port()),
        "slow": pjlink_at(slow, poll_interval=60, timeout=0.2, retries=0, connect_timeout=2),
    }
    return {
        "hub": {"admin_token": "admin-secret"},
        "rooms": {
            "lobby": {"name": "Lobby", "devices": lobby},
            "board": {
                "name": "Board Room",
                "panel_tokens": ["board-secret"],
                "devices": {"proj": pjlink_at(proj)},
            },
            "vault": {
                "name": "Vault",
                "panel_tokens": ["vault-secret"],
                "devices": {},
                "macros": {"hold": {"steps": [{"wait": 60}]}},  # until cancelled
            },
        },
    }


@dataclass
class Api:
    """A hub, its simulators, and an HTTP client for it."""

    hub: Hub
    http: aiohttp.ClientSession
    proj: PjlinkSimulator
    slow: PjlinkSimulator

    async def call(
        self,
        method: str,
        path: str,
        token: str | None = None,
        body: Any = None,
        raw: bytes | None = None,
    ) -> tuple[int, Any]:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        if method == "POST":
            headers["Content-Type"] = "application/json"
        data = raw if raw is not None else (json.dumps(body) if body is not None else None)
        async with self.http.request(method, path, headers=headers, data=data) as response:
            text = await response.text()
            is_json = response.content_type == "application/json"
            return response.status, json.loads(text) if is_json else text

    async def slow_online(self) -> None:
        """The slow device polls once at a random time in its first second, then every 60 s."""
        slow = self.hub.rooms["lobby"].drivers["slow"]
        await until(lambda: slow.online, message="slow device online")

    async def command(
        self, room: str, device: str, action: str, token: str | None = None, **kw: Any
    ) -> tuple[int, Any]:
        return await self.call("POST", f"/api/rooms/{room}/devices/{device}/{action}", token, **kw)


@pytest.fixture
async def api(hub_factory: Any, pjlink_sims: Any) -> AsyncIterator[Api]:
    proj = await pjlink_sims(err4=["MVOL"])
    class1 = await pjlink_sims(pjclass=1)
    slow = await pjlink_sims()
    hub: Hub = await hub_factory(config(proj.port, class1.port, slow.port))
    lobby = hub.rooms["lobby"].drivers
    live = [d for d in hub.all_drivers() if d not in (lobby["dead"], lobby["slow"])]
    await until(lambda: all(d.online and "pjlink_class" in d.state for d in live))
    assert hub.address is not None
    base = f"http://{hub.address[0]}:{hub.address[1]}"
    async with aiohttp.ClientSession(base) as http:
        yield Api(hub, http, proj, slow)


def code_of(body: Any) -> str:
    assert body["ok"] is False and isinstance(body["error"]["message"], str), body
    assert body["error"]["message"], "an error without a message"
    code: str = body["error"]["code"]
    return code


# ---- commands: success and every error status -------------------------------------------


async def test_a_command_runs_and_answers_like_the_socketio_ack(api: Api) -> None:
    status, body = await api.command("lobby", "proj", "power_on")
    assert (status, body) == (200, {"ok": True, "result": None})
    assert api.proj.power in ("warming", "on")


async def test_empty_and_json_bodies_are_args(api: Api) -> None:
    status, body = await api.command("lobby", "proj", "power_on", raw=b"")
    assert status == 200, body
    status, body = await api.command("lobby", "proj", "power_on", body={})
    assert status == 200, body


async def test_a_body_too_deep_or_too_large_gets_the_json_error(api: Api) -> None:
    deep = b"[" * 100_000 + b"]" * 100_000  # deeper than Python's JSON decoder goes
    status, body = await api.command("lobby", "proj", "power_on", raw=deep)
    assert (status, code_of(body)) == (400, "invalid_args"), body
    assert "nested too deeply" in body["error"]["message"]
    large = b'{"input": "' + b"x" * (2 * 1024 * 1024) + b'"}'
    status, body = await api.command("lobby", "proj", "select_input", raw=large)
    assert (status, code_of(body)) == (413, "invalid_args"), body
    assert "1048576 bytes" in body["error"]["message"]
    status, body = await api.command("lobby", "proj", "power_on")
    assert status == 200, body  # and the hub goes on


# DESIGN.md §8 and the OpenAPI document, written out here rather than read from hub.http.
STATUS = {
    ErrorCode.INVALID_ARGS: 400,
    ErrorCode.UNAUTHORIZED: 401,
    ErrorCode.UNKNOWN_DEVICE: 404,
    ErrorCode.UNKNOWN_ACTION: 404,
    ErrorCode.BUSY: 409,
    ErrorCode.CANCELLED: 409,
    ErrorCode.INTERNAL: 500,
    ErrorCode.DEVICE_ERROR: 502,
    ErrorCode.DEVICE_OFFLINE: 503,
    ErrorCode.TIMEOUT: 504,
    ErrorCode.STORE_UNAVAILABLE: 503,
}


async def driver_bug(api: Api, monkeypatch: pytest.MonkeyPatch) -> tuple[int, Any]:
    """A driver action that raises something unexpected: the hub answers, and stays up."""

    async def broken(self: Any) -> None:
        raise RuntimeError("driver bug")

    monkeypatch.setattr(PjlinkDriver, "power_off", broken)
    return await api.command("lobby", "proj", "power_off")


async def no_answer_in_time(api: Api, monkeypatch: pytest.MonkeyPatch) -> tuple[int, Any]:
    await api.slow_online()
    api.slow.knobs.reply_delay = 0.5  # longer than the device's 0.2 s timeout
    return await api.command("lobby", "slow", "set_audio_mute", body={"mute": False})


async def cancelled_macro(api: Api, _: pytest.MonkeyPatch) -> tuple[int, Any]:
    """A macro's request, answered once another request cancels the run."""
    run = asyncio.create_task(api.command("vault", "room", "hold", "vault-secret"))
    room = api.hub.rooms["vault"].store
    await until(lambda: room.devices["room"].state["running"] == "hold", message="hold running")
    status, body = await api.command("vault", "room", "cancel", "vault-secret")
    assert (status, body["result"]) == (200, {"cancelled": "hold", "step": 1}), body
    return await run


def command(
    room: str, device: str, action: str, **kw: Any
) -> Callable[[Api, pytest.MonkeyPatch], Awaitable[tuple[int, Any]]]:
    return lambda api, _: api.command(room, device, action, **kw)


# A real request that gets each error code, from the hub with simulators of `api`.
REQUESTS = {
    ErrorCode.INVALID_ARGS: command("lobby", "proj", "select_input", body={}),
    ErrorCode.UNAUTHORIZED: command("board", "proj", "power_on"),  # no token
    ErrorCode.UNKNOWN_DEVICE: command("lobby", "nope", "power_on"),
    ErrorCode.UNKNOWN_ACTION: command("lobby", "proj", "self_destruct"),
    ErrorCode.BUSY: command("lobby", "proj", "set_video_mute", body={"mute": True}),  # ERR3: off
    ErrorCode.INTERNAL: driver_bug,
    ErrorCode.DEVICE_ERROR: command("lobby", "proj", "mic_volume_up"),  # ERR4
    ErrorCode.DEVICE_OFFLINE: command("lobby", "dead", "power_on"),
    ErrorCode.TIMEOUT: no_answer_in_time,
    ErrorCode.CANCELLED: cancelled_macro,
}


def test_every_error_code_has_a_real_request() -> None:
    """Each code's request is in REQUESTS, or needs a Redis store (the test after next)."""
    assert set(REQUESTS) == set(ErrorCode) - {ErrorCode.STORE_UNAVAILABLE}


@pytest.mark.parametrize("code", list(REQUESTS))
async def test_every_error_code_has_its_status_on_a_real_request(
    api: Api, monkeypatch: pytest.MonkeyPatch, code: ErrorCode
) -> None:
    status, body = await REQUESTS[code](api, monkeypatch)
    assert (status, code_of(body)) == (STATUS[code], code), body


async def test_a_device_whose_hub_lost_redis_is_503_store_unavailable(
    redis_server: RedisServer, hub_factory: Any, pjlink_sims: Any
) -> None:
    """With `store: redis://`, a device this hub no longer holds a lease on (Redis is gone,
    so it could not renew it) is run by some other hub, which only Redis could reach."""
    sim = await pjlink_sims(power="on")
    hub: Hub = await hub_factory(cluster_config(redis_server.url, [sim.port], ttl=1))
    cluster = hub.cluster
    assert cluster is not None and hub.address is not None
    await until(lambda: cluster.ownership.owns("lab", "proj0"), timeout=10, message="owned")
    await redis_server.stop(signal.SIGKILL)
    await until(lambda: not cluster.ownership.owns("lab", "proj0"), timeout=10, message="let go")
    url = f"http://{hub.address[0]}:{hub.address[1]}/api/rooms/lab/devices/proj0/power_on"
    async with aiohttp.ClientSession() as http, http.post(url, json={}) as response:
        status, body = response.status, await response.json()
    code = ErrorCode.STORE_UNAVAILABLE
    assert (status, code_of(body)) == (STATUS[code], code), body


@pytest.mark.parametrize(
    ("action", "kw"),
    [
        ("select_input", {"body": {"input": "HDMI 1", "x": 1}}),
        ("power_on", {"body": {"now": True}}),
        ("select_input", {"raw": b"{not json"}),
        ("select_input", {"raw": b"[1, 2]"}),
    ],
)
async def test_bad_bodies_are_400(api: Api, action: str, kw: dict[str, Any]) -> None:
    status, body = await api.command("lobby", "proj", action, **kw)
    assert (status, code_of(body)) == (400, "invalid_args"), body


async def test_a_class_2_action_on_a_class_1_projector_is_404(api: Api) -> None:
    status, body = await api.command("lobby", "class1", "set_freeze", body={"freeze": True})
    assert (status, code_of(body)) == (404, "unknown_action"), body


async def test_the_hub_still_serves_after_a_driver_bug(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert (await driver_bug(api, monkeypatch))[0] == 500
    status, body = await api.command("lobby", "proj", "power_on")
    assert (status, body) == (200, {"ok": True, "result": None})


async def test_an_unknown_room_is_404(api: Api) -> None:
    status, body = await api.command("attic", "proj", "power_on")
    assert (status, code_of(body)) == (404, "unknown_room")
    status, body = await api.call("GET", "/api/rooms/attic")
    assert (status, code_of(body)) == (404, "unknown_room")


def test_an_error_code_the_api_does_not_know_is_500() -> None:
    assert status_for({"ok": False, "error": {"code": "no_such_code", "message": "x"}}) == 500


async def test_http_and_socketio_errors_have_the_same_shape(api: Api, panels: Any) -> None:
    panel = panels(api.hub, "lobby")
    await panel.connect()
    for action, args in (("self_destruct", {}), ("select_input", {})):
        ack = await panel.command("proj", action, **args)
        _, body = await api.command("lobby", "proj", action, body=args)
        assert body == ack


# ---- tokens --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("token", "status"),
    [
        (None, 401),  # no token for a room that has panel tokens
        ("wrong", 401),  # no room knows this token
        ("vault-secret", 403),  # a real token, of another room
        ("board-secret", 200),  # the room's own token
        ("admin-secret", 200),  # the admin token opens every room
    ],
)
async def test_token_scoping(api: Api, token: str | None, status: int) -> None:
    got, body = await api.call("GET", "/api/rooms/board", token)
    assert got == status, body
    got, body = await api.command("board", "proj", "power_on", token)
    assert got == status, body
    if status != 200:
        assert code_of(body) == "unauthorized"


async def test_only_bearer_tokens_count(api: Api) -> None:
    headers = {"Authorization": "Basic board-secret"}
    async with api.http.get("/api/rooms/board", headers=headers) as response:
        assert response.status == 401


@pytest.mark.parametrize("request_line", [b"GET /api/rooms/board", b"POST /api/admin/reload"])
async def test_a_token_that_is_not_utf8_is_refused_as_a_wrong_one(
    api: Api, request_line: bytes
) -> None:
    assert api.hub.address is not None
    reader, writer = await asyncio.open_connection(*api.hub.address)
    writer.write(  # the byte 0xff is not UTF-8
        request_line + b" HTTP/1.1\r\nHost: hub\r\nAuthorization: Bearer \xff\r\n"
        b"Content-Length: 0\r\nConnection: close\r\n\r\n"
    )
    answer = await reader.read()
    writer.close()
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 401"), answer
    assert code_of(json.loads(body)) == "unauthorized"


async def test_a_room_without_panel_tokens_is_open(api: Api) -> None:
    for token in (None, "vault-secret", "nonsense"):
        status, body = await api.call("GET", "/api/rooms/lobby", token)
        assert status == 200 and body["room"]["id"] == "lobby"


# ---- reading ---------------------------------------------------------------------------------


async def test_room_list(api: Api) -> None:
    status, body = await api.call("GET", "/api/rooms")
    assert status == 200
    assert body["rooms"] == [
        {
            "id": "lobby",
            "name": "Lobby",
            "devices": 4,
            "token_required": False,
            "panel": "/rooms/lobby",
        },
        {
            "id": "board",
            "name": "Board Room",
            "devices": 1,
            "token_required": True,
            "panel": "/rooms/board",
        },
        {
            "id": "vault",
            "name": "Vault",
            "devices": 0,
            "token_required": True,
            "panel": "/rooms/vault",
        },
    ]


async def test_room_snapshot_is_the_socketio_snapshot(api: Api, panels: Any) -> None:
    room = api.hub.rooms["lobby"].store
    status, body = await api.call("GET", "/api/rooms/lobby")
    assert status == 200
    assert body["epoch"] == room.epoch and body["room"] == {"id": "lobby", "name": "Lobby"}
    assert set(body["devices"]) == {"proj", "class1", "dead", "slow"}
    assert body["devices"]["proj"]["state"]["online"] is True
    assert body["devices"]["dead"]["state"]["online"] is False
    assert "select_input" in body["devices"]["proj"]["actions"]
    schema = body["schemas"][body["devices"]["proj"]["actions"]["select_input"]]
    assert schema == api.hub.rooms["lobby"].drivers["proj"].describe_actions()["select_input"]
    assert body["schemas"] == room.snapshot()["schemas"]  # every schema, once
    mine, hubs = body["devices"]["proj"], json.loads(json.dumps(room.snapshot()["devices"]["proj"]))
    assert {k: v for k, v in mine.items() if k != "state"} == {
        k: v for k, v in hubs.items() if k != "state"
    }
    assert mine["state"].keys() <= hubs["state"].keys()  # the state moves on with every poll


async def test_room_snapshot_is_sent_as_encoded_once(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    room = api.hub.rooms["lobby"].store
    expected = json.loads(room.snapshot_json())
    built: list[object] = []
    monkeypatch.setattr(room, "snapshot", lambda *held: built.append(held))
    status, body = await api.call("GET", "/api/rooms/lobby")
    assert status == 200 and built == []
    assert_same_snapshot(body, expected)


async def test_healthz(api: Api) -> None:
    await api.slow_online()
    status, body = await api.call("GET", "/healthz")
    assert status == 200
    assert body == {"ok": True, "rooms": 3, "devices": 5, "online": 4}


async def test_metrics_in_prometheus_text_format(api: Api, panels: Any) -> None:
    await api.slow_online()
    panel = panels(api.hub, "lobby")
    await panel.connect()
    await panel.command("proj", "self_destruct")
    await api.command("lobby", "proj", "set_video_mute", body={"mute": True})  # busy
    await api.command("lobby", "proj", "power_on")
    async with api.http.get("/metrics") as response:
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("text/plain; version=0.0.4")
        scrape = Scrape(await response.text())
    assert scrape.value("avhub_rooms") == 3
    assert scrape.value("avhub_devices", room="lobby", status="online") == 3
    assert scrape.value("avhub_devices", room="lobby", status="offline") == 1
    assert scrape.value("avhub_panels_connected", room="lobby") == 1
    assert scrape.value("avhub_panels_connected", room="board") == 0
    changes = scrape.value("avhub_changes_total", room="lobby")
    assert 0 < changes <= api.hub.rooms["lobby"].store.seq
    assert scrape.value("avhub_commands_total", room="lobby", result="ok") == 1
    assert scrape.value("avhub_commands_total", room="lobby", result="busy") == 1
    assert scrape.value("avhub_commands_total", room="lobby", result="unknown_action") == 1
    assert scrape.value("avhub_commands_total", room="board", result="ok") == 0
    proj = {"room": "lobby", "device": "proj", "driver": "pjlink"}
    assert scrape.value("avhub_device_commands_total", result="ok", **proj) == 1
    assert scrape.value("avhub_device_commands_total", result="busy", **proj) == 1
    for line in scrape.text.splitlines():  # every sample line has a HELP and a TYPE above it
        if not line.startswith("#"):
            family = line.split("{")[0].split(" ")[0]
            assert any(f"# TYPE {family.removesuffix(s)} " in scrape.text for s in SUFFIXES)


SUFFIXES = ("", "_total", "_bucket", "_count", "_sum")


# ---- pages, static files and the Socket.IO client -------------------------------------------------


async def test_an_unknown_api_path_or_method_gets_the_json_error(api: Api) -> None:
    for path in ("/api/room", "/api/rooms/lobby/devices", "/api/admin/reload/now"):
        status, body = await api.call("GET", path)
        assert (status, code_of(body)) == (404, NOT_FOUND), (path, body)
        assert path in body["error"]["message"]
    async with api.http.request("DELETE", "/api/rooms/lobby") as response:
        body = await response.json()
        assert (response.status, code_of(body)) == (405, METHOD_NOT_ALLOWED), body
        assert response.headers["Allow"] == "GET, HEAD" and "DELETE" in body["error"]["message"]
    status, text = await api.call("GET", "/nothing/here")  # pages keep aiohttp's answer
    assert status == 404 and isinstance(text, str)


async def test_pages(api: Api) -> None:
    status, text = await api.call("GET", "/")
    assert status == 200 and "/static/rooms.js" in text
    status, text = await api.call("GET", "/rooms/lobby")
    assert status == 200 and "/static/panel.js" in text
    status, _ = await api.call("GET", "/rooms/attic")
    assert status == 404
    for asset in ("panel.js", "sync.js", "controls.js", "cards.js", "commands.js", "panel.css"):
        status, _ = await api.call("GET", f"/static/{asset}")
        assert status == 200, asset


async def test_the_pinned_socketio_client_is_served_and_nothing_else_of_node_modules(
    api: Api,
) -> None:
    pinned = json.loads((WEB_DIR / "package.json").read_text())["dependencies"]["socket.io-client"]
    async with api.http.get("/vendor/socket.io.esm.min.js") as response:
        assert response.status == 200
        assert response.content_type in ("application/javascript", "text/javascript")
        head = (await response.text())[:60]
    assert f"Socket.IO v{pinned}\n" in head
    for path in (
        "/static/../node_modules/socket.io-client/package.json",
        "/static/%2e%2e/package.json",
        "/node_modules/socket.io-client/dist/socket.io.js",
        "/vendor/socket.io.js",
    ):
        status, _ = await api.call("GET", path)
        assert status in (403, 404), path


async def test_panel_pages_and_the_room_namespaces_do_not_clash(api: Api, panels: Any) -> None:
    """`/rooms/<id>` is a page; the namespace `/rooms/<id>` lives under `/socket.io/`."""
    status, text = await api.call("GET", "/socket.io/?EIO=4&transport=polling")
    assert status == 200 and '"sid"' in text
    panel = panels(api.hub, "lobby")
    await panel.connect()
    await until(lambda: panel.snapshot is not None)
    status, text = await api.call("GET", "/rooms/lobby")
    assert status == 200 and "<html" in text


# ---- the OpenAPI document ---------------------------------------------------------------------------

UNDOCUMENTED = ("/socket.io/", "/static", "/vendor/")  # transport and assets, not API


def routes(hub: Hub) -> set[tuple[str, str]]:
    """(method, path template) of every route the app serves, assets aside."""
    found = set()
    for route in hub.app.router.routes():
        path = route.resource.canonical if route.resource is not None else ""
        if route.method in ("HEAD", "*") or path.startswith(UNDOCUMENTED):
            continue
        found.add((route.method.lower(), path))
    return found


async def test_openapi_documents_every_route_and_status(api: Api) -> None:
    status, doc = await api.call("GET", "/api/openapi.json")
    assert status == 200
    assert doc == json.loads(OPENAPI_DOCUMENT.read_text())
    assert doc["openapi"].startswith("3.")
    documented = {(m, p) for p, ops in doc["paths"].items() for m in ops}
    assert documented == routes(api.hub)
    command = doc["paths"]["/api/rooms/{room_id}/devices/{device_id}/{action}"]["post"]
    statuses = {200, 401, 403, 404, 405, 413, 415, *STATUS.values()}
    assert {int(s) for s in command["responses"]} == statuses
    for path, operations in doc["paths"].items():
        if path.startswith("/api/"):
            assert all("405" in op["responses"] for op in operations.values()), path
    codes = doc["components"]["schemas"]["Error"]["properties"]["error"]["properties"]["code"]
    http_only = {UNKNOWN_ROOM, NOT_RELOADABLE, FORBIDDEN_ORIGIN, UNSUPPORTED_MEDIA_TYPE}
    http_only |= {NOT_FOUND, METHOD_NOT_ALLOWED}
    assert set(codes["enum"]) == {c.value for c in ErrorCode} | http_only | {"invalid_config"}
    snapshot = doc["components"]["schemas"]["Snapshot"]
    assert "schemas" in snapshot["required"]
    device = doc["components"]["schemas"]["Device"]
    assert device["properties"]["actions"]["additionalProperties"]["type"] == "string"
    refs = re.findall(r'"\$ref": "#/components/(\w+)/(\w+)"', json.dumps(doc))
    for section, name in refs:
        assert name in doc["components"][section], f"dangling $ref {section}/{name}"
