"""Action schemas by content: a snapshot describes each distinct schema once, devices name it.

A schema's id is derived from its content alone (`schema_id`), so an id means the same
schema in every room, every epoch and every hub: a panel may keep the schemas it was
sent across reconnects and hub restarts, and name the ids it holds when it connects
(`auth.schemas`, DESIGN.md §3) to be sent only the ones it lacks.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Collection, Iterable, Iterator, Mapping
from typing import Any

from hub.encoding import dumps

Schema = Mapping[str, Any]


def schema_id(schema: Schema) -> str:
    """8 base64url characters (48 bits) of the SHA-256 of the schema's key-sorted compact JSON."""
    canonical = json.dumps(schema, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return base64.urlsafe_b64encode(hashlib.sha256(canonical.encode()).digest()[:6]).decode()


def held_ids(value: object) -> frozenset[str]:
    """The schema ids a panel says it holds (`auth.schemas`, `sync.schemas`); junk: none."""
    if not isinstance(value, list):
        return frozenset()
    return frozenset(v for v in value if isinstance(v, str))


class SchemaTable:
    """The action schemas a room's devices use, by id, each encoded once.

    Schemas may be added at any time (`intern`); `keep` drops those no device uses
    any more. `encode(held)` is the snapshot's `schemas` object without the ids in
    `held`, byte for byte `dumps(self.subset(held))`. Schemas are read-only once
    interned (as `Driver.describe_actions` says), and so are the mappings returned.
    """

    def __init__(self) -> None:
        self._schemas: dict[str, Schema] = {}
        self._texts: dict[str, str] = {}  # id → `"<id>":<schema JSON>` (shared: `_SHARED`)
        self._all: str | None = None  # encode(()) until the table changes

    def __contains__(self, ref: object) -> bool:
        return ref in self._schemas

    def __len__(self) -> int:
        return len(self._schemas)

    def __iter__(self) -> Iterator[str]:
        """The ids in the table."""
        return iter(self._schemas)

    def intern(self, actions: Mapping[str, Schema]) -> dict[str, str]:
        """Add every schema of `actions` (name → schema); returns name → schema id."""
        refs: dict[str, str] = {}
        for name, schema in actions.items():
            ref = _SHARED.ref(schema)
            if ref not in self._schemas:
                self._schemas[ref] = schema
                self._texts[ref] = _SHARED.text(ref, schema)
                self._all = None
            refs[name] = ref
        return _SHARED.mapping(refs)

    def keep(self, refs: Collection[str]) -> None:
        """Forget every schema whose id is not in `refs`."""
        for ref in [r for r in self._schemas if r not in refs]:
            del self._schemas[ref], self._texts[ref]
            self._all = None

    def subset(
        self, held: Collection[str] = (), only: Iterable[str] | None = None
    ) -> dict[str, Any]:
        """Id → schema of the table (or of `only`), without the ids in `held`."""
        refs = self._schemas if only is None else dict.fromkeys(only)
        return {r: self._schemas[r] for r in refs if r not in held}

    def encode(self, held: Collection[str] = ()) -> str:
        """`subset(held)` as compact JSON, from each schema's text encoded once."""
        if not held:
            if self._all is None:
                self._all = "{" + ",".join(self._texts.values()) + "}"
            return self._all
        return "{" + ",".join(t for r, t in self._texts.items() if r not in held) + "}"


class _Shared:
    """What every room's table can share: drivers of one kind hand every device the same
    schema objects, and alike devices have the same actions.

    Each schema object is hashed once, each schema encoded once, and devices with the
    same actions share one name → id mapping, whatever room they are in: a device, or a
    room of alike devices, costs no memory here. Each cache holds at most `limit`
    entries and starts again when full (schemas made anew at run time cannot grow it).
    """

    def __init__(self, limit: int = 4096) -> None:
        self.limit = limit
        self._ids: dict[int, tuple[Schema, str]] = {}  # id(schema) → (schema, its id)
        self._texts: dict[str, str] = {}  # id → `"<id>":<schema JSON>`
        self._maps: dict[tuple[tuple[str, str], ...], dict[str, str]] = {}

    def ref(self, schema: Schema) -> str:
        """`schema_id(schema)`, hashed once per schema object."""
        known = self._ids.get(id(schema))
        if known is not None and known[0] is schema:
            return known[1]
        ref = schema_id(schema)
        if len(self._ids) >= self.limit:
            self._ids.clear()
        self._ids[id(schema)] = (schema, ref)  # the schema is held: its id stays its own
        return ref

    def text(self, ref: str, schema: Schema) -> str:
        """`"<ref>":<schema JSON>`, one string for every table holding the schema."""
        text = self._texts.get(ref)
        if text is None:
            if len(self._texts) >= self.limit:
                self._texts.clear()
            text = self._texts[ref] = f"{dumps(ref)}:{dumps(schema)}"
        return text

    def mapping(self, refs: dict[str, str]) -> dict[str, str]:
        """One read-only name → id mapping per distinct content."""
        key = tuple(refs.items())
        shared = self._maps.get(key)
        if shared is None:
            if len(self._maps) >= self.limit:
                self._maps.clear()
            shared = self._maps[key] = refs
        return shared


_SHARED = _Shared()
