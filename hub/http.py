"""HTTP (DESIGN.md §8): touch-panel pages, the REST API, health, Prometheus metrics, OpenAPI.

Auth: `Authorization: Bearer <token>`. A room's panel token opens that room only,
`hub.admin_token` opens every room, and a room without panel tokens is open to anyone
for reading and commands. `POST /api/admin/reload` takes the admin token only; `/metrics`
takes `hub.metrics_token` when one is set. The room list, `/healthz` and the OpenAPI
document need no token. Commands take JSON bodies only, and requests from foreign web
origins are refused (hub/guard.py).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aiohttp import web

from drivers.errors import ErrorCode
from hub.commands import error_reply
from hub.guard import JSON, Handler, json_only, token_matches
from hub.guard import error as _error
from hub.metrics import CONTENT_TYPE as METRICS_CONTENT_TYPE

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
    ErrorCode.STORE_UNAVAILABLE: 503,
    ErrorCode.TIMEOUT: 504,
}
UNKNOWN_ROOM = "unknown_room"  # HTTP only: a panel for an unknown room gets CONNECT_ERROR
NOT_RELOADABLE = "not_reloadable"  # HTTP only, 409: the hub runs from no file
NOT_FOUND = "not_found"  # HTTP only, 404: no such path under /api/
METHOD_NOT_ALLOWED = "method_not_allowed"  # HTTP only, 405: the path takes other methods
API_PREFIX = "/api/"
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
            # Any segment matches (aiohttp's default refuses braces), so the handler answers
            # a bad id in the API's JSON shape rather than aiohttp's plain-text 404.
            web.get("/api/rooms/{room_id:[^/]+}", self.room_snapshot, name="room"),
            web.post(
                "/api/rooms/{room_id:[^/]+}/devices/{device_id:[^/]+}/{action:[^/]+}",
                self.command,
                name="command",
            ),
            web.post("/api/admin/reload", self.reload, name="reload"),
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
        health: dict[str, Any] = {
            "ok": True,
            "rooms": len(self.hub.rooms),
            "devices": len(devices),
            "online": sum(room.online() for room in self.hub.rooms.values()),
        }
        health.update(self.hub.store_health())
        return web.json_response(health)

    async def metrics(self, request: web.Request) -> web.Response:
        settings = self.hub.config.hub
        token = bearer_token(request)
        if (
            settings.metrics_token is not None
            and not token_matches(token, settings.metrics_token)
            and not token_matches(token, settings.admin_token)  # it works everywhere
        ):
            return _error(
                401, ErrorCode.UNAUTHORIZED, "send 'Authorization: Bearer <hub.metrics_token>'"
            )
        return web.Response(
            body=self.hub.metrics.render(), headers={"Content-Type": METRICS_CONTENT_TYPE}
        )

    async def reload(self, request: web.Request) -> web.Response:
        """Re-read the deployment file (hub/reload.py); the admin token only."""
        admin = self.hub.config.hub.admin_token
        if admin is None:
            return _error(
                403,
                ErrorCode.UNAUTHORIZED,
                "this hub has no hub.admin_token: reload it with SIGHUP",
            )
        if not token_matches(bearer_token(request), admin):
            return _error(
                401, ErrorCode.UNAUTHORIZED, "send 'Authorization: Bearer <hub.admin_token>'"
            )
        if self.hub.reloader is None:
            return _error(409, NOT_RELOADABLE, "this hub was not started from a deployment file")
        outcome = await self.hub.reloader.reload()
        status = 200 if outcome.ok else 422 if outcome.problems else 500
        return web.json_response(outcome.answer(), status=status)

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
        return web.Response(text=room.store.snapshot_json(), content_type=JSON)

    async def command(self, request: web.Request) -> web.Response:
        room = self._room(request)
        if isinstance(room, web.Response):
            return room
        refused = json_only(request)
        if refused is not None:
            return refused
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
    except RecursionError:
        return "the body must be a JSON object of args: it is nested too deeply to read"
    if not isinstance(args, dict):
        return f"the body must be a JSON object of args, got {type(args).__name__}"
    return args


@web.middleware
async def api_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Under `/api/`, a path the hub does not serve, a method it does not take there or a
    body over the size it reads gets the API's JSON error (404 `not_found`, 405
    `method_not_allowed` with `Allow`, 413 `invalid_args`), not aiohttp's plain-text page:
    API clients parse one error shape."""
    if not request.path.startswith(API_PREFIX):
        return await handler(request)
    try:
        return await handler(request)
    except web.HTTPRequestEntityTooLarge:
        return _error(
            413,
            ErrorCode.INVALID_ARGS,
            f"the body is larger than the {request.client_max_size} bytes the hub reads",
        )
    except web.HTTPMethodNotAllowed as exc:
        allowed = ", ".join(sorted(exc.allowed_methods))
        response = _error(
            405, METHOD_NOT_ALLOWED, f"{request.path} takes {allowed}, not {request.method}"
        )
        response.headers["Allow"] = allowed
        return response
    except web.HTTPNotFound:
        return _error(404, NOT_FOUND, f"no API path {request.path!r}; /api/openapi.json lists them")


def setup_routes(app: web.Application, hub: Hub) -> HttpApi:
    """Register the pages, the API, `/healthz`, `/metrics` and `/api/openapi.json`."""
    api = HttpApi(hub)
    app.add_routes(api.routes())
    return api
