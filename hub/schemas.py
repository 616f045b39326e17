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
        self._texts: dict[str, str] = {}  # id → `"<id>":<schema JSON>`
        self._all: str | None = None  # encode(()) until the table changes
        # Drivers of one kind share their schema objects: each is hashed once, and devices
        # with the same actions share one name → id mapping (a device costs no memory here).
        self._known: dict[int, tuple[Schema, str]] = {}  # id(schema) → (schema, its id)
        self._maps: dict[tuple[tuple[str, str], ...], dict[str, str]] = {}

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
            known = self._known.get(id(schema))
            if known is not None and known[0] is schema:
                ref = known[1]
            else:
                ref = schema_id(schema)
                self._known[id(schema)] = (schema, ref)
            if ref not in self._schemas:
                self._schemas[ref] = schema
                self._texts[ref] = f"{dumps(ref)}:{dumps(schema)}"
                self._all = None
            refs[name] = ref
        return self._maps.setdefault(tuple(refs.items()), refs)

    def keep(self, refs: Collection[str]) -> None:
        """Forget every schema whose id is not in `refs`."""
        for ref in [r for r in self._schemas if r not in refs]:
            del self._schemas[ref], self._texts[ref]
            self._all = None
        self._known = {k: v for k, v in self._known.items() if v[1] in self._schemas}
        self._maps = {k: v for k, v in self._maps.items() if all(r in self._schemas for _, r in k)}

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
