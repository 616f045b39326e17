"""Soak: the demo building for a long time, with everything that happens in months of service.

`python -m bench.soak --minutes 30`: simulators for every device of config/demo.yaml run
in this process; the real `avhub run` runs on a generated deployment file in a child
process on 127.0.0.1. Meanwhile:

- devices churn: every `--fault-every` seconds one simulator gets a fault for a while —
  `drop_after` (answers a few commands, then aborts the connection), `garbage_every`
  (junk before every Nth message) or a stop and a start on the same port;
- panels reconnect: `--panels` Socket.IO panels each stay a few seconds, leave, and come
  back resuming from their last `(epoch, seq)`, sending a command now and then;
- every `--reload-every` seconds the deployment file flips between the demo and the demo
  plus an annex room (a device added, one removed, one changed) and the hub reloads it
  (`POST /api/admin/reload`).

Every `--sample-every` seconds it records the hub process's RSS, open sockets and file
descriptors (from /proc) and its asyncio task count, panels and devices online (from
`/metrics`), and at the end prints the table and whether anything grew: the least-squares
slope over the second half of the run, against the value at its start. Results go to
`bench/results/soak-<time>.json`. Everything is loopback and bounded by `--minutes`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import re
import signal
import sys
import time
from functools import partial
from pathlib import Path
from typing import Any

import aiohttp
import socketio
import yaml

from bench.proc import Child, rss_bytes
from bench.stats import RESULTS
from hub.cli import demo_config_path
from hub.config import Config, load_config, load_config_text
from hub.simulate import Simulators
from simulators.base import Simulator

ADMIN = "soak-admin"
AVHUB = str(Path(sys.executable).with_name("avhub"))
LOOPBACK = "127.0.0.1"
ANNEX = """
rooms:
  annex:
    name: Annex
    devices:
      projector:
        driver: pjlink
        name: Annex projector
        transport: tcp://127.0.0.1:4399
        poll_interval: 2s
        simulator: {warmup: 2s, cooldown: 2s}
"""


def layouts(base: Config) -> list[Config]:
    """The two deployments reloads flip between: the demo, and the demo changed."""
    boardroom = base.rooms["boardroom"]
    devices = {d: device for d, device in boardroom.devices.items() if d != "camera"}  # removed
    devices["projector"] = devices["projector"].model_copy(update={"poll_interval": 3.0})
    rooms = {
        **base.rooms,
        "boardroom": boardroom.model_copy(update={"devices": devices}),
        **load_config_text(ANNEX, "annex.yaml").rooms,
    }
    return [base, base.model_copy(update={"rooms": rooms})]


def _aim(config: Config, transports: dict[tuple[str, str], Any]) -> Config:
    """`config` with each device's transport taken from `transports` (room, device)."""
    rooms = {
        room_id: room.model_copy(
            update={
                "devices": {
                    d: device.model_copy(update={"transport": transports[(room_id, d)]})
                    for d, device in room.devices.items()
                }
            }
        )
        for room_id, room in config.rooms.items()
    }
    return config.model_copy(update={"rooms": rooms})


def aimed_yaml(config: Config) -> str:
    """`config` (already aimed at simulators) as a deployment file for the hub process."""
    data = config.model_dump(mode="json", exclude_none=True)
    for room in data["rooms"].values():
        for device in room["devices"].values():
            device.pop("simulator", None)
    data["hub"].update(
        {"listen": f"{LOOPBACK}:0", "admin_token": ADMIN, "drivers": {"pjlink": {"notify": "off"}}}
    )
    return yaml.safe_dump(data, sort_keys=False)


class Soak:
    """One soak run; see the module docstring."""

    def __init__(self, args: argparse.Namespace, workdir: Path) -> None:
        self.args = args
        self.workdir = workdir
        self.file = workdir / "soak.yaml"
        self.sims = Simulators()
        self.rng = random.Random(args.seed)
        self.hub: Child | None = None
        self.url = ""
        self.stop = asyncio.Event()
        self.samples: list[dict[str, float]] = []
        self.counts = {"reloads": 0, "reload_failures": 0, "faults": 0, "panel_sessions": 0}
        self.counts["panel_errors"] = 0
        self.acks: dict[str, int] = {}  # command results by code
        self.layout = 0
        self.layouts: list[str] = []

    async def prepare(self) -> None:
        """A simulator for every device of either layout; both deployment files aimed at them."""
        configs = layouts(load_config(demo_config_path()))
        union = configs[1].model_copy(
            update={"rooms": {**configs[0].rooms, "annex": configs[1].rooms["annex"]}}
        )
        aimed = {
            (room, device): config.transport
            for room, device, config in (await self.sims.start_for(union)).devices()
        }
        self.layouts = [aimed_yaml(_aim(config, aimed)) for config in configs]
        self.file.write_text(self.layouts[0])

    async def start_hub(self) -> None:
        argv = [AVHUB, "run", str(self.file), "--log-level", "warning"]
        self.hub = Child("hub", argv, self.workdir)
        await self.hub.start(expect_json=False)
        line = await self.hub.read_line(60)
        match = re.search(r"http://[\d.]+:\d+", line)
        if match is None:
            raise RuntimeError(f"unexpected first line from the hub: {line!r}")
        self.url = match.group(0)

    # ---- what happens during the run ------------------------------------------------

    async def reloads(self, http: aiohttp.ClientSession) -> None:
        while not await self._wait(self.args.reload_every):
            self.layout = 1 - self.layout
            self.file.write_text(self.layouts[self.layout])
            headers = {"Authorization": f"Bearer {ADMIN}"}
            async with http.post(f"{self.url}/api/admin/reload", headers=headers) as response:
                self.counts["reloads"] += 1
                if response.status != 200:
                    self.counts["reload_failures"] += 1
                    print(f"reload answered {response.status}: {await response.text()}")

    async def faults(self) -> None:
        running: list[asyncio.Task[None]] = []
        busy: set[Simulator[Any]] = set()
        while not await self._wait(self.args.fault_every):
            idle = [sim for sim in self.sims.running if sim not in busy]
            if not idle:
                continue
            sim = self.rng.choice(idle)
            busy.add(sim)
            task = asyncio.create_task(self._fault(sim))
            task.add_done_callback(partial(_discard, busy, sim))
            running = [t for t in running if not t.done()] + [task]
            self.counts["faults"] += 1
        await asyncio.gather(*running)

    async def _fault(self, sim: Simulator[Any]) -> None:
        kinds = ["drop_after", "garbage_every"] + (["restart"] if sim.pty_path is None else [])
        kind = self.rng.choice(kinds)
        hold = self.rng.uniform(5, 30)
        if kind == "restart":
            port = sim.port
            await sim.stop()
            await self._wait(hold)
            await sim.start(LOOPBACK, port)
            return
        setattr(sim.knobs, kind, self.rng.randint(3, 12))
        await self._wait(hold)
        setattr(sim.knobs, kind, None)

    async def panel(self, index: int) -> None:
        """One panel: connect (resuming), stay a while, command now and then, leave, repeat."""
        resume: dict[str, Any] | None = None
        while not self.stop.is_set():
            room = self.rng.choice(["boardroom", "lecture-hall", "annex"])
            namespace = f"/rooms/{room}"
            client = socketio.AsyncClient(reconnection=False)
            seen: dict[str, Any] = {}
            client.on("snapshot", lambda s, seen=seen: seen.update(s), namespace=namespace)
            client.on(
                "change",
                lambda c, seen=seen: seen.update(epoch=c["epoch"], seq=c["seq"]),
                namespace=namespace,
            )
            auth = {"resume": resume} if resume and resume.get("room") == room else {}
            try:
                await client.connect(
                    self.url,
                    namespaces=[namespace],
                    transports=["websocket"],
                    auth=auth,
                    wait_timeout=5,
                )
                self.counts["panel_sessions"] += 1
                await self._wait(self.rng.uniform(2, 15))
                powered = [
                    d for d, e in seen.get("devices", {}).items() if "power_on" in e["actions"]
                ]
                if client.connected and powered and self.rng.random() < 0.5:
                    action = self.rng.choice(["power_on", "power_off"])
                    command = {"device": self.rng.choice(powered), "action": action, "args": {}}
                    ack = await client.call("command", command, namespace=namespace, timeout=60)
                    code = "ok" if ack.get("ok") else ack["error"]["code"]
                    self.acks[code] = self.acks.get(code, 0) + 1
            except (socketio.exceptions.SocketIOError, OSError):
                self.counts["panel_errors"] += 1  # the room is gone in this layout, say
            finally:
                if "epoch" in seen:
                    resume = {"room": room, "epoch": seen["epoch"], "seq": seen["seq"]}
                with contextlib.suppress(Exception):
                    await client.disconnect()
            await self._wait(self.rng.uniform(0.1, 2))

    async def sampler(self, http: aiohttp.ClientSession) -> None:
        started = time.monotonic()
        while True:
            self.samples.append(await self.sample(http, time.monotonic() - started))
            row = self.samples[-1]
            print(
                f"{row['t']:7.0f}s  rss {row['rss_mb']:6.1f} MB  sockets {row['sockets']:4.0f}  "
                f"fds {row['fds']:4.0f}  tasks {row['tasks']:4.0f}  panels {row['panels']:3.0f}  "
                f"online {row['online']:2.0f}/{row['devices']:2.0f}",
                flush=True,
            )
            if await self._wait(self.args.sample_every):
                return

    async def sample(self, http: aiohttp.ClientSession, t: float) -> dict[str, float]:
        assert self.hub is not None
        pid = self.hub.pid
        links = []
        for fd in os.listdir(f"/proc/{pid}/fd"):
            with contextlib.suppress(OSError):
                links.append(os.readlink(f"/proc/{pid}/fd/{fd}"))
        async with http.get(f"{self.url}/metrics") as response:
            text = await response.text()
        metrics = _samples(text)
        return {
            "t": t,
            "rss_mb": rss_bytes(pid) / 2**20,
            "sockets": sum(1 for link in links if link.startswith("socket:")),
            "fds": len(links),
            "tasks": metrics.get("avhub_asyncio_tasks", 0.0),
            "panels": metrics.get("avhub_panels_connected", 0.0),
            "online": metrics.get("avhub_device_online", 0.0),
            "devices": metrics.get("avhub_device_online#count", 0.0),
        }

    async def _wait(self, seconds: float) -> bool:
        """Sleep, or return True at once when the run is over."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.stop.wait(), seconds)
        return self.stop.is_set()

    async def run(self) -> dict[str, Any]:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):  # stop early, cleanly, with what was sampled
            loop.add_signal_handler(sig, self.stop.set)
        await self.prepare()
        try:
            await self.start_hub()
            async with aiohttp.ClientSession() as http:
                tasks = [
                    asyncio.create_task(self.sampler(http)),
                    asyncio.create_task(self.reloads(http)),
                    asyncio.create_task(self.faults()),
                    *(asyncio.create_task(self.panel(i)) for i in range(self.args.panels)),
                ]
                await self._wait(self.args.minutes * 60)
                self.stop.set()
                await asyncio.gather(*tasks)
        finally:
            if self.hub is not None:
                await self.hub.stop()
            await self.sims.stop()
        return {
            "samples": self.samples,
            "counts": self.counts,
            "commands": self.acks,
            "growth": growth(self.samples),
        }


def _discard(busy: set[Simulator[Any]], sim: Simulator[Any], _: object) -> None:
    busy.discard(sim)


def _samples(text: str) -> dict[str, float]:
    """Sums per metric name of a Prometheus scrape (and `name#count`: how many series)."""
    from prometheus_client.parser import text_string_to_metric_families

    out: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[s.name] = out.get(s.name, 0.0) + s.value
            out[f"{s.name}#count"] = out.get(f"{s.name}#count", 0.0) + 1
    return out


def growth(samples: list[dict[str, float]]) -> dict[str, dict[str, float]]:
    """Per measure: value at the start of the second half, at the end, and the slope (per hour)
    of a least-squares line over the second half (the first half is warm-up)."""
    half = samples[len(samples) // 2 :]
    out: dict[str, dict[str, float]] = {}
    if len(half) < 3:
        return out
    for key in ("rss_mb", "sockets", "fds", "tasks"):
        xs, ys = [s["t"] for s in half], [s[key] for s in half]
        mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
        var = sum((x - mx) ** 2 for x in xs)
        slope = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / var if var else 0.0
        out[key] = {"from": ys[0], "to": ys[-1], "max": max(ys), "per_hour": slope * 3600}
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.soak", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--minutes", type=float, default=30.0, help="how long to run")
    parser.add_argument("--panels", type=int, default=20, help="reconnecting panels")
    parser.add_argument("--reload-every", type=float, default=180.0, help="seconds between reloads")
    parser.add_argument("--fault-every", type=float, default=10.0, help="seconds between faults")
    parser.add_argument("--sample-every", type=float, default=30.0, help="seconds between samples")
    parser.add_argument("--seed", type=int, default=13)
    parser.add_argument("--out", type=Path, default=RESULTS, help="directory for the JSON result")
    args = parser.parse_args(argv)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    workdir = args.out / "runs" / f"soak-{stamp}"
    workdir.mkdir(parents=True, exist_ok=True)
    result = asyncio.run(Soak(args, workdir).run())
    result["params"] = {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()}
    out = args.out / f"soak-{stamp}.json"
    out.write_text(json.dumps(result, indent=1))
    summary = {k: result[k] for k in ("counts", "commands", "growth")}
    print(json.dumps(summary, indent=1))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
