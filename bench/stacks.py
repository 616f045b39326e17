"""What a scenario measures: the hub with its simulated devices, or the baseline server.

Both stacks look the same to a scenario: a server process (whose CPU and RSS are
measured), a URL for panels, a room layout, and `churn`/`bump` that make marked
changes and return when each was written (`bench.marks`).
"""

from __future__ import annotations

import asyncio
import json
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.proc import Child, ChildError, Children

AVHUB = str(Path(sys.executable).with_name("avhub"))
DRIVER_OPTIONS = {"extron_sis": ["volume: true", "audio_mute: true", "video_mute: true"]}
"""Device options per driver: every capability the bench's simulators have."""


@dataclass(frozen=True)
class Layout:
    """Rooms r000.. each with the same devices p00..; device `index` = room * per_room + n.

    `driver` is the devices' kind: `pjlink` projectors or `extron_sis` switchers
    (`bench.devices`).
    """

    rooms: int
    devices: int
    poll_interval: float = 5.0
    driver: str = "pjlink"

    @property
    def room_ids(self) -> list[str]:
        return [f"r{i:03d}" for i in range(self.rooms)]

    @property
    def device_ids(self) -> list[str]:
        return [f"p{i:02d}" for i in range(self.devices)]

    @property
    def count(self) -> int:
        return self.rooms * self.devices

    def key(self, index: int) -> str:
        room, n = divmod(index, self.devices)
        return f"r{room:03d}/p{n:02d}"

    def spread(self) -> list[int]:
        """Every device once, consecutive ones in different rooms."""
        return [r * self.devices + d for d in range(self.devices) for r in range(self.rooms)]

    def room_devices(self, room: int) -> list[int]:
        return [room * self.devices + d for d in range(self.devices)]


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def hub_config(
    layout: Layout,
    ports: list[int],
    notify: int | None,
    extra: str = "",
    driver: str | None = None,
    preamble: str = "",
) -> str:
    """Deployment YAML for `layout`, device n of the list at `ports[n]`.

    `driver` drives the devices (default: `layout.driver`, the simulators' kind; the
    generic driver can drive PJLink simulators). `preamble` goes at the top level (an
    `x-` anchor that `extra` refers to, say). An option set in `extra` replaces the
    driver's `DRIVER_OPTIONS` one.
    """
    driver = driver or layout.driver
    given = {line.partition(":")[0].strip() for line in extra.splitlines()}
    options = [o for o in DRIVER_OPTIONS.get(driver, []) if o.partition(":")[0] not in given]
    where = f"127.0.0.1:{notify}" if notify else '"off"'  # quoted: YAML reads off as false
    lines = [
        "hub:",
        "  listen: 127.0.0.1:0",
        "  log_level: warning",
        "  drivers:",
        "    pjlink:",
        f"      notify: {where}",
        *preamble.splitlines(),
        "rooms:",
    ]
    for r, room in enumerate(layout.room_ids):
        lines += [f"  {room}:", "    devices:" + ("" if layout.devices else " {}")]
        for d, device in enumerate(layout.device_ids):
            port = ports[r * layout.devices + d]
            lines += [
                f"      {device}:",
                f"        driver: {driver}",
                f"        transport: tcp://127.0.0.1:{port}",
                f"        poll_interval: {layout.poll_interval}s",
                *(f"        {line}" for line in options),
                *(f"        {line}" for line in extra.splitlines() if line.strip()),
            ]
    return "\n".join(lines) + "\n"


async def start_hub(
    children: Children, name: str, config: Path, port: int = 0, source: Path | None = None
) -> tuple[Child, str]:
    """`avhub run CONFIG --listen 127.0.0.1:PORT`; returns the child and the hub's URL.

    With `source`, the hub's code comes from that directory (a copy of another
    commit, see `export_source`) instead of this checkout.
    """
    args = ["run", str(config), "--listen", f"127.0.0.1:{port}"]
    argv, env = [AVHUB, *args], None
    if source is not None:  # -P: not this checkout's directory first on sys.path
        argv = [sys.executable, "-P", "-c", "import sys, hub.cli; sys.exit(hub.cli.main())", *args]
        env = {"PYTHONPATH": str(source), "PYTHONDONTWRITEBYTECODE": "1"}
    hub = await children.start(name, argv, env=env, expect_json=False)
    said: list[str] = []
    try:
        while True:
            line = await hub.read_line(120)
            if line.startswith("avhub listening on "):
                return hub, line.split()[-1]
            said.append(line)
    except ChildError as err:
        raise ChildError(f"{err}; it said: {' / '.join(said)}") from None


async def health(url: str) -> dict[str, Any]:
    """The hub's `/healthz` answer (devices, online, and a cluster hub's node and owned)."""

    def get() -> dict[str, Any]:
        with urllib.request.urlopen(f"{url}/healthz", timeout=5) as response:
            result: dict[str, Any] = json.loads(response.read())
            return result

    return await asyncio.to_thread(get)


def export_source(ref: str, directory: Path) -> Path:
    """The tree of git commit `ref` of this repository, written to `directory`."""
    root = Path(__file__).resolve().parent.parent
    directory.mkdir(parents=True, exist_ok=True)
    archive = subprocess.run(
        ["git", "-C", str(root), "archive", "--format=tar", ref],
        check=True,
        capture_output=True,
    )
    subprocess.run(["tar", "-x", "-C", str(directory)], input=archive.stdout, check=True)
    return directory


@dataclass
class Stack:
    """Common face of HubStack and BaselineStack."""

    name: str
    children: Children
    layout: Layout
    server: Child | None = None
    url: str = ""
    port: int = 0
    extra: dict[str, Child] = field(default_factory=dict)

    async def churn(
        self, rate: float, seconds: float
    ) -> tuple[list[tuple[str, int, float]], float]:
        """Marked changes at `rate` for `seconds`: (writes, seconds the loop took)."""
        raise NotImplementedError

    async def bump(self, targets: list[int]) -> list[tuple[str, int, float]]:
        raise NotImplementedError

    async def restart(self) -> dict[str, float]:
        """Stop the server and start it again on the same port.

        Returns when the new one accepts TCP connections: `stopped` and `listening`
        are the `time.time()` of the old one's exit and the first accepted connect.
        """
        assert self.server is not None
        await self.children.stop(self.server)
        stopped = time.time()
        start = asyncio.ensure_future(self._start_server())
        try:
            listening = await accepting(self.port, start)
        finally:
            await start
        return {"stopped": stopped, "listening": listening}

    async def _start_server(self) -> None:
        raise NotImplementedError

    def _keyed(self, reply: dict[str, Any]) -> list[tuple[str, int, float]]:
        return [(self.layout.key(i), mark, t) for i, mark, t in reply["writes"]]


class HubStack(Stack):
    """`avhub run` on a generated config, and device processes of PJLink simulators."""

    def __init__(
        self,
        children: Children,
        layout: Layout,
        rundir: Path,
        device_procs: int = 1,
        notify: bool = True,
        hub_extra: str = "",
    ) -> None:
        super().__init__("avhub", children, layout)
        self.rundir = rundir
        self.device_procs = device_procs
        self.notify = notify
        self.hub_extra = hub_extra
        self.devices: list[Child] = []
        self._offsets: list[int] = []
        self.port = 0
        self.config = rundir / "hub.yaml"

    async def start(self) -> None:
        ports: list[int] = []
        total = self.layout.count
        per = -(-total // self.device_procs) if total else 0
        for i in range(self.device_procs if total else 0):
            count = min(per, total - i * per)
            child = await self.children.python(
                f"devices{i}", "bench.devices", "--count", str(count), "--kind", self.layout.driver
            )
            self._offsets.append(len(ports))
            ports += child.ready["ports"]
            self.devices.append(child)
            self.extra[child.name] = child
        notify = free_udp_port() if self.notify else None
        if notify:
            for child in self.devices:
                await child.call("notify", to=f"127.0.0.1:{notify}")
        self.config.write_text(hub_config(self.layout, ports, notify, self.hub_extra))
        await self._start_hub()

    async def _start_server(self) -> None:
        await self._start_hub()

    async def _start_hub(self) -> None:
        self.server, self.url = await start_hub(self.children, "hub", self.config, self.port)
        self.port = int(self.url.rsplit(":", 1)[1])

    def _owner(self, index: int) -> tuple[Child, int]:
        for child, offset in reversed(list(zip(self.devices, self._offsets, strict=True))):
            if index >= offset:
                return child, offset
        raise IndexError(index)

    async def churn(
        self, rate: float, seconds: float
    ) -> tuple[list[tuple[str, int, float]], float]:
        if len(self.devices) != 1:
            raise ChildError("churn needs the devices in one process")
        reply = await self.devices[0].call(
            "churn", rate=rate, seconds=seconds, order=self.layout.spread(), timeout=seconds + 60
        )
        return self._keyed(reply), reply["seconds"]

    async def bump(self, targets: list[int]) -> list[tuple[str, int, float]]:
        child, offset = self._owner(targets[0])
        reply = await child.call("bump", targets=[t - offset for t in targets])
        return [(self.layout.key(i + offset), mark, t) for i, mark, t in reply["writes"]]


class BaselineStack(Stack):
    """`python -m bench.baseline`: the bare python-socketio server."""

    def __init__(self, children: Children, layout: Layout, template: dict[str, Any]) -> None:
        super().__init__("baseline", children, layout)
        self.template = template
        self.port = 0

    async def start(self) -> None:
        self.server = await self.children.python(
            "baseline",
            "bench.baseline",
            "--port",
            str(self.port),
            "--rooms",
            str(self.layout.rooms),
        )
        self.url = self.server.ready["url"]
        self.port = int(self.url.rsplit(":", 1)[1])
        await self.server.call(
            "setup",
            rooms=self.layout.room_ids,
            devices=self.layout.device_ids,
            snapshot=self.template,
        )

    async def _start_server(self) -> None:
        await self.start()

    async def churn(
        self, rate: float, seconds: float
    ) -> tuple[list[tuple[str, int, float]], float]:
        assert self.server is not None
        reply = await self.server.call(
            "churn", rate=rate, seconds=seconds, order=self.layout.spread(), timeout=seconds + 600
        )
        return self._keyed(reply), reply["seconds"]

    async def bump(self, targets: list[int]) -> list[tuple[str, int, float]]:
        assert self.server is not None
        return self._keyed(await self.server.call("bump", targets=targets))


async def accepting(port: int, starting: asyncio.Future[None], timeout: float = 120.0) -> float:
    """`time.time()` of the first successful TCP connect to 127.0.0.1:`port`."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline:
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            if starting.done() and starting.exception() is not None:
                raise ChildError("server failed to start") from starting.exception()
            await asyncio.sleep(0.002)
            continue
        now = time.time()
        writer.close()
        return now
    raise ChildError(f"nothing accepted connections on port {port} within {timeout}s")


async def settle(check: Any, timeout: float, what: str) -> None:
    """Poll the async predicate `check` every 0.1 s until true; ChildError on timeout."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not await check():
        if loop.time() > deadline:
            raise ChildError(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(0.1)
