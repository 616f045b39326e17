"""`avhub check` on generic definitions: every bad one located at file:line:column, shared ones shared."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from drivers import DRIVERS
from drivers.generic.config import GenericConfig
from hub.config import ConfigFileError, Problem, load_config, load_config_text
from simulators.__main__ import parse_args
from simulators.generic import GenericKnobs, load_definition
from tests.test_generic_examples import EXAMPLE_LIST, EXAMPLES

HEAD = """\
rooms:
  r:
    devices:
      d:
        driver: generic
        transport: tcp://127.0.0.1:5000
        protocol:
"""


def problems(protocol: str, device: str = "") -> list[Problem]:
    """The problems of a file whose device `d` has this protocol (indented for you)."""
    text = HEAD + textwrap.indent(textwrap.dedent(protocol), " " * 10) + device
    with pytest.raises(ConfigFileError) as info:
        load_config_text(text, "site.yaml")
    return info.value.problems


def line_of(protocol: str, needle: str) -> int:
    """The file line of the first protocol line containing `needle`."""
    lines = textwrap.dedent(protocol).splitlines()
    return HEAD.count("\n") + 1 + next(i for i, line in enumerate(lines) if needle in line)


def test_a_bad_regular_expression_is_reported_at_its_own_line_and_column() -> None:
    protocol = """\
        polls:
          status:
            send: "POWER?"
            match: '^POWER=(?P<power>\\d+'
        """
    [problem] = problems(protocol)
    assert (problem.file, problem.line, problem.column) == ("site.yaml", line_of(protocol, "^"), 22)
    assert problem.path == "rooms.r.devices.d.protocol.polls.status.match"
    assert "bad regular expression" in problem.message and "at position 7" in problem.message


def test_a_template_naming_an_unknown_argument_is_reported_at_send() -> None:
    protocol = """\
        actions:
          route:
            args:
              input: {type: int, min: 1, max: 8}
              output: {type: int, min: 1, max: 8}
            send: "ROUTE {input},{ouput}"
        """
    [problem] = problems(protocol)
    assert (problem.line, problem.column) == (line_of(protocol, "ROUTE"), 21)
    assert problem.path.endswith("actions.route.send")
    assert "unknown argument ouput; did you mean 'output'?" in problem.message


@pytest.mark.parametrize(
    ("protocol", "needle", "path", "message"),
    [
        (
            """\
            polls:
              status:
                send: "POWER?"
                match: '^POWER=(?P<power>\\d)'
                set: {power: {group: pwr}}
            """,
            "set:",
            "polls.status.set",
            "pwr is not a named group of match (known: power)",
        ),
        (
            """\
            polls:
              status:
                send: "ROUTE? {output}"
                match: 'x'
            """,
            "ROUTE?",
            "polls.status.send",
            "a poll has no values to fill in",
        ),
        (
            """\
            actions:
              mute:
                args:
                  how: {type: enum}
                send: "MUTE {how}"
            """,
            "how:",
            "actions.mute.args.how",
            "choices are for (and required by) type enum",
        ),
        (
            """\
            actions:
              level:
                args:
                  level: {type: string}
                send: "LEVEL {level:03d}"
            """,
            "LEVEL",
            "actions.level.send",
            "Unknown format code 'd'",
        ),
        (
            """\
            actions:
              level:
                args:
                  level: {type: int, min: 0, max: 10, default: 11}
                send: "LEVEL {level}"
            """,
            "level: {",
            "actions.level.args.level",
            "default 11: Input should be less than or equal to 10",
        ),
        (
            """\
            pols: {}
            """,
            "pols",
            "pols",
            "unknown key 'pols', did you mean 'polls'?",
        ),
        (
            """\
            framing: {delimiter: "\\r", length: 4}
            """,
            "framing",
            "framing",
            "give a delimiter or a length (one of them)",
        ),
    ],
    ids=["set-group", "poll-field", "enum-choices", "format-spec", "default", "typo", "framing"],
)
def test_bad_definitions_are_located(protocol: str, needle: str, path: str, message: str) -> None:
    [problem] = problems(protocol)
    assert problem.line == line_of(protocol, needle)
    assert problem.path == f"rooms.r.devices.d.protocol.{path}"
    assert message in problem.message


def test_a_definition_whose_bytes_the_encoding_cannot_carry_is_an_error() -> None:
    [problem] = problems(
        """\
        encoding: hex
        framing: {length: 4}
        actions:
          relay:
            args:
              on: {type: bool}
            send: "A5 01 {on:02X} ZZ"
        """
    )
    assert problem.path == "rooms.r.devices.d.protocol"
    assert "actions.relay.send" in problem.message and "hex" in problem.message


def test_the_simulator_block_of_a_generic_device_is_checked_against_its_knobs() -> None:
    protocol = 'framing: {delimiter: "\\n"}\n'
    device = textwrap.indent(
        textwrap.dedent(
            """\
            simulator:
              state: {power: "off"}
              rules:
                - match: '^POWER (?P<on>ON|OFF$'
            """
        ),
        " " * 8,
    )
    [problem] = problems(protocol, device)
    assert problem.path == "rooms.r.devices.d.simulator.rules[0].match"
    assert (
        problem.line
        == (HEAD + protocol + device)
        .splitlines()
        .index(next(line for line in device.splitlines() if "match" in line))
        + 1
    )


def test_devices_with_the_same_definition_share_one_compiled_copy() -> None:
    text = """\
x-proto: &proto
  polls:
    status: {send: "POWER?", match: '^POWER=(?P<power>ON|OFF)$'}
  actions:
    power: {args: {on: {type: bool}}, send: "POWER {on}"}
rooms:
  r:
    devices:
      a: {driver: generic, transport: "tcp://127.0.0.1:5001", protocol: *proto}
      b: {driver: generic, transport: "tcp://127.0.0.1:5002", protocol: *proto}
      c:
        driver: generic
        transport: tcp://127.0.0.1:5003
        protocol: {polls: {status: {send: "POWER?", match: '^POWER=(?P<power>ON|OFF)$'}}}
"""
    config = load_config_text(text)
    devices = config.rooms["r"].devices
    a, b, c = (devices[k] for k in "abc")
    assert isinstance(a, GenericConfig) and isinstance(b, GenericConfig)
    assert isinstance(c, GenericConfig)
    assert a.protocol is b.protocol and a.protocol is not c.protocol
    spec = DRIVERS["generic"]
    drivers = [spec.driver(k, devices[k], lambda _: None) for k in "ab"]
    assert drivers[0].describe_actions() is drivers[1].describe_actions()
    assert drivers[0].describe_actions()["power"]["properties"]["on"]["type"] == "boolean"


@pytest.mark.parametrize("example", EXAMPLE_LIST, ids=lambda e: e.file)
def test_every_example_passes_check(example: object) -> None:
    load_config(EXAMPLES / example.file)  # type: ignore[attr-defined]


def test_a_definition_file_serves_the_standalone_simulator(tmp_path: Path) -> None:
    """`--definition FILE`: a device block (protocol: and simulator:) or bare knobs."""
    config = load_config(EXAMPLES / "lighting-scenes.yaml")
    device = config.rooms["ballroom"].devices["lights"]
    text = (EXAMPLES / "lighting-scenes.yaml").read_text()
    block = text[
        text.index("        driver: generic") : text.index("\n", text.rindex("error_reply"))
    ]
    path = tmp_path / "lights.yaml"
    block = block.replace('"${LIGHTS_PASSWORD:-lights}"', "lights")  # no ${} outside a deployment
    path.write_text(textwrap.dedent(block) + "\n")
    _, knobs = parse_args(["generic", "--definition", str(path), "--port", "0"])
    assert isinstance(knobs, GenericKnobs)
    assert knobs.framing == device.protocol.framing  # taken from protocol:
    assert knobs.password == "lights" and len(knobs.rules) == 5
    _, knobs = parse_args(["generic", "--definition", str(path), "--password", "other"])
    assert knobs.password == "other"  # a knob flag wins over the file
    unlabelled = tmp_path / "no-driver.yaml"  # `protocol:` and `simulator:` alone will do
    unlabelled.write_text(
        "\n".join(line for line in path.read_text().splitlines() if "driver:" not in line)
    )
    _, knobs = parse_args(["generic", "--definition", str(unlabelled), "--port", "0"])
    assert isinstance(knobs, GenericKnobs) and len(knobs.rules) == 5


def test_a_bad_definition_file_is_located(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("state: {power: off}\nrules:\n  - match: '(unclosed'\n    reply: x\n")
    with pytest.raises(ValueError, match=r"bad\.yaml:3:12: rules\.0\.match: .*bad regular"):
        load_definition(path)
    with pytest.raises(SystemExit):
        parse_args(["generic", "--definition", str(path)])


def test_the_readme_example_passes_check() -> None:
    readme = (EXAMPLES.parent.parent / "README.md").read_text()
    section = readme[readme.index("## The generic driver") :]
    block = section[section.index("```yaml\n") + 8 : section.index("```\n", 10)]
    config = load_config_text(block, "README.md")
    device = config.rooms["studio"].devices["switcher"]
    assert isinstance(device, GenericConfig)
    actions = device.protocol.actions
    assert set(actions) == {"route", "select_source", "volume_up"}
    repeats = {name: action.spec(name).repeat for name, action in actions.items()}
    assert repeats == {"route": True, "select_source": True, "volume_up": False}
