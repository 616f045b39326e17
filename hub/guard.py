"""Who may reach the hub from a web page, and warnings about rooms open to the network.

A page of another origin must not drive a room: browsers send its `Origin`, and one rule
(the hub's own origin or one listed in `hub.allowed_origins`) decides for the REST API
(`origin_guard` middleware, which also gives a listed origin's page its CORS headers) and
for the Socket.IO handshake (`socketio_origins`, handed to python-socketio as
`cors_allowed_origins`). Commands also take only JSON bodies: a
`text/plain` POST is a "simple" request a foreign page can send without a CORS preflight.
"""

from __future__ import annotations

import hmac
import ipaddress
from collections.abc import Awaitable, Callable, Iterator
from typing import Any, Literal

from aiohttp import web
from aiohttp.typedefs import Middleware

from hub.config import Config, HubSettings, check_origin

FORBIDDEN_ORIGIN = "forbidden_origin"  # HTTP only, 403
UNSUPPORTED_MEDIA_TYPE = "unsupported_media_type"  # HTTP only, 415
JSON = "application/json"
SOCKET_IO_PATH = "/socket.io/"  # Engine.IO checks the origin there itself, by the same rule

Settings = Callable[[], HubSettings]
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def origin_kind(
    origin: str, scheme: str, host: str, settings: HubSettings
) -> Literal["own", "listed"] | None:
    """`"own"` for the hub's own origin (`scheme://Host`), `"listed"` for one of
    `hub.allowed_origins`, None for any other (refused)."""
    try:
        origin = check_origin(origin)
        own = check_origin(f"{scheme}://{host}")
    except ValueError:  # "null" (a sandboxed page, a file), or no Host
        return None
    if origin == own:
        return "own"
    return "listed" if origin in settings.allowed_origins else None


def socketio_origins(settings: Settings) -> Callable[[str, dict[str, Any]], bool]:
    """`cors_allowed_origins` for python-socketio: the same rule, read at each handshake."""

    def allowed(origin: str | None, environ: dict[str, Any]) -> bool:
        if origin is None:  # asked while adding CORS headers to a request without Origin
            return False
        scheme = str(environ.get("wsgi.url_scheme", "http"))
        host = str(environ.get("HTTP_HOST", ""))
        return origin_kind(origin, scheme, host, settings()) is not None

    return allowed


def error(status: int, code: str, message: str) -> web.Response:
    """The HTTP API's error answer: `{"ok": false, "error": {"code", "message"}}`."""
    return web.json_response(
        {"ok": False, "error": {"code": code, "message": message}}, status=status
    )


CORS_PREFLIGHT = {
    "Access-Control-Allow-Methods": "GET, POST",
    "Access-Control-Allow-Headers": "Authorization, Content-Type",
    "Access-Control-Max-Age": "600",
}
"""What a page of a listed origin may send: a command is a POST with a JSON body and a token."""


def origin_guard(settings: Settings) -> Middleware:
    """aiohttp middleware: a request carrying a foreign `Origin` is refused with 403; one
    from an origin of `hub.allowed_origins` gets the CORS headers its page needs to read the
    answer (and its preflight an answer), since a browser sends such a page's requests
    across origins."""

    @web.middleware
    async def guard(request: web.Request, handler: Handler) -> web.StreamResponse:
        origin = request.headers.get("Origin")
        if origin is None or request.path.startswith(SOCKET_IO_PATH):
            return await handler(request)
        kind = origin_kind(origin, request.scheme, request.host, settings())
        if kind is None:
            return error(
                403,
                FORBIDDEN_ORIGIN,
                "requests from this web origin are refused; list it in hub.allowed_origins "
                "to allow its pages",
            )
        if kind == "own":
            return await handler(request)  # the hub's own page: not a cross-origin request
        response: web.StreamResponse
        if request.method == "OPTIONS" and "Access-Control-Request-Method" in request.headers:
            response = web.Response(status=204, headers=CORS_PREFLIGHT)
        else:
            response = await handler(request)
        response.headers["Access-Control-Allow-Origin"] = origin
        response.headers.add("Vary", "Origin")
        return response

    return guard


def json_only(request: web.Request) -> web.Response | None:
    """None when the request body is declared `application/json`; else the 415 answer."""
    if "Content-Type" in request.headers and request.content_type == JSON:
        return None
    return error(
        415,
        UNSUPPORTED_MEDIA_TYPE,
        "send the args as a JSON object with 'Content-Type: application/json' (an empty body "
        "is no args)",
    )


def token_bytes(token: str) -> bytes | None:
    """`token` as UTF-8 to compare, or None when it is not text: a lone surrogate, from
    header bytes that were not UTF-8 or an escape in a panel's JSON, matches no token."""
    try:
        return token.encode()
    except UnicodeEncodeError:
        return None


def token_matches(given: str | None, expected: str | None) -> bool:
    """Constant-time comparison; no expected token never matches."""
    if given is None or expected is None:
        return False
    given_bytes = token_bytes(given)
    return given_bytes is not None and hmac.compare_digest(given_bytes, expected.encode())


def loopback(host: str) -> bool:
    """True when `host` (an address or `localhost`) only reaches this machine."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a name: it may resolve anywhere


def exposure_warnings(config: Config, host: str | None = None) -> Iterator[str]:
    """A warning per room without panel tokens when the hub listens beyond loopback."""
    host = host if host is not None else config.hub.host
    if loopback(host):
        return
    for room_id, room in config.rooms.items():
        if not room.panel_tokens:
            yield (
                f"room {room_id!r} has no panel_tokens and the hub listens on {host}: anyone "
                "who can reach the hub can watch and control it"
            )
