"""`avhub run` for the long haul, as a real process: SIGHUP reloads the file (with --simulate
too), JSON log lines, and `avhub check` warning about open rooms on the network."""

from __future__ import annotations

import json
import signal
import subprocess
from pathlib import Path
from typing import Any

import aiohttp
import yaml

from tests.helpers import until
from tests.panel import Panel
from tests.scrape import Scrape
from tests.test_cli_demo import AVHUB, start, stop


def deployment(*rooms: str) -> dict[str, Any]:
    proj = {
        "driver": "pjlink",
        "transport": "tcp://127.0.0.1:4352",
        "poll_interval": 0.2,
        "reconnect_min": 0.05,
    }
    return {
        "hub": {"listen": "127.0.0.1:0"},
        "rooms": {r: {"name": f"Room {r}", "devices": {"proj": dict(proj)}} for r in rooms},
    }


def write(path: Path, config: dict[str, Any]) -> None:
    path.write_text(yaml.safe_dump(config, sort_keys=False))


async def room_ids(base: str) -> list[str]:
    async with aiohttp.ClientSession() as http, http.get(f"{base}/api/rooms") as response:
        return [room["id"] for room in (await response.json())["rooms"]]


async def test_sighup_reloads_the_file_with_simulators_and_logs_json_lines(tmp_path: Path) -> None:
    path = tmp_path / "site.yaml"
    write(path, deployment("lobby"))
    proc, base, _ = await start("run", str(path), "--simulate", "--log-format", "json")
    panel = Panel(base, "lobby")
    try:
        await panel.connect()
        await until(lambda: panel.snapshot is not None and panel.state("proj").get("online"))
        assert await frozen(base) > 10_000  # start-up objects out of full collections
        write(path, deployment("lobby", "annex"))
        proc.send_signal(signal.SIGHUP)
        await until(
            lambda: _in(room_ids(base), "annex"), timeout=10, message="the added room served"
        )
        annex = Panel(base, "annex")
        await annex.connect()
        await until(lambda: annex.snapshot is not None and annex.state("proj").get("online"), 10)
        await annex.disconnect()
        assert await frozen(base) > 10_000  # thawed for the reload, settled again after
        broken = deployment("lobby")
        broken["rooms"]["lobby"]["devices"]["proj"]["poll_interval"] = "often"
        write(path, broken)
        proc.send_signal(signal.SIGHUP)
        await until(lambda: reloads(base, "invalid"), timeout=10, message="the reload refused")
        assert "annex" in await room_ids(base)  # still there: nothing changed
        assert panel.sio.connected and panel.connects == 1 and panel.snapshots == 1
    finally:
        await panel.disconnect()
        text = await stop(proc)
    lines = [json.loads(line) for line in text.splitlines() if line.strip()]
    assert all(
        set(line) >= {"time", "level", "logger", "room", "device", "message"} for line in lines
    )
    assert any(
        (line["room"], line["device"], line["level"]) == ("annex", "proj", "info")
        and "online" in line["message"]
        for line in lines
    ), lines
    problems = [line["message"] for line in lines if line["level"] == "error"]
    assert any(p.startswith(f"{path}:") and "poll_interval" in p for p in problems), problems
    messages = [line["message"] for line in lines]
    assert any("(1 room, 1 device)" in m for m in messages), messages  # at start
    reloaded = f"reloaded {path}: rooms 1 added, 0 removed, 0 changed; devices 0 added, "
    assert any(m.startswith(reloaded) for m in messages), messages


async def _in(ids: object, room: str) -> bool:
    return room in await ids  # type: ignore[operator]


async def scrape(base: str) -> Scrape:
    """The hub's /metrics."""
    async with aiohttp.ClientSession() as http, http.get(f"{base}/metrics") as response:
        return Scrape(await response.text())


async def frozen(base: str) -> float:
    """Objects the hub froze out of full collections (hub/heap.py), from /metrics."""
    return (await scrape(base)).get("avhub_gc_frozen_objects", 0) or 0


async def reloads(base: str, result: str) -> float | None:
    """The hub's count of reloads that ended in `result`, from /metrics."""
    return (await scrape(base)).get("avhub_reloads_total", 0, result=result)


def test_check_warns_about_open_rooms_on_the_network(tmp_path: Path) -> None:
    path = tmp_path / "wide.yaml"
    rooms = {"open": {"devices": {}}, "shut": {"panel_tokens": ["t"], "devices": {}}}
    write(path, {"hub": {"listen": "0.0.0.0:8080"}, "rooms": rooms})
    result = subprocess.run([AVHUB, "check", str(path)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout
    warnings = [line for line in result.stdout.splitlines() if ": warning: " in line]
    assert len(warnings) == 1 and "room 'open' has no panel_tokens" in warnings[0]
    write(path, {"hub": {"listen": "127.0.0.1:8080"}, "rooms": rooms})
    result = subprocess.run([AVHUB, "check", str(path)], capture_output=True, text=True)
    assert "warning" not in result.stdout
