"""`avhub demo` and `avhub run` as real processes: startup, panels, clean shutdown."""

from __future__ import annotations

import asyncio
import re
import signal
import socket
import subprocess
import sys
from pathlib import Path

import yaml

from tests.helpers import closed_tcp_port, until
from tests.panel import Panel

AVHUB = str(Path(sys.executable).parent / "avhub")
ROOT = Path(__file__).resolve().parent.parent


async def start(*args: str) -> tuple[asyncio.subprocess.Process, str, list[str]]:
    """Start `avhub ARGS`; return the process, its base URL and the room URLs it printed."""
    proc = await asyncio.create_subprocess_exec(
        AVHUB, *args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=ROOT
    )
    assert proc.stdout is not None
    lines: list[str] = []
    async with asyncio.timeout(20):
        while True:
            line = (await proc.stdout.readline()).decode()
            assert line, f"avhub exited early: {(await proc.stderr.read()).decode()[-2000:]}"  # type: ignore[union-attr]
            lines.append(line.rstrip())
            if line.startswith("avhub listening on"):
                base = line.split()[-1]
                break
    async with asyncio.timeout(5):  # the room lines follow at once
        while True:
            line = (await proc.stdout.readline()).decode().rstrip()
            lines.append(line)
            if not line.startswith("  room"):
                break
    rooms = [m.group(1) for line in lines if (m := re.match(r"\s+room \S+ \(.*\): (\S+)$", line))]
    return proc, base, rooms


async def stop(proc: asyncio.subprocess.Process) -> str:
    """SIGTERM, wait, and return stderr; the exit must be clean."""
    proc.send_signal(signal.SIGTERM)
    async with asyncio.timeout(15):
        _, err = await proc.communicate()
    text = err.decode()
    assert proc.returncode == 0, text[-3000:]
    for bad in (
        "Traceback",
        "Task was destroyed",
        "never retrieved",
        "Unclosed",
        "ResourceWarning",
    ):
        assert bad not in text, text[-3000:]
    return text


async def test_demo_serves_both_rooms_and_powers_a_projector() -> None:
    proc, base, rooms = await start("demo", "--listen", "127.0.0.1:0")
    panels: list[Panel] = []
    try:
        assert base.startswith("http://127.0.0.1:")
        assert f"{base}/rooms/boardroom" in rooms and f"{base}/rooms/lecture-hall" in rooms
        for room_url in rooms:
            panel = Panel(base, room_url.rsplit("/", 1)[1])
            panels.append(panel)
            await panel.connect()
        await until(lambda: all(p.snapshot is not None for p in panels))
        hall = next(p for p in panels if p.namespace == "/rooms/lecture-hall")
        # the password-protected projector comes online through the simulator's auth
        await until(lambda: hall.state("projector-left").get("online") is True, timeout=10)
        ack = await hall.command("projector-left", "power_on")
        assert ack == {"ok": True, "result": None}
        await until(lambda: hall.state("projector-left").get("power") == "warming")
        board = next(p for p in panels if p.namespace == "/rooms/boardroom")
        assert board.snapshot is not None and "projector" in board.snapshot["devices"]
    finally:
        for panel in panels:
            await panel.disconnect()
        text = await stop(proc)
    assert "lecture-hall/projector-left online" in text


def test_check_accepts_the_demo() -> None:
    result = subprocess.run(
        [AVHUB, "check", "config/demo.yaml"], cwd=ROOT, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout
    assert "ok" in result.stdout


def test_run_reports_a_bad_config_and_exits_2(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "rooms:\n  lobby:\n    devices:\n      p:\n        driver: pjlink\n        transport: tcp://x:99999\n"
    )
    result = subprocess.run([AVHUB, "run", str(bad)], capture_output=True, text=True)
    assert result.returncode == 2
    assert re.search(r"bad\.yaml:6:\d+: rooms\.lobby\.devices\.p\.transport: ", result.stdout), (
        result.stdout
    )


async def test_sigint_also_shuts_down_cleanly() -> None:
    proc, _, _ = await start("demo", "--listen", "127.0.0.1:0", "--log-level", "debug")
    await asyncio.sleep(0.5)
    proc.send_signal(signal.SIGINT)
    async with asyncio.timeout(15):
        _, err = await proc.communicate()
    assert proc.returncode == 0, err.decode()[-2000:]
    assert "Task was destroyed" not in err.decode()


def test_run_stops_when_redis_cannot_be_reached_and_never_shows_its_password(
    tmp_path: Path,
) -> None:
    port = closed_tcp_port()  # nobody listens there
    config = tmp_path / "redis.yaml"
    store = f"redis://avhub:s3cret-pw@127.0.0.1:{port}/0"
    deployment = {"hub": {"store": store}, "rooms": {"lobby": {"devices": {}}}}
    config.write_text(yaml.safe_dump(deployment))
    result = subprocess.run([AVHUB, "run", str(config)], capture_output=True, text=True, timeout=30)
    assert result.returncode == 1, result.stderr
    assert f"cannot reach Redis at redis://127.0.0.1:{port}/0" in result.stdout
    assert "s3cret" not in result.stdout + result.stderr
    assert "Traceback" not in result.stderr


def test_run_says_in_a_line_when_its_port_is_taken(tmp_path: Path) -> None:
    config = tmp_path / "site.yaml"
    config.write_text(yaml.safe_dump({"rooms": {"lobby": {"devices": {}}}}))
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run(
            [AVHUB, "run", str(config), "--listen", f"127.0.0.1:{port}"],
            capture_output=True,
            text=True,
            timeout=30,
        )
    assert result.returncode == 1, result.stderr
    assert f"avhub: cannot listen on 127.0.0.1:{port}: address already in use" in result.stdout
    assert "Traceback" not in result.stderr, result.stderr
