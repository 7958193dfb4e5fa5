"""A stream's behaviour lives in its row: the engine, the HTTP layer and the state codec name no
stream and no listing (issue: structure for growth)."""

from __future__ import annotations

import ast
from pathlib import Path

from klaviyo_source.endpoints import query_endpoints
from klaviyo_source.streams.table import LISTINGS, STREAMS, STREAMS_BY_NAME

PACKAGE = Path(__file__).resolve().parents[2] / "src" / "klaviyo_source"
NAMES = frozenset(STREAMS_BY_NAME) | frozenset(LISTINGS)
CHECKED = [
    *sorted((PACKAGE / "engine").glob("*.py")),
    *sorted((PACKAGE / "http").glob("*.py")),
    PACKAGE / "state.py",
]


def name_literals(source: str) -> list[tuple[int, str]]:
    """(line, literal) of every string constant, f-string part included, that is a stream or
    listing name."""
    return [
        (node.lineno, node.value)
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value in NAMES
    ]


def test_engine_http_and_state_hold_no_stream_or_listing_name() -> None:
    found = {
        str(path.relative_to(PACKAGE)): hits for path in CHECKED if (hits := name_literals(path.read_text()))
    }
    assert found == {}


def test_the_check_finds_a_name_in_code_and_in_f_strings() -> None:
    scratch = 'if plan.name == "events":\n    pass\nmessage = f"{x}campaigns"\nkind = f"{y}" + "flows"\n'
    assert name_literals(scratch) == [(1, "events"), (3, "campaigns"), (4, "flows")]


def test_a_listed_streams_cursor_is_its_listings_cursor_attribute() -> None:
    """The engine copies a listing's cursor attribute to the top level of its records, under the
    attribute's name: that must be the cursor of every stream it serves (fan-out streams have
    their own, from their child listing)."""
    for stream in STREAMS:
        if stream.fanout is not None:
            path = stream.fanout.cursor_path
            assert stream.cursor_field == (path[-1] if path else None), stream.name
            continue
        for listing in {stream.listing, stream.rides_on} - {""}:
            assert (LISTINGS[listing].cursor_name or None) == stream.cursor_field, (stream.name, listing)


def test_a_listing_without_a_cursor_has_no_window_and_no_sort() -> None:
    """Nothing to filter or sort on: every read lists every record (state stays {})."""
    for listing in LISTINGS.values():
        if not listing.has_cursor:
            assert listing.window is None and listing.sort is None and not listing.splittable, listing.name


def test_every_row_points_at_real_listings_and_partitions() -> None:
    for stream in STREAMS:
        if stream.report is not None:  # a Reporting API stream: a POST query, no listing
            assert stream.listing == "" and not stream.rides_on and not stream.partitioned_state
            assert stream.report.path in query_endpoints() and stream.cursor_field == "date"
            continue
        assert stream.listing in LISTINGS
        assert not stream.rides_on or stream.rides_on in LISTINGS
        keys = {p.key for p in LISTINGS[stream.listing].partitions}
        if stream.legacy_archived_extra:
            assert any(set(stream.legacy_archived_extra) <= set(k) for k in keys)
        assert stream.partitioned_state == (keys != {()} or stream.fanout is not None), stream.name


def test_a_newest_first_listing_sorts_descending_on_its_cursor_without_a_window() -> None:
    """The scan stops below the members' start: only sound when pages come newest first on the
    very cursor, and no window cuts them."""
    for listing in LISTINGS.values():
        if listing.newest_first:
            assert listing.window is None and listing.sort == f"-{listing.cursor_path[-1]}", listing.name
