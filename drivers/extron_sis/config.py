"""Extron SIS switcher options."""

from __future__ import annotations

from typing import ClassVar, Literal, Self

from pydantic import Field, model_validator

from drivers.config import DeviceConfig, Duration
from drivers.extron_sis.codec import PORT

MAX_PORTS = 999  # SIS takes up to 3-digit input and output numbers


class ExtronSisConfig(DeviceConfig):
    """An Extron matrix switcher (DXP, CrossPoint, MAV, ...) speaking SIS over Telnet or RS-232."""

    default_port: ClassVar[int | None] = PORT

    driver: Literal["extron_sis"]
    password: str | None = Field(
        None, min_length=1, description="administrator (or user) password; unset: none"
    )
    inputs: int | None = Field(
        None, ge=1, le=MAX_PORTS, description="number of inputs; unset: asked with `I`"
    )
    outputs: int | None = Field(
        None, ge=1, le=MAX_PORTS, description="number of outputs; unset: asked with `I`"
    )
    audio: bool = Field(True, description="switches audio too, with breakaway (`$` ties)")
    volume: bool = Field(False, description="outputs have volume (HVA models): `levels` in dB")
    audio_mute: bool = Field(False, description="outputs have audio mute: `mutes`")
    video_mute: bool = Field(False, description="outputs have video mute: `video_mutes`")
    input_names: dict[int, str] = Field(
        default_factory=dict, description="inputs by number, e.g. {1: Lectern PC}"
    )
    output_names: dict[int, str] = Field(
        default_factory=dict, description="outputs by number, e.g. {1: Left projector}"
    )
    prompt_wait: Duration = Field(
        0.5,
        gt=0,
        description="after the banner, how long a Password: prompt may take before the "
        "switcher counts as having no password (TCP only)",
    )

    @model_validator(mode="after")
    def _names(self) -> Self:
        for kind, names, count in (
            ("input", self.input_names, self.inputs),
            ("output", self.output_names, self.outputs),
        ):
            seen: dict[str, int] = {}
            for number, name in names.items():
                if not 1 <= number <= (count or MAX_PORTS):
                    raise ValueError(f"{kind}_names: there is no {kind} {number}")
                if not name.strip() or name.strip().isdigit():
                    raise ValueError(f"{kind}_names: {kind} {number} needs a name, not a number")
                if name.casefold() in seen:
                    first = seen[name.casefold()]
                    raise ValueError(
                        f"{kind}_names: {kind}s {first} and {number} are both {name!r}"
                    )
                seen[name.casefold()] = number
        return self

    def port(self, kind: Literal["input", "output"], ref: int | str) -> int:
        """The number of an input or output given by number or by name; ValueError if none."""
        names = self.input_names if kind == "input" else self.output_names
        count = self.inputs if kind == "input" else self.outputs
        if isinstance(ref, str) and not ref.strip().isdigit():
            wanted = ref.strip().casefold()
            for number, name in names.items():
                if name.casefold() == wanted:
                    return number
            known = ", ".join(repr(n) for n in names.values()) or "none are named"
            raise ValueError(f"no {kind} named {ref!r} ({known})")
        number = int(ref)
        if count is not None and number > count:
            raise ValueError(f"no {kind} {number}: this switcher has {count} {kind}s")
        return number
