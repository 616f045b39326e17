"""Scale-out test parts: a real redis-server, `avhub run` processes, a TCP link we can cut.

`redis-server` (env AVHUB_REDIS_SERVER, default `redis-server`) runs on a free loopback
port with persistence off; hubs are real `avhub run` processes stopped by PID.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import os
import signal
import subprocess
import sys
import urllib.request
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any, BinaryIO

import pytest
import yaml
from redis.asyncio import Redis

from hub.cluster.ownership import assign
from tests.helpers import closed_tcp_port, until

AVHUB = str(Path(sys.executable).parent / "avhub")
ROOT = Path(__file__).resolve().parent.parent
REDIS_SERVER = os.environ.get("AVHUB_REDIS_SERVER", "redis-server")


def _append(path: Path) -> BinaryIO:
    return open(path, "ab")


class RedisServer:
    """One redis-server on loopback, persistence off; can be paused, killed and started again."""

    def __init__(self, port: int, logdir: Path) -> None:
        self.port = port
        self.logfile = logdir / f"redis-{port}.log"
        self.proc: asyncio.subprocess.Process | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    async def start(self) -> None:
        argv = [REDIS_SERVER, "--port", str(self.port), "--bind", "127.0.0.1"]
        argv += ["--save", "", "--appendonly", "no", "--daemonize", "no"]
        log = _append(self.logfile)
        try:
            self.proc = await asyncio.create_subprocess_exec(
                *argv, stdout=log, stderr=log, start_new_session=True
            )
        finally:
            log.close()
        client = Redis(port=self.port)
        try:
            await until(lambda: _pings(client), timeout=10, message="redis-server to answer")
        finally:
            await client.aclose()

    def send(self, sig: signal.Signals) -> None:
        assert self.proc is not None
        os.kill(self.proc.pid, sig)

    async def stop(self, sig: signal.Signals = signal.SIGTERM) -> None:
        if self.proc is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.proc.pid, signal.SIGCONT)
            os.kill(self.proc.pid, sig)
        async with asyncio.timeout(10):
            await self.proc.wait()
        self.proc = None

    def client(self) -> Redis:
        return Redis(port=self.port, decode_responses=True)


async def _pings(client: Redis) -> bool:
    try:
        return bool(await client.ping())
    except Exception:
        return False


@pytest.fixture
async def redis_server(tmp_path: Path) -> AsyncIterator[RedisServer]:
    """A fresh redis-server for the test."""
    server = RedisServer(closed_tcp_port(), tmp_path)
    await server.start()
    yield server
    await server.stop(signal.SIGKILL)


class HubProcess:
    """`avhub run FILE` as a child process (its own process group), stopped by PID."""

    def __init__(self, config: Path, name: str) -> None:
        self.config = config
        self.name = name
        self.logfile = config.parent / f"{name}.log"
        self.proc: asyncio.subprocess.Process | None = None
        self.url = ""

    async def start(self) -> HubProcess:
        log = _append(self.logfile)
        try:
            self.proc = await asyncio.create_subprocess_exec(
                AVHUB,
                "run",
                str(self.config),
                "--listen",
                "127.0.0.1:0",
                stdout=subprocess.PIPE,
                stderr=log,
                cwd=ROOT,
                start_new_session=True,
            )
        finally:
            log.close()
        assert self.proc.stdout is not None
        said: list[str] = []
        async with asyncio.timeout(30):
            while True:
                line = (await self.proc.stdout.readline()).decode()
                said.append(line)
                assert line, f"{self.name} exited early: {''.join(said)}{self.log()[-3000:]}"
                if line.startswith("avhub listening on"):
                    self.url = line.split()[-1]
                    return self

    def log(self) -> str:
        return self.logfile.read_text(errors="replace")

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def send(self, sig: signal.Signals) -> None:
        os.kill(self.pid, sig)

    async def stop(self) -> None:
        """SIGTERM and wait for a clean exit."""
        if self.proc is None or self.proc.returncode is not None:
            return
        self.send(signal.SIGTERM)
        try:
            async with asyncio.timeout(20):
                await self.proc.wait()
        except TimeoutError as timeout:
            log = self.log()
            since = log[log.rfind("shutting down") - 200 :][:20000]  # with where each task waits
            raise AssertionError(
                f"{self.name} still running 20 s after SIGTERM:\n{since}"
            ) from timeout
        assert self.proc.returncode == 0, self.log()[-3000:]

    async def kill(self) -> None:
        """kill -9, and reap it."""
        if self.proc is not None and self.proc.returncode is None:
            self.send(signal.SIGKILL)
            await self.proc.wait()

    async def health(self) -> dict[str, Any]:
        return await asyncio.to_thread(_get_json, f"{self.url}/healthz")

    async def snapshot(self, room: str) -> dict[str, Any]:
        return await asyncio.to_thread(_get_json, f"{self.url}/api/rooms/{room}")


def _get_json(url: str) -> dict[str, Any]:
    with urllib.request.urlopen(url, timeout=5) as response:
        result: dict[str, Any] = json.loads(response.read())
        return result


HubStarter = Callable[..., Awaitable[list[HubProcess]]]


@pytest.fixture
async def hub_processes(tmp_path: Path) -> AsyncIterator[HubStarter]:
    """Start `avhub run` processes on one deployment file; every one is killed after the test."""
    started: list[HubProcess] = []

    async def start(deployment: dict[str, Any], count: int, name: str = "hub") -> list[HubProcess]:
        config = tmp_path / f"deployment{len(started)}.yaml"
        config.write_text(yaml.safe_dump(deployment, sort_keys=False))
        hubs = [HubProcess(config, f"{name}{len(started) + i}") for i in range(count)]
        started.extend(hubs)
        await asyncio.gather(*(h.start() for h in hubs))
        return hubs

    yield start
    for hub in started:
        if hub.proc is not None and hub.proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                hub.send(signal.SIGCONT)
            await hub.kill()


def cluster_config(
    redis_url: str,
    ports: list[int],
    ttl: float = 1.5,
    room: dict[str, Any] | None = None,
    node_id: str | None = None,
    **hub: Any,
) -> dict[str, Any]:
    """One room `lab` of PJLink projectors at `ports`, polled fast, on `redis_url`.

    `room`: more of the room (macros, schedules, triggers); `hub`: more hub settings.
    """
    cluster: dict[str, Any] = {"lease_ttl": ttl, "command_timeout": 10}
    if node_id:
        cluster["node_id"] = node_id
    devices = {
        f"proj{i}": {
            "driver": "pjlink",
            "transport": f"tcp://127.0.0.1:{port}",
            "poll_interval": 0.1,
            "detail_interval": 0.1,  # errors too: a settled room has no change still to come
            "timeout": 0.5,
            "retries": 0,
        }
        for i, port in enumerate(ports)
    }
    settings = {
        "store": redis_url,
        "log_level": "info",
        "cluster": cluster,
        "drivers": {"pjlink": {"notify": "off"}},
        **hub,
    }
    return {"hub": settings, "rooms": {"lab": {"devices": devices, **(room or {})}}}


async def owners(redis: Redis, room: str, devices: list[str]) -> dict[str, str | None]:
    """Device → node id of its lease holder (None: free)."""
    values = await redis.mget([f"avhub:{{{room}}}:lease:{d}" for d in devices])
    return {d: (v.partition("|")[0] if v else None) for d, v in zip(devices, values, strict=True)}


def node_pair(keys: list[str], key: str, owner: int) -> tuple[str, str]:
    """Node ids for two hubs such that the plan over `keys` gives `key` to hub `owner` (0, 1)."""
    for i in itertools.count():
        pair = (f"hub-a{i}", f"hub-b{i}")
        if assign(keys, list(pair))[key] == pair[owner]:
            return pair
    raise AssertionError("unreachable")


async def node_ids(hubs: list[HubProcess]) -> dict[str, HubProcess]:
    return {(await h.health())["node"]: h for h in hubs}


class LinkCutter:
    """A TCP proxy in front of Redis for one hub: `cut()` drops it and refuses reconnects."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.port = 0
        self.open = True
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    async def start(self) -> LinkCutter:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    def cut(self) -> None:
        self.open = False
        for writer in list(self._writers):
            writer.transport.abort()
        self._writers.clear()

    def restore(self) -> None:
        self.open = True

    async def close(self) -> None:
        self.cut()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if not self.open:
            writer.transport.abort()
            return
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        except OSError:
            writer.transport.abort()
            return
        self._writers |= {writer, up_writer}
        await asyncio.gather(
            self._pipe(reader, up_writer), self._pipe(up_reader, writer), return_exceptions=True
        )

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while self.open and (data := await reader.read(65536)):
                writer.write(data)
                await writer.drain()
        finally:
            self._writers.discard(writer)
            writer.transport.abort()
