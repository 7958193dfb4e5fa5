"""The filter parser: every input is either a valid condition list or a QueryError (never a crash)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from klaviyo_simulator.query import Condition, QueryError, parse_datetime_us, parse_filter
from klaviyo_simulator.spec import endpoint_rules

EVENTS = endpoint_rules()["/api/events"]
CAMPAIGNS = endpoint_rules()["/api/campaigns"]
PIECES = [
    "equals",
    "any",
    "has",
    "and",
    "or",
    "greater-than",
    "less-or-equal",
    "(",
    ")",
    ",",
    "[",
    "]",
    "'",
    '"',
    "datetime",
    "timestamp",
    "metric_id",
    "profile",
    "2024-01-01T00:00:00Z",
    "12",
    "1.5",
    "true",
    "x",
    " ",
]


@settings(max_examples=400, deadline=None)
@given(st.lists(st.sampled_from(PIECES), max_size=14).map("".join) | st.text(max_size=40))
def test_any_input_parses_or_is_a_400(text: str) -> None:
    try:
        conditions = parse_filter(text, EVENTS)
    except QueryError as err:
        assert err.parameter == "filter" and err.detail
    else:
        assert all(isinstance(c, Condition) and c.field in EVENTS.filters for c in conditions)


def test_nested_and_flattens() -> None:
    conditions = parse_filter(
        "and(greater-or-equal(datetime,2024-01-01),and(less-than(timestamp,1800000000),has(metric)))", EVENTS
    )
    assert [(c.field, c.op) for c in conditions] == [
        ("datetime", "greater-or-equal"),
        ("timestamp", "less-than"),
        ("metric", "has"),
    ]


def test_datetime_literal_forms() -> None:
    base = parse_datetime_us("2023-08-15T12:30:00Z")
    assert parse_datetime_us("2023-08-15T12:30:00") == base
    assert parse_datetime_us("2023-08-15 12:30:00Z") == base
    assert parse_datetime_us("2023-08-15T12:30:00+00:00") == base
    assert parse_datetime_us("2023-08-15T15:30:00+03:00") == base
    assert parse_datetime_us("2023-08-15T12:30:00.710Z") == base + 710_000
    assert parse_datetime_us("2023-08-15") == base - (12 * 3600 + 30 * 60) * 1_000_000
    assert parse_datetime_us("2023-08-15T12:30:00+0000") == base  # Airbyte's `%z` form
    assert parse_datetime_us("2023-08-15 07:00:00.710-0530") == base + 710_000
    bad_forms = (
        "2023-08-15T12:30",
        "15/08/2023",
        "2023-08-15t12:30:00z",
        "2023-08-15T12:30:00 00:00",
        "2023-08-15T12:30:00+000",
        "2023-08-15T12:30:00+00:0",
        "2023-08-15T12:30:00+2400",
        "2023-08-15T12:30:00Z+0000",
    )
    for bad in bad_forms:
        try:
            parse_datetime_us(bad)
        except ValueError:
            continue
        raise AssertionError(bad)


def test_values_are_typed_by_the_field() -> None:
    [channel, archived, updated] = parse_filter(
        'equals(messages.channel,"sms"),equals(archived,false),greater-than(updated_at,2024-01-01T00:00:00Z)',
        CAMPAIGNS,
    )
    assert channel.value == "sms" and archived.value is False and isinstance(updated.value, int)
    [listed] = parse_filter("any(id,['a','b'])", CAMPAIGNS)
    assert listed.value == ("a", "b")
