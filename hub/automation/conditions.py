"""Conditions on room state: `projector.power == on and dsp.levels.program >= -20`.

A small hand-written parser (never `eval`) turns the text into a tree that is evaluated
against the state of the room's devices. Grammar, loosest first:

    condition  := or
    or         := and ("or" and)*
    and        := not ("and" not)*
    not        := "not" not | "(" condition ")" | comparison
    comparison := operand [("==" | "!=" | "<" | "<=" | ">" | ">=") operand
                           | ["not"] "in" "[" [literal ("," literal)*] "]"]
    operand    := reference | literal

A reference is `<device>.<key>[.<key>...]` (a nested key is one more `.step`); a literal
is a number, a quoted string, `true`, `false`, `null`, or a bare word, which is text
(`on`, `HDMI1`). A reference on its own is true when its value is truthy. A missing key
reads as null; `<`, `<=`, `>`, `>=` between values that are not both numbers or both
text are false.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

StateOf = Callable[[str], Mapping[str, Any] | None]
"""A device id → its current state, or None for a device the room does not have."""


class ConditionError(ValueError):
    """A condition that does not parse; `column` is 1-based within the condition text."""

    def __init__(self, message: str, column: int) -> None:
        super().__init__(f"{message} (at character {column})")
        self.column = column


# ---------------------------------------------------------------------------- the tree


@dataclass(frozen=True, slots=True)
class Ref:
    """A state key of one device, nested keys included."""

    device: str
    keys: tuple[str, ...]

    def value(self, state_of: StateOf) -> Any:
        current: Any = state_of(self.device)
        for key in self.keys:
            if not isinstance(current, Mapping):
                return None
            current = current.get(key)
        return current

    def __str__(self) -> str:
        return ".".join((self.device, *self.keys))


@dataclass(frozen=True, slots=True)
class Const:
    """A literal value."""

    value: Any

    def __str__(self) -> str:
        return _literal_text(self.value)


Operand = Ref | Const


def _ordered(op: Callable[[Any, Any], bool]) -> Callable[[Any, Any], bool]:
    """`op` for two numbers or two strings; anything else is false."""

    def compare(a: Any, b: Any) -> bool:
        if _is_number(a) and _is_number(b):
            return op(a, b)
        if isinstance(a, str) and isinstance(b, str):
            return op(a, b)
        return False

    return compare


def _equal(a: Any, b: Any) -> bool:
    if isinstance(a, bool) != isinstance(b, bool):  # true is not 1, false is not 0
        return False
    return bool(a == b)


_OPERATORS: dict[str, Callable[[Any, Any], bool]] = {
    "==": _equal,
    "!=": lambda a, b: not _equal(a, b),
    "<": _ordered(operator.lt),
    "<=": _ordered(operator.le),
    ">": _ordered(operator.gt),
    ">=": _ordered(operator.ge),
}


@dataclass(frozen=True, slots=True)
class Compare:
    left: Operand
    op: str
    right: Operand

    def holds(self, state_of: StateOf) -> bool:
        return _OPERATORS[self.op](_value(self.left, state_of), _value(self.right, state_of))


@dataclass(frozen=True, slots=True)
class Member:
    """`operand in [...]`, or `not in` when `negated`."""

    operand: Operand
    values: tuple[Any, ...]
    negated: bool

    def holds(self, state_of: StateOf) -> bool:
        value = _value(self.operand, state_of)
        found = any(_equal(value, v) for v in self.values)
        return found != self.negated


@dataclass(frozen=True, slots=True)
class Truthy:
    operand: Operand

    def holds(self, state_of: StateOf) -> bool:
        return bool(_value(self.operand, state_of))


@dataclass(frozen=True, slots=True)
class Not:
    inner: Expr

    def holds(self, state_of: StateOf) -> bool:
        return not self.inner.holds(state_of)


@dataclass(frozen=True, slots=True)
class AllOf:
    parts: tuple[Expr, ...]

    def holds(self, state_of: StateOf) -> bool:
        return all(p.holds(state_of) for p in self.parts)


@dataclass(frozen=True, slots=True)
class AnyOf:
    parts: tuple[Expr, ...]

    def holds(self, state_of: StateOf) -> bool:
        return any(p.holds(state_of) for p in self.parts)


Expr = Compare | Member | Truthy | Not | AllOf | AnyOf


def _value(operand: Operand, state_of: StateOf) -> Any:
    return operand.value(state_of) if isinstance(operand, Ref) else operand.value


@dataclass(frozen=True, slots=True)
class Condition:
    """A parsed condition: its text, its tree, and the references it reads."""

    text: str
    expr: Expr
    refs: tuple[Ref, ...]

    @property
    def devices(self) -> frozenset[str]:
        """The device ids the condition reads: a change of another device cannot flip it."""
        return frozenset(r.device for r in self.refs)

    def holds(self, state_of: StateOf) -> bool:
        """Whether the condition is true of the state `state_of` gives."""
        return self.expr.holds(state_of)

    def __str__(self) -> str:
        return self.text


# ---------------------------------------------------------------------------- tokens

_TOKEN = re.compile(
    r"""
    (?P<space>\s+)
  | (?P<op>==|!=|<=|>=|<|>)
  | (?P<punct>[()\[\],])
  | (?P<string>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')
  | (?P<number>-?\d+(?:\.\d+)?(?![\w.-]))
  | (?P<name>[A-Za-z0-9_][\w-]*(?:\.[\w-]+)*)
  | (?P<bad>.)
    """,
    re.VERBOSE,
)
_KEYWORDS = {"and", "or", "not", "in"}
_WORDS: dict[str, Any] = {"true": True, "false": False, "null": None}


@dataclass(frozen=True, slots=True)
class _Token:
    kind: str  # op, punct, string, number, name, keyword, end
    text: str
    column: int  # 1-based


def _tokens(text: str) -> Iterator[_Token]:
    for match in _TOKEN.finditer(text):
        kind = match.lastgroup or "bad"
        value, column = match.group(), match.start() + 1
        if kind == "space":
            continue
        if kind == "bad":
            if value in "\"'":
                raise ConditionError("a quoted string is not closed", column)
            if value == "=":
                raise ConditionError("'=' is not an operator: compare with '=='", column)
            raise ConditionError(f"unexpected {value!r}", column)
        if kind == "name" and value in _KEYWORDS:
            kind = "keyword"
        yield _Token(kind, value, column)
    yield _Token("end", "", len(text) + 1)


# ---------------------------------------------------------------------------- parser


class _Parser:
    """Recursive descent over the grammar of the module docstring."""

    def __init__(self, text: str) -> None:
        self.tokens = list(_tokens(text))
        self.at = 0
        self.refs: list[Ref] = []

    @property
    def token(self) -> _Token:
        return self.tokens[self.at]

    def take(self) -> _Token:
        token = self.tokens[self.at]
        self.at += 1
        return token

    def accept(self, kind: str, text: str) -> bool:
        if self.token.kind == kind and self.token.text == text:
            self.at += 1
            return True
        return False

    def expect(self, kind: str, text: str, what: str) -> None:
        if not self.accept(kind, text):
            raise self.error(f"expected {what}")

    def error(self, expected: str) -> ConditionError:
        token = self.token
        found = "the end" if token.kind == "end" else repr(token.text)
        return ConditionError(f"{expected}, found {found}", token.column)

    def parse(self) -> Expr:
        if self.token.kind == "end":
            raise ConditionError("the condition is empty", 1)
        expr = self.disjunction()
        if self.token.kind != "end":
            raise self.error("expected 'and', 'or' or the end")
        return expr

    def disjunction(self) -> Expr:
        parts = [self.conjunction()]
        while self.accept("keyword", "or"):
            parts.append(self.conjunction())
        return parts[0] if len(parts) == 1 else AnyOf(tuple(parts))

    def conjunction(self) -> Expr:
        parts = [self.negation()]
        while self.accept("keyword", "and"):
            parts.append(self.negation())
        return parts[0] if len(parts) == 1 else AllOf(tuple(parts))

    def negation(self) -> Expr:
        if self.accept("keyword", "not"):
            return Not(self.negation())
        if self.accept("punct", "("):
            inner = self.disjunction()
            self.expect("punct", ")", "')'")
            return inner
        return self.comparison()

    def comparison(self) -> Expr:
        left = self.operand()
        if self.token.kind == "op":
            op = self.take().text
            return Compare(left, op, self.operand())
        negated = self.token.kind == "keyword" and self.token.text == "not"
        if negated and self.tokens[self.at + 1].text == "in":
            self.at += 1
        if self.accept("keyword", "in"):
            return Member(left, self.values(), negated)
        if negated:
            raise self.error("expected 'in' after 'not'")
        if isinstance(left, Const):
            raise self.error(f"expected a comparison after {left}")
        return Truthy(left)

    def operand(self) -> Operand:
        token = self.token
        if token.kind == "name" and "." in token.text:
            self.at += 1
            device, *keys = token.text.split(".")
            ref = Ref(device, tuple(keys))
            self.refs.append(ref)
            return ref
        return Const(self.literal())

    def literal(self) -> Any:
        token = self.token
        if token.kind == "string":
            self.at += 1
            return re.sub(r"\\(.)", r"\1", token.text[1:-1])
        if token.kind == "number":
            self.at += 1
            return float(token.text) if "." in token.text else int(token.text)
        if token.kind == "name" and "." not in token.text:
            self.at += 1
            return _WORDS.get(token.text, token.text)
        raise self.error("expected a value or a <device>.<key> reference")

    def values(self) -> tuple[Any, ...]:
        self.expect("punct", "[", "'[' to start a list")
        found: list[Any] = []
        if not self.accept("punct", "]"):
            found.append(self.literal())
            while self.accept("punct", ","):
                found.append(self.literal())
            self.expect("punct", "]", "',' or ']'")
        return tuple(found)


def parse_condition(text: str) -> Condition:
    """Parse `text`; raises ConditionError saying what is wrong and where."""
    parser = _Parser(text)
    expr = parser.parse()
    return Condition(text.strip(), expr, tuple(parser.refs))


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _literal_text(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value if re.fullmatch(r"[A-Za-z_][\w-]*", value) else repr(value)
    return str(value)
