"""Deployment config: YAML → typed models, located problems, and `avhub check`."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

import hub.config
from drivers import DRIVERS
from drivers.errors import ConfigError
from hub.config import (
    Config,
    ConfigFileError,
    Problem,
    load_config,
    load_config_text,
    parse_listen,
)

AVHUB = Path(sys.executable).parent / "avhub"
EXAMPLE = Path(__file__).resolve().parent.parent / "config" / "examples" / "campus.yaml"

VALID = """\
rooms:
  boardroom:
    devices:
      proj1:
        driver: pjlink
        transport: tcp://10.0.1.20
"""


def load(text: str, env: dict[str, str] | None = None) -> Config:
    """Load dedented YAML text with an explicit environment."""
    return load_config_text(textwrap.dedent(text), "deploy.yaml", env or {})


def problems(text: str, env: dict[str, str] | None = None) -> list[str]:
    """Every problem `text` has, as printed by `avhub check`."""
    with pytest.raises(ConfigFileError) as caught:
        load(text, env)
    return [str(p) for p in caught.value.problems]


def prefixes(lines: list[str]) -> list[str]:
    """`file:line:column: path:` of each problem line."""
    return [line[: line.index(": ", line.index(": ") + 2) + 1] for line in lines]


def check(path: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run the installed `avhub check` console script on `path`."""
    base = {"PATH": os.environ.get("PATH", ""), "HOME": os.environ.get("HOME", "/tmp")}
    return subprocess.run(
        [str(AVHUB), "check", str(path)],
        capture_output=True,
        text=True,
        env={**base, **(env or {})},
        cwd=path.parent,
        timeout=60,
        check=False,
    )


# ---------------------------------------------------------------------------- valid files


def test_minimal_file_gets_defaults() -> None:
    config = load(VALID)
    assert config.hub.listen == "127.0.0.1:8080"
    assert (config.hub.host, config.hub.port) == ("127.0.0.1", 8080)
    assert config.hub.admin_token is None
    assert config.hub.store == "memory"
    assert config.hub.replay_size == 1000
    assert config.hub.replay_max_age == 600.0
    assert config.hub.log_level == "info"
    room = config.rooms["boardroom"]
    assert room.name == "boardroom"
    assert room.panel_tokens == []
    device = room.devices["proj1"]
    assert device.driver == "pjlink"
    assert str(device.transport) == "tcp://10.0.1.20:4352"
    assert list(config.devices()) == [("boardroom", "proj1", device)]


def test_full_file() -> None:
    config = load(
        """\
        hub:
          listen: "[::1]:0"
          admin_token: secret
          store: redis://cache:6379/2
          replay_size: 50
          replay_max_age: 2m
          log_level: DEBUG
        rooms:
          boardroom:
            name: Boardroom
            panel_tokens: [a, b]
            devices:
              proj1:
                driver: pjlink
                transport: serial:///dev/ttyUSB0?baudrate=19200
                poll_interval: 250ms
                password: JBMIAProjectorLink
                simulator: {warmup: 1s, input_names: {"31": Table}}
        """
    )
    assert (config.hub.host, config.hub.port) == ("::1", 0)
    assert config.hub.replay_max_age == 120.0
    assert config.hub.log_level == "debug"
    room = config.rooms["boardroom"]
    assert room.name == "Boardroom"
    assert room.panel_tokens == ["a", "b"]
    device = room.devices["proj1"]
    assert device.poll_interval == 0.25
    assert device.simulator == {"warmup": "1s", "input_names": {"31": "Table"}}


def test_models_are_frozen() -> None:
    config = load(VALID)
    with pytest.raises(ValueError):
        config.hub.listen = "0.0.0.0:1"  # type: ignore[misc]


def test_devices_configured_alike_share_their_set_of_given_keys() -> None:
    """One set for every device given the same keys; copies and changes stay their own."""
    spec = DRIVERS["pjlink"].config
    first = spec.model_validate({"driver": "pjlink", "transport": "tcp://10.0.0.1", "timeout": 2})
    second = spec.model_validate({"driver": "pjlink", "transport": "tcp://10.0.0.2", "timeout": 3})
    assert first.model_fields_set is second.model_fields_set
    assert first.model_fields_set == {"driver", "transport", "timeout"}
    changed = first.model_copy(update={"retries": 5})
    assert changed.model_fields_set == {"driver", "transport", "timeout", "retries"}
    assert second.model_fields_set == {"driver", "transport", "timeout"}
    assert first.model_dump(exclude_unset=True)["timeout"] == 2.0


def test_keys_are_text_and_nulls_mean_empty() -> None:
    config = load("hub:\nrooms:\n  101:\n    devices:\n")
    assert list(config.rooms) == ["101"]
    assert config.rooms["101"].devices == {}


def test_merge_keys_and_x_keys() -> None:
    config = load(
        """\
        x-projector: &projector
          driver: pjlink
          poll_interval: 10s
        rooms:
          a:
            devices:
              p1:
                <<: *projector
                transport: tcp://10.0.0.1
              p2:
                <<: *projector
                transport: tcp://10.0.0.2
                poll_interval: 1s
        """
    )
    devices = config.rooms["a"].devices
    assert (devices["p1"].poll_interval, devices["p2"].poll_interval) == (10.0, 1.0)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("127.0.0.1:8080", ("127.0.0.1", 8080)),
        ("0.0.0.0:0", ("0.0.0.0", 0)),
        ("hub.local:65535", ("hub.local", 65535)),
        ("[::]:80", ("::", 80)),
    ],
)
def test_parse_listen(text: str, expected: tuple[str, int]) -> None:
    assert parse_listen(text) == expected


@pytest.mark.parametrize("text", ["8080", ":8080", "host:", "host:65536", "::1:80", "h:x", "a b:1"])
def test_parse_listen_rejects(text: str) -> None:
    with pytest.raises(ValueError):
        parse_listen(text)


# ---------------------------------------------------------------------------- ${VAR}

SUBST = """\
hub:
  listen: ${HOST:-127.0.0.1}:${PORT}
  admin_token: ${TOKEN:-}
  replay_size: ${SIZE}
  store: "${STORE:-memory}"
rooms:
  a:
    name: "$${NOT_A_VAR} costs $$5 ${EMPTY:-fallback}"
    panel_tokens: ["${PIN}", "${PIN}x"]
    devices:
      p:
        driver: pjlink
        transport: tcp://${PROJ_HOST}
        poll_interval: ${POLL}
        password: "${PIN}"
"""


@pytest.fixture(params=["c", "python"])
def loader(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """Run a test with the libyaml loader and with the pure-Python one."""
    if request.param == "python":
        monkeypatch.setattr(hub.config, "_Loader", yaml.SafeLoader)
    elif not hasattr(yaml, "CSafeLoader"):
        pytest.skip("libyaml is not available")


@pytest.mark.usefixtures("loader")
def test_substitution_rules() -> None:
    env = {"PORT": "9000", "SIZE": "77", "PIN": "1234", "PROJ_HOST": "10.0.0.9", "POLL": "5s"}
    env["EMPTY"] = ""
    config = load(SUBST, env)
    assert config.hub.listen == "127.0.0.1:9000"
    assert config.hub.admin_token is None  # a whole plain reference to "" is null
    assert config.hub.replay_size == 77
    assert config.hub.store == "memory"
    room = config.rooms["a"]
    assert room.name == "${NOT_A_VAR} costs $$5 fallback"
    assert room.panel_tokens == ["1234", "1234x"]
    device = room.devices["p"]
    assert device.poll_interval == 5.0
    assert device.password == "1234"  # type: ignore[attr-defined]
    assert str(device.transport) == "tcp://10.0.0.9:4352"


@pytest.mark.usefixtures("loader")
def test_plain_reference_is_read_as_yaml_and_quoted_stays_text() -> None:
    text = "rooms:\n  a:\n    name: ${N}\n    devices: {}\n"
    assert problems(text, {"N": "42"}) == [
        "deploy.yaml:3:11: rooms.a.name: expected string, got 42 (quote it to keep it as text)"
    ]
    assert load(text.replace("${N}", '"${N}"'), {"N": "42"}).rooms["a"].name == "42"


def test_unset_variables_are_all_reported_without_follow_on_errors() -> None:
    assert problems(SUBST, {"POLL": "5s"}) == [
        "deploy.yaml:2:11: hub.listen: environment variable PORT is not set",
        "deploy.yaml:4:16: hub.replay_size: environment variable SIZE is not set",
        "deploy.yaml:9:20: rooms.a.panel_tokens[0]: environment variable PIN is not set",
        "deploy.yaml:9:30: rooms.a.panel_tokens[1]: environment variable PIN is not set",
        "deploy.yaml:13:20: rooms.a.devices.p.transport: environment variable PROJ_HOST is not set",
        "deploy.yaml:15:19: rooms.a.devices.p.password: environment variable PIN is not set",
    ]


def test_bad_references() -> None:
    found = problems("hub:\n  admin_token: ${1X}-${OPEN\nrooms: {a: {devices: {}}}\n")
    assert prefixes(found) == ["deploy.yaml:2:16: hub.admin_token:"] * 2
    assert "bad reference '${1X}'" in found[0]


def test_env_defaults_to_os_environ(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AVHUB_TEST_ROOM_NAME", "From env")
    text = "rooms:\n  a:\n    name: ${AVHUB_TEST_ROOM_NAME}\n    devices: {}\n"
    assert load_config_text(text).rooms["a"].name == "From env"


# ---------------------------------------------------------------------------- problems


def test_problem_format_and_error_type() -> None:
    problem = Problem("f.yaml", 3, 7, "rooms.a", "boom")
    assert str(problem) == "f.yaml:3:7: rooms.a: boom"
    with pytest.raises(ConfigError):
        load("rooms: {}\n")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", "deploy.yaml:1:1: -: the file is empty"),
        ("- a\n", "deploy.yaml:1:1: -: expected a mapping with 'hub' and 'rooms', got a list"),
        ("hub: {}\n", "deploy.yaml:1:1: rooms: missing required key 'rooms'"),
        ("rooms: {}\n", "deploy.yaml:1:8: rooms: at least one room is required"),
        ("rooms:\n  a:\n", "deploy.yaml:2:5: rooms.a: expected mapping, got null"),
        ("rooms:\n  a: {}\n", "deploy.yaml:2:3: rooms.a.devices: missing required key 'devices'"),
        (
            "rooms: {a: {devices: {}}}\n---\nx: 1\n",
            "deploy.yaml:2:1: -: only one YAML document is allowed in a deployment file",
        ),
        ("rooms:\n  a: \x01\n", "deploy.yaml:2:6: -: U+0001 is not allowed in YAML"),
        (
            "rooms:\n  a: {devices: {}, panel_tokens: ['']}\n",
            "deploy.yaml:2:35: rooms.a.panel_tokens[0]: must not be empty: to have no token, leave it out",
        ),
        (
            "rooms:\n  a: {devices: {}, panel_tokens: [' pin']}\n",
            "deploy.yaml:2:35: rooms.a.panel_tokens[0]: must not start or end with a space: "
            "an HTTP header cannot carry it",
        ),
        (
            'rooms:\n  a: {devices: {}, panel_tokens: ["p\\ti\\tn"]}\n',
            "deploy.yaml:2:35: rooms.a.panel_tokens[0]: must not contain control characters "
            "(tabs, line breaks)",
        ),
        (
            "rooms:\n  a: {devices: {}}\n  b: {name: '', devices: {}}\n",
            "deploy.yaml:3:13: rooms.b.name: must not be empty",
        ),
        (
            "rooms: &r {a: *r}\n",
            "deploy.yaml:1:8: rooms.a: an alias refers to the mapping or list containing it",
        ),
        (
            "rooms: {a: !!int x}\n",
            "deploy.yaml:1:12: rooms.a: cannot read 'x' as tag:yaml.org,2002:int",
        ),
    ],
)
def test_document_problems(text: str, expected: str) -> None:
    assert problems(text) == [expected]


@pytest.mark.parametrize(
    ("hub_text", "expected"),
    [
        (
            "listen: localhost",
            "hub.listen: expected HOST:PORT like 127.0.0.1:8080, got 'localhost'",
        ),
        ("listen: 1.2.3.4:99999", "hub.listen: port must be 0-65535, got '99999'"),
        ("admin_token: ''", "hub.admin_token: must not be empty: to have no token, leave it out"),
        (
            "metrics_token: 'scrape '",
            "hub.metrics_token: must not start or end with a space: an HTTP header cannot carry it",
        ),
        ("store: disk", "hub.store: expected 'memory' or a redis://host:port/db URL, got 'disk'"),
        ("store: redis://:pw@h/x", "hub.store: the redis database must be a number, got 'x'"),
        ("replay_size: 0", "hub.replay_size: must be at least 1, got 0"),
        ("replay_max_age: 0s", "hub.replay_max_age: must be greater than 0, got 0"),
        ("replay_max_age: -1s", "hub.replay_max_age: a duration cannot be negative, got '-1s'"),
        ("replay_max_age: .inf", "hub.replay_max_age: a duration must be a finite time, got inf"),
        (
            "log_level: loud",
            "hub.log_level: expected 'debug', 'info', 'warning' or 'error', got 'loud'",
        ),
    ],
)
def test_hub_settings_problems(hub_text: str, expected: str) -> None:
    (found,) = problems(f"hub:\n  {hub_text}\nrooms: {{a: {{devices: {{}}}}}}\n")
    assert found.split(": ", 1)[1] == expected
    assert found.startswith(f"deploy.yaml:2:{hub_text.index(':') + 5}: ")
    assert "pw" not in found


@pytest.mark.parametrize(
    ("drivers_text", "at", "expected"),
    [
        (
            "{pjlink: {notify: nowhere}}",
            "nowhere",
            "hub.drivers.pjlink.notify: expected HOST:PORT like 127.0.0.1:8080, got 'nowhere'",
        ),
        (
            "{pjlink: {notfy: off}}",
            "notfy",
            "hub.drivers.pjlink.notfy: unknown key 'notfy', did you mean 'notify'? "
            "(allowed: notify)",
        ),
        ("{pjlnk: {}}", "pjlnk", "hub.drivers.pjlnk: unknown key 'pjlnk', did you mean 'pjlink'?"),
    ],
)
def test_driver_settings_are_validated_by_their_driver(
    drivers_text: str, at: str, expected: str
) -> None:
    (found,) = problems(f"hub:\n  drivers: {drivers_text}\nrooms: {{a: {{devices: {{}}}}}}\n")
    column = len("  drivers: ") + drivers_text.index(at) + 1
    assert found.startswith(f"deploy.yaml:2:{column}: {expected}"), found


def test_driver_settings_default_when_absent() -> None:
    config = load_config_text(VALID)
    pjlink = config.hub.driver_settings("pjlink")
    assert pjlink is not None and pjlink.model_dump() == {"notify": "auto"}
    assert config.hub.driver_settings("extron_sis") is None  # declares no hub-level settings
    quiet = load_config_text("hub: {drivers: {pjlink: {notify: 'off'}}}\n" + VALID)
    assert quiet.hub.driver_settings("pjlink") == type(pjlink)(notify="off")


def test_unknown_key_lists_allowed_keys_and_suggests() -> None:
    (found,) = problems(VALID + "        pasword: x\n")
    assert found.startswith(
        "deploy.yaml:7:9: rooms.boardroom.devices.proj1.pasword: unknown key 'pasword', "
        "did you mean 'password'? (allowed: driver, name, transport, "
    )


def test_unknown_driver_lists_known_drivers() -> None:
    (found,) = problems(VALID.replace("driver: pjlink", "driver: pjlnk"))
    known = ", ".join(DRIVERS)
    assert found == (
        "deploy.yaml:5:17: rooms.boardroom.devices.proj1.driver: "
        f"unknown driver 'pjlnk'; known drivers: {known}; did you mean 'pjlink'?"
    )


def test_missing_driver_points_at_the_device() -> None:
    assert problems(VALID.replace("driver: pjlink", "name: X")) == [
        "deploy.yaml:4:7: rooms.boardroom.devices.proj1.driver: "
        f"missing required key 'driver' (known drivers: {', '.join(DRIVERS)})"
    ]


def test_simulator_knobs_are_checked_against_the_simulator() -> None:
    text = VALID + "        simulator:\n          warmpu: 1s\n          cooldown: soon\n"
    unknown, wrong_type = problems(text)
    assert unknown.startswith(
        "deploy.yaml:8:11: rooms.boardroom.devices.proj1.simulator.warmpu: unknown key 'warmpu', "
        "did you mean 'warmup'? (allowed: reply_delay, split_writes, "
    )
    assert wrong_type == (
        "deploy.yaml:9:21: rooms.boardroom.devices.proj1.simulator.cooldown: "
        "expected a duration like 5s or 250ms, got 'soon'"
    )


def test_simulator_knobs_are_checked_with_what_the_device_implies() -> None:
    text = """\
        rooms:
          a:
            devices:
              dsp:
                driver: tesira
                transport: tcp://10.0.0.2
                controls:
                  program: {tag: ProgramLevel}
                simulator:
                  presets:
                    1001: {levels: {ProgramLevel/1: -10}}
        """
    assert load(text).rooms["a"].devices["dsp"].simulator is not None  # the block from controls
    assert problems(text + "            1002: {levels: {Nowhere/1: -10}}\n") == [
        "deploy.yaml:10:11: rooms.a.devices.dsp.simulator: "
        "preset 1002: 'Nowhere/1' is not <tag>/<channel> of a block"
    ]


def test_problems_in_merged_settings_point_where_they_are_written() -> None:
    text = """\
        x-projector: &projector
          driver: pjlink
          retries: many
        rooms:
          a:
            devices:
              p1:
                <<: *projector
                transport: tcp://10.0.0.1
        """
    assert problems(text) == [
        "deploy.yaml:3:12: rooms.a.devices.p1.retries: expected integer, got 'many'"
    ]


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigFileError) as caught:
        load_config(tmp_path / "nope.yaml")
    (problem,) = caught.value.problems
    assert (problem.line, problem.column, problem.path) == (1, 1, "-")


def test_file_that_is_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "latin1.yaml"
    path.write_bytes(b"rooms:\n  a:\n    name: Caf\xe9\n")
    with pytest.raises(ConfigFileError) as caught:
        load_config(path)
    assert [str(p) for p in caught.value.problems] == [
        f"{path}:3:14: -: the file is not valid UTF-8 text"
    ]


def test_device_union_is_built_from_the_registry(tmp_path: Path) -> None:
    """A driver added to DRIVERS is accepted; a missing port is reported for one without a default."""
    script = textwrap.dedent(
        """\
        import sys
        from typing import Literal
        import drivers
        from drivers.config import DeviceConfig

        class NoPortConfig(DeviceConfig):
            driver: Literal["noport"]

        drivers.DRIVERS["noport"] = drivers.DriverSpec(drivers.PjlinkDriver, NoPortConfig)
        from hub.cli import main
        sys.exit(main(["check", sys.argv[1]]))
        """
    )
    assert _run_script(tmp_path, script, "tcp://10.0.0.1") == (
        2,
        [
            "deploy.yaml:6:20: rooms.a.devices.d.transport: tcp URL needs a port, got 'tcp://10.0.0.1'"
        ],
    )
    assert _run_script(tmp_path, script, "tcp://10.0.0.1:23") == (
        0,
        ["deploy.yaml: ok (1 room, 1 device)"],
    )


def _run_script(folder: Path, script: str, transport: str) -> tuple[int, list[str]]:
    """Run `script` on a one-device file in a fresh interpreter; (exit code, stdout lines)."""
    path = folder / "deploy.yaml"
    path.write_text(
        "rooms:\n  a:\n    devices:\n      d:\n"
        f"        driver: noport\n        transport: {transport}\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script, path.name],
        capture_output=True,
        text=True,
        cwd=folder,
        timeout=60,
        check=False,
    )
    assert result.stderr == ""
    return result.returncode, result.stdout.splitlines()


@settings(max_examples=150, deadline=None)
@given(
    st.text(alphabet=st.sampled_from(list("rooms:devic{}[]\"' -\t\n$&*!<>,0123#x")), max_size=80)
)
def test_arbitrary_text_never_escapes_as_another_error(text: str) -> None:
    try:
        load_config_text(text, "fuzz.yaml", {})
    except ConfigFileError as err:
        assert err.problems
        assert all(p.line >= 1 and p.column >= 1 for p in err.problems)


# ---------------------------------------------------------------------------- avhub check

CLI_CASES: dict[str, tuple[str, dict[str, str], list[str]]] = {
    "bad indentation": (
        """\
        rooms:
          a:
            devices: {}
           name: A
        """,
        {},
        ["4:4: -:"],
    ),
    "unclosed bracket": ("rooms: [a, b\n", {}, ["2:1: -:"]),
    "unclosed quote": ('rooms:\n  a:\n    name: "Board\n', {}, ["4:1: -:"]),
    "tab": ("rooms:\n\ta: {}\n", {}, ["2:1: -:"]),
    "unknown key": (
        VALID + "        pasword: x\n",
        {},
        ["7:9: rooms.boardroom.devices.proj1.pasword:"],
    ),
    "wrong type": (
        VALID + "        retries: abc\n",
        {},
        ["7:18: rooms.boardroom.devices.proj1.retries:"],
    ),
    "unset variable": (
        VALID + '        password: "${PROJ_PASSWORD}"\n',
        {},
        ["7:19: rooms.boardroom.devices.proj1.password:"],
    ),
    "unknown driver": (
        VALID.replace("pjlink", "pjlnk"),
        {},
        ["5:17: rooms.boardroom.devices.proj1.driver:"],
    ),
    "bad scheme": (
        VALID.replace("tcp://", "http://"),
        {},
        ["6:20: rooms.boardroom.devices.proj1.transport:"],
    ),
    "bad serial parameter": (
        VALID.replace("tcp://10.0.1.20", "serial:///dev/ttyUSB0?parity=X"),
        {},
        ["6:20: rooms.boardroom.devices.proj1.transport:"],
    ),
    "bad duration": (
        VALID + "        poll_interval: 5 seconds\n",
        {},
        ["7:24: rooms.boardroom.devices.proj1.poll_interval:"],
    ),
    "duplicate key": (
        VALID + "        driver: pjlink\n",
        {},
        ["7:9: rooms.boardroom.devices.proj1.driver:"],
    ),
    "bad room id": (VALID.replace("boardroom", "Board Room"), {}, ["2:3: rooms.Board Room:"]),
    "bad device id": (
        VALID.replace("proj1", "proj.1"),
        {},
        ["4:7: rooms.boardroom.devices.proj.1:"],
    ),
    "several problems": (
        """\
        hub:
          listen: localhost:http
          replay_size: lots
        rooms:
          Lab:
            panel_tokens: ["${LAB_TOKEN}"]
            devices:
              p1:
                driver: pjlink
                transport: tcp://10.0.0.1
                transport: tcp://10.0.0.2
                timeout: soon
              p2:
                driver: pjlnk
              p3:
                driver: pjlink
                transprot: tcp://10.0.0.3
        """,
        {},
        [
            "2:11: hub.listen:",
            "3:16: hub.replay_size:",
            "5:3: rooms.Lab:",
            "6:20: rooms.Lab.panel_tokens[0]:",
            "11:9: rooms.Lab.devices.p1.transport:",
            "12:18: rooms.Lab.devices.p1.timeout:",
            "14:17: rooms.Lab.devices.p2.driver:",
            "15:7: rooms.Lab.devices.p3.transport:",
            "17:9: rooms.Lab.devices.p3.transprot:",
        ],
    ),
}


@pytest.mark.parametrize("case", list(CLI_CASES))
def test_check_reports_each_problem(tmp_path: Path, case: str) -> None:
    text, env, expected = CLI_CASES[case]
    path = tmp_path / "deploy.yaml"
    path.write_text(textwrap.dedent(text))
    result = check(path, env)
    assert result.stderr == ""
    assert result.returncode == 2
    assert prefixes(result.stdout.splitlines()) == [f"{path}:{where}" for where in expected]


def test_check_messages_read_well(tmp_path: Path) -> None:
    path = tmp_path / "deploy.yaml"
    path.write_text(textwrap.dedent(CLI_CASES["several problems"][0]))
    lines = check(path).stdout.splitlines()
    messages = [line.split(": ", 2)[2] for line in lines]
    assert messages[1] == "expected integer, got 'lots'"
    assert messages[3] == "environment variable LAB_TOKEN is not set"
    assert messages[4] == "duplicate key 'transport' (first at line 10)"
    assert messages[6].startswith("unknown driver 'pjlnk'; known drivers: ")
    assert messages[8].startswith("unknown key 'transprot', did you mean 'transport'?")


def test_check_valid_file(tmp_path: Path) -> None:
    path = tmp_path / "deploy.yaml"
    path.write_text(VALID)
    result = check(path)
    assert (result.returncode, result.stdout, result.stderr) == (
        0,
        f"{path}: ok (1 room, 1 device)\n",
        "",
    )


def test_check_substitutes_environment(tmp_path: Path) -> None:
    path = tmp_path / "deploy.yaml"
    path.write_text(SUBST)
    env = {"PORT": "9000", "SIZE": "5", "PIN": "1", "PROJ_HOST": "10.0.0.9", "POLL": "2s"}
    assert check(path, env).returncode == 0
    result = check(path, {**env, "POLL": "2 sec"})
    assert result.returncode == 2
    assert prefixes(result.stdout.splitlines()) == [
        f"{path}:14:24: rooms.a.devices.p.poll_interval:"
    ]


def test_check_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "absent.yaml"
    result = check(path)
    assert (result.returncode, result.stderr) == (2, "")
    assert result.stdout.startswith(f"{path}:1:1: -: cannot read")


def test_check_usage_error_exits_2() -> None:
    result = subprocess.run([str(AVHUB)], capture_output=True, text=True, check=False)
    assert result.returncode == 2
    assert "usage: avhub" in result.stderr


def test_example_file_passes_with_its_variables() -> None:
    result = check(EXAMPLE, {"LECTURE_TOKEN": "t0ken", "PROJ_PASSWORD": "0451"})
    assert (result.returncode, result.stderr) == (0, "")
    assert result.stdout == f"{EXAMPLE}: ok (3 rooms, 4 devices)\n"


def test_example_file_names_its_unset_variables() -> None:
    result = check(EXAMPLE)
    assert result.returncode == 2
    messages = {line.split(": ", 2)[2] for line in result.stdout.splitlines()}
    assert messages == {
        "environment variable LECTURE_TOKEN is not set",
        "environment variable PROJ_PASSWORD is not set",
    }
