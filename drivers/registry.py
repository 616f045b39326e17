"""Registries of names: the built-in entries, then those installed packages add.

`DRIVERS` (drivers/__init__.py) and `SIMULATORS` (simulators/__init__.py) are each a
`Registry`: the built-in entries, then the Python entry points of one group
(`avhub.drivers`, `avhub.simulators`; the entry point's name is the driver name used in
YAML), loaded once, on first use. A plug-in that cannot be used — it fails to import,
its object is not what the group takes, or its name is taken — is left out and kept as
a `PluginFailure` instead of raised: one broken package must not stop a hub whose
devices do not need it. Built-in names win over plug-ins.
"""

from __future__ import annotations

import traceback
from collections.abc import Callable, Iterator, MutableMapping
from dataclasses import dataclass
from importlib.metadata import EntryPoint, entry_points
from typing import Any, TypeVar

from drivers.errors import AvhubError

DRIVER_GROUP = "avhub.drivers"
SIMULATOR_GROUP = "avhub.simulators"

T = TypeVar("T")


class PluginError(AvhubError):
    """An entry point's object is not what its group takes; the message says why."""


@dataclass(frozen=True, slots=True)
class Origin:
    """Where a registered name comes from: built in (`package` None) or an installed package."""

    package: str | None = None
    version: str | None = None
    entry_point: str | None = None
    """`module:attribute`, as the package declares it."""

    @classmethod
    def of(cls, entry: EntryPoint) -> Origin:
        dist = entry.dist
        if dist is None:
            return cls("an unknown package", None, entry.value)
        return cls(dist.name, dist.version, entry.value)

    def __str__(self) -> str:
        if self.package is None:
            return "built-in"
        return f"package {self.package} {self.version}" if self.version else self.package

    def as_json(self) -> dict[str, Any]:
        if self.package is None:
            return {"kind": "built-in"}
        return {
            "kind": "package",
            "package": self.package,
            "version": self.version,
            "entry_point": self.entry_point,
        }


BUILT_IN = Origin()


@dataclass(frozen=True, slots=True)
class PluginFailure:
    """A plug-in left out, and why: `error` is one line, `details` the traceback if any."""

    noun: str
    """What the group registers: "driver" or "simulator"."""
    name: str
    origin: Origin
    error: str
    details: str = ""

    def __str__(self) -> str:
        return (
            f"{self.noun} plug-in {self.name!r} ({self.origin}, entry point "
            f"{self.origin.entry_point}) failed to load: {self.error}"
        )

    def as_json(self) -> dict[str, Any]:
        return {
            "kind": self.noun,
            "name": self.name,
            "origin": self.origin.as_json(),
            "error": self.error,
            "traceback": self.details,
        }


class Registry(MutableMapping[str, T]):
    """Built-in entries by name, then the entry points of `group`, loaded on first use.

    `accept(name, obj)` turns an entry point's object into an entry, or raises
    PluginError saying why it cannot be one.
    """

    def __init__(
        self,
        group: str,
        noun: str,
        entries: dict[str, T],
        accept: Callable[[str, object], T],
    ) -> None:
        self.group = group
        self.noun = noun
        self._entries = dict(entries)
        self._origins: dict[str, Origin] = {}
        self._failures: list[PluginFailure] = []
        self._accept = accept
        self._loaded = False

    # ---- plug-ins ------------------------------------------------------------------

    def load(self) -> None:
        """Add the installed packages' entry points (once; every other method calls this)."""
        if self._loaded:
            return
        self._loaded = True  # first: a plug-in that reads the registry while loading sees it
        for entry in entry_points(group=self.group):
            self._add(entry)

    def _add(self, entry: EntryPoint) -> None:
        name, origin = entry.name, Origin.of(entry)
        if name in self._entries:
            taken = self._origins.get(name, BUILT_IN)
            which = f"the built-in {self.noun}" if taken is BUILT_IN else str(taken)
            self._fail(name, origin, f"the name {name!r} is taken by {which}, which is used")
            return
        try:
            value = self._accept(name, entry.load())
        except PluginError as err:
            self._fail(name, origin, str(err))
            return
        except Exception as err:  # importing someone else's package may raise anything
            details = "".join(traceback.format_exception(err))
            first = str(err).partition("\n")[0]
            self._fail(name, origin, f"{type(err).__name__}: {first}", details)
            return
        self._entries[name] = value
        self._origins[name] = origin

    def _fail(self, name: str, origin: Origin, error: str, details: str = "") -> None:
        self._failures.append(PluginFailure(self.noun, name, origin, error, details))

    def origin(self, name: str) -> Origin:
        """Where `name` comes from (KeyError when it is not registered)."""
        self.load()
        if name not in self._entries:
            raise KeyError(name)
        return self._origins.get(name, BUILT_IN)

    @property
    def failures(self) -> list[PluginFailure]:
        """Every plug-in left out, in the order they were found."""
        self.load()
        return list(self._failures)

    def failure(self, name: str) -> PluginFailure | None:
        """Why no plug-in provides `name`, when one tried and failed."""
        self.load()
        if name in self._entries:
            return None
        return next((f for f in self._failures if f.name == name), None)

    # ---- the mapping ---------------------------------------------------------------

    def __getitem__(self, name: str) -> T:
        self.load()
        return self._entries[name]

    def __setitem__(self, name: str, value: T) -> None:
        self.load()
        self._entries[name] = value
        self._origins.pop(name, None)

    def __delitem__(self, name: str) -> None:
        self.load()
        del self._entries[name]
        self._origins.pop(name, None)

    def __iter__(self) -> Iterator[str]:
        self.load()
        return iter(self._entries)

    def __len__(self) -> int:
        self.load()
        return len(self._entries)

    def __repr__(self) -> str:
        return f"<Registry {self.group}: {', '.join(self)}>"
