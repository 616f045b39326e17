"""Tesira device options: named controls on instance tags."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from drivers.config import DeviceConfig, Duration
from drivers.tesira.codec import PORT

TAG_PATTERN = r'^[^"/&\x00-\x1f]+$'  # Tesira forbids / and &; quotes and control bytes break lines
_CONTROL_NAME = re.compile(r"^[A-Za-z0-9_.-]+$")  # becomes part of a publish token

Kind = Literal["level", "mute"]


class ControlConfig(BaseModel):
    """One named control on a Tesira block.

    A Level block (`type: level`, the default) has a level and a mute per channel, so
    one entry gives both; `mute: false` leaves the mute out, `mute_tag`/`mute_channel`
    take it from another block (a separate Mute block). `type: mute` is a Mute block:
    mute only. `min`/`max` bound what panels may set (dB).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    tag: str = Field(pattern=TAG_PATTERN, description="instance tag of the block in the design")
    channel: int = Field(1, ge=1, le=1024, description="channel (index) on the block")
    type: Kind = Field(
        "level", description="level: a Level block (level + mute); mute: a Mute block"
    )
    mute: bool = Field(True, description="level blocks: also control the channel's mute")
    mute_tag: str | None = Field(
        None, pattern=TAG_PATTERN, description="take the mute from this block instead"
    )
    mute_channel: int | None = Field(
        None, ge=1, le=1024, description="channel of the mute (default: channel)"
    )
    label: str | None = Field(
        None, min_length=1, description="what panels call it; default the name"
    )
    min: float | None = Field(None, ge=-1000, le=1000, description="lowest level panels may set")
    max: float | None = Field(None, ge=-1000, le=1000, description="highest level panels may set")

    @model_validator(mode="after")
    def _consistent(self) -> ControlConfig:
        if self.type == "mute":
            extra = [
                name
                for name, unset in (
                    ("mute_tag", self.mute_tag is None),
                    ("mute_channel", self.mute_channel is None),
                    ("min", self.min is None),
                    ("max", self.max is None),
                    ("mute", self.mute),
                )
                if not unset
            ]
            if extra:
                raise ValueError(f"a mute control has no level: remove {', '.join(extra)}")
        elif not self.mute and (self.mute_tag is not None or self.mute_channel is not None):
            raise ValueError("mute_tag/mute_channel given but mute is false")
        if self.min is not None and self.max is not None and self.min >= self.max:
            raise ValueError(f"min ({self.min}) must be below max ({self.max})")
        return self

    def points(self, name: str) -> list[Point]:
        """The attributes this control reads and writes."""
        if self.type == "mute":
            return [Point(name, "mute", self.tag, self.channel)]
        points = [Point(name, "level", self.tag, self.channel)]
        if self.mute:
            tag = self.mute_tag or self.tag
            points.append(Point(name, "mute", tag, self.mute_channel or self.channel))
        return points


@dataclass(frozen=True, slots=True)
class Point:
    """One attribute of one channel: what a control's level or mute lives on."""

    control: str
    kind: Kind  # also the Tesira attribute name
    tag: str
    channel: int

    @property
    def token(self) -> str:
        """The publish token, stable per control so re-subscribing never duplicates."""
        return f"avhub_{self.control}_{self.kind}"


class TesiraConfig(DeviceConfig):
    """A Biamp Tesira DSP over the Tesira Text Protocol (Telnet, TCP 23)."""

    default_port: ClassVar[int | None] = PORT

    driver: Literal["tesira"]
    controls: dict[str, ControlConfig] = Field(
        default_factory=dict,
        description="named controls, e.g. {program: {tag: Level1, channel: 1}}",
    )
    presets: dict[int, str] = Field(
        default_factory=dict,
        description="names of the design's presets by number, e.g. {1001: Presentation}",
    )
    subscribe_rate: Duration = Field(
        0.1, ge=0, le=60, description="fastest the Tesira pushes changes of one control"
    )
    command_delay: Duration = Field(
        0.02, ge=0, description="minimum gap between requests (paces slider storms)"
    )

    @field_validator("controls")
    @classmethod
    def _names(cls, value: dict[str, ControlConfig]) -> dict[str, ControlConfig]:
        for name in value:
            if not _CONTROL_NAME.match(name):
                raise ValueError(f"control name {name!r}: use letters, digits, _ . - only")
        return value

    def points(self) -> list[Point]:
        """Every attribute of every control, in config order."""
        return [p for name, control in self.controls.items() for p in control.points(name)]

    def point(self, control: str, kind: Kind) -> Point:
        """Where a control's level or mute lives; ValueError naming what is wrong if nowhere."""
        entry = self.controls.get(control)
        if entry is None:
            known = ", ".join(self.controls) or "none configured"
            raise ValueError(f"no control {control!r} (controls: {known})")
        for point in entry.points(control):
            if point.kind == kind:
                return point
        raise ValueError(f"control {control!r} has no {kind}")

    def preset_number(self, preset: int | str) -> int | str:
        """A preset's number when it is given by a configured name; else as given."""
        if isinstance(preset, str):
            wanted = preset.strip().casefold()
            for number, name in self.presets.items():
                if name.casefold() == wanted:
                    return number
        return preset
