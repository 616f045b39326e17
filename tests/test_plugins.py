"""Driver packages end to end: the worked example of docs/writing-a-driver.md installed beside
a broken plug-in, then `avhub check`, `avhub drivers`, `avhub run --simulate` with a panel and
a macro, and the example's own tests on the public test kit, each as a real process."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers import until
from tests.panel import Panel
from tests.plugins import EXAMPLE, ROOT, install, write_project
from tests.test_cli_demo import AVHUB, start, stop

BROKEN = (
    "driver plug-in 'broken' (package broken-plugin 0.1.0, entry point broken_plugin:SPEC) "
    "failed to load: ModuleNotFoundError: No module named 'avhub_missing_dependency'"
)
LAMP_SIMULATOR = (
    "simulator plug-in 'lamp' (package lamp-plugin 0.1.0, entry point lamp_plugin:LampSimulator) "
    "failed to load: AttributeError: module 'lamp_plugin' has no attribute 'LampSimulator'"
)
# A driver whose simulator entry point names nothing: the driver loads, its simulator does not.
LAMP = """\
from typing import Literal

from drivers.spec import DriverSpec
from relay_plugin.config import RelayConfig
from relay_plugin.driver import RelayDriver


class LampConfig(RelayConfig):
    driver: Literal["lamp"]


class LampDriver(RelayDriver):
    name = "lamp"


SPEC = DriverSpec(LampDriver, LampConfig)
"""


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder holding, as pip would, the relay example, a broken plug-in and `lamp`."""
    root = tmp_path_factory.mktemp("plugins")
    site = root / "site"
    install(EXAMPLE, site)
    broken = write_project(
        root / "broken",
        "broken-plugin",
        {"avhub.drivers": {"broken": "broken_plugin:SPEC"}},
        {"__init__.py": "import avhub_missing_dependency\n"},
    )
    install(broken, site)
    lamp = write_project(
        root / "lamp",
        "lamp-plugin",
        {
            "avhub.drivers": {"lamp": "lamp_plugin:SPEC"},
            "avhub.simulators": {"lamp": "lamp_plugin:LampSimulator"},
        },
        {"__init__.py": LAMP},
    )
    install(lamp, site)
    return site


@pytest.fixture
def with_site(site: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Processes started from here see the plug-ins (and write no bytecode into them)."""
    monkeypatch.setenv("PYTHONPATH", str(site))
    monkeypatch.setenv("PYTHONDONTWRITEBYTECODE", "1")
    yield site


def avhub(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [AVHUB, *args], cwd=cwd, capture_output=True, text=True, timeout=60, env=os.environ
    )


def deployment(folder: Path, text: str | None = None) -> str:
    """`deploy.yaml` in `folder`: `text`, or the example's (a relay box and a macro)."""
    example = (EXAMPLE / "deploy.yaml").read_text()
    (folder / "deploy.yaml").write_text(example if text is None else textwrap.dedent(text))
    return "deploy.yaml"


def test_check_accepts_a_plugin_device_and_warns_of_the_broken_plugin(
    with_site: Path, tmp_path: Path
) -> None:
    result = avhub("check", deployment(tmp_path), cwd=tmp_path)
    assert (result.returncode, result.stdout) == (0, "deploy.yaml: ok (1 room, 1 device)\n")
    assert result.stderr.splitlines() == [f"warning: {BROKEN}", f"warning: {LAMP_SIMULATOR}"]


def test_a_device_of_the_broken_plugin_is_a_located_problem(
    with_site: Path, tmp_path: Path
) -> None:
    file = """\
        hub:
          drivers: {broken: {}}
        rooms:
          lab:
            devices:
              stage: {driver: relay, transport: "tcp://192.0.2.10"}
              sign:
                driver: broken
                transport: tcp://192.0.2.11:23
        """
    result = avhub("check", deployment(tmp_path, file), cwd=tmp_path)
    assert result.returncode == 2
    assert result.stdout.splitlines() == [
        f"deploy.yaml:2:13: hub.drivers.broken: {BROKEN}",
        f"deploy.yaml:8:17: rooms.lab.devices.sign.driver: {BROKEN}",
    ]


def test_check_holds_plugin_actions_and_simulators_to_the_same_rules(
    with_site: Path, tmp_path: Path
) -> None:
    """A macro step is checked against the plug-in's argument model and the device's config;
    a `simulator:` block of a driver whose simulator did not load is a problem."""
    file = """\
        rooms:
          lab:
            devices:
              stage: {driver: relay, transport: "tcp://192.0.2.10", relays: 2}
              lamp: {driver: lamp, transport: "tcp://192.0.2.12", simulator: {power: true}}
            macros:
              show:
                steps:
                  - {device: stage, action: set_relay, args: {relay: 3, closed: true}}
        """
    result = avhub("check", deployment(tmp_path, file), cwd=tmp_path)
    assert result.returncode == 2
    assert result.stdout.splitlines() == [
        "deploy.yaml:5:59: rooms.lab.devices.lamp.simulator: "
        f"driver 'lamp' has no simulator: {LAMP_SIMULATOR}",
        "deploy.yaml:9:62: rooms.lab.macros.show.steps[0].args.relay: "
        "the box has 2 relays, there is no relay 3",
    ]


def test_drivers_lists_plugins_with_their_origin_and_the_broken_one_with_its_error(
    with_site: Path, tmp_path: Path
) -> None:
    table = avhub("drivers", cwd=tmp_path)
    assert table.returncode == 0, table.stderr
    lines = table.stdout.splitlines()
    relay = next(i for i, line in enumerate(lines) if line.startswith("relay "))
    assert lines[relay].split(None, 4)[1:4] == ["package", "relay-plugin", "0.1.0"]
    assert lines[relay + 1].split() == ["actions:", "power_on,", "power_off,", "set_relay"]
    assert lines[lines.index("plug-ins left out:") :] == [
        "plug-ins left out:",
        f"  {BROKEN}",
        f"  {LAMP_SIMULATOR}",
    ]
    described = avhub("drivers", "relay", "--json", cwd=tmp_path)
    info = json.loads(described.stdout)
    assert info["origin"] == {
        "kind": "package",
        "package": "relay-plugin",
        "version": "0.1.0",
        "entry_point": "relay_plugin.driver:SPEC",
    }
    assert info["config_schema"]["properties"]["relays"]["maximum"] == 16
    assert info["actions"]["set_relay"]["required"] == ["relay", "closed"]
    assert info["simulator"]["knobs_schema"]["properties"]["power"]["type"] == "boolean"
    failed = avhub("drivers", "broken", cwd=tmp_path)
    assert failed.returncode == 1
    assert failed.stdout.startswith(BROKEN + "\n\nTraceback")


async def test_a_hub_runs_the_plugin_device_against_its_simulator(
    with_site: Path, tmp_path: Path
) -> None:
    """`avhub run --simulate`: the panel sees the device, drives it, and runs a macro of it."""
    file = str(tmp_path / deployment(tmp_path))
    proc, base, _ = await start("run", file, "--simulate", "--listen", "127.0.0.1:0")
    panel = Panel(base, "studio")
    try:
        await panel.connect()
        await until(lambda: "relays" in (panel.devices.get("stage") or {}).get("state", {}), 15)
        device = panel.devices["stage"]
        assert device["driver"] == "relay" and set(device["actions"]) == {
            "power_on",
            "power_off",
            "set_relay",
        }
        assert panel.state("stage")["relays"] == {"1": False, "2": False}
        assert await panel.command("stage", "power_on") == {"ok": True, "result": None}
        await until(lambda: panel.state("stage")["power"] == "on")
        await panel.command("stage", "power_off")
        ack = await panel.command("room", "show")
        assert ack["ok"] is True, ack
        await until(lambda: panel.state("stage")["relays"] == {"1": False, "2": True})
        assert panel.state("stage")["power"] == "on"
    finally:
        await panel.disconnect()
        log = await stop(proc)
    assert f"{BROKEN}; no device uses it, running without it" in log


def test_run_simulate_refuses_a_device_whose_simulator_did_not_load(
    with_site: Path, tmp_path: Path
) -> None:
    file = (
        'rooms:\n  lab:\n    devices:\n      lamp: {driver: lamp, transport: "tcp://192.0.2.12"}\n'
    )
    result = avhub(
        "run", deployment(tmp_path, file), "--simulate", "--listen", "127.0.0.1:0", cwd=tmp_path
    )
    assert result.returncode == 2, result.stderr
    assert result.stdout == (
        f"deploy.yaml: lab/lamp: cannot simulate: driver 'lamp' has no simulator: {LAMP_SIMULATOR}\n"
    )


def test_the_example_passes_its_own_tests_on_the_public_test_kit(
    with_site: Path, tmp_path: Path
) -> None:
    """What a plug-in author runs: pytest in the package's folder, the test kit from avhub."""
    project = tmp_path / "relay-plugin"
    shutil.copytree(EXAMPLE, project)
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests"],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=120,
        env=os.environ,
    )
    assert result.returncode == 0, result.stdout[-3000:]
    assert "4 passed" in result.stdout


def test_the_guide_shows_every_file_of_the_example_as_it_is() -> None:
    """docs/writing-a-driver.md quotes the tested example whole, so the guide cannot drift."""
    guide = (ROOT / "docs" / "writing-a-driver.md").read_text()
    languages = {".py": "python", ".toml": "toml", ".yaml": "yaml"}
    files = sorted(p for p in EXAMPLE.rglob("*") if p.suffix in languages)
    assert len(files) == 8
    for path in files:
        block = f"```{languages[path.suffix]}\n{path.read_text()}```\n"
        assert block in guide, f"{path.relative_to(EXAMPLE)} is not in the guide as it is"
