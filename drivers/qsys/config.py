"""Q-SYS QRC device options."""

from __future__ import annotations

from typing import ClassVar, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from drivers.config import DeviceConfig, Duration
from drivers.qsys.codec import PORT


class QsysChannel(BaseModel):
    """One fader/mute pair: named controls, or controls of one named component.

    `{level: MainGain, mute: MainMute}` uses Named Controls;
    `{component: "Mic 1", level: gain, mute: mute}` uses that component's controls.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    component: str | None = Field(None, min_length=1, description="named component, if any")
    level: str | None = Field(None, min_length=1, description="gain control name (dB)")
    mute: str | None = Field(None, min_length=1, description="mute control name")
    label: str | None = Field(
        None, min_length=1, description="what panels call it; default the name"
    )

    @model_validator(mode="after")
    def _something(self) -> Self:
        if self.level is None and self.mute is None:
            raise ValueError("give a level control, a mute control or both")
        return self


class QsysPreset(BaseModel):
    """A snapshot bank recalled by `recall_preset`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    snapshot: str = Field(min_length=1, description="name of the Snapshot component")
    bank: int = Field(ge=1, description="bank number in that snapshot")
    ramp: Duration = Field(0.0, ge=0, description="ramp time of the recall")


class QsysConfig(DeviceConfig):
    """A Q-SYS Core (or Designer emulator) speaking QRC on TCP 1710."""

    default_port: ClassVar[int | None] = PORT

    driver: Literal["qsys"]
    user: str | None = Field(None, description="QRC logon user (when access control is on)")
    password: str | None = Field(None, description="QRC logon password / PIN")
    controls: dict[str, QsysChannel] = Field(
        default_factory=dict,
        description="channels by name: state `levels`/`mutes` and the `control` of actions",
    )
    presets: dict[str, QsysPreset] = Field(
        default_factory=dict, description="presets by name for `recall_preset`"
    )
    keepalive: Duration | None = Field(
        20.0, gt=0, description="NoOp interval; the Core drops clients silent for 60 s"
    )
    autopoll_rate: Duration = Field(
        0.2, ge=0.05, description="change group AutoPoll rate: how fast changes push"
    )
    poll_interval: Duration = Field(
        30.0, gt=0, description="StatusGet interval (controls arrive by change group)"
    )

    @model_validator(mode="after")
    def _credentials(self) -> Self:
        if (self.user is None) != (self.password is None):
            raise ValueError("QRC logon needs both user and password (or neither)")
        return self

    @model_validator(mode="after")
    def _unique_controls(self) -> Self:
        seen: dict[tuple[str | None, str], str] = {}
        for name, channel in self.controls.items():
            for control in (channel.level, channel.mute):
                if control is None:
                    continue
                key = (channel.component, control)
                if key in seen and seen[key] != name:
                    where = f"component {channel.component!r}" if channel.component else "named"
                    raise ValueError(
                        f"{where} control {control!r} is used by both {seen[key]!r} and {name!r}"
                    )
                seen[key] = name
            if channel.level is not None and channel.level == channel.mute:
                raise ValueError(f"{name}: level and mute are the same control {channel.level!r}")
        return self

    def address(self, channel: str, kind: Literal["level", "mute"]) -> tuple[str | None, str]:
        """(component, control) of a channel's level or mute; ValueError if it has none."""
        entry = self.controls.get(channel)
        control = getattr(entry, kind) if entry is not None else None
        if entry is None or control is None:
            have = sorted(n for n, c in self.controls.items() if getattr(c, kind))
            raise ValueError(f"no {kind} control {channel!r} (has: {', '.join(have) or 'none'})")
        return entry.component, control

    def preset(self, name: str) -> QsysPreset:
        """A configured preset; ValueError if there is none by that name."""
        preset = self.presets.get(name)
        if preset is None:
            raise ValueError(f"no preset {name!r} (has: {', '.join(self.presets) or 'none'})")
        return preset
