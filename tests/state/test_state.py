"""State migrations: every Airbyte shape in, our shape out."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from klaviyo_source.errors import ConfigError
from klaviyo_source.state import read_state, write_state
from klaviyo_source.streams.table import LISTINGS, NO_PARTITION, STREAMS_BY_NAME, Listing, Stream
from klaviyo_source.times import filter_time, format_time, parse_time

T = datetime(2024, 9, 3, 10, 0, tzinfo=UTC)
EMAIL_TRUE = (("archived", "true"), ("campaign_type", "email"))
EMAIL_FALSE = (("archived", "false"), ("campaign_type", "email"))
SMS_TRUE = (("archived", "true"), ("campaign_type", "sms"))


@pytest.mark.parametrize(
    "text",
    [
        "2024-09-03T10:00:00+00:00",  # 2.10.x, T separator
        "2024-09-03 10:00:00+00:00",  # 2.10.x events, space separator
        "2024-09-03T10:00:00+0000",  # 2.11+
        "2024-09-03T10:00:00Z",
        "2024-09-03T12:00:00+02:00",
        "2024-09-03T10:00:00.000000+00:00",
    ],
)
def test_single_cursor_strings_of_every_version(text: str) -> None:
    assert read_state(STREAMS_BY_NAME["profiles"], {"updated": text}) == {NO_PARTITION: T}


def test_empty_and_missing_state() -> None:
    row = STREAMS_BY_NAME["events"]
    assert read_state(row, None) == {}
    assert read_state(row, {}) == {}
    assert read_state(row, {"states": []}) == {}


def test_events_detailed_legacy_per_event_partitions_take_the_minimum() -> None:
    raw = {
        "states": [
            {"partition": {"event_id": "a"}, "cursor": {"datetime": "2024-09-12 00:00:00+00:00"}},
            {"partition": {"event_id": "b"}, "cursor": {"datetime": "2024-09-10 00:00:00+00:00"}},
        ]
    }
    assert read_state(STREAMS_BY_NAME["events_detailed"], raw) == {
        NO_PARTITION: datetime(2024, 9, 10, tzinfo=UTC)
    }


def test_concurrent_global_state_wins_over_partitions() -> None:
    raw = {
        "use_global_cursor": False,
        "states": [
            {"partition": {"id": "L1", "parent_slice": {}}, "cursor": {"updated": "2024-01-01T00:00:00+0000"}}
        ],
        "state": {"updated": "2024-09-03T10:00:00+0000"},
        "lookback_window": 1,
    }
    assert read_state(STREAMS_BY_NAME["lists_detailed"], raw) == {NO_PARTITION: T}


def test_lists_detailed_per_list_partitions_take_the_maximum() -> None:
    raw = {
        "states": [
            {
                "partition": {"id": "L1", "parent_slice": {}},
                "cursor": {"updated": "2024-01-01T00:00:00+00:00"},
            },
            {
                "partition": {"id": "L2", "parent_slice": {}},
                "cursor": {"updated": "2024-09-03T10:00:00+00:00"},
            },
        ]
    }
    assert read_state(STREAMS_BY_NAME["lists_detailed"], raw) == {NO_PARTITION: T}


def test_campaigns_archived_substate_maps_to_email_partitions_only() -> None:
    raw = {"updated_at": "2024-09-10T00:00:00+00:00", "archived": {"updated_at": "2024-09-01T00:00:00+00:00"}}
    saved = read_state(STREAMS_BY_NAME["campaigns"], raw)
    assert saved == {
        EMAIL_FALSE: datetime(2024, 9, 10, tzinfo=UTC),
        EMAIL_TRUE: datetime(2024, 9, 1, tzinfo=UTC),
    }


def test_flows_archived_substate() -> None:
    raw = {"updated": "2024-09-10T00:00:00+00:00", "archived": {"updated": "2024-09-01T00:00:00+00:00"}}
    assert read_state(STREAMS_BY_NAME["flows"], raw) == {
        (("archived", "false"),): datetime(2024, 9, 10, tzinfo=UTC),
        (("archived", "true"),): datetime(2024, 9, 1, tzinfo=UTC),
    }


def test_per_partition_state_of_airbyte_2_13() -> None:
    raw = {
        "use_global_cursor": False,
        "states": [
            {
                "partition": {"archived": "true", "campaign_type": "sms"},
                "cursor": {"updated_at": "2024-09-03T10:00:00+0000"},
            },
            {
                "partition": {"archived": "false", "campaign_type": "email"},
                "cursor": {"updated_at": "2024-09-03T10:00:00+0000"},
            },
        ],
        "state": {"updated_at": "2024-09-03T10:00:00+0000"},
        "lookback_window": 1,
    }
    assert read_state(STREAMS_BY_NAME["campaigns_detailed"], raw) == {SMS_TRUE: T, EMAIL_FALSE: T}


def test_use_global_cursor_applies_to_every_partition() -> None:
    raw = {"use_global_cursor": True, "state": {"updated": "2024-09-03T10:00:00+0000"}}
    saved = read_state(STREAMS_BY_NAME["flows"], raw)
    assert set(saved.values()) == {T} and len(saved) == 2


@pytest.mark.parametrize(
    "raw",
    [{"updated": "yesterday"}, {"updated": 12}, [1, 2], {"states": [{"partition": {}}]}],
)
def test_corrupt_state_is_a_config_error_naming_the_stream(raw: object) -> None:
    with pytest.raises(ConfigError, match="profiles"):
        read_state(STREAMS_BY_NAME["profiles"], raw)


def test_write_state_round_trips_through_read_state() -> None:
    for name in ("profiles", "campaigns", "flows"):
        row = STREAMS_BY_NAME[name]
        if row.partitioned_state:
            cursors = (
                {key: T for key in (EMAIL_TRUE, SMS_TRUE)}
                if name == "campaigns"
                else {(("archived", "true"),): T}
            )
        else:
            cursors = {NO_PARTITION: T}
        out = write_state(row, cursors)
        assert read_state(row, out) == cursors


def test_written_shapes() -> None:
    assert write_state(STREAMS_BY_NAME["events"], {NO_PARTITION: T}) == {
        "datetime": "2024-09-03T10:00:00+00:00"
    }
    out = write_state(STREAMS_BY_NAME["campaigns"], {SMS_TRUE: T})
    assert out == {
        "states": [
            {
                "partition": {"archived": "true", "campaign_type": "sms"},
                "cursor": {"updated_at": format_time(T)},
            }
        ],
        "use_global_cursor": False,
        "state": {"updated_at": "2024-09-03T10:00:00+00:00"},
    }


def test_filter_literals() -> None:
    assert filter_time(T) == "2024-09-03T10:00:00Z"
    assert filter_time(parse_time("2024-09-03T09:59:59.999999+00:00")) == "2024-09-03T09:59:59.999999Z"


def _events(*ids: str) -> tuple[Stream, Listing]:
    row = STREAMS_BY_NAME["events"]
    return row, LISTINGS[row.listing].configured(ids)


def test_airbyte_3x_event_metric_partitions_map_to_ours() -> None:
    row, listing = _events("A", "B")
    raw = {
        "use_global_cursor": False,
        "states": [
            {"partition": {"event_metric_id": "A"}, "cursor": {"datetime": "2024-09-03T10:00:00+0000"}},
            {"partition": {"event_metric_id": "B"}, "cursor": {"datetime": "2024-09-01T00:00:00+00:00"}},
        ],
        "state": {"datetime": "2024-09-03T10:00:00+0000"},
        "lookback_window": 0,
    }
    saved = read_state(row, raw, listing)
    assert saved == {
        (("event_metric_id", "A"),): T,
        (("event_metric_id", "B"),): datetime(2024, 9, 1, tzinfo=UTC),
    }
    out = write_state(row, saved)
    assert [s["partition"] for s in out["states"]] == [{"event_metric_id": "A"}, {"event_metric_id": "B"}]
    assert read_state(row, out, listing) == saved
    # without ids configured, per-metric partitions never covered the other metrics: from start_date
    assert read_state(row, raw) == {}


def test_an_unfiltered_cursor_covers_every_metric_and_a_new_metric_starts_over() -> None:
    row, listing = _events("A", "B")
    assert read_state(row, {"datetime": "2024-09-03T10:00:00+0000"}, listing) == {
        (("event_metric_id", "A"),): T,
        (("event_metric_id", "B"),): T,
    }
    only_a = {"states": [{"partition": {"event_metric_id": "A"}, "cursor": {"datetime": format_time(T)}}]}
    assert read_state(row, only_a, listing) == {(("event_metric_id", "A"),): T}
    empty_value = {"states": [{"partition": {"event_metric_id": ""}, "cursor": {"datetime": format_time(T)}}]}
    assert read_state(row, empty_value) == {NO_PARTITION: T}
    assert write_state(row, {NO_PARTITION: T}) == {"datetime": format_time(T)}
    glob = {"use_global_cursor": True, "states": [], "state": {"datetime": format_time(T)}}
    assert set(read_state(row, glob, listing).values()) == {T}
