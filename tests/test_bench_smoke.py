"""Each benchmark scenario, tiny and fast, end to end: the harness must not rot.

These check that a scenario completes and writes well-formed results for both the
hub and the baseline, never how fast anything was.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from bench.__main__ import main

COMMON = ["--quiet-wait", "0", "--poll-interval", "30"]
TINY = {
    "latency": ["--rooms", "2", "--panels", "2", "--devices", "1", "--rate", "20",
                "--seconds", "0.5", "--warmup", "0"],
    "fanout": ["--rooms", "1", "--panels", "3", "--devices", "1", "--rate", "20",
               "--seconds", "0.5", "--warmup", "0", "--ramp-from", "20", "--ramp-steps", "1"],
    "panels": ["--rooms", "2", "--panels", "3", "--seconds", "0.5", "--settle", "0.1"],
    "resync": ["--sizes", "2", "--switchers", "2", "--reconnects", "2", "--storm-rooms", "1",
               "--storm-panels", "3", "--storm-devices", "1"],
    "polling": ["--devices", "4", "--per-room", "2", "--sim-procs", "2", "--seconds", "0.5",
                "--warmup", "0.3", "--interval", "0.1"],  # polls in any 0.5 s, however loaded
    "pipelining": ["--devices", "4", "--per-room", "2", "--sim-procs", "2", "--seconds", "0.6",
                   "--warmup", "0.3", "--rounds", "2", "--interval", "0.1"],
    "scaleout": ["--rooms", "2", "--panels", "2", "--devices", "2", "--fanout-panels", "4",
                 "--rate", "20", "--seconds", "0.5", "--warmup", "0"],
}  # fmt: skip


@pytest.mark.parametrize("scenario", sorted(TINY))
def test_scenario_runs_and_reports(scenario: str, tmp_path: Path) -> None:
    assert main([scenario, *COMMON, "--out", str(tmp_path), *TINY[scenario]]) == 0
    (path,) = tmp_path.glob(f"{scenario}-*.json")
    result = json.loads(path.read_text())
    assert result["scenario"] == scenario and result["machine"]["python"]
    assert set(result["results"]) == {"avhub", "baseline"}
    assert result["rows"] and all(len(row) == 3 for row in result["rows"])
    for kind, outcome in result["results"].items():
        steps = [outcome]
        if scenario == "fanout":
            steps = [outcome["fixed"], *outcome["ramp"]]
        if scenario == "scaleout":  # avhub: memory, redis1, redis2; each latency + fan-out
            stacks = outcome.values() if kind == "avhub" else [outcome]
            steps = [step for stack in stacks for step in stack.values()]
        for step in steps:
            if "delivered" in step:  # every marked change reached every panel, in order
                assert step["delivered"] == step["expected"] > 0, (kind, step)
                assert step["gaps"] == step["duplicates"] == 0, (kind, step)
        if scenario == "resync":
            assert outcome["storm"]["missing"] == 0, kind
            assert outcome["room2"]["replay"]["paths"] == ["replay"], kind
            assert outcome["room2"]["snapshot"]["paths"] == ["snapshot"], kind
            assert outcome["room2"]["replay5"]["paths"] == ["replay"], kind
            assert outcome["room2"]["snapshot5"]["paths"] == ["snapshot"], kind
            if kind == "avhub":  # `sync` over the open connection, both stores
                for room in ("room2", "room2_redis"):
                    assert outcome[room]["sync_replay5"]["paths"] == ["replay"], room
                    assert outcome[room]["sync_snapshot5"]["paths"] == ["snapshot"], room
            switchers = outcome["switchers"]
            assert switchers["snapshot"]["bytes"] > 0 and switchers["unresolved"] == 0, kind
        if scenario in ("polling", "pipelining"):
            assert outcome["requests_per_device_s"] > 0, kind


def test_pipelining_runs_the_hub_of_another_commit_beside(tmp_path: Path) -> None:
    args = ["pipelining", *COMMON, "--out", str(tmp_path), *TINY["pipelining"], "--before", "HEAD"]
    assert main(args) == 0
    (path,) = tmp_path.glob("pipelining-*.json")
    result = json.loads(path.read_text())
    assert set(result["results"]) == {"avhub", "avhub_before", "baseline"}
    assert result["results"]["avhub_before"]["requests_per_device_s"] > 0
    assert any(row[0].startswith("HEAD, one at a time") for row in result["rows"])


def test_polling_with_generic_devices_reports_cpu_per_request(tmp_path: Path) -> None:
    args = ["polling", *COMMON, "--out", str(tmp_path), *TINY["polling"], "--driver", "generic"]
    assert main(args) == 0
    (path,) = tmp_path.glob("polling-*.json")
    result = json.loads(path.read_text())
    assert set(result["results"]) == {"avhub", "generic", "baseline"}
    assert result["results"]["generic"]["requests_per_device_s"] > 0
    rows = {row[0]: row for row in result["rows"]}
    _, generic, pjlink = rows["generic vs pjlink: hub CPU per request (µs)"]
    assert isinstance(generic, float) and isinstance(pjlink, float)  # a number, never timed here


def test_the_handshake_floor_runs_and_reports_both_servers() -> None:
    command = [sys.executable, "-m", "bench.floor", "--connects", "10", "--rounds", "2"]
    done = subprocess.run(
        [*command, "--gap", "0", "--before", "HEAD", "--redis"],
        capture_output=True,
        text=True,
        timeout=180,
        check=True,
    )
    rows = {line[:40].strip(): line[40:].split() for line in done.stdout.splitlines()}
    for name in (
        "fixed bytes (the floor)",
        "avhub, nothing missed",
        "avhub HEAD, nothing missed",
        "avhub, store: redis, nothing missed",
    ):
        p50, p99 = map(float, rows[name])
        assert 0 < p50 <= p99, done.stdout


STOPPED_BY_SIGTERM = """
import asyncio, sys
from pathlib import Path
from bench.proc import Children, run_main

async def main() -> None:
    async with Children(Path(sys.argv[1])) as children:
        sleeper = [sys.executable, "-c", "import time; time.sleep(120)"]
        child = await children.start("sleeper", sleeper, expect_json=False)
        print(child.pid, flush=True)
        await asyncio.Event().wait()

run_main(main())
"""


def test_sigterm_stops_a_bench_and_the_children_it_started(tmp_path: Path) -> None:
    """Each child runs in a session of its own, so only the bench can stop it: SIGTERM to
    the bench must do what Ctrl-C does, not leave hubs and simulators running."""
    bench = subprocess.Popen(
        [sys.executable, "-c", STOPPED_BY_SIGTERM, str(tmp_path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert bench.stdout is not None and bench.stderr is not None
    child = int(bench.stdout.readline())
    try:
        bench.send_signal(signal.SIGTERM)
        assert bench.wait(timeout=30) == 128 + signal.SIGTERM
        assert "stopped by SIGTERM" in bench.stderr.read()
        with pytest.raises(ProcessLookupError):
            os.killpg(child, 0)  # stopped, and reaped by the bench
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(child, signal.SIGKILL)
        bench.kill()
        bench.wait()
        bench.stdout.close()
        bench.stderr.close()
