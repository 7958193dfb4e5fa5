"""The stream table: discover order, keys, and each listing's page size and sort from the spec."""

from __future__ import annotations

import json
from pathlib import Path

from klaviyo_source.endpoints import endpoint_for
from klaviyo_source.streams.table import LISTINGS, STREAMS, STREAMS_BY_NAME

SPEC = json.loads(
    (Path(__file__).parents[2] / "src/klaviyo_source/openapi/klaviyo-2026-07-15.json").read_text()
)


def test_airbyte_2x_streams_keep_their_order_and_keys() -> None:
    airbyte_2x = [
        "profiles", "global_exclusions", "events", "events_detailed", "email_templates", "metrics",
        "lists", "lists_detailed", "campaigns", "campaigns_detailed", "flows",
    ]  # fmt: skip
    assert [r.name for r in STREAMS][: len(airbyte_2x)] == airbyte_2x
    assert all(STREAMS_BY_NAME[name].primary_key == ("id",) for name in airbyte_2x)


def test_page_sizes_are_each_endpoints_maximum() -> None:
    for group in LISTINGS.values():
        params = SPEC["paths"][group.path]["get"]["parameters"]
        size = next((p for p in params if p.get("name") == "page[size]"), None)
        if size is None:
            assert group.page_size is None
        else:
            assert group.page_size == size["schema"]["maximum"], group.name
        sorts = next(p for p in params if p.get("name") == "sort")["schema"]["enum"] if group.sort else []
        assert group.sort is None or group.sort in sorts
        includes = dict(group.params).get("include")
        if includes is not None:  # every include the spec allows on that listing
            allowed = next(p for p in params if p.get("name") == "include")["schema"]["items"]["enum"]
            assert set(includes.split(",")) <= set(allowed), group.name


def test_a_batched_fan_out_names_its_parents_with_a_list_operator_the_spec_allows() -> None:
    """`Fanout.batch`: cursorless child listings only, `{ids}` inside a list-valued operator of
    a field the spec filters on (x-klaviyo-filters), and children naming their parent where the
    spec's resource says (`relationships.<type>.data.id`)."""
    batched = [s for s in STREAMS if s.fanout is not None and s.fanout.batch is not None]
    assert [s.name for s in batched] == ["coupon_codes"]
    for stream in batched:
        fanout = stream.fanout
        assert fanout is not None and fanout.batch is not None
        assert not fanout.cursor_path and "{id}" not in fanout.path and 1 < fanout.batch.size <= 100
        op, _, rest = fanout.parent_filter.partition("(")
        field, _, value = rest.partition(",")
        assert value == "[{ids}])", stream.name
        rule = endpoint_for(fanout.path).filters[field]  # type: ignore[union-attr]
        assert op in rule.lists, stream.name
        relationship, data, key = fanout.batch.parent_path[1:]
        assert fanout.batch.parent_path[0] == "relationships" and (data, key) == ("data", "id")
        assert field == f"{relationship}.id", stream.name
