"""The simulator's ground truth: one instance of every resource kind, generated from the seed, and `advance`.

Tests read the same store to compute expected results: `event_count`, `profile_count`,
`event_ids()`, `profile_ids()`, `profile_id(row)`, `profile_row(id)`, `records(type)`,
`get(type, id)`, `members(type, id)`, and the columns `events.cols` / `profiles.cols`.
"""

from __future__ import annotations

import random
import time
from typing import Any

from klaviyo_simulator.model import Change, Row, Sizes, World
from klaviyo_simulator.query import iso_seconds
from klaviyo_simulator.resources import ROW_KINDS, Events, Profiles, Resource
from klaviyo_simulator.resources.events import event_id
from klaviyo_simulator.seeded import mix

# Rows deleted with their owner (a deleted campaign takes its messages along, as in Klaviyo).
OWNER = {
    "campaign-message": "campaign",
    "flow-action": "flow",
    "flow-message": "flow-action",
    "form-version": "form",
    "coupon-code": "coupon",
    "catalog-variant": "catalog-item",
}


class Store:
    """All simulated data of one account."""

    def __init__(self, seed: int, sizes: Sizes, now: int | None = None) -> None:
        self.seed = seed
        self.sizes = sizes
        self.now = int(time.time()) if now is None else now
        self._rows: dict[str, list[Row]] = {}
        self._by_id: dict[str, dict[str, Row]] = {}
        self.events = Events(self)
        self.profiles = Profiles(self)
        self.kinds: tuple[Resource, ...] = (self.events, self.profiles, *(kind(self) for kind in ROW_KINDS))
        self._kind_of: dict[str, Resource] = {rtype: kind for kind in self.kinds for rtype in kind.types}
        self.advance_keys = frozenset({"boundary"}).union(*(kind.advance_keys for kind in self.kinds))
        self._advances = 0
        self._generate(World(seed, sizes, self.now, random.Random(seed)))

    def _generate(self, world: World) -> None:
        """Every kind once, after the kinds it requires (profiles draw the seeded stream before events)."""
        done: set[int] = set()

        def run(kind: Resource) -> None:
            if id(kind) in done:
                return
            done.add(id(kind))
            for rtype in kind.requires:
                run(self.kind(rtype))
            kind.generate(world)

        for kind in self.kinds:
            run(kind)

    def kind(self, rtype: str) -> Resource:
        """The kind serving a JSON:API type (KeyError for a type nothing serves)."""
        return self._kind_of[rtype]

    # ------------------------------------------------------------ small collections

    def add_row(self, row: Row) -> None:
        self._rows.setdefault(row.type, []).append(row)
        self._by_id.setdefault(row.type, {})[row.id] = row

    def records_view(self, resource_type: str) -> list[Row]:
        """The live list of a small collection's rows (do not modify; see `add_row`)."""
        return self._rows.setdefault(resource_type, [])

    def records(self, resource_type: str) -> list[Row]:
        """Every record of a small collection (campaigns include archived ones)."""
        return list(self._rows.get(resource_type, []))

    def get(self, resource_type: str, identifier: str) -> Row | None:
        return self._by_id.get(resource_type, {}).get(identifier)

    def delete(self, resource_type: str, ids: list[str]) -> list[str]:
        """Delete records (any resource, profiles included); returns "type/id" of everything deleted,
        owned rows included. Unknown ids are skipped."""
        if resource_type == "profile":
            return [f"profile/{pid}" for pid in self.profiles.delete(ids)]
        if resource_type not in self._kind_of:
            raise ValueError(f"unknown resource type {resource_type!r}")
        deleted: list[str] = []
        pending = [(resource_type, rid) for rid in ids]
        while pending:
            rtype, rid = pending.pop()
            row = self._by_id.get(rtype, {}).pop(rid, None)
            if row is None:
                continue
            self._rows[rtype] = [r for r in self._rows.get(rtype, []) if r.id != rid]
            deleted.append(f"{rtype}/{rid}")
            for other_type, rows in self._rows.items():
                for other in rows:
                    for name, (related_type, value) in list(other.relationships.items()):
                        if related_type != rtype:
                            continue
                        if isinstance(value, list) and rid in value:
                            other.relationships[name] = (related_type, [v for v in value if v != rid])
                        elif value == rid and OWNER.get(other_type) == rtype:
                            pending.append((other_type, other.id))
        return deleted

    CHANGES = ("delete", "unsuppress", "remove-members")

    def change(self, action: str, payload: dict[str, Any]) -> dict[str, Any]:
        """Deterministic admin changes (`POST /__sim/<action>`), each returning what changed:

        - `delete` {"type": "campaign", "ids": [...]}: records of any resource (profiles too), with
          the rows they own (a campaign's messages, a flow's actions and their messages, ...);
        - `unsuppress` {"ids": [...]}: lift profiles' email suppression (their `updated` moves);
        - `remove-members` {"group_type": "list"|"segment", "group_id": "...", "profile_ids": [...]}.

        Raises ValueError for an unknown action or a malformed payload."""
        ids = payload.get("ids", payload.get("profile_ids"))
        if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
            raise ValueError("the payload needs 'ids' (or 'profile_ids'): a list of id strings")
        if action == "delete":
            rtype = payload.get("type")
            if not isinstance(rtype, str):
                raise ValueError("'type' must be a resource type such as 'campaign' or 'profile'")
            return {"deleted": self.delete(rtype, ids)}
        if action == "unsuppress":
            return {"unsuppressed": self.profiles.unsuppress(ids, self.clock())}
        if action == "remove-members":
            group_type, group_id = payload.get("group_type"), payload.get("group_id")
            if group_type not in ("list", "segment") or self.get(str(group_type), str(group_id)) is None:
                raise ValueError("'group_type' must be list or segment and 'group_id' an existing group")
            return {"removed": self.profiles.remove_members(str(group_type), str(group_id), ids)}
        raise ValueError(f"unknown change {action!r}; known: {', '.join(self.CHANGES)}")

    def members(self, group_type: str, group_id: str) -> list[int]:
        """Sorted keys `(joined_group_at << 32) | profile row` of a list's or segment's members."""
        return self.profiles.members(group_type, group_id)

    # ------------------------------------------------------------ events and profiles

    @property
    def event_count(self) -> int:
        return self.events.count

    @property
    def profile_count(self) -> int:
        return self.profiles.count

    def event_ids(self) -> list[str]:
        return [event_id(row) for row in range(self.event_count)]

    def profile_id(self, row: int) -> str:
        return self.profiles.id(row)

    def profile_row(self, identifier: str) -> int | None:
        return self.profiles.row_of(identifier)

    def profile_ids(self) -> list[str]:
        return list(self.profiles.ids())

    # ------------------------------------------------------------ time moves

    def clock(self) -> int:
        """Current real time in whole seconds, never before anything already stored."""
        latest = max(self.now, self.events.latest())
        return max(int(time.time()), latest)

    def advance(self, changes: dict[str, Any]) -> dict[str, Any]:
        """Create and update records stamped now; `boundary` reuses each collection's max cursor second.

        Raises ValueError for an unknown change or a count that is not a non-negative integer.
        """
        unknown = sorted(set(changes) - self.advance_keys)
        if unknown:
            known = ", ".join(sorted(self.advance_keys))
            raise ValueError(f"unknown change(s) {', '.join(unknown)}; known: {known}")
        for name, value in changes.items():
            if name != "boundary" and (not isinstance(value, int) or isinstance(value, bool) or value < 0):
                raise ValueError(f"{name} must be a non-negative integer")
        self._advances += 1
        change = Change(
            counts={name: value for name, value in changes.items() if name != "boundary"},
            now=self.clock(),
            salt=mix(self.seed, 900, self._advances),
            number=self._advances,
            at_boundary=bool(changes.get("boundary", False)),
        )
        result: dict[str, Any] = {"now": iso_seconds(change.now), "boundary": change.boundary}
        for kind in self.kinds:
            result.update(kind.advance(change))
        return result
