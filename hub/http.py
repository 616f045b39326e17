"""HTTP (DESIGN.md §8): touch-panel pages, the REST API, health, Prometheus metrics, OpenAPI.

Auth: `Authorization: Bearer <token>`. A room's panel token opens that room only,
`hub.admin_token` opens every room, and a room without panel tokens is open to anyone
for reading and commands. The room list, `/healthz`, `/metrics` and the OpenAPI
document need no token.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aiohttp import web

from drivers.errors import ErrorCode
from hub.commands import error_reply

if TYPE_CHECKING:
    from hub.app import Hub
    from hub.room import Room

WEB_DIR = Path(__file__).resolve().parent / "web"
STATIC_DIR = WEB_DIR / "static"
SOCKET_IO_CLIENT = WEB_DIR / "node_modules" / "socket.io-client" / "dist" / "socket.io.esm.min.js"
SOCKET_IO_CLIENT_URL = "/vendor/socket.io.esm.min.js"
OPENAPI_DOCUMENT = WEB_DIR / "openapi.json"

HTTP_STATUS: dict[ErrorCode, int] = {
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
}
UNKNOWN_ROOM = "unknown_room"  # HTTP only: a panel for an unknown room gets CONNECT_ERROR
FORBIDDEN = 403  # a valid token, but for another room: code stays "unauthorized"
_NO_CACHE = {"Cache-Control": "no-cache"}


def status_for(reply: dict[str, Any]) -> int:
    """The HTTP status of a command reply: 200, or the status its error code maps to."""
    if reply.get("ok"):
        return 200
    try:
        return HTTP_STATUS[ErrorCode(reply["error"]["code"])]
    except ValueError:
        return 500


def bearer_token(request: web.Request) -> str | None:
    """The token of an `Authorization: Bearer <token>` header, if any."""
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    token = token.strip()
    return token if scheme.lower() == "bearer" and token else None


def _error(status: int, code: str, message: str) -> web.Response:
    body = {"ok": False, "error": {"code": code, "message": message}}
    return web.json_response(body, status=status)


class HttpApi:
    """The hub's HTTP routes; `setup_routes` registers them on the aiohttp app."""

    def __init__(self, hub: Hub) -> None:
        self.hub = hub

    def routes(self) -> list[web.AbstractRouteDef]:
        return [
            web.get("/", self.index, name="index"),
            web.get("/rooms/{room_id}", self.panel, name="panel"),
            web.get(SOCKET_IO_CLIENT_URL, self.socket_io_client, name="socket_io_client"),
            web.static("/static", STATIC_DIR, name="static"),
            web.get("/healthz", self.healthz, name="healthz"),
            web.get("/metrics", self.metrics, name="metrics"),
            web.get("/api/openapi.json", self.openapi, name="openapi"),
            web.get("/api/rooms", self.list_rooms, name="rooms"),
            web.get("/api/rooms/{room_id}", self.room_snapshot, name="room"),
            web.post(
                "/api/rooms/{room_id}/devices/{device_id}/{action}", self.command, name="command"
            ),
        ]

    # ---- pages ---------------------------------------------------------------------

    async def index(self, request: web.Request) -> web.FileResponse:
        return web.FileResponse(WEB_DIR / "index.html", headers=_NO_CACHE)

    async def panel(self, request: web.Request) -> web.StreamResponse:
        if request.match_info["room_id"] not in self.hub.rooms:
            raise web.HTTPNotFound(text="no such room; the room list is at /\n")
        return web.FileResponse(WEB_DIR / "panel.html", headers=_NO_CACHE)

    async def socket_io_client(self, request: web.Request) -> web.StreamResponse:
        if not SOCKET_IO_CLIENT.is_file():
            raise web.HTTPInternalServerError(
                text="the Socket.IO client is not installed: run `make install` "
                "(npm ci --prefix hub/web)\n"
            )
        return web.FileResponse(SOCKET_IO_CLIENT, headers=_NO_CACHE)

    # ---- operations ----------------------------------------------------------------

    async def healthz(self, request: web.Request) -> web.Response:
        devices = self.hub.all_drivers()
        return web.json_response(
            {
                "ok": True,
                "rooms": len(self.hub.rooms),
                "devices": len(devices),
                "online": sum(1 for d in devices if d.online),
            }
        )

    async def metrics(self, request: web.Request) -> web.Response:
        return web.Response(
            text=render_metrics(self.hub),
            headers={"Content-Type": "text/plain; version=0.0.4; charset=utf-8"},
        )

    async def openapi(self, request: web.Request) -> web.FileResponse:
        return web.FileResponse(OPENAPI_DOCUMENT, headers=_NO_CACHE)

    # ---- API -----------------------------------------------------------------------

    async def list_rooms(self, request: web.Request) -> web.Response:
        rooms = [
            {
                "id": room.id,
                "name": room.name,
                "devices": len(room.drivers),
                "token_required": not room.open_room,
                "panel": f"/rooms/{room.id}",
            }
            for room in self.hub.rooms.values()
        ]
        return web.json_response({"rooms": rooms})

    async def room_snapshot(self, request: web.Request) -> web.Response:
        room = self._room(request)
        if isinstance(room, web.Response):
            return room
        return web.json_response(room.store.snapshot())

    async def command(self, request: web.Request) -> web.Response:
        room = self._room(request)
        if isinstance(room, web.Response):
            return room
        args = await _json_args(request)
        if isinstance(args, str):
            reply = error_reply(ErrorCode.INVALID_ARGS, args)
            room.counters.commands[ErrorCode.INVALID_ARGS.value] += 1
        else:
            data = {
                "device": request.match_info["device_id"],
                "action": request.match_info["action"],
                "args": args,
            }
            reply = await room.command(data, f"HTTP {room.id}")
        return web.json_response(reply, status=status_for(reply))

    def _room(self, request: web.Request) -> Room | web.Response:
        """The room the request may use; else the 404/401/403 answer."""
        room_id = request.match_info["room_id"]
        room = self.hub.rooms.get(room_id)
        if room is None:
            return _error(404, UNKNOWN_ROOM, f"no room {room_id!r}; GET /api/rooms lists them")
        token = bearer_token(request)
        if room.authorized(token):
            return room
        if token is None:
            return _error(
                401,
                ErrorCode.UNAUTHORIZED,
                f"room {room_id!r} needs a token: send 'Authorization: Bearer <token>'",
            )
        if any(
            r is not room and not r.open_room and r.authorized(token)
            for r in self.hub.rooms.values()
        ):
            return _error(
                FORBIDDEN,
                ErrorCode.UNAUTHORIZED,
                f"this token belongs to another room; it does not open {room_id!r}",
            )
        return _error(401, ErrorCode.UNAUTHORIZED, f"the token is not valid for room {room_id!r}")


async def _json_args(request: web.Request) -> dict[str, Any] | str:
    """The JSON object of command args (empty body: no args), or what is wrong with it."""
    raw = await request.read()
    if not raw.strip():
        return {}
    try:
        args = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as err:
        return f"the body must be a JSON object of args: {err}"
    if not isinstance(args, dict):
        return f"the body must be a JSON object of args, got {type(args).__name__}"
    return args


def setup_routes(app: web.Application, hub: Hub) -> HttpApi:
    """Register the pages, the API, `/healthz`, `/metrics` and `/api/openapi.json`."""
    api = HttpApi(hub)
    app.add_routes(api.routes())
    return api


# ---- Prometheus ------------------------------------------------------------------------


def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


class _Family:
    """One metric family in the Prometheus text format."""

    def __init__(self, name: str, kind: str, help_text: str) -> None:
        self.lines = [f"# HELP {name} {help_text}", f"# TYPE {name} {kind}"]
        self.name = name

    def add(self, value: float, **labels: str) -> None:
        if labels:
            text = ",".join(f'{k}="{_label(v)}"' for k, v in labels.items())
            self.lines.append(f"{self.name}{{{text}}} {value:g}")
        else:
            self.lines.append(f"{self.name} {value:g}")


def render_metrics(hub: Hub) -> str:
    """Rooms, devices online/offline, panels, changes and commands, in Prometheus text format."""
    rooms = _Family("avhub_rooms", "gauge", "Rooms in the configuration.")
    devices = _Family("avhub_devices", "gauge", "Devices per room by status (online/offline).")
    panels = _Family("avhub_panels_connected", "gauge", "Socket.IO panels connected per room.")
    changes = _Family(
        "avhub_changes_total", "counter", "State changes committed per room in this epoch."
    )
    commands = _Family(
        "avhub_commands_total",
        "counter",
        "Commands per room (Socket.IO and HTTP) by result: ok or the error code.",
    )
    rooms.add(len(hub.rooms))
    for room_id, room in hub.rooms.items():
        online = room.online()
        devices.add(online, room=room_id, status="online")
        devices.add(len(room.drivers) - online, room=room_id, status="offline")
        panels.add(room.counters.panels, room=room_id)
        changes.add(room.store.seq, room=room_id)
        for result in ("ok", *(c.value for c in ErrorCode)):
            commands.add(room.counters.commands[result], room=room_id, result=result)
    families = (rooms, devices, panels, changes, commands)
    return "\n".join(line for f in families for line in f.lines) + "\n"
