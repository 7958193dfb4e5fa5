"""Klaviyo breaking its own contract, as peers met it in 2026 (docs/simulator-controls.md,
"Quirks"): one switch each in `ControlOptions`, all off by default.

* `quirk_greater_than_equal`: `greater-than(field, X)` compares at whole seconds and includes the
  bound: it returns records at X's second too (`greater-than(updated,2024-01-01T00:00:00.999999Z)`
  returns a record updated at 00:00:00).
* `quirk_unsorted_archived`: pages of archived campaigns (`equals(archived,true)`) come back
  slightly out of `sort` order (neighbours swapped pairwise within each page); paging itself
  stays complete (cursors follow the true order).
* `quirk_space_datetimes`: datetimes written with a space instead of `T`: every string value of
  the keys `datetime` (an event's, a send strategy's), `consent_timestamp`, `last_updated` and
  `timestamp` (suppressions) in a response body. Filters and sorts are unaffected.
"""

from __future__ import annotations

import re

from klaviyo_simulator.controls import ControlOptions
from klaviyo_simulator.model import Page
from klaviyo_simulator.query import Condition, Query

_SPACED_KEYS = re.compile(rb'"(datetime|consent_timestamp|last_updated|timestamp)":"(\d{4}-\d{2}-\d{2})T')


def conditions(found: list[Condition], options: ControlOptions) -> list[Condition]:
    """The filter as the quirky API applies it."""
    if not options.quirk_greater_than_equal:
        return found
    out = []
    for cond in found:
        # datetimes are held as epoch µs (numbers this large are datetimes after 2001)
        if cond.op == "greater-than" and isinstance(cond.value, int) and cond.value > 10**15:
            cond = Condition(cond.field, "greater-or-equal", cond.value // 1_000_000 * 1_000_000)
        out.append(cond)
    return out


def reorder(resource_type: str, query: Query, page: Page, options: ControlOptions) -> None:
    """Archived campaigns' pages, neighbours swapped (in place)."""
    if not options.quirk_unsorted_archived or resource_type != "campaign" or query.sort is None:
        return
    if not any(c.field == "archived" and c.op == "equals" and c.value is True for c in query.conditions):
        return
    rows = page.rows
    for i in range(0, len(rows) - 1, 2):
        rows[i], rows[i + 1] = rows[i + 1], rows[i]


def body(payload: bytes, options: ControlOptions) -> bytes:
    """The response body as the quirky API writes it."""
    if not options.quirk_space_datetimes:
        return payload
    return _SPACED_KEYS.sub(rb'"\1":"\2 ', payload)
