"""`avhub check` on macros, schedules and triggers: every kind of mistake, located."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from hub.config import ConfigFileError, load_config_text
from tests.test_config import check

BASE = """\
hub:
  timezone: Europe/Berlin
rooms:
  hall:
    devices:
      projector: {driver: pjlink, transport: "tcp://10.0.0.1"}
      matrix: {driver: extron_sis, transport: "tcp://10.0.0.2", inputs: 8, outputs: 4}
      dsp: {driver: tesira, transport: "tcp://10.0.0.3", controls: {program: {tag: Level1}}}
    macros:
      shutdown:
        steps:
          - {device: projector, action: power_off}
"""
# Lines 13 and on are each case's own.

CASES: dict[str, tuple[str, str, str]] = {
    "unknown device": (
        """\
      start:
        steps:
          - {device: projecter, action: power_on}
""",
        "15:22: rooms.hall.macros.start.steps[0].device",
        "this room has no device 'projecter', did you mean 'projector'?",
    ),
    "the room device as a step": (
        """\
      start:
        steps:
          - {device: room, action: shutdown}
""",
        "15:22: rooms.hall.macros.start.steps[0].device",
        "to run another macro, write `macro: <name>` as the step",
    ),
    "unknown action": (
        """\
      start:
        steps:
          - {device: projector, action: power_onn}
""",
        "15:41: rooms.hall.macros.start.steps[0].action",
        "projector (pjlink) has no action 'power_onn', did you mean 'power_on'?",
    ),
    "args of the wrong type": (
        """\
      start:
        steps:
          - device: dsp
            action: set_mute
            args: {control: program, mute: maybe}
""",
        "17:44: rooms.hall.macros.start.steps[0].args.mute",
        "expected true or false, got 'maybe'",
    ),
    "an argument missing": (
        """\
      start:
        steps:
          - device: dsp
            action: set_mute
            args: {control: program}
""",
        "17:13: rooms.hall.macros.start.steps[0].args",
        "set_mute needs argument 'mute'",
    ),
    "an unknown argument": (
        """\
      start:
        steps:
          - device: projector
            action: select_input
            args: {input: HDMI, now: true}
""",
        "17:33: rooms.hall.macros.start.steps[0].args.now",
        "select_input has no argument 'now' (takes: input)",
    ),
    "arguments to an action that takes none": (
        """\
      start:
        steps:
          - {device: projector, action: power_on, args: {fast: true}}
""",
        "15:57: rooms.hall.macros.start.steps[0].args",
        "power_on takes no arguments",
    ),
    "a value the device's config rules out": (
        """\
      start:
        steps:
          - {device: dsp, action: set_level, args: {control: mics, level: -10}}
""",
        "15:62: rooms.hall.macros.start.steps[0].args.control",
        "no control 'mics'",
    ),
    "an output beyond the switcher's size": (
        """\
      start:
        steps:
          - {device: matrix, action: route, args: {input: 2, output: 5}}
""",
        "15:70: rooms.hall.macros.start.steps[0].args.output",
        "no output 5: this switcher has 4 outputs",
    ),
    "an input name the switcher does not have": (
        """\
      start:
        steps:
          - {device: matrix, action: route, args: {input: Laptop}}
""",
        "15:59: rooms.hall.macros.start.steps[0].args.input",
        "no input named 'Laptop'",
    ),
    "a macro name YAML reads as true or false": (
        """\
      start:
        steps:
          - macro: off
""",
        "15:20: rooms.hall.macros.start.steps[0].macro",
        "expected string, got false (quote it: YAML reads on, off, yes and no as true and false)",
    ),
    "an unparsable condition": (
        """\
      start:
        steps:
          - {wait_until: "projector.power = on", timeout: 10s}
""",
        "15:26: rooms.hall.macros.start.steps[0].wait_until",
        "cannot read the condition: '=' is not an operator: compare with '==' (at character 17)",
    ),
    "a condition on an unknown device": (
        """\
      start:
        steps:
          - {wait_until: "display.power == on", timeout: 10s}
""",
        "15:26: rooms.hall.macros.start.steps[0].wait_until",
        "this room has no device 'display'",
    ),
    "wait_until without a timeout": (
        """\
      start:
        steps:
          - {wait_until: projector.power == on}
""",
        "15:13: rooms.hall.macros.start.steps[0].timeout",
        "missing required key 'timeout'",
    ),
    "a bad wait": (
        """\
      start:
        steps:
          - wait: soon
""",
        "15:19: rooms.hall.macros.start.steps[0].wait",
        "expected a duration like 5s or 250ms, got 'soon'",
    ),
    "a step of no kind": (
        """\
      start:
        steps:
          - {sleep: 2s}
""",
        "15:13: rooms.hall.macros.start.steps[0]",
        "a step is a mapping with one of: device",
    ),
    "an unknown key in a parallel step": (
        """\
      start:
        steps:
          - parallel:
              - {device: projector, action: power_on, delay: 1s}
""",
        "16:55: rooms.hall.macros.start.steps[0].parallel[0].delay",
        "unknown key 'delay' (allowed: on_error, device, action, args)",
    ),
    "a bad on_error": (
        """\
      start:
        on_error: ignore
        steps:
          - macro: shutdown
""",
        "14:19: rooms.hall.macros.start.on_error",
        "expected 'stop' or 'continue', got 'ignore'",
    ),
    "an unknown macro": (
        """\
      start:
        steps:
          - macro: shutdwn
""",
        "15:20: rooms.hall.macros.start.steps[0].macro",
        "this room has no macro 'shutdwn', did you mean 'shutdown'?",
    ),
    "a macro calling itself": (
        """\
      start:
        steps:
          - parallel:
              - macro: start
""",
        "16:24: rooms.hall.macros.start.steps[0].parallel[0].macro",
        "macros call each other in a circle: start → start",
    ),
    "macros calling each other": (
        """\
      start:
        steps:
          - macro: up
      up:
        steps:
          - macro: start
""",
        "18:20: rooms.hall.macros.up.steps[0].macro",
        "macros call each other in a circle: start → up → start",
    ),
    "a macro named like the cancel action": (
        """\
      cancel:
        steps:
          - macro: shutdown
""",
        "13:7: rooms.hall.macros.cancel",
        "'cancel' is the room device's own action",
    ),
    "a schedule time YAML reads as a number": (
        """\
    schedules:
      - {at: 22:00, run: shutdown}
""",
        "14:14: rooms.hall.schedules[0].at",
        'write the time in quotes, like "22:00"',
    ),
    "a schedule time that is no time": (
        """\
    schedules:
      - {at: "24:30", run: shutdown}
""",
        "14:14: rooms.hall.schedules[0].at",
        "'24:30' is not a time of day",
    ),
    "a schedule's unknown day": (
        """\
    schedules:
      - {at: "22:00", days: [mon, tues], run: shutdown}
""",
        "14:35: rooms.hall.schedules[0].days[1]",
        "expected 'mon', 'tue', 'wed', 'thu', 'fri', 'sat' or 'sun', got 'tues'",
    ),
    "a schedule's unknown macro": (
        """\
    schedules:
      - {at: "22:00", run: shutdwon}
""",
        "14:28: rooms.hall.schedules[0].run",
        "this room has no macro 'shutdwon', did you mean 'shutdown'?",
    ),
    "a trigger's unparsable condition": (
        """\
    triggers:
      - {when: "projector.power == on and", for: 1h, run: shutdown}
""",
        "14:16: rooms.hall.triggers[0].when",
        "cannot read the condition: expected a value or a <device>.<key> reference, "
        "found the end (at character 26)",
    ),
    "a trigger's condition on an unknown device": (
        """\
    triggers:
      - {when: "projector.power == on and not screen.down", run: shutdown}
""",
        "14:16: rooms.hall.triggers[0].when",
        "this room has no device 'screen'",
    ),
    "a trigger's bad duration": (
        """\
    triggers:
      - {when: projector.power == on, for: an hour, run: shutdown}
""",
        "14:44: rooms.hall.triggers[0].for",
        "expected a duration like 5s or 250ms, got 'an hour'",
    ),
    "a trigger's unknown macro": (
        """\
    triggers:
      - {when: projector.power == on, for: 1h, run: shutoff}
""",
        "14:53: rooms.hall.triggers[0].run",
        "this room has no macro 'shutoff'",
    ),
    "a trigger's misspelt key": (
        """\
    triggers:
      - {when: projector.power == on, fro: 1h, run: shutdown}
""",
        "14:39: rooms.hall.triggers[0].fro",
        "unknown key 'fro', did you mean 'for'? (allowed: when, for, run)",
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_each_mistake_is_located_and_explained(case: str) -> None:
    text, where, message = CASES[case]
    with pytest.raises(ConfigFileError) as caught:
        load_config_text(BASE + text, "deploy.yaml", {})
    lines = [str(p) for p in caught.value.problems]
    assert len(lines) == 1, lines
    assert lines[0].startswith(f"deploy.yaml:{where}: "), lines[0]
    assert message in lines[0], lines[0]


def test_a_device_cannot_take_the_room_devices_id() -> None:
    text = BASE.replace("      matrix:", "      room:")
    with pytest.raises(ConfigFileError) as caught:
        load_config_text(text, "deploy.yaml", {})
    (problem,) = caught.value.problems
    assert str(problem).startswith("deploy.yaml:7:7: rooms.hall.devices.room: device id 'room'")


def test_an_unknown_time_zone_is_a_problem() -> None:
    with pytest.raises(ConfigFileError) as caught:
        load_config_text(BASE.replace("Europe/Berlin", "Europe/Berln"), "deploy.yaml", {})
    (problem,) = caught.value.problems
    assert str(problem) == (
        "deploy.yaml:2:13: hub.timezone: unknown time zone 'Europe/Berln', "
        "did you mean 'Europe/Berlin'?"
    )


def test_check_prints_every_automation_problem_with_line_and_column(tmp_path: Path) -> None:
    path = tmp_path / "deploy.yaml"
    text = BASE + (
        "      start:\n"
        "        steps:\n"
        "          - {device: projecter, action: power_on}\n"
        "          - {macro: shutdwn}\n"
        "    triggers:\n"
        '      - {when: "screen.down", run: start}\n'
    )
    path.write_text(text)
    result = check(path)
    assert result.returncode == 2, result.stdout
    assert [line.split(": ")[0] for line in result.stdout.splitlines()] == [
        f"{path}:15:22",
        f"{path}:16:21",
        f"{path}:18:16",
    ]


def test_a_valid_automation_section_loads() -> None:
    text = BASE + textwrap.indent(
        textwrap.dedent(
            """\
            start:
              label: System start
              on_error: continue
              steps:
                - {device: projector, action: power_on}
                - {wait_until: "projector.power == on and dsp.levels.program >= -20", timeout: 1m}
                - parallel:
                    - {device: matrix, action: route, args: {input: 1, output: 2}}
                    - {device: dsp, action: set_mute, args: {control: program, mute: false}, on_error: stop}
                - {macro: shutdown}
                - wait: 500ms
            """
        ),
        "      ",
    )
    text += '    schedules:\n      - {at: "07:30", days: [mon, fri], run: start}\n'
    text += "    triggers:\n      - {when: projector.power == on, for: 2m, run: shutdown}\n"
    config = load_config_text(text, "deploy.yaml", {})
    room = config.rooms["hall"]
    assert room.macros["start"].label == "System start"
    assert len(room.macros["start"].steps) == 5
    assert room.triggers[0].for_ == 120.0
    assert room.schedules[0].days == ["mon", "fri"]


def test_macros_call_a_generic_devices_actions_as_its_definition_describes() -> None:
    """A generic device's actions come from its `protocol:`; `avhub check` knows them."""
    example = Path(__file__).resolve().parent.parent / "config" / "examples" / "relay-screen.yaml"
    text = example.read_text()
    good = """\
    macros:
      lights_on:
        steps:
          - {device: relays, action: set_relay, args: {channel: "1", active: true}}
"""
    assert "    devices:\n      relays:\n" in text
    room = text.index("    devices:\n      relays:\n")
    config = load_config_text(text[:room] + good + text[room:], "relay.yaml", {})
    assert "lights_on" in config.rooms["auditorium"].macros
    bad = good.replace("set_relay", "set_relays").replace('"1"', '"3"')
    with pytest.raises(ConfigFileError) as info:
        load_config_text(text[:room] + bad + text[room:], "relay.yaml", {})
    (problem,) = info.value.problems
    assert problem.path == "rooms.auditorium.macros.lights_on.steps[0].action"
    assert "has no action 'set_relays', did you mean 'set_relay'?" in problem.message
    wrong = good.replace('"1"', '"3"')
    with pytest.raises(ConfigFileError) as info:
        load_config_text(text[:room] + wrong + text[room:], "relay.yaml", {})
    (problem,) = info.value.problems
    assert problem.path.startswith("rooms.auditorium.macros.lights_on.steps[0].args")


def test_macros_calling_each_other_deeper_than_a_run_goes_are_a_problem() -> None:
    """A chain of calls is fine up to `MAX_DEPTH` (16): one deeper always fails when run."""

    def chain(length: int) -> str:
        lines = [f"      m{i}: {{steps: [{{macro: m{i + 1}}}]}}\n" for i in range(length)]
        return BASE + "".join(lines) + f"      m{length}: {{steps: [{{wait: 0}}]}}\n"

    load_config_text(chain(16), "deploy.yaml", {})  # m0 → … → m16: 16 calls deep
    with pytest.raises(ConfigFileError) as caught:
        load_config_text(chain(17), "deploy.yaml", {})
    (problem,) = caught.value.problems
    assert str(problem).endswith(
        "rooms.hall.macros.m0: it calls macros 17 deep (m0 → m1 → m2 → … → m17); a run goes 16 deep"
    ), problem


def test_an_empty_list_of_steps_is_said_in_the_checks_words() -> None:
    with pytest.raises(ConfigFileError) as caught:
        load_config_text(BASE + "      empty: {steps: []}\n", "deploy.yaml", {})
    (problem,) = caught.value.problems
    assert str(problem).endswith("rooms.hall.macros.empty.steps: must not be empty"), problem
