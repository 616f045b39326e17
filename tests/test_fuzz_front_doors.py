"""Random payloads at the front doors: every panel event and every REST route answers only
in documented shapes, and the connection stays up.

Hypothesis drives one hub (with a PJLink simulator) per test; each example is one event or
one request. The REST answers are checked against hub/web/openapi.json: the status must be
one the route documents, and an error must carry a documented code.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from drivers.errors import ErrorCode
from hub.app import Hub
from hub.http import OPENAPI_DOCUMENT
from hub.reload import Reloader
from tests.helpers import until
from tests.panel import Panel
from tests.test_http_api import config

DOC = json.loads(OPENAPI_DOCUMENT.read_text())
CODES = set(
    DOC["components"]["schemas"]["Error"]["properties"]["error"]["properties"]["code"]["enum"]
)
EXAMPLES = settings(
    max_examples=100,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4)
    ),
    max_leaves=12,
)
names = st.sampled_from(
    ["proj", "nope", "", "power_on", "select_input", "set_audio_mute"]
) | st.text(max_size=12)
commands = st.one_of(
    json_values,
    st.fixed_dictionaries(
        {"device": names | json_values, "action": names | json_values},
        optional={"args": json_values},
    ),
)
syncs = st.one_of(
    json_values,
    st.fixed_dictionaries(
        {"epoch": st.text(max_size=16) | json_values, "seq": st.integers() | json_values},
        optional={"schemas": st.lists(st.text(max_size=8)) | json_values},
    ),
)


def error_shape(reply: Any) -> bool:
    return (
        isinstance(reply, dict)
        and reply.get("ok") is False
        and set(reply) == {"ok", "error"}
        and isinstance(reply["error"], dict)
        and reply["error"].get("code") in CODES
        and isinstance(reply["error"].get("message"), str)
    )


@pytest.fixture
async def hub(
    hub_factory: Callable[..., Awaitable[Hub]], pjlink_sims: Any, tmp_path: Path
) -> AsyncIterator[Hub]:
    proj, class1, slow = [await pjlink_sims(pjclass=c) for c in (2, 1, 2)]
    building = config(proj.port, class1.port, slow.port)  # the HTTP API tests' building
    hub = await hub_factory(building)
    path = tmp_path / "fuzz.yaml"
    path.write_text(yaml.safe_dump(building))
    hub.reloader = Reloader(hub, path)
    await until(lambda: hub.rooms["lobby"].drivers["proj"].online)
    yield hub


@pytest.fixture
async def panel(hub: Hub, panels: Callable[..., Panel]) -> Panel:
    panel = panels(hub, "lobby")
    await panel.connect()
    await until(lambda: panel.in_sync)
    return panel


# ---- Socket.IO --------------------------------------------------------------------------------


@EXAMPLES
@given(payload=commands, extra=st.lists(json_values, max_size=2))
async def test_command_answers_in_the_ack_shape(
    panel: Panel, payload: Any, extra: list[Any]
) -> None:
    reply = await panel.sio.call(
        "command", (payload, *extra) if extra else payload, namespace=panel.namespace, timeout=10
    )
    if isinstance(reply, dict) and reply.get("ok") is True:
        assert set(reply) == {"ok", "result"}
    else:
        assert error_shape(reply), reply
        assert reply["error"]["code"] in {c.value for c in ErrorCode}
        assert reply["error"]["code"] != "internal", reply
    assert panel.sio.connected


@EXAMPLES
@given(payload=syncs)
async def test_sync_answers_changes_a_snapshot_or_invalid_args(panel: Panel, payload: Any) -> None:
    reply = await panel.call("sync", payload)
    if isinstance(reply, dict) and "changes" in reply:
        assert set(reply) == {"changes"} and isinstance(reply["changes"], list)
    elif isinstance(reply, dict) and "snapshot" in reply:
        assert set(reply) == {"snapshot"}
        assert set(reply["snapshot"]) == {"epoch", "seq", "room", "schemas", "devices"}
    else:
        assert error_shape(reply) and reply["error"]["code"] == "invalid_args", reply
    assert panel.sio.connected


# ---- REST ---------------------------------------------------------------------------------------

ROUTES = [
    (method.upper(), path)
    for path, operations in DOC["paths"].items()
    if path.startswith("/api/") or path in ("/metrics", "/healthz")
    for method in operations
]
segments = st.sampled_from(
    ["lobby", "board", "vault", "proj", "dead", "slow", "power_on", "set_audio_mute", "x"]
) | st.text(
    alphabet=st.characters(min_codepoint=0x21, max_codepoint=0x7E, exclude_characters="/?#%"),
    min_size=1,
    max_size=12,
).filter(lambda segment: segment not in (".", ".."))
"""Path parameters. Not `.` or `..`: the client resolves those (RFC 3986), so the request
goes to another path (`/devices/lobby/.` is sent as `/devices/lobby/`), not to the route."""
content_types = st.sampled_from(
    [
        None,
        "application/json",
        "application/json; charset=utf-8",
        "text/plain",
        "text/html",
        "",
        "application/x-www-form-urlencoded",
    ]
)
tokens = st.sampled_from([None, "admin-secret", "board-secret", "vault-secret", "wrong", ""])
origins = st.sampled_from([None, "own", "http://evil.example", "null"])
bodies = st.one_of(
    st.just(b""),
    json_values.map(lambda v: json.dumps(v).encode()),
    st.binary(max_size=64),
)


@EXAMPLES
@given(
    route=st.sampled_from(ROUTES),
    params=st.lists(segments, min_size=3, max_size=3),
    content_type=content_types,
    token=tokens,
    origin=origins,
    body=bodies,
)
async def test_every_rest_route_answers_only_documented_statuses_and_shapes(
    hub: Hub,
    route: tuple[str, str],
    params: list[str],
    content_type: str | None,
    token: str | None,
    origin: str | None,
    body: bytes,
) -> None:
    assert hub.address is not None
    base = f"http://{hub.address[0]}:{hub.address[1]}"
    method, template = route
    path = template.format(**dict(zip(("room_id", "device_id", "action"), params, strict=True)))
    headers = {}
    if content_type is not None:
        headers["Content-Type"] = content_type
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    if origin is not None:
        headers["Origin"] = base if origin == "own" else origin
    async with aiohttp.ClientSession() as http:
        data = body if method == "POST" else None
        async with http.request(method, base + path, headers=headers, data=data) as response:
            status, text = response.status, await response.text()
            is_json = response.content_type == "application/json"
    documented = DOC["paths"][template][method.lower()]["responses"]
    assert str(status) in documented, (method, path, status, text)
    if status >= 400:
        assert is_json and error_shape(json.loads(text)), text
        assert json.loads(text)["error"]["code"] != "internal" or status == 500
    assert status != 500, text
    async with aiohttp.ClientSession() as http, http.get(base + "/healthz") as health:
        assert health.status == 200
