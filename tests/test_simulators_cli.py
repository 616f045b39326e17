"""`python -m simulators`: knob flags generated from each simulator's knobs model."""

from __future__ import annotations

import shlex

import pytest

from simulators import SIMULATORS
from simulators.__main__ import build_parser, default_text, parse_args


@pytest.mark.parametrize("kind", sorted(SIMULATORS))
def test_help_shows_every_default_in_a_form_the_parser_takes_back(
    kind: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "10000")  # no wrapping inside a default
    model = SIMULATORS[kind].knobs_model
    shown_help = " ".join(build_parser(kind).format_help().split())
    defaults = model()
    for name, field in model.model_fields.items():
        shown = default_text(name, field)
        assert f"(default: {shown})" in shown_help, name
        if shown == "unset":
            assert getattr(defaults, name) is None
            continue
        words = shlex.split(shown)  # a boolean's default is a flag, others a value
        flag = [] if shown.startswith("--") else [f"--{name.replace('_', '-')}"]
        _, knobs = parse_args([kind, *flag, *words])
        assert getattr(knobs, name) == getattr(defaults, name), (name, shown)


def test_durations_are_shown_with_units(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "10000")
    help_text = " ".join(build_parser("pjlink").format_help().split())
    for shown in (
        "--warmup DURATION warming → on (default: 5s)",
        "(default: 50ms)",
        "(default: 30s)",
    ):
        assert shown in help_text


def test_durations_take_plain_seconds_like_yaml() -> None:
    _, knobs = parse_args(
        [
            *("pjlink", "--warmup", "0.3", "--cooldown", "2", "--reply-delay", "250ms"),
            *("--idle-timeout", "none", "--coalesce-window", "1m"),
        ]
    )
    assert (knobs.warmup, knobs.cooldown, knobs.reply_delay) == (0.3, 2.0, 0.25)
    assert (knobs.idle_timeout, knobs.coalesce_window) == (None, 60.0)


@pytest.mark.parametrize(
    ("value", "message"),
    [("-1", "a duration cannot be negative"), ("0.3x", "expected a duration like 5s")],
)
def test_bad_durations_exit_2(value: str, message: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as caught:
        parse_args(["pjlink", "--warmup", value])
    assert caught.value.code == 2
    assert message in capsys.readouterr().err
