"""Config validation: every bad value is a ConfigError naming the key; the key never leaks."""

from datetime import UTC, datetime

import pytest

from klaviyo_source.config import CONNECTION_SPECIFICATION, parse_config
from klaviyo_source.errors import ConfigError


def test_plain_date_start_date_is_midnight_utc() -> None:
    config = parse_config({"api_key": "pk_test", "start_date": "2024-03-05"})
    assert config.start_date == datetime(2024, 3, 5, tzinfo=UTC)


def test_airbyte_pattern_start_date_is_accepted() -> None:
    config = parse_config({"api_key": "pk_test", "start_date": "2017-01-25T00:00:00Z"})
    assert config.start_date == datetime(2017, 1, 25, tzinfo=UTC)


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("start_date", "yesterday"),
        ("num_workers", 0),
        ("num_workers", "5"),
        ("lookback_window", -1),
        ("base_url", "ftp://x"),
        ("base_url", "http://user:pk_secret_value@127.0.0.1:9"),
        ("disable_fetching_predictive_analytics", "yes"),
    ],
)
def test_invalid_value_names_the_key(key: str, value: object) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config({"api_key": "pk_secret_value", key: value})
    assert f"'{key}'" in caught.value.message
    assert "pk_secret_value" not in caught.value.message


def test_unknown_keys_are_tolerated_and_repr_hides_key() -> None:
    config = parse_config({"api_key": "pk_secret_value", "whatever": 1})
    assert "pk_secret_value" not in repr(config)


def test_event_metric_ids_is_a_comma_separated_list() -> None:
    assert parse_config(
        {"api_key": "k", "event_metric_ids": " A1b2C3, Placed Order,,A1b2C3"}
    ).event_metric_ids == (
        "A1b2C3",
        "Placed Order",
    )
    assert parse_config({"api_key": "k", "event_metric_ids": ""}).event_metric_ids == ()
    assert parse_config({"api_key": "k", "event_metric_ids": ["X", "Y"]}).event_metric_ids == ("X", "Y")
    with pytest.raises(ConfigError, match="event_metric_ids"):
        parse_config({"api_key": "k", "event_metric_ids": 5})
    assert CONNECTION_SPECIFICATION["properties"]["event_metric_ids"]["type"] == "string"
