"""`avhub drivers [NAME] [--json]` on the built-in drivers (packages: tests/test_plugins.py)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from drivers import DRIVERS
from hub.cli import build_parser, main

AVHUB = str(Path(sys.executable).parent / "avhub")


def test_the_table_lists_every_driver_with_its_origin_description_and_actions(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["drivers"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["DRIVER", "ORIGIN", "DESCRIPTION"]
    rows = {line.split()[0]: i for i, line in enumerate(lines) if not line.startswith(" ")}
    assert list(rows)[1:] == list(DRIVERS)
    pjlink = rows["pjlink"]
    assert lines[pjlink].split()[1:3] == ["built-in", "A"]
    assert lines[pjlink].endswith("A PJLink class 1/2 projector or display.")
    assert lines[pjlink + 1].split()[:3] == ["actions:", "power_on,", "power_off,"]
    generic = rows["generic"]  # its devices' actions come from their config
    assert lines[generic + 1].split() == [
        "actions:",
        "(each",
        "device's",
        "own,",
        "from",
        "its",
        "config)",
    ]


def test_one_driver_in_words(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["drivers", "pjlink"]) == 0
    text = capsys.readouterr().out
    lines = text.splitlines()
    assert lines[:3] == [
        "pjlink: A PJLink class 1/2 projector or display.",
        "origin: built-in",
        "driver class: drivers.pjlink.driver.PjlinkDriver",
    ]
    assert lines[lines.index("config options (a device with driver: pjlink):") + 3].split() == [
        "transport",
        "string,",
        "required",
        "tcp://,",
        "udp://,",
        "serial://,",
        "socket://",
        "or",
        "rfc2217://",
        "URL",
    ]
    assert (
        "  retries          integer >= 0 <= 10, default 2      extra tries after a failed request"
        in lines
    )
    assert "hub settings (hub.drivers.pjlink):" in lines
    assert "  select_input(input: string)" in lines
    assert "  set_freeze(freeze: boolean) - freeze the picture (class 2)" in lines
    assert "simulator (built-in) knobs:" in lines
    assert any(line.split()[:3] == ["pjclass", "1", "|"] for line in lines)


def test_one_driver_as_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["drivers", "samsung_mdc", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["name"] == "samsung_mdc" and info["origin"] == {"kind": "built-in"}
    schema = info["config_schema"]
    assert schema["required"] == ["driver", "transport"]
    assert schema["properties"]["display_id"] == {
        "default": 0,
        "description": "display ID set in the display's menu (0-253); 254 reaches any display",
        "maximum": 254,
        "minimum": 0,
        "title": "Display Id",
        "type": "integer",
    }
    assert info["actions"]["power_on"] == {
        "type": "object",
        "properties": {},
        "additionalProperties": False,
    }
    assert info["actions"]["set_volume"]["required"] == ["level"]
    assert info["settings_schema"] is None
    assert "display_id" in info["simulator"]["knobs_schema"]["properties"]


def test_every_driver_as_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["drivers", "--json"]) == 0
    catalog = json.loads(capsys.readouterr().out)
    assert [d["name"] for d in catalog["drivers"]] == list(DRIVERS)
    assert catalog["failures"] == []


def test_an_unknown_name_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["drivers", "pjlnk"]) == 2
    assert capsys.readouterr().out.startswith(
        "avhub drivers: no driver 'pjlnk'; did you mean 'pjlink'? (known: pjlink, "
    )


def test_a_reader_that_stops_early_gets_no_traceback() -> None:
    """`avhub drivers | head -1`: the pipe closes before the catalog is written."""
    read, write = os.pipe()
    os.close(read)
    try:
        result = subprocess.run(
            [AVHUB, "drivers"], stdout=write, stderr=subprocess.PIPE, text=True, timeout=60
        )
    finally:
        os.close(write)
    assert result.returncode == 1
    assert result.stderr == ""


@pytest.mark.parametrize(("given", "seconds"), [("1", 1.0), ("0.5", 0.5), ("250ms", 0.25)])
def test_discover_takes_plain_seconds_as_deployment_files_do(given: str, seconds: float) -> None:
    assert build_parser().parse_args(["discover", "--timeout", given]).timeout == seconds
