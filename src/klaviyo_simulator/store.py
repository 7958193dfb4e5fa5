"""The simulator's ground truth: generated data, sorted indices, filtered/sorted pages, `advance`.

Events and profiles are columns with integer keys `(seconds << 32) | row` kept sorted, so a
datetime / updated window is two bisects. Small collections are filtered and sorted per request.
Tests read the same store (`records()`, `profile_ids()`, ...) to compute expected results.
"""

from __future__ import annotations

import bisect
import random
import time
from array import array
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from itertools import repeat
from operator import lshift, or_
from typing import Any

import orjson

from klaviyo_simulator import records
from klaviyo_simulator.data import (
    METRIC_CUMULATIVE,
    SUPPRESSION_REASONS,
    Row,
    Sizes,
    frac,
    generate_columns,
    generate_small,
    mix,
    short_id,
    ulid,
)
from klaviyo_simulator.paging import keyset_page, tuple_key
from klaviyo_simulator.query import Condition, iso_seconds, matches, seconds_window

SHIFT = 32
ROW_MASK = (1 << SHIFT) - 1
# Datetime attributes of small collections (compared as epoch microseconds in filters).
DATETIME_FIELDS = frozenset(
    {"created", "updated", "created_at", "updated_at", "scheduled_at", "joined_group_at"}
)
# `advance` keys for small collections -> (resource type, cursor attribute)
SMALL_CURSORS = {
    "campaigns": ("campaign", "updated_at"),
    "flows": ("flow", "updated"),
    "templates": ("template", "updated"),
    "lists": ("list", "updated"),
    "segments": ("segment", "updated"),
    "metrics": ("metric", "updated"),
    "tags": ("tag", ""),
}


ADVANCE_KEYS = frozenset(
    {"events", "profiles_created", "profiles_updated", "profiles_suppressed", "boundary"}
    | {
        f"{name}_{verb}"
        for name, (_, cursor) in SMALL_CURSORS.items()
        if cursor
        for verb in ("updated", "created")
    }
)


@dataclass
class Page:
    """Rows of one page (int rows for events/profiles, `Row` for small collections)."""

    rows: list[Any]
    keys: list[Any]  # JSON-able keyset key of each row (what a cursor encodes)
    more: bool  # rows follow in the direction of the page


def _iso_us(text: str | None) -> int | None:
    if text is None:
        return None
    moment = datetime.fromisoformat(text)
    return int(moment.timestamp()) * 1_000_000 + moment.microsecond


class Store:
    """All simulated data of one account."""

    def __init__(self, seed: int, sizes: Sizes, now: int | None = None) -> None:
        self.seed = seed
        self.sizes = sizes
        self.now = int(time.time()) if now is None else now
        self.cols = records_columns = generate_columns(seed, sizes, self.now)
        self.small = generate_small(seed, sizes, self.now)
        self.by_id: dict[str, dict[str, Row]] = {t: {r.id: r for r in rows} for t, rows in self.small.items()}
        self.event_keys = array("q", _keys(records_columns.event_ts))
        self.created_keys = array("q", _keys(records_columns.profile_created))
        self.updated_keys = sorted(_keys(records_columns.profile_updated))
        self._profile_ids: list[str] = []
        self._profile_rows: dict[str, int] = {}
        self._profile_id_cache: dict[int, str] = {}
        self._sorted_cache: dict[str, list[Any]] = {}
        self._members: dict[tuple[str, str], list[int]] = {}
        self._advance_count = 0
        self.campaign_names_json = [
            orjson.dumps(r.attributes["name"]).decode() for r in self.small["campaign"]
        ]

    # ------------------------------------------------------------ ground truth accessors

    @property
    def event_count(self) -> int:
        return len(self.cols.event_ts)

    @property
    def profile_count(self) -> int:
        return len(self.cols.profile_created)

    def profile_id(self, row: int) -> str:
        if row < len(self._profile_ids):
            return self._profile_ids[row]
        cached = self._profile_id_cache.get(row)
        if cached is None:
            cached = self._profile_id_cache[row] = records.profile_id(self.cols, row)
        return cached

    def profile_row(self, identifier: str) -> int | None:
        self._ensure_profile_ids()
        return self._profile_rows.get(identifier)

    def profile_ids(self) -> list[str]:
        self._ensure_profile_ids()
        return list(self._profile_ids)

    def _ensure_profile_ids(self) -> None:
        for row in range(len(self._profile_ids), self.profile_count):
            pid = records.profile_id(self.cols, row)
            self._profile_ids.append(pid)
            self._profile_rows[pid] = row

    def event_ids(self) -> list[str]:
        return [records.event_id(row) for row in range(self.event_count)]

    def records(self, resource_type: str) -> list[Row]:
        """Every record of a small collection (campaigns include archived ones)."""
        return list(self.small.get(resource_type, []))

    def get(self, resource_type: str, identifier: str) -> Row | None:
        return self.by_id.get(resource_type, {}).get(identifier)

    def metric_index(self, metric_id: str) -> int | None:
        for index, row in enumerate(self.small["metric"]):
            if row.id == metric_id:
                return index
        return None

    # ------------------------------------------------------------ events

    def event_value(self, row: int, field: str) -> Any:
        if field == "datetime":
            return self.cols.event_ts[row] * 1_000_000
        if field == "timestamp":
            return self.cols.event_ts[row]
        if field == "metric_id":
            return self.small["metric"][self.cols.event_metric[row]].id
        if field in ("profile_id", "profile"):
            return self.profile_id(self.cols.event_profile[row])
        if field == "metric":
            return self.small["metric"][self.cols.event_metric[row]].id
        raise KeyError(field)

    def page_events(self, conds: list[Condition], desc: bool, after: Any, size: int) -> Page:
        window = [_as_us(c) for c in conds if c.field in ("datetime", "timestamp") and c.op != "has"]
        lo_s, hi_s = seconds_window(window, "datetime")
        residual = [c for c in conds if c.field not in ("datetime", "timestamp")]
        metric_ids = [m.id for m in self.small["metric"]]
        checks: list[Callable[[int], bool]] = []
        for cond in residual:
            if cond.field == "metric_id":
                wanted = {
                    metric_ids.index(v)
                    for v in (cond.value if isinstance(cond.value, tuple) else (cond.value,))
                    if v in metric_ids
                }
                checks.append(lambda row, w=wanted: self.cols.event_metric[row] in w)  # type: ignore[misc]
            elif cond.field == "profile_id":
                target = self.profile_row(cond.value)
                checks.append(lambda row, t=target: self.cols.event_profile[row] == t)  # type: ignore[misc]
            # has(profile) / has(metric): every generated event has both.

        def accept(key: int) -> bool:
            row = key & ROW_MASK
            return all(check(row) for check in checks)

        keys, more = keyset_page(
            self.event_keys,
            after=after,
            desc=desc,
            size=size,
            accept=accept if checks else None,
            lo=None if lo_s == float("-inf") else int(lo_s) << SHIFT,
            hi=None if hi_s == float("inf") else int(hi_s) << SHIFT,
        )
        return Page([k & ROW_MASK for k in keys], list(keys), more)

    def event_attributes(self, row: int) -> dict[str, Any]:
        metric_name = self.small["metric"][self.cols.event_metric[row]].attributes["name"]
        return records.event_attributes(self.cols, row, metric_name, self.campaign_names_json)

    # ------------------------------------------------------------ profiles

    def profile_value(self, row: int, field: str) -> Any:
        if field == "id":
            return self.profile_id(row)
        if field == "email":
            return records.profile_email(self.cols, row)
        if field == "phone_number":
            return records.profile_phone(self.cols, row)
        if field == "external_id":
            return records.profile_external_id(self.cols, row)
        if field in ("created", "updated"):
            column = self.cols.profile_created if field == "created" else self.cols.profile_updated
            return column[row] * 1_000_000
        if field.startswith("subscriptions.email.marketing.suppression."):
            supp = self.cols.suppression.get(row)
            if supp is None:
                return None
            return supp[0] if field.endswith(".reason") else supp[1] * 1_000_000
        if field.startswith("subscriptions.email.marketing.list_suppressions."):
            return []  # the generator creates no list-level suppressions
        if field == "push_token":
            return self.push_token(row)
        if field == "profile_id":
            return self.profile_id(row)
        return None  # `_kx` (tracking token) never matches a generated profile

    def push_token(self, row: int) -> str | None:
        return records.push_token(self.cols, row)

    def _profile_sorted(self, field: str) -> list[Any]:
        """Lazily sorted keys for profile sorts without a maintained int index."""
        cached = self._sorted_cache.get(field)
        if cached is None:
            if field == "email":
                cached = sorted((records.profile_email(self.cols, r), r) for r in range(self.profile_count))
            elif field == "id":
                self._ensure_profile_ids()
                cached = sorted((pid, r) for r, pid in enumerate(self._profile_ids))
            else:  # suppression timestamps: suppressed profiles first (ascending), then the rest
                cached = sorted(tuple_key(self.profile_value(r, field), r) for r in range(self.profile_count))
            self._sorted_cache[field] = cached
        return cached

    def page_profiles(self, conds: list[Condition], sort: str, desc: bool, after: Any, size: int) -> Page:
        checks = list(conds)

        def accept_row(row: int) -> bool:
            return all(matches(c, self.profile_value(row, c.field)) for c in checks)

        if sort in ("updated", "created"):
            keys_int: Sequence[int] = self.updated_keys if sort == "updated" else self.created_keys
            lo_s, hi_s = seconds_window(conds, sort)
            found, more = keyset_page(
                keys_int,
                after=after,
                desc=desc,
                size=size,
                accept=lambda k: accept_row(k & ROW_MASK),
                lo=None if lo_s == float("-inf") else int(lo_s) << SHIFT,
                hi=None if hi_s == float("inf") else int(hi_s) << SHIFT,
            )
            return Page([k & ROW_MASK for k in found], list(found), more)
        keys = self._profile_sorted(sort)
        cursor = tuple(after) if after is not None else None
        found_t, more = keyset_page(
            keys, after=cursor, desc=desc, size=size, accept=lambda k: accept_row(k[-1])
        )
        return Page([k[-1] for k in found_t], [list(k) for k in found_t], more)

    def profile_attributes(self, row: int) -> dict[str, Any]:
        return records.profile_attributes(self.cols, row)

    def subscriptions(self, row: int) -> dict[str, Any]:
        return records.subscriptions(self.cols, row)

    def predictive_analytics(self, row: int) -> dict[str, Any]:
        return records.predictive_analytics(self.cols, row, self.now)

    # ------------------------------------------------------------ list / segment members

    def members(self, group_type: str, group_id: str) -> list[int]:
        """Sorted keys `(joined_group_at << 32) | profile row` of a list's or segment's members."""
        key = (group_type, group_id)
        cached = self._members.get(key)
        if cached is None:
            share = self.by_id[group_type][group_id].hidden["member_share"]
            rng = random.Random(f"{self.seed}:{group_type}:{group_id}")  # str seeds are stable across runs
            draw, created, now = rng.random, self.cols.profile_created, self.now
            rows = [r for r in range(min(self.sizes.profiles, self.profile_count)) if draw() < share]
            # generated profiles only; each joined between its creation and "now" at generation
            cached = sorted(((created[r] + int((now - created[r]) * draw())) << SHIFT) | r for r in rows)
            self._members[key] = cached
        return cached

    def page_members(
        self, group_type: str, group_id: str, conds: list[Condition], desc: bool, after: Any, size: int
    ) -> Page:
        keys = self.members(group_type, group_id)
        lo_s, hi_s = seconds_window(conds, "joined_group_at")
        others = [c for c in conds if c.field != "joined_group_at"]

        def accept(key: int) -> bool:
            row = key & ROW_MASK
            return all(matches(c, self.profile_value(row, c.field)) for c in others)

        found, more = keyset_page(
            keys,
            after=after,
            desc=desc,
            size=size,
            accept=accept if others else None,
            lo=None if lo_s == float("-inf") else int(lo_s) << SHIFT,
            hi=None if hi_s == float("inf") else int(hi_s) << SHIFT,
        )
        return Page(found, list(found), more)

    # ------------------------------------------------------------ small collections

    def small_value(self, row: Row, field: str) -> Any:
        if field == "id":
            return row.id
        if field in row.hidden:
            return row.hidden[field]
        value: Any = row.attributes
        for part in field.split("."):
            value = value.get(part) if isinstance(value, dict) else None
        if field in DATETIME_FIELDS:
            return _iso_us(value)
        return value

    def page_small(
        self, rows: Sequence[Row], conds: list[Condition], sort: str, desc: bool, after: Any, size: int | None
    ) -> Page:
        def sort_value(row: Row) -> Any:
            value = row.id if sort == "id" else row.attributes.get(sort, row.hidden.get(sort))
            return value

        selected = [r for r in rows if all(matches(c, self.small_value(r, c.field)) for c in conds)]
        keyed = sorted((tuple_key(sort_value(r), r.id), r) for r in selected)
        keys = [k for k, _ in keyed]
        by_key = {k: r for k, r in keyed}
        cursor = tuple(after) if after is not None else None
        found, more = keyset_page(
            keys,
            after=cursor,
            desc=desc,
            size=size if size is not None else len(keys) + 1,
            accept=lambda _: True,
        )
        return Page([by_key[k] for k in found], [list(k) for k in found], more)

    # ------------------------------------------------------------ time moves

    def clock(self) -> int:
        """Current real time in whole seconds, never before anything already stored."""
        latest = max(self.now, self.cols.event_ts[-1] if self.event_count else 0)
        return max(int(time.time()), latest)

    def advance(self, changes: dict[str, Any]) -> dict[str, Any]:
        """Create and update records stamped now; `boundary` reuses each collection's max cursor second.

        Raises ValueError for an unknown change or a count that is not a non-negative integer.
        """
        unknown = sorted(set(changes) - ADVANCE_KEYS)
        if unknown:
            raise ValueError(
                f"unknown change(s) {', '.join(unknown)}; known: {', '.join(sorted(ADVANCE_KEYS))}"
            )
        for name, value in changes.items():
            if name != "boundary" and (not isinstance(value, int) or isinstance(value, bool) or value < 0):
                raise ValueError(f"{name} must be a non-negative integer")
        self._advance_count += 1
        salt = mix(self.seed, 900, self._advance_count)
        now = self.clock()
        boundary = bool(changes.get("boundary", False))
        result: dict[str, Any] = {"now": iso_seconds(now), "boundary": {}}

        n_events = int(changes.get("events", 0))
        if n_events:
            last = self.cols.event_ts[-1] if self.event_count else now
            created_ids = []
            for k in range(n_events):
                stamp = last if boundary and k < max(1, n_events // 4) else now
                if boundary:
                    result["boundary"]["events"] = iso_seconds(last)
                self._append_event(stamp, salt, k)
                created_ids.append(records.event_id(self.event_count - 1))
            result["events"] = created_ids

        n_created = int(changes.get("profiles_created", 0))
        if n_created:
            result["profiles_created"] = [self._append_profile(now, salt, k) for k in range(n_created)]

        n_updated = int(changes.get("profiles_updated", 0))
        n_suppressed = int(changes.get("profiles_suppressed", 0))
        if (n_updated or n_suppressed) and self.profile_count:
            max_updated = self.updated_keys[-1] >> SHIFT
            if boundary:
                result["boundary"]["profiles"] = iso_seconds(max_updated)
            updated_ids: list[str] = []
            chosen: list[int] = []
            for k in range(n_updated + n_suppressed):
                row = mix(salt, 2, k) % self.profile_count
                attempts = 0
                while row in chosen and attempts < self.profile_count:
                    row = (row + 1) % self.profile_count
                    attempts += 1
                chosen.append(row)
                stamp = max_updated if boundary and k < max(1, (n_updated + n_suppressed) // 2) else now
                if k >= n_updated:
                    self.cols.suppression[row] = (SUPPRESSION_REASONS[mix(salt, 3, k) % 5], now)
                self._touch_profile(row, stamp)
                updated_ids.append(self.profile_id(row))
            result["profiles_updated"] = updated_ids[:n_updated]
            if n_suppressed:
                result["profiles_suppressed"] = updated_ids[n_updated:]
            self._sorted_cache.pop("subscriptions.email.marketing.suppression.timestamp", None)

        for name, (rtype, cursor) in SMALL_CURSORS.items():
            n = int(changes.get(f"{name}_updated", 0))
            rows = self.small[rtype]
            if n and rows and cursor:
                max_second = max(_iso_us(r.attributes[cursor]) or 0 for r in rows) // 1_000_000
                if boundary:
                    result["boundary"][name] = iso_seconds(max_second)
                picked = [
                    rows[(mix(salt, 4, len(name), k) + k) % len(rows)] for k in range(min(n, len(rows)))
                ]
                ids = []
                unique = list({r.id: r for r in picked}.values())
                for k, touched in enumerate(unique):
                    stamp = max_second if boundary and k < max(1, n // 2) else now
                    touched.attributes[cursor] = iso_seconds(stamp)
                    if "name" in touched.attributes:
                        touched.attributes["name"] = (
                            touched.attributes["name"].split(" (rev")[0] + f" (rev {self._advance_count})"
                        )
                    ids.append(touched.id)
                result[f"{name}_updated"] = ids
            n_new = int(changes.get(f"{name}_created", 0))
            if n_new and rows and cursor:
                result[f"{name}_created"] = [
                    self._clone_small(rtype, cursor, now, salt, k) for k in range(n_new)
                ]
        return result

    def _append_event(self, stamp: int, salt: int, k: int) -> None:
        row = self.event_count
        u = frac(salt, 5, k) * METRIC_CUMULATIVE[-1]
        self.cols.event_ts.append(stamp)
        self.cols.event_metric.append(bisect.bisect_right(METRIC_CUMULATIVE, u))
        self.cols.event_profile.append(mix(salt, 6, k) % max(1, self.profile_count))
        self.cols.event_rand.append(mix(salt, 11, k))
        self.event_keys.append((stamp << SHIFT) | row)

    def _append_profile(self, now: int, salt: int, k: int) -> str:
        row = self.profile_count
        self.cols.profile_created.append(now)
        self.cols.profile_updated.append(now)
        self.cols.profile_version.append(0)
        self.cols.profile_rand.append(mix(salt, 12, k))
        self.cols.push_enabled.append(1 if frac(salt, 7, k) < 0.1 else 0)
        self.created_keys.append((now << SHIFT) | row)
        bisect.insort(self.updated_keys, (now << SHIFT) | row)
        self._sorted_cache.clear()
        return self.profile_id(row)

    def _touch_profile(self, row: int, stamp: int) -> None:
        old = (self.cols.profile_updated[row] << SHIFT) | row
        position = bisect.bisect_left(self.updated_keys, old)
        if position < len(self.updated_keys) and self.updated_keys[position] == old:
            del self.updated_keys[position]
        stamp = max(stamp, self.cols.profile_created[row])
        self.cols.profile_updated[row] = stamp
        self.cols.profile_version[row] += 1
        bisect.insort(self.updated_keys, (stamp << SHIFT) | row)

    def _clone_small(self, rtype: str, cursor: str, now: int, salt: int, k: int) -> str:
        template = self.small[rtype][mix(salt, 8, k) % len(self.small[rtype])]
        new_id = ulid(now, salt, 9, k) if rtype == "campaign" else short_id(salt, 9, k)
        attributes = dict(template.attributes)
        created_field = "created_at" if cursor == "updated_at" else "created"
        attributes[created_field] = attributes[cursor] = iso_seconds(now)
        if "name" in attributes:
            attributes["name"] = f"{attributes['name']} (copy {self._advance_count}.{k})"
        relationships = dict(template.relationships)
        if rtype == "campaign":
            messages = []
            for index, mid in enumerate(template.relationships["campaign-messages"][1] or []):
                source = self.by_id["campaign-message"][str(mid)]
                copy = Row(
                    "campaign-message",
                    ulid(now, salt, 10, k, index),
                    dict(source.attributes),
                    {**source.relationships, "campaign": ("campaign", new_id)},
                )
                copy.attributes["created_at"] = copy.attributes["updated_at"] = iso_seconds(now)
                self._add_small(copy)
                messages.append(copy.id)
            relationships["campaign-messages"] = ("campaign-message", messages)
        if rtype == "flow":
            relationships["flow-actions"] = ("flow-action", [])
        self._add_small(Row(rtype, new_id, attributes, relationships, dict(template.hidden)))
        return new_id

    def _add_small(self, row: Row) -> None:
        self.small.setdefault(row.type, []).append(row)
        self.by_id.setdefault(row.type, {})[row.id] = row


def _keys(seconds: Sequence[int]) -> Iterator[int]:
    """`(seconds << 32) | row` for every row (C-level maps: fast for a million rows)."""
    return map(or_, map(lshift, seconds, repeat(SHIFT)), range(len(seconds)))


def _as_us(cond: Condition) -> Condition:
    """Events `timestamp` conditions (seconds) as `datetime` microseconds."""
    if cond.field == "timestamp":
        return Condition("datetime", cond.op, int(cond.value * 1_000_000))
    return cond
