"""Wire pieces of a protocol described in YAML: templates, patterns, framing, encodings.

Shared by the generic driver and the generic simulator. A definition's wire text is
either text (`ascii`, `latin-1`, `utf-8`) or `hex`: binary bytes written and matched
as hexadecimal digits (`A5 01 {relay:02X}` sends three bytes; a received frame is
matched as `A50102`, upper case, no spaces).
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, PlainSerializer, model_validator

from drivers.errors import ProtocolError
from drivers.transport.framing import DelimiterFramer, FixedLengthFramer, Framer

Encoding = Literal["ascii", "latin-1", "utf-8", "hex"]
MAX_FRAME = 4096


# ---------------------------------------------------------------------------- templates


@dataclass(frozen=True, slots=True)
class _Field:
    """`{name:spec}`; `name` is literal text and `{inner}` references, in order."""

    name: tuple[str | tuple[str], ...]
    spec: str

    def key(self, values: Mapping[str, Any]) -> str:
        return "".join(p if isinstance(p, str) else str(values[p[0]]) for p in self.name)


@dataclass(frozen=True, slots=True)
class Template:
    """Text with `{name}` and `{name:format-spec}` fields, parsed once.

    `{{` and `}}` are literal braces. A field's name may itself contain `{other}`
    references (`{route.{output}}`: the value named `route.` + the value of output).
    `render` fills fields with `format(value, spec)`; `names` are every name used.
    """

    text: str
    parts: tuple[str | _Field, ...]
    names: frozenset[str]
    fixed: str | None = None
    """The whole output when the template has no fields."""

    @classmethod
    def parse(cls, text: str) -> Template:
        """Parse `text`; ValueError says what is wrong and where."""
        parts: list[str | _Field] = []
        names: set[str] = set()
        literal, i = "", 0
        while i < len(text):
            char = text[i]
            if text.startswith(("{{", "}}"), i):
                literal, i = literal + char, i + 2
                continue
            if char == "}":
                raise ValueError(f"single '}}' at position {i} (write '}}}}' for a brace)")
            if char != "{":
                literal, i = literal + char, i + 1
                continue
            field, i = _parse_field(text, i)
            if literal:
                parts.append(literal)
                literal = ""
            parts.append(field)
            names.update(p[0] for p in field.name if isinstance(p, tuple))
            if len(field.name) == 1 and isinstance(field.name[0], str):
                names.add(field.name[0])
        if literal:
            parts.append(literal)
        constant = all(isinstance(p, str) for p in parts)
        return cls(
            text, tuple(parts), frozenset(names), "".join(map(str, parts)) if constant else None
        )

    @property
    def constant(self) -> bool:
        """True when the template has no fields."""
        return self.fixed is not None

    @property
    def single(self) -> str | None:
        """The name when the template is exactly one `{name}` without a format spec."""
        field = self.parts[0] if len(self.parts) == 1 else None
        if isinstance(field, _Field) and not field.spec and len(field.name) == 1:
            name = field.name[0]
            return name if isinstance(name, str) else None
        return None

    def render(self, values: Mapping[str, Any]) -> str:
        """The text with every field filled; KeyError for a missing value."""
        if self.fixed is not None:
            return self.fixed
        out = []
        for part in self.parts:
            if isinstance(part, str):
                out.append(part)
            else:
                out.append(format(values[part.key(values)], part.spec))
        return "".join(out)

    def unknown(self, known: Collection[str]) -> list[str]:
        """Names used in the template that are not in `known` (a `{a.{b}}` name counts as b)."""
        return sorted(n for n in self.names if n not in known)

    def __str__(self) -> str:
        return self.text


def _parse_field(text: str, start: int) -> tuple[_Field, int]:
    """The field opening at `start`, and the index after its closing brace."""
    name: list[str | tuple[str]] = []
    buf, i = "", start + 1
    while True:
        if i >= len(text):
            raise ValueError(f"'{{' at position {start} is never closed")
        char = text[i]
        if char == "{":
            end = text.find("}", i)
            inner = text[i + 1 : end] if end > 0 else ""
            if end < 0 or not inner.isidentifier():
                raise ValueError(f"bad reference inside the field at position {start}")
            if buf:
                name.append(buf)
                buf = ""
            name.append((inner,))
            i = end + 1
        elif char in ":}":
            break
        else:
            buf, i = buf + char, i + 1
    if buf:
        name.append(buf)
    spec = ""
    if text[i] == ":":
        end = text.find("}", i)
        if end < 0:
            raise ValueError(f"'{{' at position {start} is never closed")
        spec, i = text[i + 1 : end], end
    if not name:
        raise ValueError(f"empty field '{{}}' at position {start}: name a value, like {{input}}")
    return _Field(tuple(name), spec), i + 1


def parse_template(value: object) -> Template:
    if isinstance(value, Template):
        return value
    if not isinstance(value, str):
        raise ValueError(f"expected a text template, got {type(value).__name__}")
    return Template.parse(value)


TemplateField = Annotated[Template, BeforeValidator(parse_template), PlainSerializer(str)]


def check_template(template: Template, known: Mapping[str, Any], what: str) -> None:
    """ValueError when `template` names anything but `known` or cannot format its sample values."""
    unknown = template.unknown(known)
    if unknown:
        have = ", ".join(sorted(known)) or "none"
        close = difflib.get_close_matches(unknown[0], list(known), n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise ValueError(
            f"{template.text!r} names unknown {what} {', '.join(unknown)}{hint} (known: {have})"
        )
    try:
        template.render(_Samples(known))
    except (ValueError, TypeError) as err:
        raise ValueError(f"{template.text!r}: {err}") from None


class _Samples(dict[str, Any]):
    """Sample values for a check render; a composed name (`route.{x}`) finds a sample too."""

    def __missing__(self, key: str) -> Any:
        return ""


# ---------------------------------------------------------------------------- patterns


def compile_pattern(value: object) -> re.Pattern[str]:
    """A regular expression from text; ValueError with the position of what is wrong."""
    if isinstance(value, re.Pattern):
        return value
    if not isinstance(value, str):
        raise ValueError(f"expected a regular expression, got {type(value).__name__}")
    try:
        return re.compile(value)
    except re.error as err:
        where = f" at position {err.pos}" if err.pos is not None else ""
        raise ValueError(f"bad regular expression {value!r}: {err.msg}{where}") from None


Pattern = Annotated[
    re.Pattern[str], BeforeValidator(compile_pattern), PlainSerializer(lambda p: p.pattern)
]
"""A regular expression written as text, compiled when the definition loads."""


# ---------------------------------------------------------------------------- bytes


def decoder(encoding: Encoding) -> Callable[[bytes], str]:
    """Frame bytes → the text patterns match (hex: upper-case digits, no spaces)."""
    if encoding == "hex":
        return lambda data: data.hex().upper()
    return lambda data: data.decode(encoding, errors="replace")


def encoder(encoding: Encoding) -> Callable[[str], bytes]:
    """Rendered text → bytes to send; ProtocolError for text the encoding cannot carry."""

    def encode(text: str) -> bytes:
        try:
            if encoding == "hex":
                return bytes.fromhex(text)
            return text.encode(encoding)
        except (ValueError, UnicodeEncodeError) as err:
            raise ProtocolError(f"cannot send {text!r} as {encoding}: {err}") from None

    return encode


class Strict(BaseModel):
    """A definition's model: unknown keys are errors, values never change."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class Framing(Strict):
    """How frames are cut: at a delimiter, or every `length` bytes.

    `delimiter`: any of its bytes ends a frame from the device (empty frames are
    skipped, so "\\r\\n" takes CR, LF and CR LF). `terminator` ends every message to
    the device (default: the delimiter). Both are written in the protocol's encoding.
    """

    delimiter: str | None = Field(None, min_length=1, description="bytes that end a received frame")
    terminator: str | None = Field(None, description="appended to every message sent")
    length: int | None = Field(None, ge=1, le=MAX_FRAME, description="fixed frame length in bytes")
    max_length: int = Field(MAX_FRAME, ge=1, le=65536, description="longest delimited frame")

    @model_validator(mode="after")
    def _one_way(self) -> Framing:
        if (self.delimiter is None) == (self.length is None):
            raise ValueError("give a delimiter or a length (one of them)")
        return self


DEFAULT_FRAMING = Framing(delimiter="\r\n", terminator="\r")


class Wire:
    """A definition's framing and encoding, ready to use: frames in, bytes out."""

    __slots__ = ("decode", "delimiter", "encode", "encoding", "framing", "terminator")

    def __init__(self, encoding: Encoding, framing: Framing) -> None:
        self.encoding = encoding
        self.framing = framing
        self.decode = decoder(encoding)
        self.encode = encoder(encoding)
        try:
            self.delimiter = self.encode(framing.delimiter) if framing.delimiter else b""
            """What ends a frame from the device (empty for fixed-length framing)."""
            ends = framing.terminator if framing.terminator is not None else framing.delimiter
            self.terminator = self.encode(ends) if ends else b""
            """What ends a message to the device."""
        except ProtocolError as err:
            raise ValueError(f"framing: {err}") from None

    def framer(self, ends: bytes | None = None) -> Framer[bytes]:
        """A byte framer: fixed length, or split at any byte of `ends` (default: delimiter)."""
        if self.framing.length is not None:
            return FixedLengthFramer(self.framing.length)
        return DelimiterFramer(ends or self.delimiter, self.framing.max_length)

    def text_framer(self) -> TextFramer:
        """The driver's framer: frames from the device as the text patterns match."""
        return TextFramer(self.framer(), self.decode)


class TextFramer:
    """A byte framer whose frames come out decoded (`Wire.decode`)."""

    def __init__(self, inner: Framer[bytes], decode: Callable[[bytes], str]) -> None:
        self._inner = inner
        self._decode = decode

    def feed(self, data: bytes) -> list[str | ProtocolError]:
        decode = self._decode
        return [f if isinstance(f, ProtocolError) else decode(f) for f in self._inner.feed(data)]

    def reset(self) -> None:
        self._inner.reset()
