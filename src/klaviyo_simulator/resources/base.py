"""The protocol every resource kind implements, and `RowKind`, its generic form for small collections.

A kind owns one or more JSON:API types: it generates their data, pages them (filters and sorts
through the shared query engine), renders resource objects and applies `advance` changes.
The application routes a request to the kind of the endpoint's resource type; nothing outside
a kind's module knows what the kind is.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

import orjson

from klaviyo_simulator.model import Change, Page, Row, World
from klaviyo_simulator.paging import keyset_page, tuple_key
from klaviyo_simulator.query import Condition, Listing, Query, iso_seconds, matches
from klaviyo_simulator.render import PLURAL, Renderer
from klaviyo_simulator.seeded import mix, short_id

if TYPE_CHECKING:
    from klaviyo_simulator.store import Store

# Datetime attributes of small collections (compared as epoch microseconds in filters).
DATETIME_FIELDS = frozenset(
    {"created", "updated", "created_at", "updated_at", "scheduled_at", "joined_group_at", "expires_at"}
)


class Resource(Protocol):
    """One resource kind of the simulated account."""

    types: tuple[str, ...]  # the JSON:API types it serves
    requires: tuple[str, ...]  # types whose data must exist before `generate`
    advance_keys: frozenset[str]  # the `advance` change names it applies

    def generate(self, world: World) -> None:
        """Build this kind's data (deterministic in the world's seed, sizes and now)."""

    def check(self, rtype: str, query: Query, collection: bool) -> None:
        """Kind-specific query rules beyond the spec's (raise `QueryError`)."""

    def default_sort(self, rtype: str, nested: bool) -> str:
        """The order of a listing without `sort`."""

    def page(self, rtype: str, listing: Listing) -> Page:
        """One page of a collection (nested under `listing.parent` when given)."""

    def render(self, rtype: str, page: Page, view: Renderer, query: Query) -> list[Any] | orjson.Fragment:
        """The `data` array of a page."""

    def find(self, rtype: str, rid: str) -> Any | None:
        """One record by id (None: 404)."""

    def render_one(self, rtype: str, item: Any, view: Renderer, query: Query) -> dict[str, Any]:
        """The `data` object of a single GET."""

    def advance(self, change: Change) -> dict[str, Any]:
        """Apply this kind's share of an `advance`; returns what changed (name -> ids)."""


def iso_us(text: str | None) -> int | None:
    """An ISO datetime attribute -> epoch microseconds."""
    if text is None:
        return None
    moment = datetime.fromisoformat(text)
    return int(moment.timestamp()) * 1_000_000 + moment.microsecond


def row_value(row: Row, field: str) -> Any:
    """A small row's value for a filter field (`id`, hidden fields, dotted attribute paths)."""
    if field == "id":
        return row.id
    if field in row.hidden:
        return row.hidden[field]
    value: Any = row.attributes
    for part in field.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    if field in DATETIME_FIELDS:
        return iso_us(value)
    return value


def page_rows(rows: Sequence[Row], listing: Listing, conditions: list[Condition]) -> Page:
    """Filter, sort (`tuple_key` of the sort value, id) and keyset-page a list of rows."""
    sort = listing.sort

    def sort_value(row: Row) -> Any:
        return row.id if sort == "id" else row.attributes.get(sort, row.hidden.get(sort))

    selected = [r for r in rows if all(matches(c, row_value(r, c.field)) for c in conditions)]
    keyed = sorted((tuple_key(sort_value(r), r.id), r) for r in selected)
    keys = [k for k, _ in keyed]
    by_key = {k: r for k, r in keyed}
    cursor = tuple(listing.after) if listing.after is not None else None
    size = listing.size if listing.size is not None else len(keys) + 1
    found, more = keyset_page(keys, after=cursor, desc=listing.descending, size=size, accept=lambda _: True)
    return Page([by_key[k] for k in found], [list(k) for k in found], more)


class RowKind:
    """A small collection (or a few related ones) of fully built `Row`s, held by the store.

    Subclasses set `types`, `requires`, the `advance` cursors and implement `build`.
    """

    types: tuple[str, ...] = ()
    requires: tuple[str, ...] = ()
    # advance name (e.g. "lists") -> (resource type, cursor attribute, created attribute)
    cursors: ClassVar[dict[str, tuple[str, str, str]]] = {}

    def __init__(self, store: Store) -> None:
        self.store = store
        self.advance_keys = frozenset(
            f"{name}_{verb}" for name in self.cursors for verb in ("updated", "created")
        )

    # ------------------------------------------------------------ generation

    def build(self, world: World) -> list[Row]:
        """Every row of this kind's types (in a stable order)."""
        raise NotImplementedError

    def generate(self, world: World) -> None:
        for row in self.build(world):
            self.store.add_row(row)

    # ------------------------------------------------------------ serving

    def check(self, rtype: str, query: Query, collection: bool) -> None:
        return None

    def default_sort(self, rtype: str, nested: bool) -> str:
        return "id"

    def conditions(self, rtype: str, conditions: list[Condition]) -> list[Condition]:
        """The conditions a listing applies (a kind may add implicit ones)."""
        return conditions

    def page(self, rtype: str, listing: Listing) -> Page:
        rows: Sequence[Row] = self.store.records_view(rtype)
        if listing.parent is not None:
            wanted = set(listing.parent.related_ids(PLURAL[rtype]))
            rows = [r for r in rows if r.id in wanted]
        return page_rows(rows, listing, self.conditions(rtype, listing.conditions))

    def render(self, rtype: str, page: Page, view: Renderer, query: Query) -> list[Any] | orjson.Fragment:
        return [view.row(row) for row in page.rows]

    def find(self, rtype: str, rid: str) -> Row | None:
        return self.store.get(rtype, rid)

    def extra(self, row: Row, query: Query) -> dict[str, Any] | None:
        """Attributes asked for with `additional-fields` on a single GET."""
        return None

    def render_one(self, rtype: str, item: Any, view: Renderer, query: Query) -> dict[str, Any]:
        return view.row(item, self.extra(item, query))

    # ------------------------------------------------------------ time moves

    def advance(self, change: Change) -> dict[str, Any]:
        """`<name>_updated`: touch rows (names get `(rev N)`); `<name>_created`: clone rows stamped now."""
        result: dict[str, Any] = {}
        for name, (rtype, cursor, created_field) in self.cursors.items():
            rows = self.store.records_view(rtype)
            n = change.count(f"{name}_updated")
            if n and rows:
                max_second = max(iso_us(r.attributes[cursor]) or 0 for r in rows) // 1_000_000
                if change.at_boundary:
                    change.boundary[name] = iso_seconds(max_second)
                picked = [
                    rows[(mix(change.salt, 4, len(name), k) + k) % len(rows)]
                    for k in range(min(n, len(rows)))
                ]
                ids = []
                for k, touched in enumerate({r.id: r for r in picked}.values()):
                    stamp = max_second if change.at_boundary and k < max(1, n // 2) else change.now
                    touched.attributes[cursor] = iso_seconds(stamp)
                    if "name" in touched.attributes:
                        base_name = touched.attributes["name"].split(" (rev")[0]
                        touched.attributes["name"] = f"{base_name} (rev {change.number})"
                    ids.append(touched.id)
                result[f"{name}_updated"] = ids
            n_new = change.count(f"{name}_created")
            if n_new and rows:
                result[f"{name}_created"] = [
                    self._clone(rtype, cursor, created_field, change, k) for k in range(n_new)
                ]
        return result

    def new_id(self, rtype: str, change: Change, k: int) -> str:
        return short_id(change.salt, 9, k)

    def clone_relationships(self, template: Row, new_id: str, change: Change, k: int) -> dict[str, Any]:
        """The relationships of a clone of `template` (a kind may create dependent rows here)."""
        return dict(template.relationships)

    def _clone(self, rtype: str, cursor: str, created_field: str, change: Change, k: int) -> str:
        rows = self.store.records_view(rtype)
        template = rows[mix(change.salt, 8, k) % len(rows)]
        new_id = self.new_id(rtype, change, k)
        attributes = dict(template.attributes)
        attributes[created_field] = attributes[cursor] = iso_seconds(change.now)
        if "name" in attributes:
            attributes["name"] = f"{attributes['name']} (copy {change.number}.{k})"
        relationships = self.clone_relationships(template, new_id, change, k)
        self.store.add_row(Row(rtype, new_id, attributes, relationships, dict(template.hidden)))
        return new_id


class GroupKind(RowKind):
    """Lists and segments: rows with members (profiles) and `additional-fields[...]=profile_count`."""

    def extra(self, row: Row, query: Query) -> dict[str, Any] | None:
        if "profile_count" in query.additional.get(row.type, frozenset()):
            return {"profile_count": len(self.store.members(row.type, row.id))}
        return None
