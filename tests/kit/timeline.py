""" "Three months of syncs" as data: steps of simulator changes, each followed by an incremental sync.

A `Step` is a label and a tuple of `(action, arguments)` changes; `apply(sim, step)` runs them
through `ACTIONS`. Arguments pick records symbolically (`"pick": 2` = the first two live records
of that kind, in the store's order) so the timeline stays data and every run is deterministic.
Other concerns add their steps by appending to `TIMELINE` and, for a new kind of change,
registering a function in `ACTIONS` (`(sim, arguments) -> None`):

    ACTIONS["quirks"] = _quirks                          # Klaviyo breaking its contract
    TIMELINE.append(Step("late events", (("advance", {"late_events": 4, "late_events_age": 86_400}),)))

The faces' tests (tests/reliability/test_three_months.py) check after every sync that the
destination equals `kit.truth.expected(sim.store)` on `STREAMS`.
"""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from klaviyo_simulator.resources.profiles import ROW_MASK
from klaviyo_simulator.server import Simulator

Change = tuple[str, dict[str, Any]]


@dataclass(frozen=True)
class Step:
    label: str
    changes: tuple[Change, ...]


def _advance(sim: Simulator, arguments: dict[str, Any]) -> None:
    sim.advance(**arguments)


def _live_ids(sim: Simulator, resource_type: str) -> list[str]:
    store = sim.store
    if resource_type == "profile":
        return store.profiles.live_ids()
    return [row.id for row in store.records(resource_type)]


def _delete(sim: Simulator, arguments: dict[str, Any]) -> None:
    """{"type": "campaign", "pick": n}: delete the first n live records of that type."""
    rtype = arguments["type"]
    sim.change("delete", type=rtype, ids=_live_ids(sim, rtype)[: arguments["pick"]])


def _unsuppress(sim: Simulator, arguments: dict[str, Any]) -> None:
    """{"pick": n}: lift the email suppression of the first n suppressed live profiles."""
    store = sim.store
    rows = sorted(r for r in store.profiles.cols.suppression if r not in store.profiles.deleted)
    sim.change("unsuppress", ids=[store.profile_id(r) for r in rows[: arguments["pick"]]])


def _remove_members(sim: Simulator, arguments: dict[str, Any]) -> None:
    """{"group_type": "list", "group": i, "pick": n}: remove the first n members of the i-th group."""
    store = sim.store
    group_type = arguments["group_type"]
    group = store.records(group_type)[arguments["group"]].id
    members = [store.profile_id(k & ROW_MASK) for k in store.members(group_type, group)[: arguments["pick"]]]
    sim.change("remove-members", group_type=group_type, group_id=group, profile_ids=members)


def _quirks(sim: Simulator, arguments: dict[str, Any]) -> None:
    """{"quirk_space_datetimes": true, ...}: Klaviyo breaking its own contract from now on
    (klaviyo_simulator/quirks.py; false turns one off)."""
    sim.controls.set_options(**arguments)


def _drift(sim: Simulator, arguments: dict[str, Any]) -> None:
    """{"resource": "event", "field": "attributes.uuid", "to": "object", "from_record": n}: the
    field's JSON type changes from the n-th record of that type on (klaviyo_simulator/drift.py)."""
    request = urllib.request.Request(
        f"{sim.base_url}/__sim/drift", data=json.dumps(arguments).encode(), method="POST"
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 200


QUIRKS = ("quirk_greater_than_equal", "quirk_unsorted_archived", "quirk_space_datetimes")

ACTIONS: dict[str, Callable[[Simulator, dict[str, Any]], None]] = {
    "advance": _advance,
    "quirks": _quirks,
    "delete": _delete,
    "unsuppress": _unsuppress,
    "remove_members": _remove_members,
    "drift": _drift,
}


def apply(sim: Simulator, step: Step) -> None:
    for action, arguments in step.changes:
        ACTIONS[action](sim, arguments)


# The streams every face checks (the others ride the same mechanisms; tiny data keeps it quick).
# flow_messages and form_versions are left out: their per-parent scans sit in a 3/s, 60/min tier
# (seconds per sync even on tiny data); tests/engine/test_child_deletions.py covers their deletions.
STREAMS = [
    "profiles", "global_exclusions", "profile_subscriptions", "list_exclusions", "events",
    "email_templates", "metrics", "lists", "campaigns", "campaign_messages", "campaign_tags",
    "flows", "flow_actions", "segments", "list_memberships", "segment_memberships",
    "tags", "coupons", "coupon_codes", "forms", "images", "catalog_items",
]  # fmt: skip

SIZES = {"events": 60, "profiles": 80, "campaigns": 8, "flows": 3, "lists": 3, "templates": 12}

TIMELINE: list[Step] = [
    Step(
        "week 1: new and changed records",
        (
            (
                "advance",
                {
                    "events": 10,
                    "profiles_created": 3,
                    "profiles_updated": 4,
                    "campaigns_updated": 2,
                    "list_members_added": 3,
                },
            ),
        ),
    ),
    Step(
        "week 2: campaigns, a flow and a template deleted",
        (
            ("delete", {"type": "campaign", "pick": 2}),
            ("delete", {"type": "flow", "pick": 1}),
            ("delete", {"type": "template", "pick": 1}),
            ("advance", {"campaigns_created": 1}),
        ),
    ),
    Step(
        # dated before the last sync's cursor: only the trailing re-scan (late_events_hours) finds them
        "week 3: events Klaviyo makes visible a day late",
        (("advance", {"late_events": 4, "late_events_age": 86_400}), ("advance", {"events": 3})),
    ),
    Step(
        "week 4: GDPR deletion of profiles, a suppression lifted",
        (
            ("delete", {"type": "profile", "pick": 3}),
            ("unsuppress", {"pick": 1}),
            ("advance", {"profiles_suppressed": 1}),
        ),
    ),
    Step(
        "week 6: members removed from a list and a segment",
        (
            ("remove_members", {"group_type": "list", "group": 0, "pick": 2}),
            ("remove_members", {"group_type": "segment", "group": 2, "pick": 1}),
            ("advance", {"list_members_added": 2}),
        ),
    ),
    Step(
        "week 8: tags, a coupon, a form, an image and a catalog item deleted",
        (
            ("delete", {"type": "tag", "pick": 1}),
            ("delete", {"type": "coupon", "pick": 1}),
            ("delete", {"type": "form", "pick": 1}),
            ("delete", {"type": "image", "pick": 1}),
            ("delete", {"type": "catalog-item", "pick": 1}),
            ("delete", {"type": "metric", "pick": 1}),
        ),
    ),
    Step(
        "week 9: Klaviyo breaks its contract (greater-than returns the bound, archived campaigns "
        "out of sort order, datetimes with a space), and late events again",
        (
            ("quirks", dict.fromkeys(QUIRKS, True)),
            ("advance", {"late_events": 2, "late_events_age": 7_200, "events": 2}),
            ("advance", {"campaigns_updated": 2, "profiles_updated": 2, "profiles_suppressed": 1}),
        ),
    ),
    Step(
        # the first 60 events were loaded weeks ago; the re-scan re-reads recent ones drifted
        "week 10: types drift (an integer beyond 64 bits, an object where a string was)",
        (
            (
                "drift",
                {
                    "resource": "event",
                    "field": "attributes.timestamp",
                    "to": "big_integer",
                    "from_record": 60,
                },
            ),
            ("drift", {"resource": "event", "field": "attributes.uuid", "to": "object", "from_record": 70}),
            ("drift", {"resource": "campaign", "field": "attributes.name", "to": "number", "from_record": 2}),
            ("advance", {"events": 4, "campaigns_updated": 2}),
        ),
    ),
    Step(
        "week 12: a list deleted, more of everything",
        (
            ("delete", {"type": "list", "pick": 1}),
            ("unsuppress", {"pick": 1}),
            ("advance", {"events": 5, "profiles_updated": 3, "campaigns_updated": 1}),
        ),
    ),
    Step(
        "week 13: Klaviyo keeps its contract again",
        (("quirks", dict.fromkeys(QUIRKS, False)), ("advance", {"events": 2, "late_events": 1})),
    ),
]
