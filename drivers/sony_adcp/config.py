"""Sony ADCP device options."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field, field_validator

from drivers.config import Duration
from drivers.projector import ProjectorConfig
from drivers.sony_adcp.codec import DEFAULT_PASSWORD, PORT, is_input_word

DEFAULT_INPUTS = ("hdmi1", "hdmi2")
"""What `inputs` lists when the config names none (ADCP cannot list a model's inputs)."""


class SonyAdcpConfig(ProjectorConfig):
    """A Sony projector speaking ADCP over TCP 53595."""

    default_port: ClassVar[int | None] = PORT

    driver: Literal["sony_adcp"]
    password: str | None = Field(
        DEFAULT_PASSWORD,
        min_length=1,
        max_length=64,
        description="ADCP password, used when the projector sends a challenge (factory"
        " default 'Projector' on the models known); null: expect no authentication",
    )
    inputs: dict[str, str] = Field(
        default_factory=dict,
        description='the projector\'s inputs by ADCP name and room names for them, e.g. {"hdmi1":'
        ' "Laptop"}; unset: hdmi1 and hdmi2',
    )
    info_interval: Duration = Field(600.0, gt=0, description="model name and serial number")
    light_source_timer: str = Field(
        "light_src",
        pattern=r"^[a-z0-9_]+$",
        description="the `timer ?` entry holding light-source (lamp/laser) hours",
    )

    @field_validator("inputs")
    @classmethod
    def _input_words(cls, value: dict[str, str]) -> dict[str, str]:
        names: set[str] = set()
        for word, name in value.items():
            if not is_input_word(word):
                raise ValueError(f"{word!r} is not an ADCP input name (like hdmi1 or dvi)")
            if not name.strip():
                raise ValueError(f"input {word} needs a non-empty name")
            if name.casefold() in names:
                raise ValueError(f"two inputs are named {name!r}")
            names.add(name.casefold())
        return value

    def input_words(self) -> list[str]:
        """The configured input names in ADCP (`hdmi1`, ...), or the default two."""
        return list(self.inputs) or list(DEFAULT_INPUTS)
