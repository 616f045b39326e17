"""The condition language of `wait_until` and triggers: parsing, evaluation, errors."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hub.automation.conditions import ConditionError, parse_condition

STATE: dict[str, dict[str, Any]] = {
    "projector": {"power": "on", "input": "Table HDMI", "lamp_hours": 1200, "online": True},
    "display": {"power": "off", "online": False},
    "dsp": {"levels": {"program": -20.0, "mic-1": None}, "mutes": {"program": False}},
    "matrix": {"routes": {"1": 3, "2": None}},
}


def holds(text: str) -> bool:
    return parse_condition(text).holds(STATE.get)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("projector.power == on", True),
        ("projector.power != on", False),
        ("projector.power == 'on'", True),
        ('projector.input == "Table HDMI"', True),
        ("projector.input == Table", False),
        ("dsp.levels.program >= -20", True),
        ("dsp.levels.program > -20", False),
        ("dsp.levels.program < -19.5", True),
        ("dsp.levels.program <= -20.5", False),
        ("dsp.mutes.program == false", True),
        ("dsp.levels.mic-1 == null", True),
        ("dsp.levels.nothing == null", True),  # a missing key reads as null
        ("dsp.levels.program.deeper == null", True),
        ("matrix.routes.1 == 3", True),
        ("matrix.routes.2 == null", True),
        ("projector.power in [warming, on]", True),
        ("display.power in [warming, on]", False),
        ("display.power not in [warming, on]", True),
        ("display.power in []", False),
        ("projector.online", True),
        ("display.online", False),
        ("not display.online", True),
        ("projector.power == on and display.power == off", True),
        ("projector.power == on and display.power == on", False),
        ("projector.power == off or display.power == off", True),
        ("not projector.power == on or display.power == off", True),
        ("not (projector.power == on or display.power == on)", False),
        ("projector.power == on and (display.power == on or dsp.mutes.program == false)", True),
        ("projector.lamp_hours > 1000 and projector.lamp_hours < 2000", True),
        ("projector.power > 3", False),  # text and a number do not compare
        ("projector.online == 1", False),  # true is not 1
        ("unknown.power == null", True),
        ("-20 == dsp.levels.program", True),
    ],
)
def test_conditions_read_the_state(text: str, expected: bool) -> None:
    assert holds(text) is expected


def test_and_binds_tighter_than_or() -> None:
    assert holds("display.power == on and display.online or projector.online")
    assert not holds("display.power == on and (display.online or projector.online)")


def test_references_name_the_devices_read() -> None:
    condition = parse_condition("projector.power == on and not dsp.mutes.program")
    assert condition.devices == {"projector", "dsp"}
    assert [str(r) for r in condition.refs] == ["projector.power", "dsp.mutes.program"]
    assert str(condition) == "projector.power == on and not dsp.mutes.program"


@pytest.mark.parametrize(
    ("text", "message", "column"),
    [
        ("", "the condition is empty", 1),
        ("projector.power = on", "'=' is not an operator: compare with '=='", 17),
        ("projector.power ==", "expected a value or a <device>.<key> reference, found the end", 19),
        ("projector.power == on and", "expected a value", 26),
        ("projector.power == on display.power", "expected 'and', 'or' or the end", 23),
        ("(projector.power == on", "expected ')', found the end", 23),
        ("projector.power in on", "expected '[' to start a list, found 'on'", 20),
        ("projector.power in [on, ", "expected a value", 25),
        ("projector.power not on", "expected 'in' after 'not'", 17),
        ("on", "expected a comparison after on", 3),
        ("projector.power == 'on", "a quoted string is not closed", 20),
        ("projector.power == on; rm", "unexpected ';'", 22),
    ],
)
def test_bad_conditions_say_what_and_where(text: str, message: str, column: int) -> None:
    with pytest.raises(ConditionError) as caught:
        parse_condition(text)
    assert message in str(caught.value)
    assert caught.value.column == column
    assert str(caught.value).endswith(f"(at character {column})")


@given(st.text(alphabet=st.sampled_from(list("ab.=!<>()[],'\" -01notandrin_")), max_size=40))
def test_any_text_parses_or_raises_condition_error(text: str) -> None:
    try:
        condition = parse_condition(text)
    except ConditionError as err:
        assert 1 <= err.column <= len(text) + 1
    else:
        assert isinstance(condition.holds(STATE.get), bool)
